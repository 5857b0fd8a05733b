"""Tickets from incidents, persisted before anyone is told, delivered through the outbox.

Every few seconds (and so also when nothing new was measured: escalations and recoveries are
timed) the ticket book is evaluated against the health monitor's incidents. The resulting actions
are written to the store with their outbox rows in one transaction (alerts/tickets.py contract),
and only then is the new book adopted; the outbox worker delivers. A crash at any point replays
the same evaluation to the same ticket ids and event numbers, which the store ignores.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
from starlette.exceptions import HTTPException

from alerts.maintenance import (
    MaintenanceScope,
    MaintenanceWindow,
    OneOff,
    Recurrence,
    Recurring,
    ScopeKind,
    incident_window,
)
from alerts.model import Incident, Measurements, PathTrace
from alerts.subject import SubjectKey, SubjectKind
from alerts.tickets import (
    SYSTEM,
    Acknowledged,
    Action,
    Actor,
    ActorKind,
    AutoResolve,
    Contact,
    Directory,
    Escalate,
    EventKind,
    LinkToParent,
    Noted,
    OpenTicket,
    Refused,
    Remind,
    ReopenTicket,
    Resolved,
    Step,
    Suppressed,
    Ticket,
    TicketBook,
    TicketChange,
    TicketEvent,
    TicketPolicy,
    TicketStatus,
    Unmonitored,
)
from netwatch.health import HealthMonitor
from netwatch.inventory import Divisions, Inventory
from netwatch.inventory.models import Contact as ConfigContact
from netwatch.notify.channels import (
    Channel,
    SmtpChannel,
    SmtpConfig,
    TelegramChannel,
    TelegramConfig,
    WebhookChannel,
    WebhookConfig,
)
from netwatch.notify.clock import Clock
from netwatch.notify.messages import (
    ChannelKind,
    NoticeEvent,
    ProblemState,
    TicketNotice,
    dedup_key,
    outbox_payload,
)
from netwatch.notify.zalo import ZaloChannel, ZaloConfig
from netwatch.pathtrace import PathTracer
from netwatch.signing import LinkSigner, SignedLink, link_id
from netwatch.steadyclock import SteadyClock
from netwatch.store import Store, StoreTimeoutError, TicketStepOutcome
from netwatch.store.codec import (
    actor_text,
    evidence_json,
    recovery_json,
    ticket_from_json,
    ticket_json,
)
from netwatch.store.leader import Leader
from netwatch.store.types import (
    EventRecord,
    IssuedLink,
    JsonObject,
    NewOutboxItem,
    OutboxItem,
    StateChange,
    TicketRecord,
)

log = logging.getLogger("netwatch.alerting")
# A crash loses at most this much of the state history's end (it counts as the last state).
HEARTBEAT_EVERY = timedelta(seconds=15)
FAILURE_SUMMARY_EVERY = timedelta(minutes=1)  # a failing tick loop says so this often
# Across a restart no monotonic clock survives: the gap since the last heartbeat is either
# downtime or a clock jump while stopped. Up to this much of it counts toward escalation,
# reminder and recovery timers; beyond it (and any backward gap) the timers are moved, so at
# most this much of their deadlines can fall due at start-up (docs/alerting.md, "Clock jumps").
RESTART_GAP_COUNTED = timedelta(minutes=10)
# Longer than any lease or backoff the outbox sets (300 s, 600 s): a pending time further ahead
# at start-up is the old clock's, after it went back (docs/alerting.md, "Clock jumps").
OUTBOX_CLAMP = timedelta(hours=1)
# Path traces at ticket opening: at most this many per evaluation, waited for this long, and a
# trace reused for this long (a ticket reopened within a minute keeps the trace it had).
_TRACED_AT_ONCE = 32
_TRACE_WAIT_S = 4.0
_PATH_KEPT = timedelta(seconds=60)
# How long a manual change waits for the book while an evaluation holds it (a slow or
# unreachable database: the store's own timeouts bound that evaluation, netwatch.store.engine).
MANUAL_WAIT_S = 10.0
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_NOTICE = {
    OpenTicket: NoticeEvent.OPENED,
    ReopenTicket: NoticeEvent.REOPENED,
    AutoResolve: NoticeEvent.AUTO_RESOLVED,
    Unmonitored: NoticeEvent.UNMONITORED,
    Escalate: NoticeEvent.ESCALATED,
    Remind: NoticeEvent.REMINDER,
    Acknowledged: NoticeEvent.ACKNOWLEDGED,
    Resolved: NoticeEvent.RESOLVED,
    Noted: NoticeEvent.NOTE,
}


# -- the inventory, as alerts/ wants it ---------------------------------------------------
def _contact(c: ConfigContact, isp: str | None) -> Contact:
    return Contact(
        level=c.level,
        name=c.name,
        escalate_after_s=c.escalate_after_min * 60,
        isp=isp,
        email=c.email,
        webhook=c.webhook,
        telegram_chat_id=c.telegram_chat_id,
        zalo_phone=c.zalo_phone,
    )


def directory_of(inventory: Inventory) -> Directory:
    """Who is told, per route and ISP, by escalation level (and each commune's own people,
    told when their site is unreachable)."""
    return Directory(
        isps={
            isp_id: tuple(_contact(c, isp_id) for c in isp.contacts)
            for isp_id, isp in inventory.isps.items()
        },
        provincial_it=tuple(_contact(c, None) for c in inventory.provincial_it.contacts),
        communes={
            c.code: tuple(_contact(x, None) for x in c.contacts)
            for c in inventory.communes
            if c.contacts
        },
    )


def policy_of(inventory: Inventory) -> TicketPolicy:
    """Ticket timings from the inventory's `tickets` section."""
    rules = inventory.tickets
    return TicketPolicy(
        recovery_s=rules.recovery_min * 60,
        line_back_s=rules.line_back_s,
        reopen_window_s=rules.reopen_window_min * 60,
        remind_every_s=rules.remind_every_min * 60 if rules.remind_every_min else None,
    )


def windows_of(inventory: Inventory) -> tuple[MaintenanceWindow, ...]:
    """The inventory's maintenance windows as alerts/ evaluates them."""
    out = []
    for window in inventory.maintenance:
        scope = window.scope
        if scope.province is not None:
            ms = MaintenanceScope(ScopeKind.PROVINCE, str(scope.province))
        elif scope.commune is not None:
            ms = MaintenanceScope(ScopeKind.COMMUNE, scope.commune)
        elif scope.link is not None:
            ms = MaintenanceScope(ScopeKind.LINK, scope.link)
        else:
            ms = MaintenanceScope(ScopeKind.ISP, scope.isp or "")
        schedule: OneOff | Recurring
        if window.start is not None and window.end is not None:
            schedule = OneOff(window.start, window.end)
        else:
            assert window.every is not None  # the model checked both
            assert window.at is not None
            schedule = Recurring(
                every=Recurrence(window.every),
                at=window.at,
                duration_min=window.duration_min or 0,
                weekdays=frozenset(_WEEKDAYS[d] for d in window.days),
            )
        out.append(MaintenanceWindow(ms, schedule, window.reason))
    return tuple(out)


# -- tickets as the store keeps them ------------------------------------------------------
def ticket_record(t: Ticket, recovery_s: float | None = None) -> TicketRecord:
    """A ticket as the store keeps it. Its evidence also says since when the incident has been
    gone and when the ticket closes if it stays so (the pages show the recovery watch)."""
    evidence = evidence_json(t.evidence)
    if t.ok_since is not None and t.status is not TicketStatus.RESOLVED:
        closes = t.ok_since + timedelta(seconds=recovery_s) if recovery_s is not None else None
        evidence.update(recovery_json(t.ok_since, closes))
    return TicketRecord(
        id=t.id,
        incident_key=t.key,
        kind=t.evidence.kind.value,
        route=t.route.value,
        isp=t.isp,
        state=TicketStatus(t.status.value),
        opened_at=t.opened_at,
        acknowledged_at=t.acknowledged_at,
        resolved_at=t.resolved_at,
        evidence=evidence,
        escalation_level=max(t.level, 1),
        last_notified_at=t.last_notified_at,
        book=ticket_json(t),
    )


def event_record(ticket: Ticket, event: TicketEvent) -> EventRecord:
    """One log event as the store keeps it."""
    actor = actor_text(event.actor)
    return EventRecord(ticket.id, event.seq, event.at, actor, event.kind.value, event.text)


# -- notices --------------------------------------------------------------------------------
class Notices:
    """Renders ticket changes into outbox rows: one per recipient and channel."""

    def __init__(self, inventory: Inventory, health: HealthMonitor) -> None:
        self._inventory = inventory
        self._topology = health.topology
        self._email = (
            inventory.notifications is not None and inventory.notifications.smtp is not None
        )
        self._webhook = (
            inventory.notifications is not None
            and inventory.notifications.webhook_secret is not None
        )
        self._telegram = (
            inventory.notifications is not None and inventory.notifications.telegram is not None
        )
        zalo = inventory.notifications.zalo if inventory.notifications is not None else None
        # The ZNS template Zalo approved for each notice event; events without one are not
        # sent by Zalo (each ZNS message is paid for).
        self._zns_templates = dict(zalo.templates) if zalo is not None else {}
        self._provinces = Divisions().provinces
        self._recovery_s = inventory.tickets.recovery_min * 60

    def rows(self, change: TicketChange) -> list[NewOutboxItem]:
        """The outbox rows for one change (none when nobody is to be told)."""
        if not change.recipients or self._inventory.notifications is None:
            return []
        notice = self.notice(change)
        rows = []
        for contact in change.recipients:
            targets: list[tuple[ChannelKind, str, str]] = []
            if contact.email and self._email:
                targets.append((ChannelKind.EMAIL, "email", contact.email))
            if contact.webhook and self._webhook:
                targets.append(
                    (ChannelKind.WEBHOOK, webhook_channel(contact.webhook), contact.name)
                )
            if contact.telegram_chat_id and self._telegram:
                targets.append((ChannelKind.TELEGRAM, "telegram", contact.telegram_chat_id))
            template = self._zns_templates.get(notice.event.value)
            if contact.zalo_phone and template is not None:
                targets.append((ChannelKind.ZALO, "zalo", contact.zalo_phone))
            for kind, channel, recipient in targets:
                payload = outbox_payload(kind, notice, zns_template=template)
                rows.append(
                    NewOutboxItem(
                        channel=channel,
                        recipient=recipient,
                        payload=cast(JsonObject, payload),
                        dedup_key=dedup_key(notice, channel, recipient),
                        ticket_id=change.ticket.id,
                    )
                )
        return rows

    def signed(self, change: TicketChange) -> SignedLink | None:
        """The ISP link a change's notice carries (None without notifications).

        Signed from the event's time, not the wall clock: a replayed evaluation renders the
        same message, and every reminder or escalation carries a fresh link."""
        if self._inventory.notifications is None:
            return None
        signer = LinkSigner.from_notifications(self._inventory.notifications)
        return signer.sign(change.ticket.id, change.event.at)

    def issued(self, change: TicketChange) -> IssuedLink | None:
        """The link to record with the change's outbox rows (None when nobody is told)."""
        signed = self.signed(change) if change.recipients else None
        if signed is None:
            return None
        return IssuedLink(
            id=link_id(signed.ticket_id, signed.exp, signed.sig),
            ticket_id=signed.ticket_id,
            expires_at=signed.expires_at,
            issued_at=change.event.at,
        )

    def notice(self, change: TicketChange) -> TicketNotice:
        """What the messages say about one change."""
        t, e = change.ticket, change.ticket.evidence
        event = _NOTICE.get(type(change), NoticeEvent.UPDATED)
        if change.event.kind is EventKind.LINE_BACK:
            event = NoticeEvent.LINE_BACK
        elif change.event.kind is EventKind.BAD_AGAIN:
            event = NoticeEvent.BAD_AGAIN
        try:
            state = ProblemState(e.worst_state if event is NoticeEvent.OPENED else e.state)
        except ValueError:
            state = ProblemState.DOWN  # an upstream node or the monitor: "down"
        key = t.key
        link_key = key.link_id
        link = self._topology.links.get(link_key) if link_key is not None else None
        subject = None
        if key.kind is SubjectKind.UPSTREAM:
            upstream = self._inventory.upstreams.get(key.name)
            subject = upstream.name if upstream else key.encoded
        elif key.kind is SubjectKind.PORTAL:
            portal = self._inventory.portals.get(key.name)
            subject = portal.name if portal else key.encoded
        elif key.kind in (SubjectKind.SITE, SubjectKind.AGENT):
            subject = key.encoded  # the commune's name below says where
        elif link is None:
            subject = "NetWatch"
        worst = e.worst or Measurements()
        isp = self._inventory.isps.get(t.isp) if t.isp else None
        province = None
        site = None  # a commune centre (or its agent) as a whole: no link
        if link is not None:
            commune = self._inventory.commune(link.commune)
            province = f"{commune.province_code:02d}" if commune else None
        elif key.kind in (SubjectKind.SITE, SubjectKind.AGENT):
            site = self._inventory.commune(key.name)
            province = f"{site.province_code:02d}" if site else None
        signed = self.signed(change)
        return TicketNotice(
            event=event,
            ticket_id=t.id,
            event_id=change.event.seq,
            kind=e.kind,
            state=state,
            at=change.event.at,
            first_bad_at=e.first_bad_at,
            downtime_s=e.downtime_s(change.event.at),
            commune_code=link.commune if link else (site.code if site else None),
            commune_name=link.commune_name if link else (site.name if site else None),
            province_name=self._provinces.get(int(province)) if province else None,
            subject_name=subject,
            link_id=link.link if link else None,
            isp_name=isp.name if isp else None,
            circuit_id=link.circuit if link else None,
            evidence=worst,
            path=(e.first.path if e.first is not None else None)
            or (e.worst.path if e.worst is not None else None),
            ticket_url=signed.url if signed else None,
            ticket_url_expires_at=signed.expires_at if signed else None,
            escalation_level=max(t.level, 1),
            note=change.event.text or None,
            actor=change.event.actor.name
            if change.event.actor.kind is not ActorKind.SYSTEM
            else ("NetWatch" if event is NoticeEvent.NOTE else None),  # its own note (issue 11)
            back_since=t.ok_since if event is NoticeEvent.LINE_BACK else None,
            closes_after_s=(
                max(0.0, self._recovery_s - (change.event.at - t.ok_since).total_seconds())
                if event is NoticeEvent.LINE_BACK and t.ok_since is not None
                else None
            ),
        )


def webhook_channel(url: str) -> str:
    """The outbox channel name of one webhook receiver: short and stable (the store keeps
    channel names in 32 characters; a URL does not fit, PostgreSQL refuses it)."""
    return f"webhook:{hashlib.sha256(url.encode()).hexdigest()[:16]}"


# -- the service ------------------------------------------------------------------------------
class AlertingBusy(HTTPException):
    """A manual change not made because the ticket book stayed busy: 503, try again. An HTTP
    exception so that every page and the API answer it as such (it reaches them unchanged)."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "alerting is busy: the database is slow or unreachable and the change was not "
            "taken; try again in a minute / Hệ thống cảnh báo đang bận: cơ sở dữ liệu chậm "
            "hoặc không liên lạc được, thay đổi chưa được ghi nhận; vui lòng thử lại sau ít phút.",
            headers={"Retry-After": "60"},
        )


class Alerting:
    """Evaluates the ticket book against the incidents and persists the outcome."""

    def __init__(
        self,
        inventory: Inventory,
        store: Store,
        health: HealthMonitor,
        *,
        tick_s: float = 5.0,
        leader: Leader | None = None,
        tracer: PathTracer | None = None,
        manual_wait_s: float = MANUAL_WAIT_S,
        clock: SteadyClock | None = None,
    ) -> None:
        self._inventory = inventory
        # Ticks read this clock: durations advance with the monotonic clock, jumps are moved.
        self._clock = clock or SteadyClock()
        self._manual_wait_s = manual_wait_s
        # Two instances on one PostgreSQL: both probe, only the lock's holder judges tickets,
        # writes the state history and takes manual changes (docs/deployment.md). None: alone.
        self._leader = leader
        self.is_leader = leader is None
        self._store = store
        self._health = health
        self._tick_s = tick_s
        self._windows = windows_of(inventory)
        self._notices = Notices(inventory, health)
        self._lock = asyncio.Lock()  # evaluations and manual changes go through one book
        self.book = TicketBook(policy=policy_of(inventory), directory=directory_of(inventory))
        self.on_enqueued: list[Any] = []  # callbacks (the outbox worker's wake)
        # Why the latest tick failed (the exception's type), since when: /healthz says 503.
        self.failing: str | None = None
        self.failing_since: datetime | None = None
        self._failures = 0
        self._failure_told_at = datetime.min.replace(tzinfo=UTC)
        self.last_tick_at: datetime | None = None  # the last evaluation that completed
        # Called with the book continued from the store on taking over from another instance
        # (what that book holds was counted there: metrics take it as seen).
        self.on_taken_over: list[Callable[[TicketBook], None]] = []
        # Set when the incidents changed (the health monitor calls wake()): evaluate at once
        # rather than at the next tick, so a confirmed outage is ticketed in milliseconds.
        self._wake = asyncio.Event()
        # Where the path toward a failing subject breaks, traced when its ticket is about to
        # open (about 1.5 s on a broken path) and kept a minute for the evaluations after.
        self._tracer = tracer
        self._paths: dict[SubjectKey, tuple[datetime, PathTrace | None]] = {}
        # Subjects a reload removed whose tickets are still to resolve as such (reload()).
        self._unmonitored: set[SubjectKey] = set()
        # Called with the evaluation's time before the incidents are read: the judge of the
        # view from inside (netwatch.inside.judge) notices silent agents by it.
        self.before_evaluate: list[Callable[[datetime], None]] = []

    def wake(self) -> None:
        """Evaluate now (the incidents changed)."""
        self._wake.set()

    def _next_due_s(self, now: datetime) -> float:
        """Seconds until the next tick, or sooner when a line-back notice falls due."""
        wait = self._tick_s
        line_back_s = self.book.policy.line_back_s
        if line_back_s is None:
            return wait
        for ticket in self.book.tickets.values():
            if ticket.ok_since is not None and ticket.line_back_at is None:
                due = (ticket.ok_since - now).total_seconds() + line_back_s
                wait = min(wait, max(0.05, due + 0.01))
        return wait

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait for the stop, a wake-up or the timeout, whichever comes first."""
        waiters = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._wake.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._wake.clear()

    async def start(self, now: datetime) -> None:
        """Take the lead if nobody holds it (always, on SQLite); a leader continues the book."""
        if self._leader is not None:
            self.is_leader = (await self._leader.refresh()).is_leader
        if self.is_leader:
            await self.restore(now)
        else:
            log.warning("alerting standby: another NetWatch instance leads")

    async def _follow_leadership(self, now: datetime) -> bool:
        """Refresh the lock; on taking over, continue from the store. True while leading."""
        if self._leader is None:
            return True
        check = await self._leader.refresh()
        if not check.is_leader:
            if check.changed:
                log.warning("alerting standby status=%s", check.status.value)
            self.is_leader = False
            self._health.drain_transitions()  # the leader writes the state history
            return False
        if check.changed:
            log.warning("alerting leader: taking over")
            async with self._lock:
                await self.restore(now)
                self._health.resync_history(now)
            for hook in self.on_taken_over:
                hook(self.book)
        self.is_leader = True
        return True

    async def restore(self, now: datetime) -> None:
        """Continue the episodes of a previous run instead of opening new tickets.

        The state history of the previous run ends where it was last known alive: its clean
        shutdown, or after a crash its last heartbeat. This run records each subject's state
        again from its first judged round.
        """
        alive = await self._store.last_heartbeat()
        closed = await self._store.mark_all_unknown(min(alive or now, now))
        if closed:
            log.info("state history closed subjects=%d at=%s", closed, (alive or now).isoformat())
        since = now - timedelta(seconds=self.book.policy.reopen_window_s)
        records = await self._store.ticket_books(since)
        tickets = [ticket_from_json(r.book) for r in records if r.book]
        self.book = TicketBook.restore(self.book.policy, self.book.directory, tickets)
        if tickets:
            log.info("tickets restored count=%d", len(tickets))
        await self._bound_restart_gap(alive, now)

    async def _bound_restart_gap(self, alive: datetime | None, now: datetime) -> None:
        """Timers stored by the previous run, judged without its monotonic clock: a gap since
        its last heartbeat counts up to RESTART_GAP_COUNTED (the rest is moved), and a timer
        or an outbox time the clock went back behind starts now / at most OUTBOX_CLAMP ahead.
        """
        if alive is not None and now - alive > RESTART_GAP_COUNTED:
            gap = now - alive
            why = f"restart after {gap.total_seconds():.0f} s"
            await self._move_timers(gap - RESTART_GAP_COUNTED, now, why)
        self.book, clamped = self.book.clamped(now)
        if clamped:
            records = [ticket_record(t, self.book.policy.recovery_s) for t in clamped]
            await self._store.apply_ticket_changes(records, [], [], now)
        items = await self._store.clamp_pending(now + OUTBOX_CLAMP)
        if clamped or items:
            log.warning(
                "timers from the future (the clock went back) tickets=%d outbox_items=%d",
                len(clamped),
                items,
            )

    async def _move_timers(self, by: timedelta, now: datetime, why: str) -> None:
        """Move the running ticket timers by `by`, in the book and the store (persisted, so a
        later restart does not count the same gap again)."""
        self.book, moved = self.book.shifted(by)
        if moved:
            records = [ticket_record(t, self.book.policy.recovery_s) for t in moved]
            await self._store.apply_ticket_changes(records, [], [], now)
        log.warning(
            "ticket timers moved by_s=%.0f tickets=%d why=%s", by.total_seconds(), len(moved), why
        )

    async def now(self) -> datetime:
        """Now, by the steady clock; a wall-clock jump found here first moves every running
        timer (tickets, outbox leases and backoffs) by it, then the clock follows the wall."""
        jump = self._clock.check()
        if jump is not None:
            # Followed even if the store fails below: moving twice (on a retry) would be worse
            # than a timer left unmoved in the store (the book in memory is moved first).
            try:
                if self.is_leader:
                    async with self._lock:
                        now = self._clock.now() + jump
                        try:
                            await self._move_timers(jump, now, "clock jump")
                        finally:  # the outbox's times move even if the tickets could not
                            items = await self._store.shift_pending(jump)
                            log.warning(
                                "outbox times moved by_s=%.0f items=%d", jump.total_seconds(), items
                            )
                else:
                    log.warning("wall clock jumped by_s=%.0f (standby)", jump.total_seconds())
            finally:
                self._clock.follow()
        return self._clock.now()

    async def reload(
        self, inventory: Inventory, removed: Collection[SubjectKey], now: datetime
    ) -> tuple[Action, ...]:
        """Take a reloaded inventory (the health monitor took it first): its contacts, ticket
        timings, maintenance windows and names apply from the next evaluation. The tickets of
        `removed` subjects resolve as "removed from monitoring" (persisted and told like any
        change), not as recovered; every other ticket goes on as it was. Not leading (or the
        store failing), they are closed by the first evaluation that leads."""
        async with self._lock:
            self._inventory = inventory
            self._windows = windows_of(inventory)
            self._notices = Notices(inventory, self._health)
            self.book = replace(
                self.book, policy=policy_of(inventory), directory=directory_of(inventory)
            )
            if self._tracer is not None:
                self._tracer.reload(inventory)
            self._unmonitored |= set(removed)
            if not self.is_leader:
                return ()
            return await self._close_unmonitored(now)

    def unmonitor_soon(self, removed: Collection[SubjectKey]) -> None:
        """Subjects the health monitor just forgot: their tickets resolve as removed from
        monitoring at the next chance (reload() or the next evaluation), never as recovered."""
        self._unmonitored |= set(removed)

    async def _close_unmonitored(self, now: datetime) -> tuple[Action, ...]:
        """Resolve the tickets of subjects removed from monitoring (under the lock)."""
        if not self._unmonitored:
            return ()
        step = self.book.unmonitor(self._unmonitored, now)
        await self._persist(step.actions, now)
        self.book = step.book
        self._unmonitored = set()
        for action in step.actions:
            if isinstance(action, Unmonitored):
                log.warning(
                    "ticket resolved, removed from monitoring id=%s key=%s",
                    action.ticket.id,
                    action.ticket.key,
                )
        return step.actions

    async def evaluate(self, now: datetime) -> tuple[Action, ...]:
        """One evaluation: history, tickets and outbox rows written, then the book adopted."""
        async with self._lock:
            await self._record_history()
            await self._close_unmonitored(now)  # before they could count as recovered
            for judge in self.before_evaluate:
                judge(now)
            incidents = self._health.incidents
            topology = self._health.topology
            windows = self._windows + await self._api_windows(now)
            maintenance = {i.key for i in incidents if incident_window(i, topology, windows, now)}
            # What health measured when it judged each incident (never re-read from raw state).
            measurements = {i.key: i.measured for i in incidents if i.measured is not None}
            for key, path in (await self._trace_new(incidents, maintenance, now)).items():
                measured = measurements.get(key, Measurements())
                measurements[key] = replace(measured, path=path)
            step = self.book.evaluate(
                incidents, now, maintenance=maintenance, measurements=measurements
            )
            await self._persist(step.actions, now)
            self.book = step.book
            return step.actions

    async def _trace_new(
        self, incidents: Sequence[Incident], maintenance: set[SubjectKey], now: datetime
    ) -> dict[SubjectKey, PathTrace]:
        """Paths toward the subjects whose ticket this evaluation opens or reopens (at most
        _TRACED_AT_ONCE of them, upstream outages first; the others open without one)."""
        if self._tracer is None:
            return {}
        fresh = {k: v for k, v in self._paths.items() if now - v[0] < _PATH_KEPT}
        self._paths = fresh
        wanted = []
        for incident in incidents:
            ticket = self.book.tickets.get(incident.key)
            opening = ticket is None or ticket.status is TicketStatus.RESOLVED
            if (
                opening
                and incident.key not in maintenance
                and incident.key not in fresh
                and self._tracer.address_of(incident.key) is not None
            ):
                wanted.append(incident.key)
        wanted.sort(key=lambda k: k.kind is not SubjectKind.UPSTREAM)
        wanted = wanted[:_TRACED_AT_ONCE]
        if wanted:
            try:
                traced = await asyncio.wait_for(self._tracer.trace_many(wanted), _TRACE_WAIT_S)
            except TimeoutError:
                log.warning(
                    "path trace took too long; tickets open without it count=%d", len(wanted)
                )
                traced = {}
            for key in wanted:
                self._paths[key] = (now, traced.get(key))
        return {k: path for k, (_, path) in self._paths.items() if path is not None}

    async def acknowledge(
        self, ticket_id: str, actor: Actor, now: datetime, text: str = ""
    ) -> Ticket | Refused:
        """An ISP engineer or provincial IT takes the ticket; escalation stops."""
        return await self._manual(
            ticket_id, now, lambda b: b.acknowledge(ticket_id, actor, now, text)
        )

    async def resolve(
        self, ticket_id: str, actor: Actor, now: datetime, text: str = ""
    ) -> Ticket | Refused:
        """Someone says it is fixed (reopened later if the link is in fact still bad)."""
        return await self._manual(ticket_id, now, lambda b: b.resolve(ticket_id, actor, now, text))

    async def note(
        self, ticket_id: str, actor: Actor, now: datetime, text: str
    ) -> Ticket | Refused:
        """A note in the ticket's log, sent to those already told."""
        return await self._manual(ticket_id, now, lambda b: b.note(ticket_id, actor, now, text))

    async def note_site(self, commune: str, text: str, since: datetime, now: datetime) -> bool:
        """A system note on the commune's site-unreachable ticket (issue 11) when its episode
        covers ``since`` (the outage the note is about); False when there is none."""
        ticket = self.book.tickets.get(SubjectKey.site(commune))
        if ticket is None or not self.is_leader:
            return False
        slack = timedelta(minutes=1)  # a line cut a little before the site was judged dark
        ended = ticket.resolved_at or now
        if not ticket.evidence.first_bad_at - slack <= since <= ended:
            return False
        outcome = await self.note(ticket.id, SYSTEM, now, text)
        return not isinstance(outcome, Refused)

    async def _manual(
        self, ticket_id: str, now: datetime, change: Callable[[TicketBook], Step | Refused]
    ) -> Ticket | Refused:
        try:
            async with asyncio.timeout(self._manual_wait_s):
                await self._lock.acquire()
        except TimeoutError:
            log.warning(
                "manual change refused: the ticket book stayed busy %g s ticket=%s",
                self._manual_wait_s,
                ticket_id,
            )
            raise AlertingBusy from None
        try:  # applied to the book current under the lock
            step = change(self.book)
            if isinstance(step, Refused):
                return step
            try:
                await self._persist(step.actions, now)
            except StoreTimeoutError as exc:  # logged by the store; the book stays as it was
                raise AlertingBusy from exc
            self.book = step.book
            ticket = self.book.by_id(ticket_id)
            assert ticket is not None  # the book just changed it
            return ticket
        finally:
            self._lock.release()

    async def _api_windows(self, now: datetime) -> tuple[MaintenanceWindow, ...]:
        """Windows created through the API that are active now, as alerts/ evaluates them."""
        stored = await self._store.maintenance_windows(now, now + timedelta(seconds=1))
        return tuple(w.window for w in stored)

    async def _persist(self, actions: Sequence[Action], now: datetime) -> None:
        tickets: list[TicketRecord] = []
        events: list[EventRecord] = []
        outbox: list[NewOutboxItem] = []
        links: list[IssuedLink] = []
        for action in actions:
            if isinstance(action, Suppressed):
                log.info("ticket suppressed by maintenance key=%s", action.key)
                continue
            tickets.append(ticket_record(action.ticket, self.book.policy.recovery_s))
            events.append(event_record(action.ticket, action.event))
            rows = self._notices.rows(action)
            outbox.extend(rows)
            # Zalo's template messages carry no link (docs/zalo.md): only the others issue one.
            carried = any(row.channel != "zalo" for row in rows)
            issued = self._notices.issued(action) if carried else None
            if issued is not None:
                links.append(issued)
            if isinstance(
                action, OpenTicket | ReopenTicket | AutoResolve | Escalate | LinkToParent
            ):
                log.warning(
                    "ticket %s id=%s key=%s state=%s",
                    action.event.kind.value,
                    action.ticket.id,
                    action.ticket.key,
                    action.ticket.evidence.state,
                )
        if tickets:
            result = await self._store.apply_ticket_changes(tickets, events, outbox, now, links)
            if result.outcome is TicketStepOutcome.INCIDENT_OPEN:
                # Another unresolved ticket holds the incident (a second instance?): keep the
                # old book, so nothing is announced that the store did not take.
                raise RuntimeError(
                    f"ticket {result.conflict_ticket_id} conflicts with an open ticket"
                )
        if outbox:
            for wake in self.on_enqueued:
                wake()

    async def _record_history(self) -> None:
        fresh = self._health.drain_transitions()
        if not fresh:
            return
        try:
            await self._store.record_transitions(
                [StateChange(t.subject, t.new, t.since, t.detail) for t in fresh]
            )
        except Exception:
            self._health.requeue_transitions(fresh)  # written next tick; nothing lost
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate every tick until stopped; a failing store delays tickets, never loses them."""
        beat_at: datetime | None = None
        while not stop.is_set():
            try:
                now = await self.now()
                if not await self._follow_leadership(now):
                    # A wake-up (a lease just taken: netwatch.roles.core) asks again at once.
                    await self._pause(stop, self._tick_s)
                    continue
                await self.evaluate(now)
                self.last_tick_at = now
                if beat_at is None or now - beat_at >= HEARTBEAT_EVERY:
                    await self._store.heartbeat(now)
                    beat_at = now
            except Exception as exc:
                self._tick_failed(exc, self._clock.now())
            else:
                self._tick_succeeded()
            await self._pause(stop, self._next_due_s(self._clock.now()))

    def _tick_failed(self, exc: Exception, now: datetime) -> None:
        """A tick that failed (most often the store could not be written): the traceback once,
        when it starts failing, then one summary line a minute (issue 15: a traceback every
        tick); /healthz answers 503 meanwhile (`failing`)."""
        if self.failing is None:
            log.exception("ticket evaluation failed; retrying every tick until it succeeds")
            self.failing_since, self._failures, self._failure_told_at = now, 0, now
        elif now - self._failure_told_at >= FAILURE_SUMMARY_EVERY:
            log.warning(
                "ticket evaluation still failing since=%s failures=%d error=%s: %s",
                self.failing_since.isoformat() if self.failing_since else "?",
                self._failures + 1,
                type(exc).__name__,
                exc,
            )
            self._failure_told_at = now
        self._failures += 1
        self.failing = type(exc).__name__

    def _tick_succeeded(self) -> None:
        if self.failing is not None:
            log.warning("ticket evaluation recovered failures=%d", self._failures)
        self.failing, self.failing_since, self._failures = None, None, 0

    async def close(self, now: datetime) -> None:
        """Clean shutdown: what was judged goes into the history, then every state is unknown
        from now on (NetWatch is not watching), so the time it is stopped counts as unknown."""
        if self.is_leader:
            async with self._lock:
                await self._record_history()
                await self._store.mark_all_unknown(now)
                await self._store.heartbeat(now)
        if self._leader is not None:
            await self._leader.release()  # the other instance takes over at its next tick
            self.is_leader = False


class StoreOutbox:
    """The store, seen through the notify worker's OutboxStore protocol."""

    def __init__(
        self,
        store: Store,
        lease_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._lease_s = lease_s
        self._monotonic = monotonic
        # Items this process claimed and has not recorded yet, by the monotonic time of the
        # claim. The store's lease is wall-clock (it must outlive the process); a lease held
        # here is judged by its monotonic age, so a wall-clock jump never re-sends an item
        # that is still in flight (issue 15, docs/alerting.md "Clock jumps").
        self._held: dict[int, float] = {}

    async def claim_due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Lease due items (they come back if this process dies before recording the outcome);
        each claim counts as an attempt."""
        items = await self._store.claim_due(now, limit, lease_s=self._lease_s)
        at = self._monotonic()
        self._held = {i: t for i, t in self._held.items() if at - t < self._lease_s}
        fresh = []
        for item in items:
            if item.id in self._held:
                log.warning("outbox item still in flight here, not sent again item=%d", item.id)
                continue
            self._held[item.id] = at
            fresh.append(item)
        return fresh

    async def mark_sent(self, item_id: int, at: datetime) -> None:
        """Record a confirmed delivery."""
        await self._store.mark_sent(item_id, at)
        self._held.pop(item_id, None)

    async def mark_failed(
        self, item_id: int, at: datetime, next_attempt_at: datetime | None, error: str
    ) -> None:
        """Record a failed attempt and when to try again (None: give up)."""
        await self._store.mark_failed(item_id, error, next_attempt_at)
        self._held.pop(item_id, None)


def build_channels(
    inventory: Inventory, session: aiohttp.ClientSession, clock: Clock
) -> dict[str, Channel]:
    """The delivery channels the inventory's notifications section configures, by outbox name."""
    n = inventory.notifications
    if n is None:
        return {}
    channels: dict[str, Channel] = {}
    if n.smtp is not None:
        s = n.smtp
        channels["email"] = SmtpChannel(
            SmtpConfig(
                host=s.host,
                port=s.port,
                from_address=s.from_address,
                username=s.username,
                password=s.password,
                starttls=s.starttls,
                ca_file=Path(s.ca_file) if s.ca_file else None,
            )
        )
    if n.webhook_secret is not None:
        urls = {
            c.webhook
            for isp in inventory.isps.values()
            for c in isp.contacts
            if c.webhook is not None
        } | {c.webhook for c in inventory.provincial_it.contacts if c.webhook is not None}
        urls |= {c.webhook for m in inventory.communes for c in m.contacts if c.webhook is not None}
        for url in sorted(urls):
            channels[webhook_channel(url)] = WebhookChannel(
                WebhookConfig(url=url, secret=n.webhook_secret), session, clock
            )
    if n.telegram is not None:
        channels["telegram"] = TelegramChannel(
            TelegramConfig(token=n.telegram.bot_token, api_base_url=n.telegram.api_base_url),
            session,
        )
    if n.zalo is not None:
        z = n.zalo
        channels["zalo"] = ZaloChannel(
            ZaloConfig(
                access_token=z.access_token,
                refresh_token=z.refresh_token,
                app_id=z.app_id,
                secret_key=z.secret_key,
                api_base_url=z.api_base_url,
                oauth_base_url=z.oauth_base_url,
                timeout_s=z.timeout_s,
                token_file=Path(z.token_file) if z.token_file else None,
            ),
            session,
        )
    return channels
