"""What a commune's agent reports, as the commune page shows it ("Seen from the commune").

The agents' messages reach ``runtime.inside`` (the latest per agent, an ``AgentView`` each)
through the runtime's sinks, whoever feeds them (the core's bus feed, a web worker's). A commune
page is rendered once and served from memory until something it shows changes; its agent view
is rebuilt (and the page rendered again) when the commune's ``AgentView`` is another object than
the one it was built from (a frozen value: any message makes a new one), **at most every
``min_interval_s`` (2 s) per commune**: an agent sends a message every few seconds, and its
commune's page would otherwise be rendered again for nearly every read. A message from one
commune never re-renders another's page, and the pages need no sink of their own (so nothing of
theirs accumulates on ``runtime.inside_sinks`` when a reload rebuilds them).

Nothing internal is shown: no address, no agent id, no version; device names and kinds, the
ISP's name and the kind of path only (as the links section does).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from netwatch.agent.model import HEARTBEAT_INTERVAL_S
from netwatch.inside.state import AgentView
from netwatch.inventory import Inventory
from netwatch.state import STALE_ROUNDS

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

# No message for this long: the page says the box is silent (three heartbeats missed).
SILENT_AFTER_S = 3 * HEARTBEAT_INTERVAL_S


@dataclass(frozen=True, slots=True)
class PortalOverPath:
    """One portal over one of the commune's paths, as the agent timed it."""

    portal_name: str
    isp_name: str
    path: str  # "tslcd" | "internet"
    state: str  # ok | slow | failing
    total_s: float
    failed_phase: str | None


@dataclass(frozen=True, slots=True)
class PathFromInside:
    """A WAN path's far end as the agent reached it."""

    isp_name: str
    path: str
    up: bool
    rtt_s: float | None
    loss_ratio: float | None


@dataclass(frozen=True, slots=True)
class DeviceFromInside:
    """A front-office device, answering the agent or not."""

    name: str
    kind: str
    up: bool


@dataclass(frozen=True, slots=True)
class CommuneInside:
    """What a commune's agent says, ready to show."""

    heard_at: datetime | None  # the last live message
    measured_at: datetime | None  # when the newest round received was measured
    stale_after_s: float  # the round is old past this (STALE_ROUNDS agent intervals)
    lan_up: bool | None  # the router answered on the LAN (None: not measured)
    paths: tuple[PathFromInside, ...]
    portals: tuple[PortalOverPath, ...]
    devices: tuple[DeviceFromInside, ...]
    buffered: int | None  # rounds waiting on the box (None: no heartbeat yet)
    buffered_since: datetime | None  # the oldest of them
    dropped: int  # rounds the box's full buffer dropped

    @property
    def heard(self) -> bool:
        """Anything received at all."""
        return self.heard_at is not None or self.measured_at is not None

    def silent(self, now: datetime) -> bool:
        """No live message for SILENT_AFTER_S."""
        return self.heard_at is None or (now - self.heard_at).total_seconds() > SILENT_AFTER_S

    def stale(self, now: datetime) -> bool:
        """The newest round is older than a few of the agent's rounds."""
        return (
            self.measured_at is None
            or (now - self.measured_at).total_seconds() > self.stale_after_s
        )

    @property
    def devices_up(self) -> int:
        """Devices that answered."""
        return sum(1 for d in self.devices if d.up)


def commune_inside(
    inventory: Inventory, code: str, view: AgentView | None, slow_s: float
) -> CommuneInside | None:
    """The commune's agent view; None when the commune has no agent in the inventory."""
    commune = inventory.commune(code)
    if commune is None or commune.agent is None or commune.agent_id is None:
        return None
    stale_after_s = STALE_ROUNDS * inventory.agents.interval_s
    if view is None or view.agent != commune.agent_id:
        return CommuneInside(None, None, stale_after_s, None, (), (), (), None, None, 0)
    links = {k.id: k for k in commune.links}

    def isp_name(link: str) -> str:
        isp = inventory.isps.get(links[link].isp)
        return isp.name if isp is not None else links[link].isp

    r = view.last_round
    paths: tuple[PathFromInside, ...] = ()
    portals: tuple[PortalOverPath, ...] = ()
    devices: tuple[DeviceFromInside, ...] = ()
    if r is not None:
        paths = tuple(
            PathFromInside(
                isp_name(p.link),
                links[p.link].path,
                p.ping.answered,
                p.ping.rtt_median_s if p.ping.answered else None,
                (p.ping.sent - p.ping.received) / p.ping.sent if p.ping.sent else None,
            )
            for p in r.paths
            if p.link in links
        )
        portals = tuple(
            PortalOverPath(
                inventory.portals[t.portal].name,
                isp_name(t.link),
                links[t.link].path,
                "failing" if not t.ok else "slow" if t.total_s > slow_s else "ok",
                t.total_s,
                t.failed_phase,
            )
            for t in r.portals
            if t.link in links and t.portal in inventory.portals
        )
        kinds = {d.name: d.kind for d in commune.devices}
        devices = tuple(
            DeviceFromInside(d.name, kinds[d.name], d.ping.answered)
            for d in r.devices
            if d.name in kinds
        )
    beat = view.heartbeat
    return CommuneInside(
        heard_at=view.heard_at,
        measured_at=r.at if r is not None else None,
        stale_after_s=stale_after_s,
        lan_up=r.lan_up if r is not None else None,
        paths=paths,
        portals=portals,
        devices=devices,
        buffered=beat.buffer_messages if beat is not None else None,
        buffered_since=beat.buffer_oldest_at if beat is not None else None,
        dropped=beat.dropped_total if beat is not None else 0,
    )


@dataclass(frozen=True, slots=True)
class InsideEntry:
    """A commune's agent view, and what it was built from (a rendered page names the entry it
    showed)."""

    source: AgentView | None  # the state's AgentView it was built from
    built_at: float  # event loop time
    view: CommuneInside | None


class InsideViews:
    """The agents' views of the communes for one StatusPages: a commune's is rebuilt when its
    agent said something new, at most every `min_interval_s`."""

    def __init__(self, runtime: Runtime, *, min_interval_s: float = 2.0) -> None:
        self._runtime = runtime
        self.min_interval_s = min_interval_s
        self._entries: dict[str, InsideEntry] = {}
        self._with_agent = {c.code for c in runtime.inventory.communes if c.agent is not None}

    def _fresh(self, entry: InsideEntry, code: str) -> bool:
        if entry.source is self._runtime.inside.get(code):
            return True
        return asyncio.get_running_loop().time() - entry.built_at < self.min_interval_s

    def current(self, code: str) -> InsideEntry | None:
        """The commune's entry if `entry` would return it without building anything."""
        found = self._entries.get(code)
        return found if found is not None and self._fresh(found, code) else None

    def entry(self, code: str) -> InsideEntry:
        """The commune's entry, rebuilt if its agent said something new since (and the last
        build is at least `min_interval_s` old)."""
        found = self._entries.get(code)
        if found is not None and self._fresh(found, code):
            return found
        runtime = self._runtime
        source = runtime.inside.get(code)
        view = (
            commune_inside(runtime.inventory, code, source, runtime.health.portals.policy.slow_s)
            if code in self._with_agent
            else None
        )
        entry = InsideEntry(source, asyncio.get_running_loop().time(), view)
        self._entries[code] = entry
        return entry
