"""What the status pages show, computed once and shared by every reader.

A `Snapshot` is the whole province's live picture (every link's shown state, portals, incidents)
built from the health monitor in one pass; it is rebuilt only when something it depends on
changed (a new round, a transition, new incidents, maintenance) or when it is `max_age_s` old.
`CommuneRecords` are the stored facts of one commune (its tickets, their notes, when the ISP was
told, this month's availability), loaded at most once per `records_ttl_s` however many people
read the page (one load in flight at a time per commune).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from alerts.maintenance import MaintenanceWindow, link_window
from alerts.model import Incident, IncidentKind, LinkInfo, LinkState
from alerts.subject import LinkId, SubjectKey, SubjectKind
from alerts.tickets import Ticket, TicketEvent
from netwatch.alerting import windows_of
from netwatch.health import link_id
from netwatch.inventory import Divisions
from netwatch.inventory.divisions import bare, fold
from netwatch.inventory.models import LOCAL_TZ
from netwatch.store.repository import Store
from netwatch.store.status_reads import Notified, StatusReads
from netwatch.store.types import Availability, StoredTicket, TicketStatus
from netwatch.web.status.words import RANK, Shown

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

RECENT_DAYS = 30
STALE_ROUNDS = 3  # ICMP rounds missed before a page says its data is old
_SHOWN_OF = {
    LinkState.OK: Shown.OK,
    LinkState.SLOW: Shown.SLOW,
    LinkState.LOSSY: Shown.LOSSY,
    LinkState.CONGESTED: Shown.CONGESTED,
    LinkState.DOWN: Shown.DOWN,
}


@dataclass(frozen=True, slots=True)
class LinkView:
    """One link of a commune as the page shows it."""

    key: str  # "24848/vnpt-tslcd"
    link: str  # "vnpt-tslcd"
    isp: str
    isp_name: str
    path: str  # "tslcd" | "internet"
    bandwidth_mbps: float
    shown: Shown
    judged: LinkState | None  # the health monitor's state (None before the first round)
    since: datetime | None
    detail: str  # down cause
    maintenance: str | None  # the window's reason while under maintenance
    upstream_outage: str | None  # the node's name when the link is behind an upstream outage
    last_at: datetime | None
    last_loss_ratio: float | None
    last_rtt_s: float | None
    rtt_threshold_s: float


@dataclass(frozen=True, slots=True)
class CommuneView:
    """One commune: its links and the worst of their states."""

    code: str
    name: str
    folded: str  # "xa tan phu dong"
    province_code: int
    links: tuple[LinkView, ...]
    shown: Shown
    since: datetime | None  # since when the worst link is in that state
    availability_target: float  # ratio, e.g. 0.995


@dataclass(frozen=True, slots=True)
class PortalView:
    """A portal's state as everyone sees it: from its incident when there is one."""

    id: str
    name: str
    state: str  # ok | slow | failing | unknown
    since: datetime | None


@dataclass(frozen=True, slots=True)
class UpstreamOutage:
    """An ISP node down, and how many communes it cuts off."""

    name: str
    isp_name: str
    since: datetime
    communes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live picture every page renders from."""

    taken_at: datetime
    last_round_at: datetime | None
    communes: tuple[CommuneView, ...]  # by province, then name
    by_code: Mapping[str, CommuneView]
    provinces: Mapping[int, str]  # the provinces this NetWatch covers
    portals: tuple[PortalView, ...]
    monitor: Incident | None  # NetWatch's own connectivity lost
    upstream_outages: tuple[UpstreamOutage, ...]
    refresh_s: float = 30.0  # how often an open page reloads itself (with JavaScript)
    # No ICMP round for this long: the page says how old its data is (probe workers stopped).
    stale_after_s: float = 90.0
    # Since when no alerting core leads (a web worker's view of the lease; None: one does).
    alerting_paused_since: datetime | None = None

    @property
    def stale_since(self) -> datetime | None:
        """When the last ICMP round was measured, if that is too long ago (else None)."""
        last = self.last_round_at
        if last is None or (self.taken_at - last).total_seconds() <= self.stale_after_s:
            return None
        return last

    def in_province(self, province: int) -> list[CommuneView]:
        """The communes of one province."""
        return [c for c in self.communes if c.province_code == province]

    def search(self, text: str, province: int | None = None) -> list[CommuneView]:
        """Communes whose name has every word of `text` (diacritics and case ignored; a word
        may be the start of a longer one), or whose code matches; exact names first."""
        query = fold(text)
        wanted = bare(query)
        words = wanted.split()
        pool = self.communes if province is None else self.in_province(province)
        if not words:
            return []
        if query.isdigit():
            return [c for c in pool if c.code == query.zfill(5) or query in c.code]
        found = []
        for c in pool:
            name = bare(c.folded)
            name_words = name.split()
            if not all(any(n.startswith(w) for n in name_words) for w in words):
                continue
            whole = all(w in name_words for w in words)
            found.append((0 if name == wanted else 1 if whole else 2, c))
        return [c for _, c in sorted(found, key=lambda rc: rc[0])]


@dataclass(frozen=True, slots=True)
class Note:
    """A note in a ticket's log, with who wrote it as a role (never a name or contact)."""

    at: datetime
    role: str  # isp | provincial_it | system
    text: str


@dataclass(frozen=True, slots=True)
class TicketInfo:
    """What the public may know of a ticket."""

    id: str
    incident_key: SubjectKey
    kind: str
    route: str
    state: TicketStatus
    problem: str | None  # worst problem state of the episode
    opened_at: datetime
    told_at: datetime | None  # first notification delivered
    queued: int  # notifications queued for the ticket (0: nobody to tell)
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    bad_since: datetime | None
    downtime_closed_s: float
    links: tuple[str, ...]
    notes: tuple[Note, ...] = ()
    back_since: datetime | None = None  # the incident is gone since (recovery watch)
    closes_at: datetime | None = None  # when it auto-resolves if it stays fine

    def downtime_s(self, now: datetime) -> float:
        """Bad time of the episode so far."""
        running = (now - self.bad_since).total_seconds() if self.bad_since else 0.0
        return self.downtime_closed_s + max(running, 0.0)


@dataclass(frozen=True, slots=True)
class CommuneRecords:
    """A commune's stored facts, loaded together."""

    loaded_at: datetime
    open_tickets: tuple[TicketInfo, ...]
    recent: tuple[TicketInfo, ...]  # last 30 days and still open, newest first
    month_start: datetime
    availability: Mapping[str, Availability]  # link key -> this month


def _note(event: TicketEvent) -> Note:
    return Note(event.at, event.actor.kind.value, event.text)


def ticket_info(stored: StoredTicket, told: Notified | None, notes: Sequence[Note]) -> TicketInfo:
    """A stored ticket reduced to what the public page shows."""
    ticket = stored.ticket
    ev = ticket.evidence
    return TicketInfo(
        id=ticket.id,
        incident_key=ticket.key,
        kind=ev.kind.value,
        route=ticket.route.value,
        state=ticket.status,
        problem=ev.worst_state or ev.state or None,
        opened_at=ticket.opened_at,
        told_at=told.first_sent_at if told is not None else None,
        queued=told.queued if told is not None else 0,
        acknowledged_at=ticket.acknowledged_at,
        resolved_at=ticket.resolved_at,
        bad_since=ev.bad_since,
        downtime_closed_s=ev.downtime_closed_s,
        links=ev.links,
        notes=tuple(notes),
        back_since=stored.back_since,
        closes_at=stored.closes_at,
    )


def refresh_period(icmp_interval_s: float) -> float:
    """Reload an open page once per ICMP round (no faster than 5 s, no slower than a minute):
    a state can only change with a round."""
    return min(max(icmp_interval_s, 5.0), 60.0)


def month_start(now: datetime) -> datetime:
    """The start of the current month in Vietnam's time."""
    local = now.astimezone(LOCAL_TZ)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    """The start of the month after `start` (a month start)."""
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(slots=True)
class _Pending:
    """A records load in flight or done, per commune."""

    records: CommuneRecords | None = None
    loading: asyncio.Future[CommuneRecords] | None = None
    expires: float = 0.0


@dataclass(frozen=True, slots=True)
class _StaticLink:
    """What never changes about a link while the inventory stays (computed once)."""

    key: str
    link: str
    isp: str
    isp_name: str
    path: str
    bandwidth_mbps: float
    info: LinkInfo | None
    rtt_threshold_s: float
    subject: SubjectKey  # the plan's key of the link (its latest observation's)


@dataclass(frozen=True, slots=True)
class _StaticCommune:
    """What never changes about a commune while the inventory stays (computed once)."""

    code: str
    name: str
    folded: str
    province_code: int
    links: tuple[_StaticLink, ...]
    availability_target: float


# Communes built between two yields to the event loop: a national snapshot (3,321 communes,
# ~40 ms) never holds the loop for more than a few milliseconds at a time.
BUILD_CHUNK = 200


@dataclass(slots=True)
class StatusModel:
    """Builds and caches snapshots and commune records for one app."""

    runtime: Runtime
    max_age_s: float = 10.0
    records_ttl_s: float = 10.0
    windows_ttl_s: float = 10.0
    _snapshot: Snapshot | None = None
    _generation: tuple[object, ...] = ()
    _building: asyncio.Future[Snapshot] | None = None
    _config_windows: tuple[MaintenanceWindow, ...] = ()
    _api_windows: tuple[MaintenanceWindow, ...] = ()
    _windows_expires: float = 0.0
    _windows_loading: asyncio.Future[None] | None = None
    _records: dict[str, _Pending] = field(default_factory=dict)
    _provinces: dict[int, str] = field(default_factory=dict)
    _static: tuple[_StaticCommune, ...] = ()

    def __post_init__(self) -> None:
        inventory = self.runtime.inventory
        self._config_windows = windows_of(inventory)
        names = Divisions().provinces
        codes = sorted({c.province_code for c in inventory.communes})
        if not codes and inventory.province is not None:
            codes = [inventory.province]
        self._provinces = {p: names.get(p, f"{p:02d}") for p in codes}
        topology = self.runtime.health.topology
        static = []
        for commune in inventory.communes:
            thresholds = commune.effective_thresholds(inventory.thresholds)
            links = []
            for link in commune.links:
                key = link_id(commune.code, link.id)
                isp = inventory.isps.get(link.isp)
                links.append(
                    _StaticLink(
                        key=key,
                        link=link.id,
                        isp=link.isp,
                        isp_name=isp.name if isp is not None else link.isp,
                        path=link.path,
                        bandwidth_mbps=link.bandwidth_mbps,
                        info=topology.links.get(key),
                        rtt_threshold_s=thresholds.rtt_ms / 1000,
                        subject=SubjectKey.link(key),
                    )
                )
            static.append(
                _StaticCommune(
                    code=commune.code,
                    name=commune.name,
                    folded=fold(commune.name),
                    province_code=commune.province_code,
                    links=tuple(links),
                    availability_target=thresholds.availability_pct / 100,
                )
            )
        static.sort(key=lambda c: (c.province_code, bare(c.folded), c.code))
        self._static = tuple(static)

    # -- maintenance windows -----------------------------------------------------------------
    async def _refresh_windows(self, loop_now: float, now: datetime) -> None:
        if loop_now < self._windows_expires:
            return
        if self._windows_loading is not None:
            await asyncio.shield(self._windows_loading)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._windows_loading = future
        try:
            windows = await self._load_api_windows(now)
            if windows != self._api_windows:  # the same windows keep the same snapshot
                self._api_windows = windows
            self._windows_expires = loop_now + self.windows_ttl_s
            future.set_result(None)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters, if any, re-raise it themselves
            raise
        finally:
            self._windows_loading = None

    async def _load_api_windows(self, now: datetime) -> tuple[MaintenanceWindow, ...]:
        # Windows overlapping the next max_age: they may start before the next refresh.
        later = now + timedelta(seconds=self.max_age_s)
        return tuple(w.window for w in await self.runtime.store.maintenance_windows(now, later))

    # -- snapshot ----------------------------------------------------------------------------
    def _current_generation(self) -> tuple[object, ...]:
        health, state = self.runtime.health, self.runtime.state
        return (
            health.incidents,
            health.transitions[-1] if health.transitions else None,
            state.rounds.get("icmp"),
            state.rounds.get("http"),
            self._api_windows,
            self.runtime.alerting_paused_since(),
        )

    def _still_current(self, generation: tuple[object, ...], now: datetime) -> Snapshot | None:
        current = self._snapshot
        if (
            current is not None
            and len(generation) == len(self._generation)
            and all(a is b for a, b in zip(generation, self._generation, strict=True))
            and (now - current.taken_at).total_seconds() < self.max_age_s
        ):
            return current
        return None

    def current(self) -> Snapshot | None:
        """What `snapshot()` would return right now without building or reading anything (the
        web worker's fast path, netwatch.web.fast); None when it would build or read first."""
        loop_now = asyncio.get_running_loop().time()
        if self._snapshot is None or loop_now >= self._windows_expires:
            return None
        if self._building is not None:
            return self._snapshot  # what snapshot() hands out while a build runs
        return self._still_current(self._current_generation(), datetime.now(UTC))

    def current_records(self, code: str) -> CommuneRecords | None:
        """A commune's records if loaded and not expired (what `records()` returns at once)."""
        pending = self._records.get(code)
        if pending is None or pending.records is None:
            return None
        if asyncio.get_running_loop().time() >= pending.expires:
            return None
        return pending.records

    async def snapshot(self) -> Snapshot:
        """The current snapshot, rebuilt when something it shows has changed.

        One build at a time: the request that finds the snapshot stale waits for the new one;
        requests arriving while it is being built get the previous one at once.
        """
        loop_now = asyncio.get_running_loop().time()
        now = datetime.now(UTC)
        await self._refresh_windows(loop_now, now)
        generation = self._current_generation()
        still = self._still_current(generation, now)
        if still is not None:
            return still
        current = self._snapshot
        if self._building is not None:
            if current is not None:
                return current
            return await asyncio.shield(self._building)
        building: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._building = building
        try:
            snapshot = await self.build(now)
        except Exception as exc:
            building.set_exception(exc)
            building.exception()  # retrieved: waiters re-raise it themselves
            raise
        else:
            building.set_result(snapshot)
            self._snapshot, self._generation = snapshot, generation
            return snapshot
        finally:
            self._building = None

    async def build(self, now: datetime) -> Snapshot:
        """One pass over the communes (yielding to the loop now and then): every link's shown
        state, the portals, the incidents."""
        runtime = self.runtime
        inventory, health = runtime.inventory, runtime.health
        topology = health.topology
        windows = self._config_windows + self._api_windows
        incidents = health.incidents
        monitor = next((i for i in incidents if i.kind is IncidentKind.MONITOR_CONNECTIVITY), None)
        behind: dict[str, str] = {}
        outages: list[UpstreamOutage] = []
        for incident in incidents:
            if incident.kind is not IncidentKind.UPSTREAM_OUTAGE:
                continue
            name = incident.detail or incident.key.name
            for key in incident.links:
                behind[key] = name
            isp = inventory.isps.get(incident.isp or "")
            outages.append(
                UpstreamOutage(
                    name=name,
                    isp_name=isp.name if isp is not None else (incident.isp or ""),
                    since=incident.since,
                    communes=tuple(dict.fromkeys(k.split("/", 1)[0] for k in incident.links)),
                )
            )
        icmp = runtime.state.icmp
        communes: list[CommuneView] = []
        for n, commune in enumerate(self._static):
            if n and n % BUILD_CHUNK == 0:
                await asyncio.sleep(0)
            links: list[LinkView] = []
            for static in commune.links:
                status = health.links.status(static.key)
                window = (
                    link_window(static.info, topology, windows, now)
                    if windows and static.info is not None
                    else None
                )
                obs = icmp.get(static.subject)
                result = obs.result if obs is not None else None
                judged = status.state if status is not None else None
                shown = Shown.UNKNOWN if judged is None else _SHOWN_OF[judged]
                if window is not None:
                    shown = Shown.MAINTENANCE
                links.append(
                    LinkView(
                        key=static.key,
                        link=static.link,
                        isp=static.isp,
                        isp_name=static.isp_name,
                        path=static.path,
                        bandwidth_mbps=static.bandwidth_mbps,
                        shown=shown,
                        judged=judged,
                        since=status.since if status is not None else None,
                        detail=status.detail if status is not None else "",
                        maintenance=(window.reason or "—") if window is not None else None,
                        upstream_outage=behind.get(static.key),
                        last_at=result.started_at if result is not None else None,
                        last_loss_ratio=result.loss_ratio if result is not None else None,
                        last_rtt_s=result.rtt_median_s if result is not None else None,
                        rtt_threshold_s=static.rtt_threshold_s,
                    )
                )
            worst = max(links, key=lambda v: RANK[v.shown])
            sinces = [v.since for v in links if v.shown is worst.shown and v.since is not None]
            communes.append(
                CommuneView(
                    code=commune.code,
                    name=commune.name,
                    folded=commune.folded,
                    province_code=commune.province_code,
                    links=tuple(links),
                    shown=worst.shown,
                    since=min(sinces) if sinces else None,
                    availability_target=commune.availability_target,
                )
            )
        portal_incidents = {
            i.key.name: i for i in incidents if i.kind is IncidentKind.PORTAL_OUTAGE
        }
        portals = []
        for pid, portal in inventory.portals.items():
            outage = portal_incidents.get(pid)
            pstatus = health.portal_status(pid)
            if outage is not None:
                portals.append(PortalView(pid, portal.name, outage.state, outage.since))
            elif pstatus is not None:
                portals.append(PortalView(pid, portal.name, "ok", None))
            else:
                portals.append(PortalView(pid, portal.name, "unknown", None))
        return Snapshot(
            taken_at=now,
            last_round_at=runtime.state.last_round_at("icmp"),
            communes=tuple(communes),
            by_code={c.code: c for c in communes},
            provinces=dict(self._provinces),
            portals=tuple(portals),
            monitor=monitor,
            upstream_outages=tuple(outages),
            refresh_s=refresh_period(runtime.plan.icmp_interval_s),
            stale_after_s=STALE_ROUNDS * runtime.plan.icmp_interval_s,
            alerting_paused_since=runtime.alerting_paused_since(),
        )

    # -- commune records ---------------------------------------------------------------------
    def incident_keys(self, commune: CommuneView) -> list[SubjectKey]:
        """The incidents whose tickets concern a commune: its links, nodes above, portals."""
        topology = self.runtime.health.topology
        keys = [SubjectKey.link(LinkId(v.key)) for v in commune.links]
        for view in commune.links:
            info = topology.links.get(view.key)
            if info is not None:
                keys.extend(SubjectKey.upstream(u) for u in topology.upstream_chain(info.upstream))
        keys.extend(SubjectKey.portal(pid) for pid in self.runtime.inventory.portals)
        keys.append(SubjectKey.site(commune.code))  # the whole centre unreachable (issue 11)
        return list(dict.fromkeys(keys))

    async def records(self, commune: CommuneView) -> CommuneRecords | None:
        """The commune's stored facts (None while the store is not open yet)."""
        store = self.runtime.store
        loop = asyncio.get_running_loop()
        fresh = self.current_records(commune.code)
        if fresh is not None:
            return fresh
        pending = self._records.setdefault(commune.code, _Pending())
        if pending.loading is not None:
            return await asyncio.shield(pending.loading)
        future: asyncio.Future[CommuneRecords] = loop.create_future()
        pending.loading = future
        try:
            records = await self._load_records(store, commune)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(records)
            pending.records = records
            pending.expires = loop.time() + self.records_ttl_s
            return records
        finally:
            pending.loading = None

    async def _load_records(self, store: Store, commune: CommuneView) -> CommuneRecords:
        now = datetime.now(UTC)
        reads = StatusReads(store)
        link_keys = {v.key for v in commune.links}
        tickets = [
            t
            for t in await reads.tickets_for(
                self.incident_keys(commune), now - timedelta(days=RECENT_DAYS)
            )
            if _concerns(t.ticket, link_keys)
        ]
        ids = [t.ticket.id for t in tickets]
        unresolved = [t.ticket.id for t in tickets if t.ticket.status is not TicketStatus.RESOLVED]
        notes = await reads.events_of(unresolved, kinds=("note",))
        told = await reads.notifications(ids)
        infos = [
            ticket_info(
                t,
                told.get(t.ticket.id),
                [_note(e.event) for e in notes.get(t.ticket.id, ())],
            )
            for t in tickets
        ]
        start = month_start(now)
        availability = await store.availability_report(
            start.astimezone(UTC),
            next_month(start).astimezone(UTC),
            now,
            subjects=sorted(link_keys),
        )
        return CommuneRecords(
            loaded_at=now,
            open_tickets=tuple(i for i in infos if i.state is not TicketStatus.RESOLVED),
            recent=tuple(infos),
            month_start=start,
            availability=availability,
        )


def _concerns(ticket: Ticket, link_keys: Iterable[str]) -> bool:
    """Portal and link tickets always; an upstream ticket when it lists one of the links."""
    if ticket.key.kind is not SubjectKind.UPSTREAM:
        return True
    links = ticket.evidence.links
    if not links:
        return True  # no list recorded: the node is above the commune, it concerns it
    return any(k in links for k in link_keys)
