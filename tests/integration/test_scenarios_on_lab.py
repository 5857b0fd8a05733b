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

import asyncio
import email.message
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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
from netwatch.notify.outbox import RetryPolicy
from netwatch.store import OutboxItem, Ticket, TicketEvent, open_store
from netwatch.web.app import create_app
from tests.conftest import PgCluster
from tests.integration.conftest import pg_database
from tests.integration.test_run_on_lab import _env, serving
from tests.integration.test_tickets_on_lab import Mailbox, _port
from tests.lab.fixtures import built_lab

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(360)]

LAB_INDEX = 6  # 10.94.0.0/16, namespaces nwl6-*
LAB_COMMUNES = 10  # pop-vnpt-1 carries the vnpt links of communes 0, 2, 4, 6, 8
VNPT_MAIL = "noc@vnpt.test"
VNPT_BOSS = "truongca@vnpt.test"  # VNPT's second escalation level
VIETTEL_MAIL = "noc@viettel.test"
IT_MAIL = "it@province.test"
ISP_MAILS = (VNPT_MAIL, VNPT_BOSS, VIETTEL_MAIL)
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


# -- two NetWatches, one per database -------------------------------------------------------
@dataclass(slots=True)
class Twin:
    """One of the two NetWatches of a scenario: its store, and the SMTP server it mails."""

    backend: str  # "sqlite" or "postgresql"
    data_dir: Path
    database_url: str | None  # None: the embedded SQLite under data_dir
    smtp_port: int
    box: Mailbox = field(default_factory=Mailbox)
    _smtp: Controller | None = None

    def smtp_up(self) -> None:
        """Start the real SMTP server on the twin's port (aiosmtpd)."""
        assert self._smtp is None
        self._smtp = Controller(self.box, hostname="127.0.0.1", port=self.smtp_port)
        self._smtp.start()

    def smtp_down(self) -> None:
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None


@pytest.fixture
def twins(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[list[Twin]]:
    """A SQLite twin and a PostgreSQL twin, SMTP servers up; all torn down after the test."""
    with pg_database(pg_cluster, "nw_scenario") as url:
        pair = [
            Twin("sqlite", tmp_path / "sqlite", None, _port()),
            Twin("postgresql", tmp_path / "postgresql", url, _port()),
        ]
        try:
            for twin in pair:
                twin.data_dir.mkdir()
                twin.smtp_up()
            yield pair
        finally:
            for twin in pair:
                twin.smtp_down()


# -- NetWatch on the lab ------------------------------------------------------------------
def _inventory(
    lab: Lab,
    smtp_port: int,
    *,
    recovery_min: float = 5.0,
    snmp_s: float = 2.0,
    capacity_isps: frozenset[str] = frozenset(),
    overrides: Mapping[str, ThresholdOverrides] | None = None,
    vnpt_escalation_min: float | None = None,
) -> Inventory:
    """The lab's own inventory, with short rounds, one contact per ISP and provincial IT."""
    inventory = load_inventory(lab.paths.config_file, environ=_env(lab.paths.env_file))
    mails = {"vnpt": VNPT_MAIL, "viettel": VIETTEL_MAIL}

    def contacts(isp_id: str) -> tuple[Contact, ...]:
        first = Contact(level=1, name=f"NOC {isp_id}", email=mails[isp_id])
        if isp_id != "vnpt" or vnpt_escalation_min is None:
            return (first,)
        boss = Contact(
            level=2, name="Trưởng ca VNPT", email=VNPT_BOSS, escalate_after_min=vnpt_escalation_min
        )
        return (first, boss)

    isps = {
        isp_id: isp.model_copy(
            update={"contacts": contacts(isp_id), "capacity_requests": isp_id in capacity_isps}
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


# Scaled like the rounds (1/5 of the production 10 s / 600 s): a receiver back after an outage
# gets its mail within 20 s.
QUICK_RETRY = RetryPolicy(base_delay_s=2.0, max_delay_s=20.0)


@contextmanager
def _netwatch(
    lab: Lab,
    twins: Sequence[Twin],
    inventory_of: Callable[[Twin], Inventory],
    baseline_s: float = 4,
) -> Iterator[None]:
    """Both NetWatches serving (engine, alerting, outbox) side by side, after a baseline."""
    with ExitStack() as stack:
        for twin in twins:
            app = create_app(
                lab.paths.config_file,
                inventory=inventory_of(twin),
                options=EngineOptions(icmp_spacing_s=0.05, icmp_timeout_s=1.0, start_jitter_s=0.2),
                data_dir=twin.data_dir,
                database_url=twin.database_url,
                alerting_tick_s=1.0,
                retry=QUICK_RETRY,
            )
            stack.enter_context(serving(app))
        time.sleep(baseline_s)  # healthy rounds first (and two SNMP samples: utilization is a rate)
        yield


def _codes(lab: Lab) -> list[str]:
    return [str(c.code) for c in lab.plan.communes]


def _code_of(inventory: Inventory, index: int) -> str:
    return inventory.communes[index].code


# -- what NetWatch recorded and sent ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Book:
    """A store's tickets, their logs and outbox, read at one moment."""

    tickets: tuple[Ticket, ...]
    events: Mapping[str, tuple[TicketEvent, ...]]
    outbox: tuple[OutboxItem, ...]

    def by_key(self, key: str) -> list[Ticket]:
        return [t for t in self.tickets if t.incident_key == key]

    def kinds(self, ticket: Ticket) -> list[str]:
        return [e.kind for e in self.events[ticket.id]]


def _book(twin: Twin) -> Book:
    """Read the twin's store with a Store of its own, beside the running NetWatch."""

    async def read() -> Book:
        store = await open_store(twin.database_url, data_dir=twin.data_dir, migrate=False)
        try:
            tickets = tuple(await store.list_tickets())
            events = {t.id: tuple(await store.ticket_events(t.id)) for t in tickets}
            return Book(tickets, events, tuple(await store.outbox_items()))
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


def _ticket(twin: Twin, key: str) -> Callable[[], Ticket | None]:
    def probe() -> Ticket | None:
        found = _book(twin).by_key(key)
        return found[0] if found else None

    return probe


def _in_state(twin: Twin, key: str, state: str) -> Callable[[], Ticket | None]:
    def probe() -> Ticket | None:
        found = _book(twin).by_key(key)
        return found[0] if found and found[0].evidence.get("state") == state else None

    return probe


def _log(book: Book, ticket: Ticket) -> list[tuple[str, str]]:
    """A ticket's log, short, for failure messages."""
    return [(e.kind, e.text) for e in book.events[ticket.id]]


def _opened_mail(box: Mailbox, to: str, ticket: str) -> Callable[[], email.message.Message | None]:
    return _event_mail(box, to, ticket, "opened")


def _event_mail(
    box: Mailbox, to: str, ticket: str, event: str
) -> Callable[[], email.message.Message | None]:
    def probe() -> email.message.Message | None:
        return next((m for m in _mail(box, to, ticket) if _event(m) == event), None)

    return probe


# -- the scenarios --------------------------------------------------------------------------
def test_twenty_percent_loss_opens_a_lossy_ticket_for_the_isp_and_escalates(
    lab: Lab, twins: list[Twin]
) -> None:
    """Also: unacknowledged, it reaches VNPT's second level once its delay has passed."""
    escalate_min = 0.5  # 30 s after opening (no reminders: remind_every_min is off)
    code = _code_of(_inventory(lab, 25), 1)  # single-homed, VNPT
    key = f"link:{code}/{VNPT_LINK}"
    with _netwatch(
        lab, twins, lambda t: _inventory(lab, t.smtp_port, vnpt_escalation_min=escalate_min)
    ):
        assert lab.commune_loss(int(code), 20).ok
        for twin in twins:
            ticket = _wait_for(_ticket(twin, key), f"{twin.backend}: a ticket for {key}")
            _wait_for(_opened_mail(twin.box, VNPT_MAIL, ticket.id), "the opening mail")
            _wait_for(
                _event_mail(twin.box, VNPT_BOSS, ticket.id, "escalated"),
                f"{twin.backend}: the escalation to VNPT's level 2",
                timeout_s=escalate_min * 60 + 30,
            )
        time.sleep(4)  # a few more rounds: the episode must stay lossy, not turn into down
        books = {twin.backend: _book(twin) for twin in twins}

    for twin in twins:
        book = books[twin.backend]
        [ticket] = book.by_key(key)
        assert ticket.kind == "link_fault", twin.backend
        assert ticket.route == "isp"
        assert ticket.isp == "vnpt"
        evidence = ticket.evidence
        assert evidence["state"] == "lossy", (twin.backend, evidence)
        assert evidence["worst_state"] == "lossy", (twin.backend, evidence)
        worst = evidence["worst"]
        assert isinstance(worst, dict)
        loss = worst["loss_ratio"]
        assert isinstance(loss, float)
        assert 0.05 <= loss <= 0.7  # 20 % dropped: a wide band over 10 echoes a round
        assert [t.incident_key for t in book.tickets] == [key]  # nothing else in the lab
        # Escalated once, after its delay, to level 2; level 1 is not mailed again for it.
        assert book.kinds(ticket).count("escalated") == 1, _log(book, ticket)
        [opened_event] = [e for e in book.events[ticket.id] if e.kind == "opened"]
        [escalated_event] = [e for e in book.events[ticket.id] if e.kind == "escalated"]
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
        time.sleep(4)  # the outbox delivers
        books = {twin.backend: _book(twin) for twin in twins}

    for twin in twins:
        book, box = books[twin.backend], twin.box
        [vnpt_ticket] = book.by_key(vnpt_key)
        [viettel_ticket] = book.by_key(viettel_key)
        # Capacity is not a fault: VNPT (no capacity requests) is never told, not even first.
        told = [(_event(m), m["X-NetWatch-Ticket"]) for m in _mail(box, VNPT_MAIL)]
        assert told == [], (twin.backend, told, _log(book, vnpt_ticket))
        for ticket in (vnpt_ticket, viettel_ticket):
            assert ticket.kind == "capacity", (twin.backend, ticket)
            # Never judged (and announced as) a line fault on the way.
            assert "kind_changed" not in book.kinds(ticket), (twin.backend, _log(book, ticket))
            worst = ticket.evidence["worst"]
            assert isinstance(worst, dict)
            utilization = worst["utilization_ratio"]
            assert isinstance(utilization, float)
            assert utilization >= 0.6
        assert vnpt_ticket.route == "provincial_it"
        assert viettel_ticket.route == "isp_and_provincial_it"
        assert {t.kind for t in book.tickets} == {"capacity"}, twin.backend
        assert [_event(m) for m in _mail(box, IT_MAIL, vnpt_ticket.id)][:1] == ["opened"]
        assert [_event(m) for m in _mail(box, IT_MAIL, viettel_ticket.id)][:1] == ["opened"]
        assert [_event(m) for m in _mail(box, VIETTEL_MAIL, viettel_ticket.id)][:1] == ["opened"]


def test_portal_down_with_links_fine_is_a_portal_incident_and_no_isp_ticket(
    lab: Lab, twins: list[Twin]
) -> None:
    [portal] = _inventory(lab, 25).portals
    key = f"portal:{portal}"
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)):
        assert lab.portal_down().ok
        for twin in twins:
            ticket = _wait_for(_ticket(twin, key), f"{twin.backend}: the portal outage ticket")
            _wait_for(_opened_mail(twin.box, IT_MAIL, ticket.id), "the mail to provincial IT")
        time.sleep(6)  # more rounds: nothing else may follow
        books = {twin.backend: _book(twin) for twin in twins}

    for twin in twins:
        book = books[twin.backend]
        [ticket] = book.tickets
        assert ticket.incident_key == key
        assert ticket.kind == "portal_outage"
        assert ticket.route == "provincial_it"
        assert ticket.evidence["state"] == "failing"
        assert [t for t in book.tickets if t.route != "provincial_it" or t.isp] == []
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
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)):
        assert lab.upstream_down("pop-vnpt-1").ok
        for twin in twins:
            ticket = _wait_for(_ticket(twin, key), f"{twin.backend}: the upstream outage ticket")
            _wait_for(_opened_mail(twin.box, VNPT_MAIL, ticket.id), "the outage mail to VNPT")
        time.sleep(6)  # more rounds: no per-link ticket may follow
        books = {twin.backend: _book(twin) for twin in twins}

    for twin in twins:
        book, box = books[twin.backend], twin.box
        # The links fail in the same rounds as their node: blamed on the node from the start,
        # never first ticketed (and mailed) one by one and linked afterwards.
        assert [t.incident_key for t in book.tickets] == [key], twin.backend
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


def test_flapping_link_is_one_episode_not_a_storm(lab: Lab, twins: list[Twin]) -> None:
    code = _code_of(_inventory(lab, 25), 3)  # single-homed, VNPT, behind pop-vnpt-2
    key = f"link:{code}/{VNPT_LINK}"
    flap_s, duration_s = 4.0, 120.0  # issue 4: 20 s at 10 s rounds, for 10 minutes
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)):
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            assert lab.commune_down(int(code)).ok
            time.sleep(flap_s)
            assert lab.commune_restore(int(code)).ok
            time.sleep(flap_s)
        books = {twin.backend: _book(twin) for twin in twins}
        time.sleep(3)  # let the outboxes deliver what the stores hold

    for twin in twins:
        book = books[twin.backend]
        # Offline half the time is reported (3 bad rounds of 5), once.
        tickets = book.by_key(key)
        assert len(tickets) == 1, (twin.backend, [t.id for t in tickets])
        [ticket] = tickets
        assert [t.incident_key for t in book.tickets] == [key]
        kinds = book.kinds(ticket)
        assert kinds.count("opened") == 1
        assert "reopened" not in kinds
        assert "auto_resolved" not in kinds
        assert ticket.evidence["worst_state"] == "down"
        mails = _mail(twin.box, VNPT_MAIL, ticket.id)
        assert [_event(m) for m in mails].count("opened") == 1
        # Not a storm: a handful of messages in two minutes of flapping (one per round: 60).
        assert len(mails) <= 5, (twin.backend, [_event(m) for m in mails], _log(book, ticket))


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
        assert ticket.state.value == "resolved", twin.backend
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
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port), baseline_s=0):
        time.sleep(max(0.0, started + down_s - time.monotonic()))
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
        time.sleep(3)  # any duplicate would be on its way by now

    for twin in twins:
        book = books[twin.backend]
        [ticket] = book.by_key(key)
        assert max(i.attempts for i in book.outbox) >= 2, twin.backend
        # Every stored notification arrived exactly once.
        sent = [(m["To"], m["X-NetWatch-Ticket"], _event(m)) for m in twin.box.messages]
        assert len(sent) == len(set(sent)), (twin.backend, sent)
        assert len(twin.box.messages) == len(book.outbox), (twin.backend, sent)
        assert (VNPT_MAIL, ticket.id, "opened") in sent
