"""What issue 4's lab scenarios share: two NetWatches (SQLite and PostgreSQL) on one lab fault.

Each scenario runs two NetWatches side by side on the same lab and the same fault: one on its
embedded SQLite store, one on PostgreSQL (the session's private cluster), each with its own real
aiosmtpd server. Both must reach the same verdict: the issue asks for the same scenarios on both
databases, and running them together costs the suite one scenario's time, not two. The `twins`
fixture (tests/integration/conftest.py) makes the pair.
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

from aiosmtpd.controller import Controller

from alerts.tickets import Ticket, TicketEvent
from netwatch.engine import EngineOptions
from netwatch.inventory import Inventory, load_inventory
from netwatch.inventory.models import (
    Contact,
    Intervals,
    ProvincialIt,
    ThresholdOverrides,
    TicketRules,
)
from netwatch.lab import Lab
from netwatch.notify.outbox import RetryPolicy
from netwatch.store import OutboxItem, open_store
from netwatch.web.app import Runtime, create_app
from tests.integration.lab_notify import lab_notifications
from tests.integration.test_run_on_lab import _env, serving
from tests.integration.test_tickets_on_lab import Mailbox
from tests.lab_netwatch import QUICK_ROUNDS
from tests.waiting import WaitTimeoutError, wait_until

LAB_COMMUNES = 10  # pop-vnpt-1 carries the vnpt links of communes 0, 2, 4, 6, 8
VNPT_MAIL = "noc@vnpt.test"
VNPT_BOSS = "truongca@vnpt.test"  # VNPT's second escalation level
VIETTEL_MAIL = "noc@viettel.test"
IT_MAIL = "it@province.test"
ISP_MAILS = (VNPT_MAIL, VNPT_BOSS, VIETTEL_MAIL)
VNPT_LINK = "vnpt-tslcd"
VIETTEL_LINK = "viettel-internet"
T = TypeVar("T")


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
            "notifications": lab_notifications(smtp_port),
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
    options: EngineOptions = QUICK_ROUNDS,
    alerting_tick_s: float = 1.0,
) -> Iterator[list[Runtime]]:
    """Both NetWatches serving (engine, alerting, outbox) side by side, after a baseline; their
    runtimes, in the twins' order."""
    with ExitStack() as stack:
        runtimes = []
        for twin in twins:
            app = create_app(
                lab.paths.config_file,
                inventory=inventory_of(twin),
                options=options,
                data_dir=twin.data_dir,
                database_url=twin.database_url,
                alerting_tick_s=alerting_tick_s,
                retry=QUICK_RETRY,
            )
            stack.enter_context(serving(app))
            runtimes.append(app.state.runtime)
        _baseline(runtimes, inventory_of(twins[0]).intervals, baseline_s)
        yield runtimes


def _baseline(runtimes: Sequence[Runtime], intervals: Intervals, baseline_s: float) -> None:
    """Healthy rounds first (and two SNMP samples: utilization is a rate): the rounds that fit
    in baseline_s, counted by NetWatch itself rather than slept for."""
    wanted = {"icmp": int(baseline_s // intervals.icmp_s)}
    if runtimes and runtimes[0].plan.snmp:
        wanted["snmp"] = min(2, int(baseline_s // intervals.snmp_s))
    if not wanted["icmp"]:
        # Rounds longer than the baseline (production intervals): none completes within it;
        # the baseline only gives the engines their start.
        time.sleep(baseline_s)
        return

    def done() -> bool | None:  # counted from 0: the NetWatches have just started
        return all(_rounds(r, k) >= n for r in runtimes for k, n in wanted.items()) or None

    _wait_for(done, f"a healthy baseline: {wanted} rounds", 30 + 5 * max(wanted.values()), 0.2)


def _rounds(runtime: Runtime, kind: str, *, slots: bool = False) -> int:
    """Rounds of a kind this NetWatch has completed (its registry's netwatch_rounds_total);
    with slots, the skipped ones too: the round slots that have passed."""
    names = ["netwatch_rounds_total"] + (["netwatch_rounds_skipped_total"] if slots else [])
    for _ in range(3):
        try:  # collected from the test thread while the loop's thread records rounds
            values = [runtime.registry.get_sample_value(n, {"kind": kind}) for n in names]
        except RuntimeError:
            continue
        return int(sum(v or 0 for v in values))
    raise AssertionError("the round counters could not be read")


def _after_rounds(
    runtimes: Sequence[Runtime],
    count: int,
    *,
    kind: str = "icmp",
    slots: bool = False,
    what: str = "",
    timeout_s: float | None = None,
) -> None:
    """Wait until every NetWatch has completed `count` more rounds of a kind (or, with slots,
    `count` more round slots have passed): time told by NetWatch's own rounds, not a nap."""
    start = [_rounds(r, kind, slots=slots) for r in runtimes]

    def done() -> bool | None:
        counts = [_rounds(r, kind, slots=slots) for r in runtimes]
        return all(c >= s + count for c, s in zip(counts, start, strict=True)) or None

    _wait_for(
        done,
        what or f"{count} more {kind} rounds",
        timeout_s=timeout_s if timeout_s is not None else 30 + 5 * count,
        every_s=0.2,
    )


def _outbox_drained(twin: Twin) -> Callable[[], Book | None]:
    """A probe: the twin's book once every notification in its outbox has been sent."""

    def probe() -> Book | None:
        book = _book(twin)
        return book if all(i.sent_at for i in book.outbox) else None

    return probe


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
        return [t for t in self.tickets if t.key.encoded == key]

    def kinds(self, ticket: Ticket) -> list[str]:
        return [e.kind.value for e in self.events[ticket.id]]


def _book(twin: Twin) -> Book:
    """Read the twin's store with a Store of its own, beside the running NetWatch."""

    async def read() -> Book:
        store = await open_store(twin.database_url, data_dir=twin.data_dir, migrate=False)
        try:
            tickets = tuple(s.ticket for s in await store.list_tickets())
            events = {
                t.id: tuple(e.event for e in await store.ticket_events(t.id)) for t in tickets
            }
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

    def boxed() -> list[T] | None:  # a found value may be falsy (an empty Book is not None)
        found = probe()
        return None if found is None else [found]

    try:
        return wait_until(boxed, timeout_s, every_s, what)[0]
    except WaitTimeoutError:
        raise AssertionError(f"not within {timeout_s:.0f} s: {what}") from None


def _ticket(twin: Twin, key: str) -> Callable[[], Ticket | None]:
    def probe() -> Ticket | None:
        found = _book(twin).by_key(key)
        return found[0] if found else None

    return probe


def _in_state(twin: Twin, key: str, state: str) -> Callable[[], Ticket | None]:
    def probe() -> Ticket | None:
        found = _book(twin).by_key(key)
        return found[0] if found and found[0].evidence.state == state else None

    return probe


def _log(book: Book, ticket: Ticket) -> list[tuple[str, str]]:
    """A ticket's log, short, for failure messages."""
    return [(e.kind.value, e.text) for e in book.events[ticket.id]]


def _opened_mail(box: Mailbox, to: str, ticket: str) -> Callable[[], email.message.Message | None]:
    return _event_mail(box, to, ticket, "opened")


def _event_mail(
    box: Mailbox, to: str, ticket: str, event: str
) -> Callable[[], email.message.Message | None]:
    def probe() -> email.message.Message | None:
        return next((m for m in _mail(box, to, ticket) if _event(m) == event), None)

    return probe
