"""Root cause before blame: turn the current states into incidents, each with its owner.

Rules, applied in this order (a pure function of the states and the topology):

1. Monitor connectivity. When the topology names reference targets and every one of them is
   known and DOWN, NetWatch itself is cut off: one MONITOR_CONNECTIVITY incident (key "monitor",
   routed to provincial IT) and NOTHING else. Every other verdict was measured through the same
   broken line, so no link, upstream, capacity or portal incident is raised.
   The moment before: while every reference is DOWN or has a latest round that lost every echo
   (not all confirmed yet), the incidents that began with them (upstream outages, link faults,
   portal outages: all measured through NetWatch's own line) are held until the references'
   next rounds decide. Fresh incidents only, as in rule 2.
2. Upstream outages. An upstream node is down when it is pinged and its node status is DOWN, or
   (not pinged, or pinged but not yet measured) every link behind it (its own and its children's)
   is DOWN (unless they are all one commune's whose agent is judged: that is a dark site,
   rule 5). A node whose parent is down is behind that parent: only the topmost down node gets an
   incident. One UPSTREAM_OUTAGE per topmost down node (key "upstream:ID", routed to the node's
   ISP) lists every link behind it; those links get no incident of their own.
   The moment before: a node being confirmed down (its latest round DOWN, its hysteresis not yet
   reached; or, not pinged, every link behind it DOWN or with its latest round DOWN) holds the
   links behind it that went DOWN with it: no incident of their own until the node's next
   round decides, so an outage is never first ticketed link by link because a link's rounds
   confirmed it a fast round before the node's did. Only fresh outages are held: a link that
   went DOWN before its node's last two good rounds is its own fault and keeps its incident.
3. Portal outages. A portal that is FAILING (or SLOW) from at least ``failing_share`` of the
   vantage points that report it gets one PORTAL_OUTAGE (key "portal:ID", provincial IT), state
   "failing" when the failing vantage points alone reach the share, else "slow". A portal failing
   from fewer vantage points is those vantage points' own problem: no incident. Portals never
   raise an ISP ticket; a link fault seen at the same time is still the ISP's, independently.
4. Links (not behind a down upstream, and known to the topology): DOWN / LOSSY / SLOW give a
   LINK_FAULT routed to the link's ISP; CONGESTED gives a CAPACITY incident routed to provincial
   IT, or to the ISP and provincial IT when ``LinkInfo.capacity_to_isp``. Link keys "link:KEY".

5.-9. The view from inside the commune (issue 11), when ``decide`` is given an ``InsideView``:
   site unreachable, backfill, inside evidence, portal per path, agent health; see
   alerts/inside.py. Without one (or for communes whose agent was never heard) nothing changes.
   In rule 3, an agent's paths ("dvcqg@agent:24848/vnpt-tslcd") count as one vantage point, its
   commune, with its worst path's state; and one vantage point alone never makes a portal
   outage once agents are among them (one commune and the centre: the commune's problem).

Incidents come out ordered by kind (monitor, upstream, site, agent, portal, capacity, link
fault), then key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from alerts.inside import AGENT_VANTAGE, dark_sites, inside_incidents, vantage_group
from alerts.model import (
    Incident,
    IncidentKind,
    InsideView,
    LinkState,
    NodeState,
    PortalPolicy,
    PortalState,
    Route,
    Status,
    Topology,
)
from alerts.subject import LinkId, SubjectKey, portal_of_subject

_KIND_ORDER = {
    IncidentKind.MONITOR_CONNECTIVITY: 0,
    IncidentKind.UPSTREAM_OUTAGE: 1,
    IncidentKind.SITE_UNREACHABLE: 2,
    IncidentKind.AGENT_HEALTH: 3,
    IncidentKind.PORTAL_OUTAGE: 4,
    IncidentKind.CAPACITY: 5,
    IncidentKind.LINK_FAULT: 6,
}
_PORTAL_RANK = {PortalState.OK: 0, PortalState.SLOW: 1, PortalState.FAILING: 2}
_FAULTS = (LinkState.DOWN, LinkState.LOSSY, LinkState.SLOW)

MONITOR_KEY = SubjectKey.MONITOR


def decide(
    topology: Topology,
    links: Mapping[str, Status[LinkState]],
    nodes: Mapping[str, Status[NodeState]],
    portals: Mapping[str, Status[PortalState]],
    portal_policy: PortalPolicy | None = None,
    inside: InsideView | None = None,
) -> tuple[Incident, ...]:
    """Decide the incidents from the current states (see the module docstring for the rules)."""
    monitor = _monitor(topology, nodes)
    if monitor is not None:
        return (monitor,)
    judged = frozenset(c for c, s in inside.sites.items() if s.heard_at) if inside else frozenset()
    subtree = _subtree_links(topology)
    outages, behind = _upstream_outages(topology, subtree, links, nodes, judged)
    behind |= _being_confirmed(topology, subtree, links, nodes, behind, judged)
    sites = dark_sites(topology, links, behind, inside) if inside is not None else None
    covered = sites.covered if sites is not None else frozenset()
    incidents = [
        *outages,
        *(sites.incidents if sites is not None else ()),
        *_portal_outages(portals, portal_policy or PortalPolicy()),
        *_link_incidents(topology, links, behind | covered),
    ]
    if inside is not None:
        incidents = inside_incidents(incidents, topology, links, portals, behind, covered, inside)
    witnesses = _monitor_being_cut(topology, nodes)
    if witnesses:
        incidents = [i for i in incidents if not _fresh(i.since, witnesses)]
    return tuple(sorted(incidents, key=lambda i: (_KIND_ORDER[i.kind], i.key)))


def _monitor(topology: Topology, nodes: Mapping[str, Status[NodeState]]) -> Incident | None:
    if not topology.references:
        return None
    seen = [nodes.get(ref) for ref in topology.references]
    down = [s for s in seen if s is not None and s.state is NodeState.DOWN]
    if len(down) != len(seen):
        return None
    return Incident(
        key=MONITOR_KEY,
        kind=IncidentKind.MONITOR_CONNECTIVITY,
        state=NodeState.DOWN.value,
        # Cut off from the moment the last reference went down.
        since=max(s.since for s in down),
        route=Route.PROVINCIAL_IT,
        detail=",".join(sorted(topology.references)),
    )


def _monitor_being_cut(
    topology: Topology, nodes: Mapping[str, Status[NodeState]]
) -> list[tuple[datetime, ...]]:
    """The references' last good rounds while all of them look cut off and some are not
    confirmed yet (rule 1, the moment before); empty otherwise."""
    if not topology.references:
        return []
    seen = [nodes.get(ref) for ref in topology.references]
    if not all(s is not None and NodeState.DOWN in (s.state, s.last_round) for s in seen):
        return []
    return [s.good_at for s in seen if s is not None and s.state is not NodeState.DOWN]


def _fresh(since: datetime, witnesses: list[tuple[datetime, ...]]) -> bool:
    """At most one good round of each witness began after `since`."""
    return all(len(good) < 2 or good[0] < since for good in witnesses)


def _subtree_links(topology: Topology) -> dict[str, list[str]]:
    """Every upstream's links, its own and its descendants' (parents listed via the chain)."""
    out: dict[str, list[str]] = {u: [] for u in topology.upstreams}
    for key in sorted(topology.links):
        for upstream in _chain(topology, topology.links[key].upstream):
            out[upstream].append(key)
    return out


def _chain(topology: Topology, upstream: str | None) -> Iterable[str]:
    """An upstream and its ancestors, nearest first; stops at unknown nodes and at cycles."""
    seen: set[str] = set()
    while upstream is not None and upstream in topology.upstreams and upstream not in seen:
        seen.add(upstream)
        yield upstream
        upstream = topology.upstreams[upstream].parent


def _upstream_outages(
    topology: Topology,
    subtree: Mapping[str, list[str]],
    links: Mapping[str, Status[LinkState]],
    nodes: Mapping[str, Status[NodeState]],
    agent_sites: frozenset[str] = frozenset(),
) -> tuple[list[Incident], set[str]]:
    down_since: dict[str, datetime] = {}
    for upstream, info in topology.upstreams.items():
        node = nodes.get(SubjectKey.upstream(upstream).encoded)
        if info.pinged and node is not None:
            if node.state is NodeState.DOWN:
                down_since[upstream] = node.since
            continue
        statuses = [links.get(k) for k in subtree[upstream]]
        down = [s for s in statuses if s is not None and s.state is LinkState.DOWN]
        if down and len(down) == len(statuses):
            communes = {topology.links[k].commune for k in subtree[upstream]}
            if len(communes) == 1 and communes <= agent_sites:
                # One commune with an agent is all that hangs off it: a dark site (power or
                # LAN) explains it as well, and the agent's backfill will tell (rules 5, 6).
                continue
            # Inferred: down from the moment the last of its links went down.
            down_since[upstream] = max(s.since for s in down)
    incidents: list[Incident] = []
    behind: set[str] = set()
    for upstream, since in down_since.items():
        ancestors = list(_chain(topology, topology.upstreams[upstream].parent))
        if any(a in down_since for a in ancestors):
            continue  # its parent's incident covers it
        info = topology.upstreams[upstream]
        affected = tuple(subtree[upstream])
        behind.update(affected)
        incidents.append(
            Incident(
                key=SubjectKey.upstream(upstream),
                kind=IncidentKind.UPSTREAM_OUTAGE,
                state=NodeState.DOWN.value,
                since=since,
                route=Route.ISP,
                isp=info.isp,
                links=affected,
                detail=info.name,
            )
        )
    return incidents, behind


def _being_confirmed(
    topology: Topology,
    subtree: Mapping[str, list[str]],
    links: Mapping[str, Status[LinkState]],
    nodes: Mapping[str, Status[NodeState]],
    behind: set[str],
    agent_sites: frozenset[str],
) -> set[str]:
    """The DOWN links held while an upstream node of theirs is being confirmed down (rule 2)."""
    down = {k for k, s in links.items() if s.state is LinkState.DOWN and k not in behind}
    if not down or not topology.upstreams:
        return set()
    held: set[str] = set()
    for upstream, keys in subtree.items():
        candidates = [k for k in keys if k in down]
        if not candidates:
            continue
        info = topology.upstreams[upstream]
        node = nodes.get(SubjectKey.upstream(upstream).encoded)
        if info.pinged and node is not None:
            if node.state is NodeState.DOWN or node.last_round is not NodeState.DOWN:
                continue
            witnesses = [node.good_at]
        else:
            statuses = [links.get(k) for k in keys]
            if any(s is None for s in statuses) or len(keys) < 2:
                continue
            if len({topology.links[k].commune for k in keys}) == 1 and (
                topology.links[keys[0]].commune in agent_sites
            ):
                continue  # a dark site explains it as well (rule 5)
            pending = [s for s in statuses if s is not None and s.state is not LinkState.DOWN]
            if not pending or any(s.last_round is not LinkState.DOWN for s in pending):
                continue
            witnesses = [s.good_at for s in pending]
        held.update(k for k in candidates if _fresh(links[k].since, witnesses))
    return held


def _portal_outages(
    portals: Mapping[str, Status[PortalState]], policy: PortalPolicy
) -> list[Incident]:
    # One status per vantage point; an agent's paths are one vantage, its worst path's.
    grouped: dict[str, dict[str, Status[PortalState]]] = {}
    for subject, status in portals.items():
        portal = portal_of_subject(subject)
        group = vantage_group(subject[len(portal) + 1 :])
        seen = grouped.setdefault(portal, {}).get(group)
        if seen is None or _PORTAL_RANK[status.state] > _PORTAL_RANK[seen.state]:
            grouped[portal][group] = status
    incidents: list[Incident] = []
    for portal, by_group in grouped.items():
        statuses = list(by_group.values())
        needed = max(1, math.ceil(policy.failing_share * len(statuses) - 1e-9))
        if len(statuses) > 1 and any(g.startswith(AGENT_VANTAGE) for g in by_group):
            # One commune alone is never a portal outage while another vantage point sees
            # the portal fine: that is its own path's problem (alerts/inside.py, rule 8).
            needed = max(needed, 2)
        failing = [s for s in statuses if s.state is PortalState.FAILING]
        bad = [s for s in statuses if s.state is not PortalState.OK]
        if len(bad) < needed:
            continue
        state = PortalState.FAILING if len(failing) >= needed else PortalState.SLOW
        phases = sorted({s.detail for s in failing if s.detail})
        incidents.append(
            Incident(
                key=SubjectKey.portal(portal),
                kind=IncidentKind.PORTAL_OUTAGE,
                state=state.value,
                since=min(s.since for s in bad),
                route=Route.PROVINCIAL_IT,
                detail=",".join(phases),
            )
        )
    return incidents


def _link_incidents(
    topology: Topology, links: Mapping[str, Status[LinkState]], behind: set[str]
) -> list[Incident]:
    incidents: list[Incident] = []
    for key, status in links.items():
        info = topology.links.get(key)
        if info is None or key in behind or status.state is LinkState.OK:
            continue
        if status.state in _FAULTS:
            kind, route = IncidentKind.LINK_FAULT, Route.ISP
        else:
            kind = IncidentKind.CAPACITY
            route = Route.ISP_AND_PROVINCIAL_IT if info.capacity_to_isp else Route.PROVINCIAL_IT
        incidents.append(
            Incident(
                key=SubjectKey.link(LinkId(key)),
                kind=kind,
                state=status.state.value,
                since=status.since,
                route=route,
                isp=info.isp,
                links=(key,),
                detail=status.detail,
            )
        )
    return incidents
