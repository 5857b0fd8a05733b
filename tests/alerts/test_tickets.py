"""The ticket lifecycle, as timelines: evaluations fed one by one, actions and tickets after each."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from alerts.model import Incident, IncidentKind, Route
from alerts.subject import SubjectKey
from alerts.tickets import (
    Action,
    Actor,
    ActorKind,
    AutoResolve,
    Contact,
    Directory,
    Escalate,
    EventKind,
    LinkToParent,
    Measurements,
    OpenTicket,
    Refusal,
    Refused,
    Remind,
    ReopenTicket,
    Step,
    Suppressed,
    Ticket,
    TicketBook,
    TicketChange,
    TicketEvent,
    TicketPolicy,
    TicketStatus,
    ticket_id,
)

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 08:00 in Asia/Ho_Chi_Minh

LINK = "24848/vnpt-tslcd"
KEY = SubjectKey.parse(f"link:{LINK}")
OTHER = "24849/vnpt-tslcd"
UPSTREAM = SubjectKey.parse("upstream:pop-lac-duong")

NOC = Contact(1, "Trung tâm điều hành VNPT", 0, isp="vnpt", email="noc@vnpt.example")
CHIEF = Contact(2, "Trưởng ca NOC", 30 * 60, isp="vnpt", email="truongca@vnpt.example")
DIRECTOR = Contact(3, "Giám đốc", 90 * 60, isp="vnpt", email="gd@vnpt.example")
IT = Contact(1, "Sở KH&CN", 0, email="it@lamdong.example")
IT_HEAD = Contact(2, "Trưởng phòng CNTT", 60 * 60, email="head@lamdong.example")

DIRECTORY = Directory(isps={"vnpt": (NOC, CHIEF, DIRECTOR), "viettel": ()}, provincial_it=(IT,))
POLICY = TicketPolicy(
    recovery_s=10 * 60, reopen_window_s=2 * 3600, remind_every_s=3600, still_failing_s=15 * 60
)
ENGINEER = Actor(ActorKind.ISP, "Nguyễn Văn An (VNPT)")
STAFF = Actor(ActorKind.PROVINCIAL_IT, "Trần Thị Bình")


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def link_fault(
    since_min: float, state: str = "down", detail: str = "no_echo", link: str = LINK
) -> Incident:
    return Incident(
        key=SubjectKey.parse(f"link:{link}"),
        kind=IncidentKind.LINK_FAULT,
        state=state,
        since=at(since_min),
        route=Route.ISP,
        isp="vnpt",
        links=(link,),
        detail=detail,
    )


def names(actions: Iterable[Action]) -> list[str]:
    """Action types, with the event kind for updates: a timeline reads like a log."""
    out = []
    for action in actions:
        name = type(action).__name__
        if isinstance(action, TicketChange) and name == "UpdateTicket":
            name += ":" + action.event.kind.value
        out.append(name)
    return out


class Store:
    """The caller's store, as the module docstring asks: upsert tickets, insert events once."""

    def __init__(self) -> None:
        self.tickets: dict[str, Ticket] = {}
        self.events: dict[tuple[str, int], TicketEvent] = {}

    def apply(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, TicketChange):
                self.tickets[action.ticket.id] = action.ticket
                self.events.setdefault((action.ticket.id, action.event.seq), action.event)


class Timeline:
    """Feeds evaluations one by one and adopts each book after storing its actions."""

    def __init__(self, book: TicketBook | None = None, store: Store | None = None) -> None:
        self.book = book if book is not None else TicketBook(POLICY, DIRECTORY)
        self.store = store if store is not None else Store()

    def step(
        self,
        minute: float,
        *incidents: Incident,
        maintenance: Collection[str] = (),
        measurements: Mapping[str, Measurements] | None = None,
    ) -> list[Action]:
        result = self.book.evaluate(
            incidents, at(minute), maintenance=maintenance, measurements=measurements
        )
        return self._adopt(result)

    def ack(self, minute: float, key: SubjectKey = KEY) -> list[Action]:
        return self._adopt(self.book.acknowledge(self.ticket(key).id, ENGINEER, at(minute)))

    def resolve(self, minute: float, key: SubjectKey = KEY) -> list[Action]:
        return self._adopt(self.book.resolve(self.ticket(key).id, ENGINEER, at(minute), "fixed"))

    def _adopt(self, result: Step | Refused) -> list[Action]:
        assert isinstance(result, Step), result
        self.store.apply(result.actions)
        self.book = result.book
        return list(result.actions)

    def ticket(self, key: SubjectKey = KEY) -> Ticket:
        return self.book.tickets[key]

    def log(self, key: SubjectKey = KEY) -> list[EventKind]:
        return [e.kind for e in self.ticket(key).log]


# -- one ticket per episode --------------------------------------------------------------------


def test_an_incident_opens_one_ticket_and_tells_the_first_level() -> None:
    tl = Timeline()
    incident = link_fault(since_min=-1.5)

    actions = tl.step(0, incident)
    assert names(actions) == ["OpenTicket"]
    opened = actions[0]
    assert isinstance(opened, OpenTicket)
    assert opened.recipients == (NOC,)
    ticket = tl.ticket()
    assert ticket.id == ticket_id(KEY, at(-1.5))
    assert ticket.status is TicketStatus.OPEN
    assert ticket.level == 1
    assert ticket.evidence.first_bad_at == at(-1.5)
    assert ticket.evidence.downtime_s(at(0)) == 90.0
    assert [(e.seq, e.kind, e.actor.kind) for e in ticket.log] == [
        (0, EventKind.OPENED, ActorKind.SYSTEM)
    ]

    for minute in (0.5, 1, 5, 10):
        assert tl.step(minute, incident) == []
    assert tl.ticket().evidence.downtime_s(at(10)) == 11.5 * 60
    assert len(tl.store.tickets) == 1


def test_replaying_an_evaluation_after_a_crash_yields_the_same_ticket() -> None:
    book = TicketBook(POLICY, DIRECTORY)
    incident = link_fault(since_min=0)
    first = book.evaluate([incident], at(1))
    # The process died before committing: the same evaluation runs again on the same book.
    again = book.evaluate([incident], at(1))
    assert first.actions == again.actions
    store = Store()
    store.apply(first.actions)
    store.apply(again.actions)
    assert list(store.tickets) == [ticket_id(KEY, at(0))]
    assert len(store.events) == 1
    # Committed: the next evaluation on the adopted book opens nothing.
    assert first.book.evaluate([incident], at(1)).actions == ()


def test_ticket_ids_depend_on_key_and_episode_start_only() -> None:
    assert ticket_id(KEY, at(0)) == ticket_id(KEY, at(0).astimezone(timezone(timedelta(hours=7))))
    assert ticket_id(KEY, at(0)) != ticket_id(KEY, at(1))
    assert ticket_id(KEY, at(0)) != ticket_id(SubjectKey.parse(f"link:{OTHER}"), at(0))
    assert ticket_id(KEY, at(0)).startswith("NW-20261120-")


def test_a_state_change_within_the_episode_updates_the_ticket() -> None:
    tl = Timeline()
    assert names(tl.step(0, link_fault(0, state="lossy", detail=""))) == ["OpenTicket"]
    assert names(tl.step(1, link_fault(0, state="down"))) == ["UpdateTicket:state_changed"]
    evidence = tl.ticket().evidence
    assert (evidence.state, evidence.worst_state, evidence.detail) == ("down", "down", "no_echo")

    # The cause behind "down" becomes known: that is a change too.
    actions = tl.step(2, link_fault(0, state="down", detail="interface_down"))
    assert names(actions) == ["UpdateTicket:state_changed"]
    assert tl.ticket().evidence.detail == "interface_down"

    assert names(tl.step(3, link_fault(0, state="lossy", detail=""))) == [
        "UpdateTicket:state_changed"
    ]
    evidence = tl.ticket().evidence
    assert (evidence.state, evidence.worst_state) == ("lossy", "down")
    assert len(tl.store.tickets) == 1
    assert tl.log() == [EventKind.OPENED] + [EventKind.STATE_CHANGED] * 3


def test_a_kind_change_reroutes_the_same_ticket() -> None:
    tl = Timeline()
    congested = Incident(
        KEY, IncidentKind.CAPACITY, "congested", at(0), Route.PROVINCIAL_IT, "vnpt", (LINK,)
    )
    actions = tl.step(0, congested)
    assert isinstance(actions[0], OpenTicket)
    assert actions[0].recipients == (IT,)

    actions = tl.step(5, link_fault(0, state="down"))
    assert names(actions) == ["UpdateTicket:kind_changed", "UpdateTicket:state_changed"]
    assert isinstance(actions[0], TicketChange)
    assert actions[0].recipients == (NOC,)
    ticket = tl.ticket()
    assert (ticket.route, ticket.evidence.kind) == (Route.ISP, IncidentKind.LINK_FAULT)
    assert ticket.evidence.worst_state == "down"


def test_a_flapping_incident_within_the_recovery_period_keeps_one_ticket() -> None:
    tl = Timeline()
    assert names(tl.step(0, link_fault(0))) == ["OpenTicket"]
    tl.ack(1)
    # Bad for 3 minutes, good for 3, for half an hour: never good for the 10-minute recovery.
    for start in range(6, 36, 6):
        assert names(tl.step(start - 3)) == ["UpdateTicket:recovering"]
        actions = tl.step(start, link_fault(start))
        assert names(actions) == ["UpdateTicket:bad_again"]
    ticket = tl.ticket()
    assert ticket.status is TicketStatus.ACKNOWLEDGED
    assert len(tl.store.tickets) == 1
    # Downtime counts the bad stretches only: 6 stretches of 3 minutes, the last one running.
    assert ticket.evidence.downtime_s(at(33)) == 6 * 3 * 60


def test_auto_resolves_after_the_recovery_period() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.step(5, link_fault(0))
    assert names(tl.step(6)) == ["UpdateTicket:recovering"]
    assert tl.ticket().ok_since == at(6)
    assert tl.step(10) == []
    assert tl.step(15.9) == []
    actions = tl.step(16)
    assert names(actions) == ["AutoResolve"]
    assert isinstance(actions[0], AutoResolve)
    assert actions[0].recipients == (NOC,)
    ticket = tl.ticket()
    assert (ticket.status, ticket.resolved_at) == (TicketStatus.RESOLVED, at(16))
    assert ticket.evidence.downtime_s(at(60)) == 6 * 60
    assert tl.log()[-1] is EventKind.AUTO_RESOLVED
    assert tl.step(30) == []


def test_a_relapse_within_the_reopen_window_reopens_the_ticket() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.ack(2)
    tl.step(5)
    tl.step(15)
    first = tl.ticket()
    assert first.status is TicketStatus.RESOLVED

    actions = tl.step(60, link_fault(59, state="lossy", detail=""))
    assert names(actions) == ["ReopenTicket"]
    assert isinstance(actions[0], ReopenTicket)
    assert actions[0].recipients == (NOC,)
    ticket = tl.ticket()
    assert ticket.id == first.id
    assert (ticket.status, ticket.reopened, ticket.acknowledged_at) == (TicketStatus.OPEN, 1, None)
    assert (ticket.evidence.state, ticket.evidence.worst_state) == ("lossy", "down")
    assert ticket.evidence.downtime_s(at(60)) == 5 * 60 + 60
    assert len(tl.store.tickets) == 1
    # Escalation starts again from the reopening.
    assert tl.step(89, link_fault(59, state="lossy", detail="")) == []
    assert names(tl.step(90, link_fault(59, state="lossy", detail=""))) == ["Escalate"]


def test_a_relapse_after_the_reopen_window_opens_a_new_ticket() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.step(5)
    tl.step(15)
    old = tl.ticket()
    assert tl.step(15 + 120) == []  # last minute of the window: nothing to do while it is off

    actions = tl.step(15 + 121, link_fault(15 + 120.5))
    assert names(actions) == ["OpenTicket"]
    new = tl.ticket()
    assert new.id == ticket_id(KEY, at(135.5)) != old.id
    assert new.evidence.first_bad_at == at(135.5)
    assert set(tl.store.tickets) == {old.id, new.id}


# -- escalation and reminders ------------------------------------------------------------------


def test_escalation_follows_the_contact_levels_once_per_level() -> None:
    tl = Timeline()
    incident = link_fault(0)
    tl.step(0, incident)
    assert tl.step(29, incident) == []
    actions = tl.step(30, incident)
    assert names(actions) == ["Escalate"]
    escalate = actions[0]
    assert isinstance(escalate, Escalate)
    assert (escalate.level, escalate.recipients) == (2, (CHIEF,))
    assert tl.step(31, incident) == []
    assert tl.step(89, incident) == []
    actions = tl.step(90, incident)
    assert isinstance(actions[0], Escalate)
    assert (actions[0].level, actions[0].recipients) == (3, (DIRECTOR,))
    assert tl.ticket().level == 3
    assert tl.step(120, incident) == []  # no level 4; reminders count from the last notice
    actions = tl.step(150, incident)
    assert names(actions) == ["Remind"]
    assert isinstance(actions[0], Remind)
    assert actions[0].recipients == (NOC, CHIEF, DIRECTOR)


def test_overdue_levels_are_told_in_order_after_a_gap() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    actions = tl.step(100, link_fault(0))
    assert [(type(a).__name__, getattr(a, "level", None)) for a in actions] == [
        ("Escalate", 2),
        ("Escalate", 3),
    ]
    assert [e.kind for e in tl.ticket().log] == [EventKind.OPENED] + [EventKind.ESCALATED] * 2


def test_acknowledging_stops_escalation_and_reminders() -> None:
    tl = Timeline()
    incident = link_fault(0)
    tl.step(0, incident)
    actions = tl.ack(10)
    assert names(actions) == ["Acknowledged"]
    assert isinstance(actions[0], TicketChange)
    assert actions[0].event.actor == ENGINEER
    assert actions[0].recipients == (NOC,)
    for minute in (30, 90, 150, 600):
        assert tl.step(minute, incident) == []
    ticket = tl.ticket()
    assert (ticket.status, ticket.acknowledged_at, ticket.level) == (
        TicketStatus.ACKNOWLEDGED,
        at(10),
        1,
    )
    refused = tl.book.acknowledge(ticket.id, STAFF, at(11))
    assert refused == Refused(ticket.id, Refusal.ALREADY_ACKNOWLEDGED)


def test_reminders_come_at_most_every_interval_while_unacknowledged() -> None:
    directory = Directory(isps={"vnpt": (NOC,)})
    policy = replace(POLICY, remind_every_s=45 * 60)
    tl = Timeline(TicketBook(policy, directory))
    incident = link_fault(0)
    tl.step(0, incident)
    assert tl.step(44, incident) == []
    assert names(tl.step(45, incident)) == ["Remind"]
    assert tl.step(46, incident) == []
    assert tl.step(89, incident) == []
    assert names(tl.step(100, incident)) == ["Remind"]  # late round: counted from then
    assert tl.step(144, incident) == []
    assert names(tl.step(145, incident)) == ["Remind"]
    tl.ack(150)
    assert tl.step(300, incident) == []


def test_no_reminders_when_switched_off_or_nobody_was_told() -> None:
    quiet = Timeline(
        TicketBook(replace(POLICY, remind_every_s=None), Directory(isps={"vnpt": (NOC,)}))
    )
    quiet.step(0, link_fault(0))
    assert quiet.step(600, link_fault(0)) == []
    # Nobody at level 0 delay: nobody is told at opening, the first level comes by escalation.
    late = Contact(1, "NOC", 20 * 60, isp="vnpt", email="noc@vnpt.example")
    tl = Timeline(TicketBook(POLICY, Directory(isps={"vnpt": (late,)})))
    actions = tl.step(0, link_fault(0))
    assert isinstance(actions[0], OpenTicket)
    assert actions[0].recipients == ()
    assert tl.ticket().level == 0
    assert tl.step(19, link_fault(0)) == []
    assert names(tl.step(20, link_fault(0))) == ["Escalate"]


# -- routing -----------------------------------------------------------------------------------


def test_routes_pick_the_contact_lists() -> None:
    directory = Directory(isps={"vnpt": (NOC, CHIEF), "viettel": ()}, provincial_it=(IT, IT_HEAD))
    levels = directory.levels(Route.ISP, "vnpt")
    assert [(lv.level, lv.after_s, lv.contacts) for lv in levels] == [
        (1, 0, (NOC,)),
        (2, 1800, (CHIEF,)),
    ]
    assert [lv.contacts for lv in directory.levels(Route.PROVINCIAL_IT, "vnpt")] == [
        (IT,),
        (IT_HEAD,),
    ]
    both = directory.levels(Route.ISP_AND_PROVINCIAL_IT, "vnpt")
    assert [(lv.level, lv.after_s, lv.contacts) for lv in both] == [
        (1, 0, (NOC, IT)),
        (2, 1800, (CHIEF, IT_HEAD)),
    ]
    # An ISP without contacts, an unknown one or none: provincial IT is told instead.
    for isp in ("viettel", "fpt", None):
        assert [lv.contacts for lv in directory.levels(Route.ISP, isp)] == [(IT,), (IT_HEAD,)]
    # A higher level is never due before a lower one.
    odd = Directory(
        isps={"x": (replace(NOC, escalate_after_s=600), replace(CHIEF, escalate_after_s=60))}
    )
    assert [lv.after_s for lv in odd.levels(Route.ISP, "x")] == [600, 600]


# -- maintenance -------------------------------------------------------------------------------


def test_an_incident_starting_in_maintenance_opens_no_ticket() -> None:
    tl = Timeline()
    window = {KEY}
    actions = tl.step(0, link_fault(0), maintenance=window)
    assert names(actions) == ["Suppressed"]
    assert isinstance(actions[0], Suppressed)
    assert (actions[0].key, actions[0].at) == (KEY, at(0))
    assert tl.step(1, link_fault(0), maintenance=window) == []  # logged once per episode
    assert tl.step(30, link_fault(0), maintenance=window) == []
    assert KEY not in tl.book.tickets
    # Still down when the window is over: the overrun is a real fault.
    actions = tl.step(61, link_fault(0))
    assert names(actions) == ["OpenTicket"]
    assert tl.ticket().evidence.first_bad_at == at(0)


def test_an_incident_gone_before_the_window_ends_leaves_nothing() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0), maintenance={KEY})
    assert tl.step(10, maintenance={KEY}) == []
    assert tl.book.suppressed == {}
    # A new incident in a later window is logged again.
    assert names(tl.step(20, link_fault(20), maintenance={KEY})) == ["Suppressed"]
    assert tl.book.tickets == {}


def test_a_ticket_open_when_a_window_starts_is_kept_and_not_escalated() -> None:
    tl = Timeline()
    incident = link_fault(0)
    tl.step(0, incident)
    assert names(tl.step(10, incident, maintenance={KEY})) == ["UpdateTicket:maintenance_started"]
    for minute in (30, 90, 120):
        assert tl.step(minute, incident, maintenance={KEY}) == []
    assert tl.ticket().status is TicketStatus.OPEN
    assert tl.ticket().maintenance
    # The window is over and the line still down: the overdue levels are told.
    actions = tl.step(125, incident)
    assert names(actions) == ["UpdateTicket:maintenance_ended", "Escalate", "Escalate"]


def test_a_ticket_in_maintenance_still_auto_resolves_when_the_line_recovers() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    assert names(tl.step(5, maintenance={KEY})) == [
        "UpdateTicket:maintenance_started",
        "UpdateTicket:recovering",
    ]
    assert names(tl.step(15, maintenance={KEY})) == ["AutoResolve"]
    # A relapse during the window reopens nothing.
    assert names(tl.step(20, link_fault(20), maintenance={KEY})) == ["Suppressed"]
    assert tl.ticket().status is TicketStatus.RESOLVED
    # ...but after it, within the reopen window, the same ticket reopens.
    assert names(tl.step(40, link_fault(20))) == ["ReopenTicket"]
    assert not tl.ticket().maintenance


# -- manual changes ----------------------------------------------------------------------------


def test_manual_resolve_then_relapse_reopens_the_same_ticket() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.step(4)  # the line is back
    actions = tl.resolve(6)
    assert names(actions) == ["Resolved"]
    assert isinstance(actions[0], TicketChange)
    assert (actions[0].event.actor, actions[0].event.text) == (ENGINEER, "fixed")
    first = tl.ticket()
    assert (first.status, first.resolved_at) == (TicketStatus.RESOLVED, at(6))
    assert tl.step(10) == []
    actions = tl.step(30, link_fault(29))
    assert names(actions) == ["ReopenTicket"]
    assert tl.ticket().id == first.id
    assert "relapsed" in tl.ticket().log[-1].text
    assert tl.book.resolve(first.id, ENGINEER, at(31)) != Refused(
        first.id, Refusal.ALREADY_RESOLVED
    )


def test_resolved_by_hand_while_still_failing_reopens_after_the_grace_period() -> None:
    tl = Timeline()
    incident = link_fault(0)
    tl.step(0, incident)
    tl.resolve(5)
    assert tl.step(6, incident) == []
    assert tl.step(19, incident) == []  # the fix may take a few rounds to show
    actions = tl.step(20, incident)
    assert names(actions) == ["ReopenTicket"]
    assert "still failing" in tl.ticket().log[-1].text
    assert tl.ticket().evidence.downtime_s(at(20)) == 20 * 60


def test_resolved_by_hand_and_then_cleared_is_recorded() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.resolve(5)
    assert names(tl.step(7)) == ["UpdateTicket:cleared"]
    assert tl.ticket().evidence.downtime_s(at(60)) == 7 * 60
    assert tl.step(8) == []


def test_a_resolved_ticket_long_past_its_window_gets_a_new_id_even_for_the_same_start() -> None:
    tl = Timeline()
    incident = link_fault(0)
    tl.step(0, incident)
    old = tl.resolve(5)[0]
    assert isinstance(old, TicketChange)
    # No evaluation ran for hours (e.g. the process was stopped): the old ticket is retired.
    actions = tl.step(300, incident)
    assert names(actions) == ["OpenTicket"]
    assert tl.ticket().id == ticket_id(KEY, at(300)) != old.ticket.id
    assert len(tl.store.tickets) == 2


def test_notes_and_refusals() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    ticket = tl.ticket()
    step = tl.book.note(ticket.id, STAFF, at(1), "Đã gọi điện cho VNPT")
    assert isinstance(step, Step)
    assert names(step.actions) == ["Noted"]
    note = step.book.tickets[KEY].log[-1]
    assert (note.kind, note.actor, note.text, note.at) == (
        EventKind.NOTE,
        STAFF,
        "Đã gọi điện cho VNPT",
        at(1),
    )
    assert tl.book.note(ticket.id, STAFF, at(1), "  ") == Refused(ticket.id, Refusal.EMPTY_NOTE)
    for refused in (
        tl.book.note("NW-nope", STAFF, at(1), "x"),
        tl.book.acknowledge("NW-nope", STAFF, at(1)),
        tl.book.resolve("NW-nope", STAFF, at(1)),
    ):
        assert refused == Refused("NW-nope", Refusal.UNKNOWN_TICKET)
    tl.resolve(2)
    assert tl.book.resolve(ticket.id, STAFF, at(3)) == Refused(ticket.id, Refusal.ALREADY_RESOLVED)
    assert tl.book.acknowledge(ticket.id, STAFF, at(3)) == Refused(
        ticket.id, Refusal.ALREADY_RESOLVED
    )
    # A note on a resolved ticket is fine.
    assert isinstance(tl.book.note(ticket.id, ENGINEER, at(4), "thay modem"), Step)


# -- restart -----------------------------------------------------------------------------------


def test_a_rebuild_after_a_restart_continues_the_episode() -> None:
    tl = Timeline()
    incident = link_fault(0)
    tl.step(0, incident)
    tl.step(5, incident)
    before = tl.ticket()

    # Restart: the book is rebuilt from what the store holds (all versions, any order).
    stored = [*tl.store.tickets.values(), replace(before, episode_start=at(-999), id="NW-old")]
    for order in (stored, stored[::-1]):
        assert TicketBook.restore(POLICY, DIRECTORY, order).tickets == {KEY: before}
    restarted = Timeline(TicketBook.restore(POLICY, DIRECTORY, stored), tl.store)
    assert restarted.step(6, incident) == []
    actions = restarted.step(30, incident)
    assert names(actions) == ["Escalate"]
    assert names(restarted.step(31)) == ["UpdateTicket:recovering"]
    assert list(tl.store.tickets) == [before.id]  # one episode, one row


def test_a_rebuild_while_recovering_resolves_on_time() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.step(3)
    restarted = Timeline(TicketBook.restore(POLICY, DIRECTORY, tl.store.tickets.values()))
    assert restarted.step(12) == []
    assert names(restarted.step(13)) == ["AutoResolve"]


# -- root cause --------------------------------------------------------------------------------


def upstream_outage(since_min: float) -> Incident:
    return Incident(
        UPSTREAM,
        IncidentKind.UPSTREAM_OUTAGE,
        "down",
        at(since_min),
        Route.ISP,
        "vnpt",
        links=(LINK, OTHER),
    )


def test_a_link_ticket_absorbed_by_an_upstream_outage_is_linked_not_resolved() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    actions = tl.step(2, upstream_outage(1))
    assert names(actions) == ["OpenTicket", "LinkToParent"]
    parent = tl.ticket(UPSTREAM)
    link = actions[1]
    assert isinstance(link, LinkToParent)
    assert (link.parent_key, link.parent_ticket_id) == (UPSTREAM, parent.id)
    assert link.ticket.parent == UPSTREAM
    # While absorbed: no recovery, no escalation of its own (the outage escalates).
    assert tl.step(20, upstream_outage(1)) == []
    assert tl.ticket().status is TicketStatus.OPEN
    assert names(tl.step(32, upstream_outage(1))) == ["Escalate"]
    assert tl.ticket(UPSTREAM).level == 2
    # The outage is over and the link with it: unlinked, then the normal recovery.
    assert names(tl.step(40)) == [
        "UpdateTicket:unlinked",  # the link's ticket (keys in order)
        "UpdateTicket:recovering",
        "UpdateTicket:recovering",  # the outage's ticket
    ]
    assert tl.ticket().parent is None
    assert tl.ticket().evidence.downtime_s(at(60)) == 40 * 60
    assert names(tl.step(50)) == ["AutoResolve", "AutoResolve"]


def test_a_link_ticket_is_matched_by_its_key_when_its_incident_named_no_links() -> None:
    tl = Timeline()
    tl.step(0, replace(link_fault(0), links=()))
    assert names(tl.step(1, upstream_outage(1))) == ["OpenTicket", "LinkToParent"]
    # A ticket that is not a link's and names no links is never absorbed.
    portal = Incident(
        SubjectKey.parse("portal:dvcqg"),
        IncidentKind.PORTAL_OUTAGE,
        "failing",
        at(0),
        Route.PROVINCIAL_IT,
    )
    tl.step(2, portal, upstream_outage(1))
    assert names(tl.step(3, upstream_outage(1))) == ["UpdateTicket:recovering"]


def test_a_link_still_bad_after_the_outage_is_unlinked_and_continues() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.step(2, upstream_outage(1))
    actions = tl.step(10, link_fault(0, state="lossy", detail=""))
    assert names(actions) == [
        "UpdateTicket:unlinked",
        "UpdateTicket:state_changed",
        "UpdateTicket:recovering",
    ]
    assert tl.ticket().parent is None


def test_an_absorbed_ticket_points_at_an_outage_without_ticket_under_maintenance() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.step(3)  # recovering
    actions = tl.step(5, upstream_outage(4), maintenance={UPSTREAM})
    assert names(actions) == ["Suppressed", "LinkToParent"]
    link = actions[1]
    assert isinstance(link, LinkToParent)
    assert link.parent_ticket_id is None
    # Downtime restarts with the outage: the link was fine in between.
    assert tl.ticket().evidence.downtime_s(at(6)) == 3 * 60 + 60
    assert tl.step(30, upstream_outage(4), maintenance={UPSTREAM}) == []


def netwatch_blind(since_min: float) -> Incident:
    """NetWatch's own reference targets fail: it cannot see, so it judges nothing."""
    return Incident(
        SubjectKey.MONITOR,
        IncidentKind.MONITOR_CONNECTIVITY,
        "down",
        at(since_min),
        Route.PROVINCIAL_IT,
    )


def test_when_netwatch_itself_is_blind_recovery_is_held() -> None:
    tl = Timeline()
    monitor = netwatch_blind(4)
    tl.step(0, link_fault(0))
    tl.step(3)
    actions = tl.step(5, monitor)
    assert names(actions) == ["OpenTicket", "UpdateTicket:recovery_held"]
    assert tl.step(30, monitor) == []
    assert tl.ticket().status is TicketStatus.OPEN
    # NetWatch sees again: the recovery clock starts from now, not from before.
    assert names(tl.step(31)) == ["UpdateTicket:recovering", "UpdateTicket:recovering"]
    assert names(tl.step(41)) == ["AutoResolve", "AutoResolve"]


def test_a_resolved_ticket_is_not_cleared_while_netwatch_is_blind() -> None:
    tl = Timeline()
    monitor = netwatch_blind(6)
    tl.step(0, link_fault(0))
    tl.resolve(5)
    assert names(tl.step(6, monitor)) == ["OpenTicket"]
    assert tl.ticket().ok_since is None


# -- evidence ----------------------------------------------------------------------------------


def test_measurements_accumulate_as_worst_figures() -> None:
    tl = Timeline()
    lossy = link_fault(0, state="lossy", detail="")
    figures = Measurements(loss_ratio=0.2, rtt_median_s=0.08, interface_up=True)
    tl.step(0, lossy, measurements={KEY: figures})
    evidence = tl.ticket().evidence
    assert evidence.first == evidence.worst == figures

    assert tl.step(1, lossy, measurements={KEY: Measurements(loss_ratio=0.1)}) == []
    actions = tl.step(
        2, lossy, measurements={KEY: Measurements(loss_ratio=0.3, utilization_ratio=0.4)}
    )
    assert names(actions) == ["UpdateTicket:evidence"]
    assert "loss 30%" in tl.ticket().log[-1].text
    actions = tl.step(3, lossy, measurements={KEY: Measurements(interface_up=False)})
    assert names(actions) == ["UpdateTicket:evidence"]
    assert "interface down" in tl.ticket().log[-1].text
    assert tl.step(4, lossy, measurements={KEY: Measurements(interface_up=True)}) == []
    evidence = tl.ticket().evidence
    assert evidence.first == figures
    assert evidence.worst == Measurements(
        loss_ratio=0.3, rtt_median_s=0.08, interface_up=False, utilization_ratio=0.4
    )


def test_figures_attached_after_opening_become_the_first_ones() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    assert tl.ticket().evidence.first is None
    tl.step(1, link_fault(0), measurements={KEY: Measurements()})
    assert names(tl.step(2, link_fault(0), measurements={KEY: Measurements(rtt_median_s=0.2)})) == [
        "UpdateTicket:evidence"
    ]
    assert tl.ticket().evidence.first == Measurements()
    assert tl.ticket().evidence.worst == Measurements(rtt_median_s=0.2)


def test_an_outage_reaching_more_links_is_new_evidence() -> None:
    tl = Timeline()
    small = replace(upstream_outage(0), links=(LINK,))
    tl.step(0, small)
    actions = tl.step(1, upstream_outage(0))
    assert names(actions) == ["UpdateTicket:evidence"]
    assert tl.ticket(UPSTREAM).evidence.links == (LINK, OTHER)


# -- bugs are exceptions -----------------------------------------------------------------------


def test_inputs_that_cannot_be_meant_are_refused() -> None:
    book = TicketBook(POLICY, DIRECTORY)
    with pytest.raises(ValueError, match="timezone-aware"):
        book.evaluate([], datetime(2026, 11, 20, 8, 0))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="two incidents"):
        book.evaluate([link_fault(0), link_fault(1)], at(2))
    with pytest.raises(ValueError, match="negative"):
        TicketPolicy(recovery_s=-1)
    with pytest.raises(ValueError, match="remind_every_s"):
        TicketPolicy(remind_every_s=0)


def test_defaults() -> None:
    policy = TicketPolicy()
    assert (policy.recovery_s, policy.reopen_window_s, policy.remind_every_s) == (600, 7200, 3600)
    assert policy.still_failing_s == 900
    book = TicketBook()
    actions = book.evaluate([link_fault(0)], at(0)).actions
    assert isinstance(actions[0], OpenTicket)
    assert actions[0].recipients == ()  # nobody configured


def test_a_flapping_line_with_growing_figures_mails_once_not_every_round() -> None:
    """Issue 4: a line flapping every 20 s for 10 minutes, figures worsening as it goes, is one
    ticket and one message (escalation aside): evidence and recovery-clock events are logged,
    not sent."""
    book = TicketBook(policy=POLICY, directory=Directory(isps={"vnpt": (NOC,)}))
    told: list[str] = []
    logged: list[str] = []
    for step in range(30):  # 20 s apart: present, absent, present, ...
        now = at(step / 3)
        incidents = [link_fault(0)] if step % 2 == 0 else []
        figures = Measurements(loss_ratio=min(1.0, 0.1 + step / 30), rtt_median_s=0.01 * step)
        result = book.evaluate(incidents, now, measurements={KEY: figures})
        book = result.book
        for action in result.actions:
            if isinstance(action, Suppressed):
                continue
            logged.append(action.event.kind.value)
            if action.recipients:
                told.append(action.event.kind.value)
    assert told == ["opened"]
    assert "evidence" in logged
    assert "recovering" in logged
    assert len({t.id for t in [book.tickets[KEY]]}) == 1


# -- "line back" (issue 12) --------------------------------------------------------------------

LINE_BACK = replace(POLICY, line_back_s=20.0)


def test_line_back_is_told_once_when_the_incident_has_been_gone_long_enough() -> None:
    tl = Timeline(TicketBook(LINE_BACK, DIRECTORY))
    tl.step(0, link_fault(0))
    assert names(tl.step(1)) == ["UpdateTicket:recovering"]  # logged, not sent
    assert tl.step(1 + 19 / 60) == []  # gone 19 s: not yet
    actions = tl.step(1 + 20 / 60)
    assert names(actions) == ["UpdateTicket:line_back"]
    assert isinstance(actions[0], TicketChange)
    assert actions[0].recipients == (NOC,)  # those told about the ticket
    assert tl.ticket().line_back_at == at(1 + 20 / 60)
    assert tl.ticket().status is TicketStatus.OPEN  # auto-resolve stays: it still closes later
    for minute in (2, 5, 10):
        assert tl.step(minute) == []
    assert names(tl.step(11)) == ["AutoResolve"]


def test_a_flapping_line_sends_at_most_one_line_back_and_one_bad_again_per_episode() -> None:
    tl = Timeline(TicketBook(LINE_BACK, DIRECTORY))
    tl.step(0, link_fault(0))
    sent: list[str] = []
    minute = 0.0
    for _ in range(6):  # back for a minute, bad for a minute, six times
        minute += 1
        for action in tl.step(minute) + tl.step(minute + 0.5):
            if isinstance(action, TicketChange) and action.recipients:
                sent.append(action.event.kind.value)
        minute += 1
        for action in tl.step(minute, link_fault(0)):
            if isinstance(action, TicketChange) and action.recipients:
                sent.append(action.event.kind.value)
    assert sent == ["line_back", "bad_again"]
    kinds = tl.log()
    assert kinds.count(EventKind.RECOVERING) == 6  # every flap is in the log
    assert kinds.count(EventKind.BAD_AGAIN) == 6
    assert tl.ticket().status is TicketStatus.OPEN


def test_bad_again_before_any_line_back_notice_is_logged_only() -> None:
    tl = Timeline(TicketBook(LINE_BACK, DIRECTORY))
    tl.step(0, link_fault(0))
    tl.step(1)  # gone, but not for 20 s
    actions = tl.step(1.2, link_fault(0))
    assert names(actions) == ["UpdateTicket:bad_again"]
    assert isinstance(actions[0], TicketChange)
    assert actions[0].recipients == ()


def test_a_reopened_ticket_may_tell_line_back_again() -> None:
    tl = Timeline(TicketBook(LINE_BACK, DIRECTORY))
    tl.step(0, link_fault(0))
    tl.step(1)
    assert names(tl.step(2)) == ["UpdateTicket:line_back"]
    tl.step(11)  # auto-resolved
    assert names(tl.step(30, link_fault(30))) == ["ReopenTicket"]
    assert tl.ticket().line_back_at is None
    tl.step(31)
    assert names(tl.step(32)) == ["UpdateTicket:line_back"]


def test_no_line_back_when_recovery_closes_first() -> None:
    policy = replace(POLICY, recovery_s=15.0, line_back_s=30.0)
    tl = Timeline(TicketBook(policy, DIRECTORY))
    tl.step(0, link_fault(0))
    tl.step(1)
    assert names(tl.step(1.5)) == ["AutoResolve"]  # the resolution says it: no second notice


def test_a_negative_line_back_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="line_back_s"):
        TicketPolicy(line_back_s=-1)


# -- a subject removed from monitoring (configuration reload, issue 15) ----------------------


def test_a_removed_subjects_ticket_resolves_as_removed_not_recovered() -> None:
    """Open, then the link leaves the configuration: resolved at once, by an "unmonitored"
    event told to those told so far; no recovery clock, no auto-resolution, and the key leaves
    the book, so its absence later neither clears nor reopens anything."""
    from alerts.tickets import Unmonitored

    tl = Timeline()
    tl.step(0, link_fault(0))
    other = link_fault(0, link=OTHER)
    tl.step(1, link_fault(0), other)
    opened = tl.ticket()
    step = tl.book.unmonitor({KEY}, at(2))
    assert names(step.actions) == ["Unmonitored"]
    action = step.actions[0]
    assert isinstance(action, Unmonitored)
    assert action.ticket.id == opened.id
    assert action.ticket.status is TicketStatus.RESOLVED
    assert action.ticket.resolved_at == at(2)
    assert action.event.kind is EventKind.UNMONITORED
    assert action.event.text == "removed from monitoring"
    assert EventKind.AUTO_RESOLVED not in [e.kind for e in action.ticket.log]
    assert EventKind.RECOVERING not in [e.kind for e in action.ticket.log]
    assert action.recipients == (NOC,)
    assert action.ticket.evidence.downtime_s(at(30)) == 120.0  # the bad stretch ended then
    assert KEY not in step.book.tickets
    # The unchanged subject's ticket is untouched.
    assert step.book.tickets[other.key] == tl.ticket(other.key)
    tl.store.apply(step.actions)
    tl.book = step.book
    assert tl.step(30, other) == []  # the removed key is gone: nothing about it, ever
    assert tl.store.tickets[opened.id].status is TicketStatus.RESOLVED


def test_unmonitor_leaves_resolved_tickets_as_they_were() -> None:
    tl = Timeline()
    tl.step(0, link_fault(0))
    tl.resolve(1)
    step = tl.book.unmonitor({KEY, UPSTREAM}, at(2))
    assert step.actions == ()
    assert KEY not in step.book.tickets
