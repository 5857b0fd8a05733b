"""Root cause with the view from inside the commune (issue 11): the rules that read what the
commune agents saw, applied by ``alerts.rootcause.decide`` after its own rules.

A pure function of the centre's states, the topology and an ``InsideView`` (abstract facts: when
the agent was last heard live, what its paths and portals looked like from inside, with their
times; alerts/ knows nothing of how they were measured or carried). Only communes whose agent
was heard at least once (``SiteView.heard_at`` set) are judged here; every other commune is
judged by rules 1-4 exactly as before.

5. Site unreachable. Every link of the commune is DOWN from the centre (none behind a down
   upstream node, none whose router still answers SNMP saying its WAN port is down) and the
   agent has not been heard live since they all went down (a word later than the last link's
   ``since`` + ``heard_grace_s`` came through some path): one SITE_UNREACHABLE (key
   ``site:CODE``, state down) for provincial IT and the commune's own contacts; the links get
   no ISP ticket. A link proven down with the LAN up (by backfill, below, or by a live round
   sent over another path while it was already down) is taken out of it. Heard again while
   the centre still sees every line down (a line back is confirmed after a few rounds): once
   every path has reported a live round since, a path answering is back (no incident) and one
   not answering is its ISP's link fault; until then it stays the site's incident. Coming
   back, the lines are confirmed up one by one: a line still DOWN after another line of the
   commune came back (since it went down) waits for its path's live round likewise (at most
   ``silent_after_s``), so the line confirmed last is not blamed on its ISP.
6. Backfill. A round that reached the centre late (it waited on the box) showing the router's
   LAN address answering while a path's far end did not proves that path's line was down with
   power and LAN up: that link gets a LINK_FAULT for its ISP (key ``link:ID``, state down) with
   those rounds attached, for as long as the centre still sees it down and at least
   ``backfill_hold_s`` after the proof arrived (the line is usually back by then).
7. Inside evidence. A link incident of a commune with an agent carries the agent's live rounds
   of that path since the incident began (the LAN gateway's answer and the path's echoes, with
   their times): "path 1's far end unreachable from inside, reported over path 2".
8. Portal per path. A portal SLOW or FAILING from one path of an agent while no portal outage
   is raised (it is fine from most vantage points) is that path's problem: the link's SNMP
   utilization at or above its capacity threshold gives a CAPACITY incident (provincial IT, and
   the ISP where it takes capacity requests), otherwise a LINK_FAULT for the path's ISP (state
   slow or failing, detail ``portal:ID``), each with the portal's timings from inside. Same key
   as the link's own incident (``link:ID``): one ticket per line; a link already in an incident
   keeps it, with the timings added.
9. Agent health. An agent not heard live for ``silent_after_s`` while some link of its commune
   is not DOWN from the centre: one AGENT_HEALTH (key ``agent:CODE``) for provincial IT, never
   an ISP ticket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alerts.model import (
    DownCause,
    Incident,
    IncidentKind,
    InsidePath,
    InsidePortal,
    InsideView,
    LinkState,
    Measurements,
    PortalState,
    Route,
    SiteView,
    Status,
    Topology,
)
from alerts.subject import LinkId, SubjectKey

BACKFILL = "backfill"  # the detail of a link fault proven by backfill alone (rule 6)
AGENT_VANTAGE = "agent:"  # an agent's vantage point over one path: "agent:24848/vnpt-tslcd"
_PORTAL_RANK = {PortalState.OK: 0, PortalState.SLOW: 1, PortalState.FAILING: 2}


def agent_vantage(link: str) -> str:
    """The vantage point of an agent over one path (its link id): 'agent:24848/vnpt-tslcd'."""
    return f"{AGENT_VANTAGE}{link}"


def vantage_group(vantage: str) -> str:
    """Whom a vantage point counts as in the portal-outage share: an agent's paths count once,
    as their commune ('agent:24848/vnpt-tslcd' -> 'agent:24848'); any other vantage as itself."""
    if vantage.startswith(AGENT_VANTAGE):
        return vantage.split("/", 1)[0]
    return vantage


def proofs(site: SiteView) -> dict[str, list[InsidePath]]:
    """Backfilled rounds proving a path down while the LAN was up, by link id."""
    out: dict[str, list[InsidePath]] = {}
    for sample in site.paths:
        if sample.backfilled and sample.lan_up is True and not sample.answered:
            out.setdefault(sample.link, []).append(sample)
    return out


def _bounded(samples: Sequence[InsidePath], count: int) -> tuple[InsidePath, ...]:
    """At most ``count`` samples: the first ones and the latest ones (the outage's two ends)."""
    if len(samples) <= count:
        return tuple(samples)
    head = count // 2
    return (*samples[:head], *samples[len(samples) - (count - head) :])


@dataclass(frozen=True, slots=True)
class SiteVerdict:
    """What rule 5 decided for the communes: their incidents and the links they cover."""

    incidents: tuple[Incident, ...]
    covered: frozenset[str]


def dark_sites(
    topology: Topology,
    links: Mapping[str, Status[LinkState]],
    behind: set[str],
    inside: InsideView,
) -> SiteVerdict:
    """Rule 5: the communes whose every path is down and whose agent is silent."""
    incidents: list[Incident] = []
    covered: set[str] = set()
    by_commune = _links_by_commune(topology)
    for commune, site in sorted(inside.sites.items()):
        own = by_commune.get(commune, [])
        if site.heard_at is None or not own or any(k in behind for k in own):
            continue
        statuses = [links.get(k) for k in own]
        down = [s for s in statuses if s is not None and s.state is LinkState.DOWN]
        if len(down) != len(own):
            covered.update(_coming_back(site, own, links, inside))
            continue
        if any(s.detail == DownCause.INTERFACE_DOWN.value for s in down):
            continue  # the router answers SNMP: powered, its lines are down
        dark_since = max(s.since for s in down)
        grace = timedelta(seconds=inside.policy.heard_grace_s)
        if site.heard_at > dark_since + grace:
            # Heard through some path since: the site is alive, and the centre's view of at
            # least one line is behind (a line just back is confirmed after a few rounds). Its
            # live rounds say which: a path answering is back, one not answering with the LAN
            # up is the ISP's. Until every path has reported, it stays the site's incident.
            latest = _latest_live(site, own, dark_since)
            if len(latest) == len(own):
                proven_now = proofs(site)
                covered.update(k for k, p in latest.items() if p.answered and k not in proven_now)
                continue
        # Proven the ISPs': by backfill, or by live rounds the agent sent over another path
        # while this one was already down (a line cut before the site went dark keeps its
        # ticket).
        proven = set(proofs(site)) | _proven_live(site, own, links)
        unproven = [k for k in own if k not in proven]
        if not unproven:
            continue  # every path proven down with the LAN up: the ISPs' faults
        covered.update(unproven)
        causes = sorted({s.detail for s in down if s.detail})
        incidents.append(
            Incident(
                key=SubjectKey.site(commune),
                kind=IncidentKind.SITE_UNREACHABLE,
                state=LinkState.DOWN.value,
                since=dark_since,
                route=Route.PROVINCIAL_IT_AND_COMMUNE,
                links=tuple(own),
                detail=",".join(causes),
            )
        )
    return SiteVerdict(tuple(incidents), frozenset(covered))


def _coming_back(
    site: SiteView, own: Sequence[str], links: Mapping[str, Status[LinkState]], inside: InsideView
) -> set[str]:
    """Lines still DOWN from the centre while another line of the commune came back after they
    went down: a site back from a power cut has its lines confirmed up one by one, and the one
    confirmed last is no ISP's fault for that. Such a line waits for its path's live round from
    inside: answering, it is back (no incident); not answering with the LAN up, it is proven
    the ISP's (``_proven_live``: not covered). Held at most ``silent_after_s`` after the other
    line came back; then the centre's own view decides, as for a commune without agent."""
    hold = timedelta(seconds=inside.policy.silent_after_s)
    proven = set(proofs(site)) | _proven_live(site, own, links)
    out: set[str] = set()
    for key in own:
        status = links.get(key)
        if status is None or status.state is not LinkState.DOWN or key in proven:
            continue
        back = [
            other.since
            for other in (links.get(k) for k in own if k != key)
            if other is not None
            and other.state is not LinkState.DOWN
            and other.since > status.since
        ]
        if not back or inside.at - max(back) > hold:
            continue
        latest = _latest_live(site, [key], status.since).get(key)
        if latest is None or latest.answered:
            out.add(key)
    return out


def _proven_live(
    site: SiteView, own: Sequence[str], links: Mapping[str, Status[LinkState]]
) -> set[str]:
    """Links a live round showed down with the LAN up since they went down (from the centre)."""
    out: set[str] = set()
    for sample in site.paths:
        status = links.get(sample.link)
        if (
            sample.link in own
            and not sample.backfilled
            and sample.lan_up is True
            and not sample.answered
            and status is not None
            and sample.at >= status.since
        ):
            out.add(sample.link)
    return out


def _latest_live(site: SiteView, own: Sequence[str], since: datetime) -> dict[str, InsidePath]:
    """Each path's latest live round measured since ``since`` (paths without one left out)."""
    latest: dict[str, InsidePath] = {}
    for sample in site.paths:
        if sample.backfilled or sample.at < since or sample.link not in own:
            continue
        known = latest.get(sample.link)
        if known is None or sample.at >= known.at:
            latest[sample.link] = sample
    return latest


def _links_by_commune(topology: Topology) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in sorted(topology.links):
        out.setdefault(topology.links[key].commune, []).append(key)
    return out


def inside_incidents(
    incidents: Sequence[Incident],
    topology: Topology,
    links: Mapping[str, Status[LinkState]],
    portals: Mapping[str, Status[PortalState]],
    behind: set[str],
    covered: frozenset[str],
    inside: InsideView,
) -> list[Incident]:
    """Rules 6-9 on the incidents decided so far: evidence attached, new incidents added."""
    policy = inside.policy
    out = {i.key: i for i in incidents}
    by_commune = _links_by_commune(topology)
    hold = timedelta(seconds=policy.backfill_hold_s)
    outage_portals = {i.key.name for i in incidents if i.kind is IncidentKind.PORTAL_OUTAGE}
    bad_over = _bad_portals_by_path(portals, outage_portals)
    for commune, site in sorted(inside.sites.items()):
        if site.heard_at is None:
            continue
        own = by_commune.get(commune, [])
        # Rule 6: backfill proves a path down with the LAN up.
        for link, proof in sorted(proofs(site).items()):
            info = topology.links.get(link)
            if info is None or link in behind or link in covered:
                continue
            key = SubjectKey.link(LinkId(link))
            status = links.get(link)
            still_down = status is not None and status.state is LinkState.DOWN
            received = max((p.received_at or p.at) for p in proof)
            if key not in out and not still_down and inside.at - received > hold:
                continue
            evidence = _bounded(proof, policy.evidence_samples)
            if key in out:
                out[key] = _with_paths(out[key], evidence)
                continue
            out[key] = Incident(
                key=key,
                kind=IncidentKind.LINK_FAULT,
                state=LinkState.DOWN.value,
                since=min(p.at for p in proof),
                route=Route.ISP,
                isp=info.isp,
                links=(link,),
                detail=BACKFILL,
                measured=Measurements(inside_paths=evidence),
            )
        # Rule 7: live rounds of a path as evidence of its link's incident.
        for link in own:
            key = SubjectKey.link(LinkId(link))
            incident = out.get(key)
            if incident is None:
                continue
            live = [p for p in site.paths if p.link == link and not p.backfilled]
            live = [p for p in live if p.at >= incident.since]
            if live:
                out[key] = _with_paths(incident, _bounded(live, policy.evidence_samples))
        # Rule 8: a portal bad over one path only.
        for link in own:
            if link in behind or link in covered:
                continue
            bad = bad_over.get(link)
            if bad:
                incident = _portal_on_path(link, topology, bad, site.portals, inside, out)
                if incident is not None:
                    out[incident.key] = incident
        # Rule 9: the agent itself is silent while its lines answer.
        silent = inside.at - site.heard_at >= timedelta(seconds=policy.silent_after_s)
        answering = [s for k in own if (s := links.get(k)) is not None]
        if (
            silent
            and answering
            and any(s.state is not LinkState.DOWN for s in answering)
            and not any(k in covered for k in own)
        ):
            key = SubjectKey.agent(commune)
            out[key] = Incident(
                key=key,
                kind=IncidentKind.AGENT_HEALTH,
                state=LinkState.DOWN.value,
                since=site.heard_at,
                route=Route.PROVINCIAL_IT,
                links=tuple(own),  # a maintenance window over the commune covers it too
                detail="silent",
            )
    return list(out.values())


def _with_paths(incident: Incident, samples: tuple[InsidePath, ...]) -> Incident:
    measured = incident.measured or Measurements()
    known = {(p.link, p.at) for p in measured.inside_paths}
    merged = (*measured.inside_paths, *(p for p in samples if (p.link, p.at) not in known))
    merged = tuple(sorted(merged, key=lambda p: p.at))
    return replace(incident, measured=replace(measured, inside_paths=merged))


def _bad_portals_by_path(
    portals: Mapping[str, Status[PortalState]], outage_portals: set[str]
) -> dict[str, list[tuple[str, Status[PortalState]]]]:
    """The portals slow or failing over each agent path (by link id), outages left out."""
    out: dict[str, list[tuple[str, Status[PortalState]]]] = {}
    marker = f"@{AGENT_VANTAGE}"
    for subject in sorted(portals):
        status = portals[subject]
        if status.state is PortalState.OK or marker not in subject:
            continue
        portal, _, link = subject.partition(marker)
        if portal not in outage_portals:
            out.setdefault(link, []).append((portal, status))
    return out


def _portal_on_path(
    link: str,
    topology: Topology,
    bad: Sequence[tuple[str, Status[PortalState]]],
    timings: Sequence[InsidePortal],
    inside: InsideView,
    out: Mapping[SubjectKey, Incident],
) -> Incident | None:
    """Rule 8 for one path: its bad portals become its line's incident (at most one)."""
    info = topology.links.get(link)
    if info is None:
        return None
    names = {portal for portal, _ in bad}
    evidence = tuple(t for t in timings if t.link == link and t.portal in names)
    key = SubjectKey.link(LinkId(link))
    existing = out.get(key)
    if existing is not None:
        measured = existing.measured or Measurements()
        return replace(existing, measured=replace(measured, inside_portals=evidence))
    worst = max((status.state for _, status in bad), key=lambda s: _PORTAL_RANK[s])
    phases = sorted({status.detail for _, status in bad if status.detail})
    detail = ",".join(f"portal:{portal}" for portal in sorted(names))
    if phases:
        detail += f" ({','.join(phases)})"
    utilization = inside.utilization.get(link)
    threshold = inside.capacity_ratio.get(link)
    full = utilization is not None and threshold is not None and utilization >= threshold
    if full:
        kind = IncidentKind.CAPACITY
        route = Route.ISP_AND_PROVINCIAL_IT if info.capacity_to_isp else Route.PROVINCIAL_IT
    else:
        kind, route = IncidentKind.LINK_FAULT, Route.ISP
    return Incident(
        key=key,
        kind=kind,
        state=worst.value,
        since=min(status.since for _, status in bad),
        route=route,
        isp=info.isp,
        links=(link,),
        detail=detail,
        measured=Measurements(utilization_ratio=utilization, inside_portals=evidence),
    )
