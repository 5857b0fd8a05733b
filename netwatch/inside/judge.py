"""The health judge of the view from inside (issue 11): an ``InsideSink`` that turns what the
commune agents report into the abstract facts alerts/ judges (``alerts.model.InsideView``).

It keeps per commune: when the agent was last heard live (a heartbeat, or a round received
within ``live_window_s``, 30 s, of its time), the latest live rounds of each path, the
backfilled rounds that prove a path down while the LAN was up, and each portal's latest timings
over each path.
Portal timings are judged by the health monitor's portal evaluator with the vantage point
``agent:<link>`` (hysteresis as for the centre's own probe). The view goes to the health
monitor (``HealthMonitor.set_inside``) when a proof arrives, a portal state changes, a silent
agent is heard again, and at every ``tick`` (alerting calls it with its evaluation time, which
is how silence is noticed: nothing arrives). alerts/ never sees an agent's wire type.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.inside import agent_vantage
from alerts.model import (
    InsidePath,
    InsidePolicy,
    InsidePortal,
    InsideView,
    PortalRound,
    SiteView,
)
from alerts.subject import link_id
from netwatch.agent.model import AgentHeartbeat, InsideRound
from netwatch.alerting import Alerting
from netwatch.health import HealthMonitor
from netwatch.vocab import SITE_LINES_CUT

log = logging.getLogger("netwatch.inside.judge")
# A round received later than this after its time waited on the box (backfill). Tighter than
# the pages' 60 s (InsideState): a live round reaches the centre a few seconds after its start
# (its slowest probe's timeout included), and a live round taken for a late one costs nothing
# (its LAN-up, path-down verdict is a line fault either way), while a late round taken for a
# live one would count as the agent heard and hide a short line cut's proof.
LATE_AFTER_S = 30.0
LIVE_ROUNDS = 6  # live rounds kept per path (evidence of a link incident)
PROOFS_KEPT = 32  # backfilled proofs kept per path: the first half and the latest half


@dataclass(slots=True)
class _Site:
    """What is kept of one commune's agent (mutable, private)."""

    heard_at: datetime | None = None
    live: dict[str, deque[InsidePath]] = field(default_factory=dict)  # by link id
    proofs: dict[str, list[InsidePath]] = field(default_factory=dict)  # by link id
    portals: dict[tuple[str, str], InsidePortal] = field(default_factory=dict)  # (portal, link)


class InsideJudge:
    """An InsideSink: agents' rounds and heartbeats in, ``InsideView`` facts to the health
    monitor out (registered on ``runtime.inside_sinks``; ``tick`` on alerting's evaluations)."""

    def __init__(
        self,
        health: HealthMonitor,
        *,
        policy: InsidePolicy | None = None,
        live_window_s: float = LATE_AFTER_S,
    ) -> None:
        self._health = health
        self.policy = policy or InsidePolicy()
        self._live_window = timedelta(seconds=live_window_s)
        self._sites: dict[str, _Site] = {}
        self._now: datetime | None = None  # the latest time known (a tick or a message)
        # What a tick must push: evidence that changed for a line in trouble, and the agents
        # silent at the last push (a tick pushes when that set changes, not every 5 s: at
        # 3,321 agents one decision costs ~0.1 s).
        self._dirty = False
        self._silent_at_push: frozenset[str] = frozenset()
        self._incidents_at_push: frozenset[tuple[str, str, datetime]] = frozenset()
        self._topology = health.topology
        self._links_of: dict[str, list[str]] = {}
        self._troubled: set[str] = set()  # communes an incident was about at the last push
        # Called with (commune, links proven cut, the first proof's time) when backfill first
        # proves a commune's lines were cut with its LAN up (tell_site_tickets adds a note).
        self.on_lines_cut: list[Callable[[str, tuple[str, ...], datetime], None]] = []

    # -- InsideSink ---------------------------------------------------------------------------
    def inside_round(self, round_: InsideRound, received_at: datetime) -> None:
        """Take one round (live or backfilled)."""
        commune = round_.commune
        if commune not in self._health.agent_communes:
            return  # no agent configured there (any more): nothing to judge
        site = self._sites.setdefault(commune, _Site())
        backfilled = received_at - round_.at > self._live_window
        heard_again = False
        if not backfilled:
            heard_again = commune in self._silent_at_push
            site.heard_at = max(site.heard_at or received_at, received_at)
        proven = False
        had_proofs = bool(site.proofs)
        lan_up = round_.lan_up
        for path in round_.paths:
            link = link_id(commune, path.link)
            ping = path.ping
            sample = InsidePath(
                link=link,
                at=round_.at,
                lan_up=lan_up,
                answered=ping.answered,
                loss_ratio=(ping.sent - ping.received) / ping.sent if ping.sent else None,
                rtt_median_s=ping.rtt_median_s,
                backfilled=backfilled,
                received_at=received_at,
            )
            if not backfilled:
                site.live.setdefault(link, deque(maxlen=LIVE_ROUNDS)).append(sample)
            elif lan_up is True and not ping.answered:
                kept = site.proofs.setdefault(link, [])
                kept.append(sample)
                if len(kept) > PROOFS_KEPT:
                    del kept[PROOFS_KEPT // 2]  # keep the outage's start and its latest rounds
                proven = True
        portal_changed = False
        for timing in round_.portals:
            link = link_id(commune, timing.link)
            site.portals[(timing.portal, link)] = InsidePortal(
                portal=timing.portal,
                link=link,
                at=round_.at,
                ok=timing.ok,
                total_s=timing.total_s,
                failed_phase=timing.failed_phase,
                dns_s=timing.dns_s,
                connect_s=timing.connect_s,
                tls_s=timing.tls_s,
                first_byte_s=timing.first_byte_s,
            )
            transition = self._health.observe_agent_portal(
                PortalRound(
                    portal=timing.portal,
                    vantage=agent_vantage(link),
                    at=round_.at,
                    ok=timing.ok,
                    total_s=timing.total_s,
                    failed_phase=timing.failed_phase,
                )
            )
            portal_changed = portal_changed or transition is not None
        self._now = max(self._now or received_at, received_at)
        if proven:
            log.warning(
                "backfill proves a line down with the LAN up commune=%s seq=%d at=%s",
                commune,
                round_.seq,
                round_.at.isoformat(),
            )
            if not had_proofs:
                links = tuple(sorted(site.proofs))
                for hook in self.on_lines_cut:
                    hook(commune, links, round_.at)
        if proven or portal_changed or heard_again:
            self._push()
        elif self._in_trouble(commune):
            self._dirty = True  # new inside evidence for a line in trouble: the next tick

    def heartbeat(self, beat: AgentHeartbeat, received_at: datetime) -> None:
        """Take one live heartbeat: the agent is heard."""
        if beat.commune not in self._health.agent_communes:
            return
        site = self._sites.setdefault(beat.commune, _Site())
        heard_again = beat.commune in self._silent_at_push  # judged silent: no longer
        site.heard_at = max(site.heard_at or received_at, received_at)
        self._now = max(self._now or received_at, received_at)
        if heard_again:
            self._push()

    # -- the facts ----------------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Judge at ``now`` (alerting's evaluation time): silence, proofs grown old, evidence
        that came in since; nothing to push when none of them changed."""
        self._now = now
        self._expire(now)
        silent = self._silent_now(now)
        if (
            self._dirty
            or silent != self._silent_at_push
            or self._incidents() != self._incidents_at_push
            or self._proofs_held()
        ):
            self._push()

    def _incidents(self) -> frozenset[tuple[str, str, datetime]]:
        """The incidents as decided (without their figures): new ones may want evidence."""
        return frozenset((i.key.encoded, i.kind.value, i.since) for i in self._health.incidents)

    def _silent_now(self, now: datetime) -> frozenset[str]:
        return frozenset(c for c, site in self._sites.items() if self._silent(site, now))

    def _proofs_held(self) -> bool:
        return any(site.proofs for site in self._sites.values())

    def _in_trouble(self, commune: str) -> bool:
        """Whether a link of the commune is in a bad state or an incident is about it."""
        if commune in self._troubled:
            return True
        if self._topology is not self._health.topology or not self._links_of:
            self._topology = self._health.topology
            self._links_of = {}
            for key, info in self._topology.links.items():
                self._links_of.setdefault(info.commune, []).append(key)
        for key in self._links_of.get(commune, ()):
            status = self._health.links.status(key)
            if status is not None and status.state.value != "ok":
                return True
        return False

    def view(self, now: datetime) -> InsideView:
        """The facts at ``now``, as alerts/ judges them."""
        health = self._health
        sites: dict[str, SiteView] = {}
        utilization: dict[str, float] = {}
        capacity: dict[str, float] = {}
        by_commune: dict[str, list[str]] = {}
        for key, info in health.topology.links.items():
            by_commune.setdefault(info.commune, []).append(key)
        for commune, site in sorted(self._sites.items()):
            if commune not in health.agent_communes:
                continue
            links = tuple(sorted(by_commune.get(commune, ())))
            paths: list[InsidePath] = []
            for link in links:
                paths.extend(site.proofs.get(link, ()))
                paths.extend(site.live.get(link, ()))
                ratio = health.utilization_of(link)
                if ratio is not None:
                    utilization[link] = ratio
                capacity[link] = health.links.policy(link).utilization_ratio
            sites[commune] = SiteView(
                commune=commune,
                links=links,
                heard_at=site.heard_at,
                paths=tuple(sorted(paths, key=lambda p: (p.at, p.link))),
                portals=tuple(site.portals[k] for k in sorted(site.portals)),
            )
        return InsideView(
            at=now,
            sites=sites,
            utilization=utilization,
            capacity_ratio=capacity,
            policy=self.policy,
        )

    def _push(self) -> None:
        if self._now is None:
            return
        self._dirty = False
        self._silent_at_push = self._silent_now(self._now)
        self._health.set_inside(self.view(self._now))
        self._incidents_at_push = self._incidents()
        self._troubled = {i.key.commune for i in self._health.incidents if i.key.commune}

    def _silent(self, site: _Site, at: datetime) -> bool:
        """Whether the agent, heard before, has been silent (as rule 9 judges it) at ``at``."""
        if site.heard_at is None:
            return False
        return (at - site.heard_at).total_seconds() >= self.policy.silent_after_s

    def _expire(self, now: datetime) -> None:
        """Forget proofs the rules no longer read (received longer ago than twice the hold,
        and their link seen up from the centre), and communes no longer with an agent."""
        hold = timedelta(seconds=2 * self.policy.backfill_hold_s)
        for commune in [c for c in self._sites if c not in self._health.agent_communes]:
            del self._sites[commune]
        for site in self._sites.values():
            for link, kept in list(site.proofs.items()):
                received = max((p.received_at or p.at) for p in kept)
                status = self._health.links.status(link)
                down = status is not None and status.state.value == "down"
                if now - received > hold and not down:
                    del site.proofs[link]


def tell_site_tickets(judge: InsideJudge, alerting: Alerting) -> set[asyncio.Task[bool]]:
    """When backfill proves a commune's lines were cut with its LAN up, say so in its site
    ticket (a note, told to those told of it: provincial IT and the commune). The tasks are
    kept in the returned set until done."""
    tasks: set[asyncio.Task[bool]] = set()

    def lines_cut(commune: str, links: tuple[str, ...], since: datetime) -> None:
        names = ", ".join(link.split("/", 1)[-1] for link in links)
        text = f"{SITE_LINES_CUT.vi.format(links=names)}\n{SITE_LINES_CUT.en.format(links=names)}"
        now = datetime.now(since.tzinfo)
        task = asyncio.get_running_loop().create_task(alerting.note_site(commune, text, since, now))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    judge.on_lines_cut.append(lines_cut)
    return tasks
