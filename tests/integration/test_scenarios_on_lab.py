"""Issue 4's proof scenarios against the lab: who gets a ticket, and who is told, for each fault.

Each scenario runs two NetWatches side by side on the same lab and the same fault: one on its
embedded SQLite store, one on PostgreSQL (the session's private cluster), each with its own real
aiosmtpd server. Both must reach the same verdict: the issue asks for the same scenarios on both
databases, and running them together costs the suite one scenario's time, not two.

Real peers throughout: the lab (namespaces, snmpd, the HTTPS portal), real SMTP servers, and the
stores read from the test thread. Rounds are short (2 s): the issue's 10 s figures are scaled by
1/5 where they are timings of the fault itself (flapping every 4 s, not 20 s; the SMTP server
down for 60 s, not 5 minutes).
"""

from __future__ import annotations

import email.message
import time
from collections.abc import Callable

import pytest

from netwatch.inventory import Inventory
from netwatch.inventory.models import (
    ThresholdOverrides,
)
from netwatch.lab import Lab
from netwatch.store import OutboxItem
from tests.integration.scenarios import (
    ISP_MAILS,
    IT_MAIL,
    VIETTEL_LINK,
    VIETTEL_MAIL,
    VNPT_BOSS,
    VNPT_LINK,
    VNPT_MAIL,
    Book,
    Twin,
    _after_rounds,
    _book,
    _code_of,
    _codes,
    _event,
    _event_mail,
    _in_state,
    _inventory,
    _log,
    _mail,
    _netwatch,
    _opened_mail,
    _outbox_drained,
    _ticket,
    _wait_for,
)

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(360)]

LAB_INDEX = 6  # 10.94.0.0/16, namespaces nwl6-*: `scenario_lab` (conftest) builds it


def test_twenty_percent_loss_opens_a_lossy_ticket_for_the_isp_and_escalates(
    lab: Lab, twins: list[Twin]
) -> None:
    """Also: unacknowledged, it reaches VNPT's second level once its delay has passed."""
    escalate_min = 0.5  # 30 s after opening (no reminders: remind_every_min is off)
    code = _code_of(_inventory(lab, 25), 1)  # single-homed, VNPT
    key = f"link:{code}/{VNPT_LINK}"
    with _netwatch(
        lab, twins, lambda t: _inventory(lab, t.smtp_port, vnpt_escalation_min=escalate_min)
    ) as runtimes:
        assert lab.commune_loss(int(code), 20).ok
        for twin in twins:
            ticket = _wait_for(_ticket(twin, key), f"{twin.backend}: a ticket for {key}")
            _wait_for(_opened_mail(twin.box, VNPT_MAIL, ticket.id), "the opening mail")
            _wait_for(
                _event_mail(twin.box, VNPT_BOSS, ticket.id, "escalated"),
                f"{twin.backend}: the escalation to VNPT's level 2",
                timeout_s=escalate_min * 60 + 30,
            )
        # A few more rounds: the episode must stay lossy, not turn into down.
        _after_rounds(runtimes, 2)
        books = {twin.backend: _book(twin) for twin in twins}

    for twin in twins:
        book = books[twin.backend]
        [ticket] = book.by_key(key)
        assert ticket.evidence.kind.value == "link_fault", twin.backend
        assert ticket.route.value == "isp"
        assert ticket.isp == "vnpt"
        evidence = ticket.evidence
        assert evidence.state == "lossy", (twin.backend, evidence)
        assert evidence.worst_state == "lossy", (twin.backend, evidence)
        worst = evidence.worst
        assert worst is not None
        loss = worst.loss_ratio
        assert isinstance(loss, float)
        assert 0.05 <= loss <= 0.7  # 20 % dropped: a wide band over 10 echoes a round
        assert [t.key.encoded for t in book.tickets] == [key]  # nothing else in the lab
        # Escalated once, after its delay, to level 2; level 1 is not mailed again for it.
        assert book.kinds(ticket).count("escalated") == 1, _log(book, ticket)
        [opened_event] = [e for e in book.events[ticket.id] if e.kind.value == "opened"]
        [escalated_event] = [e for e in book.events[ticket.id] if e.kind.value == "escalated"]
        assert (escalated_event.at - opened_event.at).total_seconds() >= escalate_min * 60 - 1
        assert [_event(m) for m in _mail(twin.box, VNPT_BOSS, ticket.id)] == ["escalated"]
        assert "escalated" not in [_event(m) for m in _mail(twin.box, VNPT_MAIL, ticket.id)]
        # The ISP is told; provincial IT is not the one to fix a line fault.
        assert _mail(twin.box, IT_MAIL) == []
        assert _mail(twin.box, VIETTEL_MAIL) == []


def test_congestion_opens_a_capacity_ticket_for_provincial_it(lab: Lab, twins: list[Twin]) -> None:
    codes = _codes(lab)
    vnpt_code, viettel_code = codes[1], codes[0]  # a VNPT-only commune; a dual-homed one
    # "Near the contracted bandwidth": 60 % is near enough for the lab's load (which fills the
    # shaped line), and tolerates a 2 s poll of snmpd's ~3 s counter cache. A full 20 Mbit/s
    # line's queue adds ~45 ms here, under QCVN 34's 50 ms: 20 ms makes that inflation count.
    near = ThresholdOverrides(utilization_pct=60, rtt_ms=20)

    def inventory(twin: Twin) -> Inventory:
        return _inventory(
            lab,
            twin.smtp_port,
            capacity_isps=frozenset({"viettel"}),  # Viettel takes capacity requests; VNPT not
            # SNMP polled less often than the ICMP rounds, as in production (60 s / 30 s).
            # Also: snmpd refreshes its counters every ~3 s, so at a 2 s poll one rate in three
            # is 0 % and the next 150 %; at 8 s each rate spans two or three refreshes.
            snmp_s=8,
            overrides={vnpt_code: near, viettel_code: near},
        )

    vnpt_key = f"link:{vnpt_code}/{VNPT_LINK}"
    viettel_key = f"link:{viettel_code}/{VIETTEL_LINK}"
    with _netwatch(lab, twins, inventory):
        assert lab.commune_congest(int(vnpt_code), VNPT_LINK).ok
        assert lab.commune_congest(int(viettel_code), VIETTEL_LINK).ok
        for twin in twins:
            for key in (vnpt_key, viettel_key):
                _wait_for(
                    _in_state(twin, key, "congested"), f"{twin.backend}: {key} judged congested"
                )
        # The outbox delivers (the opening notices were queued with the tickets).
        books = {
            twin.backend: _wait_for(_outbox_drained(twin), f"{twin.backend}: the outbox sent")
            for twin in twins
        }

    for twin in twins:
        book, box = books[twin.backend], twin.box
        [vnpt_ticket] = book.by_key(vnpt_key)
        [viettel_ticket] = book.by_key(viettel_key)
        # Capacity is not a fault: VNPT (no capacity requests) is never told, not even first.
        told = [(_event(m), m["X-NetWatch-Ticket"]) for m in _mail(box, VNPT_MAIL)]
        assert told == [], (twin.backend, told, _log(book, vnpt_ticket))
        for ticket in (vnpt_ticket, viettel_ticket):
            assert ticket.evidence.kind.value == "capacity", (twin.backend, ticket)
            # Never judged (and announced as) a line fault on the way.
            assert "kind_changed" not in book.kinds(ticket), (twin.backend, _log(book, ticket))
            worst = ticket.evidence.worst
            assert worst is not None
            utilization = worst.utilization_ratio
            assert isinstance(utilization, float)
            assert utilization >= 0.6
        assert vnpt_ticket.route.value == "provincial_it"
        assert viettel_ticket.route.value == "isp_and_provincial_it"
        assert {t.evidence.kind.value for t in book.tickets} == {"capacity"}, twin.backend
        assert [_event(m) for m in _mail(box, IT_MAIL, vnpt_ticket.id)][:1] == ["opened"]
        assert [_event(m) for m in _mail(box, IT_MAIL, viettel_ticket.id)][:1] == ["opened"]
        assert [_event(m) for m in _mail(box, VIETTEL_MAIL, viettel_ticket.id)][:1] == ["opened"]


def test_portal_down_with_links_fine_is_a_portal_incident_and_no_isp_ticket(
    lab: Lab, twins: list[Twin]
) -> None:
    [portal] = _inventory(lab, 25).portals
    key = f"portal:{portal}"
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)) as runtimes:
        assert lab.portal_down().ok
        for twin in twins:
            ticket = _wait_for(_ticket(twin, key), f"{twin.backend}: the portal outage ticket")
            _wait_for(_opened_mail(twin.box, IT_MAIL, ticket.id), "the mail to provincial IT")
        # More rounds (of links and of the portal), then what they queued is sent: nothing
        # else may follow.
        _after_rounds(runtimes, 3)
        _after_rounds(runtimes, 2, kind="http")
        books = {
            twin.backend: _wait_for(_outbox_drained(twin), f"{twin.backend}: the outbox sent")
            for twin in twins
        }

    for twin in twins:
        book = books[twin.backend]
        [ticket] = book.tickets
        assert ticket.key.encoded == key
        assert ticket.evidence.kind.value == "portal_outage"
        assert ticket.route.value == "provincial_it"
        assert ticket.evidence.state == "failing"
        assert [t for t in book.tickets if t.route.value != "provincial_it" or t.isp] == []
        assert [m for to in ISP_MAILS for m in _mail(twin.box, to)] == [], twin.backend
        assert _mail(twin.box, IT_MAIL, ticket.id)


def test_upstream_down_opens_one_ticket_for_the_node_not_one_per_link(
    lab: Lab, twins: list[Twin]
) -> None:
    inventory = _inventory(lab, 25)
    behind = {
        f"{c.code}/{link.id}"
        for c in inventory.communes
        for link in c.links
        if link.upstream == "pop-vnpt-1"
    }
    assert len(behind) >= 5
    key = "upstream:pop-vnpt-1"
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)) as runtimes:
        assert lab.upstream_down("pop-vnpt-1").ok
        for twin in twins:
            ticket = _wait_for(_ticket(twin, key), f"{twin.backend}: the upstream outage ticket")
            _wait_for(_opened_mail(twin.box, VNPT_MAIL, ticket.id), "the outage mail to VNPT")
        # More rounds, then what they queued is sent: no per-link ticket may follow.
        _after_rounds(runtimes, 3)
        books = {
            twin.backend: _wait_for(_outbox_drained(twin), f"{twin.backend}: the outbox sent")
            for twin in twins
        }

    for twin in twins:
        book, box = books[twin.backend], twin.box
        # The links fail in the same rounds as their node: blamed on the node from the start,
        # never first ticketed (and mailed) one by one and linked afterwards.
        assert [t.key.encoded for t in book.tickets] == [key], twin.backend
        [ticket] = book.tickets
        assert ticket.evidence.kind.value == "upstream_outage"
        assert ticket.route.value == "isp"
        assert ticket.isp == "vnpt"
        links = list(ticket.evidence.links)
        assert set(links) == behind
        assert "linked" not in book.kinds(ticket)
        # One ticket, one thread: every mail is about the outage; nobody else was told.
        assert {m["X-NetWatch-Ticket"] for m in box.messages} == {ticket.id}
        assert [_event(m) for m in _mail(box, VNPT_MAIL)].count("opened") == 1
        assert _mail(box, IT_MAIL) == []
        assert _mail(box, VIETTEL_MAIL) == []


def test_netwatchs_own_line_cut_is_provincial_its_ticket_and_no_isp_is_told(
    lab: Lab, twins: list[Twin]
) -> None:
    """Every target unreachable at once, references included: the lines, POPs and the portal
    may be confirmed a round before the references (the portal was, by 0.4 s), yet no other
    ticket may open at any moment."""
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)) as runtimes:
        try:
            assert lab.monitor_cut().ok
            for twin in twins:
                ticket = _wait_for(_ticket(twin, "monitor"), f"{twin.backend}: the monitor ticket")
                _wait_for(_opened_mail(twin.box, IT_MAIL, ticket.id), "the mail to provincial IT")
            _after_rounds(runtimes, 3)
            books = {
                twin.backend: _wait_for(_outbox_drained(twin), f"{twin.backend}: the outbox sent")
                for twin in twins
            }
        finally:
            assert lab.monitor_restore().ok

    for twin in twins:
        book, box = books[twin.backend], twin.box
        assert [t.key.encoded for t in book.tickets] == ["monitor"], twin.backend
        [ticket] = book.tickets
        assert ticket.route.value == "provincial_it"
        assert ticket.isp is None
        assert [m for to in ISP_MAILS for m in _mail(box, to)] == [], twin.backend
        assert {m["X-NetWatch-Ticket"] for m in box.messages} == {ticket.id}


def test_recovery_auto_resolves_and_says_so_in_the_same_thread(lab: Lab, twins: list[Twin]) -> None:
    code = _code_of(_inventory(lab, 25), 5)  # single-homed, VNPT, behind pop-vnpt-2
    key = f"link:{code}/{VNPT_LINK}"
    opened: dict[str, email.message.Message] = {}
    notices: dict[str, email.message.Message] = {}
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port, recovery_min=0.2)):
        assert lab.commune_down(int(code)).ok
        for twin in twins:
            ticket = _wait_for(_ticket(twin, key), f"{twin.backend}: a ticket for {key}")
            opened[twin.backend] = _wait_for(
                _opened_mail(twin.box, VNPT_MAIL, ticket.id), "the opening mail"
            )
        assert lab.commune_restore(int(code)).ok
        for twin in twins:
            ticket_id = str(opened[twin.backend]["X-NetWatch-Ticket"])
            notices[twin.backend] = _wait_for(
                _event_mail(twin.box, VNPT_MAIL, ticket_id, "auto_resolved"),
                f"{twin.backend}: the auto-resolve mail",
            )
        books = {twin.backend: _book(twin) for twin in twins}

    for twin in twins:
        book = books[twin.backend]
        [ticket] = book.by_key(key)
        assert ticket.status.value == "resolved", twin.backend
        assert ticket.resolved_at is not None
        kinds = book.kinds(ticket)
        assert kinds[0] == "opened"
        assert kinds[-1] == "auto_resolved"
        assert "recovering" in kinds
        # The same conversation: the notice answers the opening message.
        first, notice = opened[twin.backend], notices[twin.backend]
        assert notice["In-Reply-To"] == first["Message-ID"]
        assert first["Message-ID"] in (notice["References"] or "")
        assert _mail(twin.box, IT_MAIL) == []


def test_smtp_down_for_a_while_delays_mail_but_loses_and_doubles_none(
    lab: Lab, twins: list[Twin]
) -> None:
    """The SMTP server is down when a ticket opens, through a NetWatch restart, then back.

    Issue 4: "SMTP server down for 5 minutes then back → all mail delivered once" (60 s here,
    with the retries scaled alike). The restart in the middle proves the outbox is the store's,
    not the process's: what the first NetWatch could not send, the second one sends, once.
    """
    code = _code_of(_inventory(lab, 25), 7)  # single-homed, VNPT, behind pop-vnpt-2
    key = f"link:{code}/{VNPT_LINK}"
    down_s = 60.0
    for twin in twins:
        twin.smtp_down()
    started = time.monotonic()
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)):
        assert lab.commune_down(int(code)).ok
        for twin in twins:
            _wait_for(_ticket(twin, key), f"{twin.backend}: a ticket for {key}")

        def retried(twin: Twin) -> Callable[[], OutboxItem | None]:
            def probe() -> OutboxItem | None:
                return next((i for i in _book(twin).outbox if i.attempts >= 2), None)

            return probe

        for twin in twins:
            _wait_for(retried(twin), f"{twin.backend}: the outbox retrying the mail")
    # NetWatch restarts while the mail server is still down.
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port), baseline_s=0) as runtimes:
        time.sleep(max(0.0, started + down_s - time.monotonic()))  # the fault's length
        for twin in twins:
            assert twin.box.messages == [], twin.backend
            twin.smtp_up()

        def delivered(twin: Twin) -> Callable[[], Book | None]:
            def probe() -> Book | None:
                book = _book(twin)
                return book if book.outbox and all(i.sent_at for i in book.outbox) else None

            return probe

        books = {
            twin.backend: _wait_for(
                delivered(twin), f"{twin.backend}: every queued mail delivered", timeout_s=60
            )
            for twin in twins
        }
        # Any duplicate would be on its way after two more rounds (and their evaluations).
        _after_rounds(runtimes, 2)

    for twin in twins:
        book = books[twin.backend]
        [ticket] = book.by_key(key)
        assert max(i.attempts for i in book.outbox) >= 2, twin.backend
        # Every stored notification arrived exactly once.
        sent = [(m["To"], m["X-NetWatch-Ticket"], _event(m)) for m in twin.box.messages]
        assert len(sent) == len(set(sent)), (twin.backend, sent)
        assert len(twin.box.messages) == len(book.outbox), (twin.backend, sent)
        assert (VNPT_MAIL, ticket.id, "opened") in sent
