"""Issue 4's proof scenarios against the lab: who gets a ticket, and who is told, for each fault.

Real peers throughout: the lab (namespaces, snmpd, the HTTPS portal), a real aiosmtpd server, and
the SQLite store read from the test thread. Rounds are short (2 s): the issue's 10 s figures are
scaled by 1/5 where they are timings of the fault itself (flapping every 4 s, not 20 s).
"""

from __future__ import annotations

import asyncio
import email.message
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from aiosmtpd.controller import Controller

from netwatch.engine import EngineOptions
from netwatch.inventory import Inventory, load_inventory
from netwatch.inventory.models import (
    Contact,
    Intervals,
    Notifications,
    ProvincialIt,
    Smtp,
    ThresholdOverrides,
    TicketRules,
)
from netwatch.inventory.secrets import Secret
from netwatch.lab import Lab
from netwatch.store import Ticket, TicketEvent, open_store
from netwatch.web.app import create_app
from tests.integration.test_run_on_lab import _env, serving
from tests.integration.test_tickets_on_lab import Mailbox, _port
from tests.lab.fixtures import built_lab

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(360)]

LAB_INDEX = 6  # 10.94.0.0/16, namespaces nwl6-*
LAB_COMMUNES = 10  # pop-vnpt-1 carries the vnpt links of communes 0, 2, 4, 6, 8
VNPT_MAIL = "noc@vnpt.test"
VIETTEL_MAIL = "noc@viettel.test"
IT_MAIL = "it@province.test"
ISP_MAILS = (VNPT_MAIL, VIETTEL_MAIL)
VNPT_LINK = "vnpt-tslcd"
VIETTEL_LINK = "viettel-internet"
T = TypeVar("T")


@pytest.fixture(scope="module")
def scenario_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, LAB_COMMUNES, tmp_path_factory.mktemp("scenario-lab"))


@pytest.fixture
def lab(scenario_lab: Lab) -> Iterator[Lab]:
    """The module's lab with every fault undone after the test."""
    try:
        yield scenario_lab
    finally:
        result = scenario_lab.restore()
        assert result.ok, result


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on loopback keeping every message; and its port."""
    box, port = Mailbox(), _port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


# -- NetWatch on the lab ------------------------------------------------------------------
def _inventory(
    lab: Lab,
    smtp_port: int,
    *,
    recovery_min: float = 5.0,
    snmp_s: float = 2.0,
    capacity_isps: frozenset[str] = frozenset(),
    overrides: Mapping[str, ThresholdOverrides] | None = None,
) -> Inventory:
    """The lab's own inventory, with short rounds, one contact per ISP and provincial IT."""
    inventory = load_inventory(lab.paths.config_file, environ=_env(lab.paths.env_file))
    mails = {"vnpt": VNPT_MAIL, "viettel": VIETTEL_MAIL}
    isps = {
        isp_id: isp.model_copy(
            update={
                "contacts": (Contact(level=1, name=f"NOC {isp_id}", email=mails[isp_id]),),
                "capacity_requests": isp_id in capacity_isps,
            }
        )
        for isp_id, isp in inventory.isps.items()
    }
    communes = tuple(
        c.model_copy(update={"thresholds": overrides[c.code]})
        if overrides and c.code in overrides
        else c
        for c in inventory.communes
    )
    # A dropped portal times out its connect: a short timeout keeps its rounds near 2 s.
    portals = {k: p.model_copy(update={"timeout_s": 3.0}) for k, p in inventory.portals.items()}
    return inventory.model_copy(
        update={
            "intervals": Intervals(icmp_s=2, icmp_echoes=10, snmp_s=snmp_s, http_s=2),
            "isps": isps,
            "communes": communes,
            "portals": portals,
            "provincial_it": ProvincialIt(
                contacts=(Contact(level=1, name="Sở KH&CN", email=IT_MAIL),)
            ),
            "tickets": TicketRules(
                recovery_min=recovery_min, reopen_window_min=60, remind_every_min=None
            ),
            "notifications": Notifications(
                public_url="https://netwatch.test",
                link_secret=Secret("link-secret", "TEST_LINK"),
                smtp=Smtp(
                    host="127.0.0.1",
                    port=smtp_port,
                    from_address="netwatch@lab.test",
                    starttls=False,
                ),
            ),
        }
    )


@contextmanager
def _netwatch(inventory: Inventory, lab: Lab, data_dir: Path) -> Iterator[None]:
    """NetWatch serving (engine, alerting, outbox) on a fresh data dir, with a baseline."""
    app = create_app(
        lab.paths.config_file,
        inventory=inventory,
        options=EngineOptions(icmp_spacing_s=0.05, icmp_timeout_s=1.0, start_jitter_s=0.2),
        data_dir=data_dir,
        alerting_tick_s=1.0,
    )
    with serving(app):
        time.sleep(4)  # healthy rounds first (and two SNMP samples: utilization is a rate)
        yield


def _codes(lab: Lab) -> list[str]:
    return [str(c.code) for c in lab.plan.communes]


def _code_of(inventory: Inventory, index: int) -> str:
    return inventory.communes[index].code


# -- what NetWatch recorded and sent ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Book:
    """The store's tickets and their logs, read at one moment."""

    tickets: tuple[Ticket, ...]
    events: Mapping[str, tuple[TicketEvent, ...]]

    def by_key(self, key: str) -> list[Ticket]:
        return [t for t in self.tickets if t.incident_key == key]

    def kinds(self, ticket: Ticket) -> list[str]:
        return [e.kind for e in self.events[ticket.id]]


def _book(data_dir: Path) -> Book:
    """Read the SQLite store with its own Store, beside the running NetWatch (WAL readers)."""

    async def read() -> Book:
        store = await open_store(None, data_dir=data_dir, migrate=False)
        try:
            tickets = tuple(await store.list_tickets())
            events = {t.id: tuple(await store.ticket_events(t.id)) for t in tickets}
            return Book(tickets, events)
        finally:
            await store.close()

    return asyncio.run(read())


def _mail(box: Mailbox, to: str, ticket: str | None = None) -> list[email.message.Message]:
    return [
        m
        for m in box.messages
        if m["To"] == to and (ticket is None or m["X-NetWatch-Ticket"] == ticket)
    ]


def _event(message: email.message.Message) -> str:
    return str(message["X-NetWatch-Event"])


def _wait_for(
    probe: Callable[[], T | None], what: str, timeout_s: float = 90.0, every_s: float = 1.0
) -> T:
    """Poll until `probe` returns something (not None); fail saying what was awaited."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(every_s)


def _ticket(data_dir: Path, key: str) -> Callable[[], Ticket | None]:
    def probe() -> Ticket | None:
        found = _book(data_dir).by_key(key)
        return found[0] if found else None

    return probe


def _in_state(data_dir: Path, key: str, state: str) -> Callable[[], Ticket | None]:
    def probe() -> Ticket | None:
        found = _book(data_dir).by_key(key)
        return found[0] if found and found[0].evidence.get("state") == state else None

    return probe


def _log(book: Book, ticket: Ticket) -> list[tuple[str, str]]:
    """A ticket's log, short, for failure messages."""
    return [(e.kind, e.text) for e in book.events[ticket.id]]


def _opened_mail(box: Mailbox, to: str, ticket: str) -> Callable[[], email.message.Message | None]:
    def probe() -> email.message.Message | None:
        return next((m for m in _mail(box, to, ticket) if _event(m) == "opened"), None)

    return probe


# -- the scenarios --------------------------------------------------------------------------
def test_twenty_percent_loss_opens_a_lossy_ticket_for_the_isp(
    lab: Lab, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    inventory = _inventory(lab, smtp_port)
    code = _code_of(inventory, 1)  # single-homed, VNPT
    key = f"link:{code}/{VNPT_LINK}"
    with _netwatch(inventory, lab, tmp_path):
        assert lab.commune_loss(int(code), 20).ok
        ticket = _wait_for(_ticket(tmp_path, key), f"a ticket for {key}")
        _wait_for(_opened_mail(box, VNPT_MAIL, ticket.id), "the opening mail to the ISP")
        time.sleep(4)  # a few more rounds: the episode must stay lossy, not turn into down
        book = _book(tmp_path)

    [ticket] = book.by_key(key)
    assert ticket.kind == "link_fault"
    assert ticket.route == "isp"
    assert ticket.isp == "vnpt"
    evidence = ticket.evidence
    assert evidence["state"] == "lossy"
    assert evidence["worst_state"] == "lossy"
    worst = evidence["worst"]
    assert isinstance(worst, dict)
    loss = worst["loss_ratio"]
    assert isinstance(loss, float)
    assert 0.05 <= loss <= 0.7  # 20 % dropped: a wide band over 10 echoes a round
    assert [t.incident_key for t in book.tickets] == [key]  # nothing else in the lab
    # The ISP is told; provincial IT is not the one to fix a line fault.
    assert _mail(box, VNPT_MAIL, ticket.id)
    assert _mail(box, IT_MAIL) == []
    assert _mail(box, VIETTEL_MAIL) == []


def test_congestion_opens_a_capacity_ticket_for_provincial_it(
    lab: Lab, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    codes = _codes(lab)
    vnpt_code, viettel_code = codes[1], codes[0]  # a VNPT-only commune; a dual-homed one
    # "Near the contracted bandwidth": 60 % is near enough for the lab's load (which fills the
    # shaped line), and tolerates a 2 s poll of snmpd's ~3 s counter cache. A full 20 Mbit/s
    # line's queue adds ~45 ms here, under QCVN 34's 50 ms: 20 ms makes that inflation count.
    near = ThresholdOverrides(utilization_pct=60, rtt_ms=20)
    inventory = _inventory(
        lab,
        smtp_port,
        capacity_isps=frozenset({"viettel"}),  # Viettel takes capacity requests; VNPT does not
        # SNMP polled less often than the ICMP rounds, as in production (defaults 60 s / 30 s).
        # Also: snmpd refreshes its counters every ~3 s, so at a 2 s poll one rate in three is
        # 0 % and the next 150 %; at 8 s each rate spans two or three refreshes (75-115 %).
        snmp_s=8,
        overrides={vnpt_code: near, viettel_code: near},
    )
    vnpt_key = f"link:{vnpt_code}/{VNPT_LINK}"
    viettel_key = f"link:{viettel_code}/{VIETTEL_LINK}"
    with _netwatch(inventory, lab, tmp_path):
        assert lab.commune_congest(int(vnpt_code), VNPT_LINK).ok
        assert lab.commune_congest(int(viettel_code), VIETTEL_LINK).ok
        for key in (vnpt_key, viettel_key):
            _wait_for(_in_state(tmp_path, key, "congested"), f"{key} judged congested")
        time.sleep(4)  # the outbox delivers
        book = _book(tmp_path)

    [vnpt_ticket] = book.by_key(vnpt_key)
    [viettel_ticket] = book.by_key(viettel_key)
    # Capacity is not a fault: VNPT (no capacity requests) is never told, not even first.
    told = [(_event(m), m["X-NetWatch-Ticket"]) for m in _mail(box, VNPT_MAIL)]
    assert told == [], (told, _log(book, vnpt_ticket))
    for ticket in (vnpt_ticket, viettel_ticket):
        assert ticket.kind == "capacity", ticket
        # Never judged (and announced as) a line fault on the way.
        assert "kind_changed" not in book.kinds(ticket), _log(book, ticket)
        worst = ticket.evidence["worst"]
        assert isinstance(worst, dict)
        utilization = worst["utilization_ratio"]
        assert isinstance(utilization, float)
        assert utilization >= 0.6
    assert vnpt_ticket.route == "provincial_it"
    assert viettel_ticket.route == "isp_and_provincial_it"
    assert {t.kind for t in book.tickets} == {"capacity"}
    assert [_event(m) for m in _mail(box, IT_MAIL, vnpt_ticket.id)][:1] == ["opened"]
    assert [_event(m) for m in _mail(box, IT_MAIL, viettel_ticket.id)][:1] == ["opened"]
    assert [_event(m) for m in _mail(box, VIETTEL_MAIL, viettel_ticket.id)][:1] == ["opened"]


def test_portal_down_with_links_fine_is_a_portal_incident_and_no_isp_ticket(
    lab: Lab, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    inventory = _inventory(lab, smtp_port)
    [portal] = inventory.portals
    key = f"portal:{portal}"
    with _netwatch(inventory, lab, tmp_path):
        assert lab.portal_down().ok
        ticket = _wait_for(_ticket(tmp_path, key), "the portal outage ticket")
        _wait_for(_opened_mail(box, IT_MAIL, ticket.id), "the portal mail to provincial IT")
        time.sleep(6)  # more rounds: nothing else may follow
        book = _book(tmp_path)

    [ticket] = book.tickets
    assert ticket.incident_key == key
    assert ticket.kind == "portal_outage"
    assert ticket.route == "provincial_it"
    assert ticket.evidence["state"] == "failing"
    assert [t for t in book.tickets if t.route != "provincial_it" or t.isp] == []
    assert [m for to in ISP_MAILS for m in _mail(box, to)] == []
    assert _mail(box, IT_MAIL, ticket.id)


def test_upstream_down_opens_one_ticket_for_the_node_not_one_per_link(
    lab: Lab, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    inventory = _inventory(lab, smtp_port)
    behind = {
        f"{c.code}/{link.id}"
        for c in inventory.communes
        for link in c.links
        if link.upstream == "pop-vnpt-1"
    }
    assert len(behind) >= 5
    key = "upstream:pop-vnpt-1"
    with _netwatch(inventory, lab, tmp_path):
        assert lab.upstream_down("pop-vnpt-1").ok
        ticket = _wait_for(_ticket(tmp_path, key), "the upstream outage ticket")
        _wait_for(_opened_mail(box, VNPT_MAIL, ticket.id), "the outage mail to VNPT")
        time.sleep(6)  # more rounds: no per-link ticket may follow
        book = _book(tmp_path)

    # The links fail in the same rounds as their node: blamed on the node from the start, never
    # first ticketed (and mailed) one by one and linked afterwards.
    assert [t.incident_key for t in book.tickets] == [key]
    [ticket] = book.tickets
    assert ticket.kind == "upstream_outage"
    assert ticket.route == "isp"
    assert ticket.isp == "vnpt"
    links = ticket.evidence["links"]
    assert isinstance(links, list)
    assert set(links) == behind
    assert "linked" not in book.kinds(ticket)
    # One ticket, one thread: every mail is about the outage; nobody else was told.
    assert {m["X-NetWatch-Ticket"] for m in box.messages} == {ticket.id}
    assert [_event(m) for m in _mail(box, VNPT_MAIL)].count("opened") == 1
    assert _mail(box, IT_MAIL) == []
    assert _mail(box, VIETTEL_MAIL) == []


def test_flapping_link_is_one_episode_not_a_storm(
    lab: Lab, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    inventory = _inventory(lab, smtp_port)
    code = _code_of(inventory, 3)  # single-homed, VNPT, behind pop-vnpt-2
    key = f"link:{code}/{VNPT_LINK}"
    flap_s, duration_s = 4.0, 120.0  # issue 4: 20 s at 10 s rounds, for 10 minutes
    with _netwatch(inventory, lab, tmp_path):
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            assert lab.commune_down(int(code)).ok
            time.sleep(flap_s)
            assert lab.commune_restore(int(code)).ok
            time.sleep(flap_s)
        book = _book(tmp_path)
        time.sleep(3)  # let the outbox deliver what the store holds

    # Offline half the time is reported (3 bad rounds of 5), once.
    tickets = book.by_key(key)
    assert len(tickets) == 1, [t.id for t in tickets]
    [ticket] = tickets
    assert [t.incident_key for t in book.tickets] == [key]
    kinds = book.kinds(ticket)
    assert kinds.count("opened") == 1
    assert "reopened" not in kinds
    assert "auto_resolved" not in kinds
    assert ticket.evidence["worst_state"] == "down"
    mails = _mail(box, VNPT_MAIL, ticket.id)
    assert [_event(m) for m in mails].count("opened") == 1
    # Not a storm: a handful of messages in two minutes of flapping (one per round would be 60).
    assert len(mails) <= 5, ([_event(m) for m in mails], _log(book, ticket))


def test_recovery_auto_resolves_and_says_so_in_the_same_thread(
    lab: Lab, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    inventory = _inventory(lab, smtp_port, recovery_min=0.2)
    code = _code_of(inventory, 5)  # single-homed, VNPT, behind pop-vnpt-2
    key = f"link:{code}/{VNPT_LINK}"
    with _netwatch(inventory, lab, tmp_path):
        assert lab.commune_down(int(code)).ok
        ticket = _wait_for(_ticket(tmp_path, key), f"a ticket for {key}")
        opened = _wait_for(_opened_mail(box, VNPT_MAIL, ticket.id), "the opening mail")
        assert lab.commune_restore(int(code)).ok

        def resolved_mail() -> email.message.Message | None:
            return next(
                (m for m in _mail(box, VNPT_MAIL, ticket.id) if _event(m) == "auto_resolved"),
                None,
            )

        notice = _wait_for(resolved_mail, "the auto-resolve mail")
        book = _book(tmp_path)

    [ticket] = book.by_key(key)
    assert ticket.state.value == "resolved"
    assert ticket.resolved_at is not None
    kinds = book.kinds(ticket)
    assert kinds[0] == "opened"
    assert kinds[-1] == "auto_resolved"
    assert "recovering" in kinds
    # The same conversation: the notice answers the opening message.
    assert notice["In-Reply-To"] == opened["Message-ID"]
    assert opened["Message-ID"] in (notice["References"] or "")
    assert _mail(box, IT_MAIL) == []
