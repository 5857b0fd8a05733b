"""Health wiring: observations become alerts/ rounds; evaluators and root cause run per round.

This is the one place that knows both sides: it joins each ICMP round of a link with the latest
SNMP view of the link's router (interface state, reachability, reboot, utilization), converts
portals and nodes, feeds alerts/ evaluators, and recomputes the incidents after every batch.
alerts/ never sees a probe type.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from alerts.health import LinkEvaluator, NodeEvaluator, PortalEvaluator, loss_over
from alerts.inside import BACKFILL
from alerts.model import (
    Incident,
    IncidentKind,
    InsideView,
    LinkInfo,
    LinkPolicy,
    LinkRound,
    LinkState,
    Measurements,
    NodeRound,
    NodeState,
    PortalRound,
    PortalState,
    Status,
    Topology,
    Transition,
    UpstreamInfo,
)
from alerts.rootcause import decide
from alerts.subject import LinkId, SubjectKey, SubjectKind, portal_subject
from alerts.subject import link_id as link_id  # the web names links through this module
from netwatch.confirm import Thresholds
from netwatch.inventory import Inventory
from netwatch.observations import (
    IcmpObservation,
    Observation,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)
from netwatch.state import ShardRounds

log = logging.getLogger("netwatch.health")
CENTRAL = "central"  # the vantage point of the central instance
# At most this many rounds of one link wait for the router's next reading (a router that stops
# answering SNMP is seen as unreachable on its next poll, which releases them anyway).
_MAX_HELD = 12
# A utilization reading judges held rounds when at least this share of its interval came after
# the first of them: measured while the line was bad, not mostly before (issue 12: a reading
# that only partly covered the congestion called a full line an ISP fault).
_COVERED = 0.75
# A utilization rate over a shorter interval is noise: many agents refresh their counters every
# few seconds (net-snmp's ifTable cache: 3 s), so a poll right after another reads 0 % or 150 %.
_MIN_RATE_INTERVAL_S = 5.0
# Incidents about one link, measured per round (an upstream outage's links are many).
_MEASURED = frozenset({IncidentKind.LINK_FAULT, IncidentKind.CAPACITY})


def topology_of(inventory: Inventory) -> Topology:
    """The network's shape for root-cause analysis, from the inventory."""
    links: dict[str, LinkInfo] = {}
    for commune in inventory.communes:
        for link in commune.links:
            isp = inventory.isps.get(link.isp)
            links[link_id(commune.code, link.id)] = LinkInfo(
                link=link_id(commune.code, link.id),
                province=f"{commune.province_code:02d}",
                commune=commune.code,
                commune_name=commune.name,
                isp=link.isp,
                circuit=link.circuit,
                upstream=link.upstream,
                capacity_to_isp=isp.capacity_requests if isp is not None else False,
            )
    upstreams = {
        uid: UpstreamInfo(
            upstream=uid,
            isp=u.isp,
            name=u.name,
            pinged=u.address is not None,
            parent=u.parent,
        )
        for uid, u in inventory.upstreams.items()
    }
    references = tuple(SubjectKey.reference(str(a)).encoded for a in inventory.reference_targets)
    return Topology(links=links, upstreams=upstreams, references=references)


def _agent_communes(inventory: Inventory) -> frozenset[str]:
    """The communes with an agent box."""
    return frozenset(c.code for c in inventory.communes if c.agent is not None)


def policies_of(inventory: Inventory) -> dict[str, LinkPolicy]:
    """Each link's thresholds: its commune's effective ones (defaults with overrides)."""
    out: dict[str, LinkPolicy] = {}
    for commune in inventory.communes:
        t = commune.effective_thresholds(inventory.thresholds)
        policy = LinkPolicy(
            rtt_s=t.rtt_ms / 1000,
            loss_ratio=t.loss_pct / 100,
            utilization_ratio=t.utilization_pct / 100,
            enter_rounds=t.enter_rounds,
            enter_window=t.enter_window,
            exit_rounds=t.exit_rounds,
        )
        for link in commune.links:
            out[link_id(commune.code, link.id)] = policy
    return out


def _keys_of(inventory: Inventory, topology: Topology) -> dict[str, SubjectKey]:
    """Each subject judged from here, by its state-history name: its key."""
    return {
        **{link: SubjectKey.link(LinkId(link)) for link in topology.links},
        **{key.encoded: key for key in (SubjectKey.upstream(u) for u in inventory.upstreams)},
        **{ref: SubjectKey.parse(ref) for ref in topology.references},
        **{portal_subject(p, CENTRAL): SubjectKey.portal(p) for p in inventory.portals},
    }


@dataclass(slots=True)
class _RouterView:
    """The latest SNMP view of one link's router."""

    interface_up: bool | None = None
    router_reachable: bool | None = None
    utilization_ratio: float | None = None
    rebooted: bool = False  # kept until the link's next ICMP round has seen it


def _rate_interval_s(obs: SnmpObservation) -> float:
    """Seconds the poll's rates span (0 without rates)."""
    if obs.rates_since is None:
        return 0.0
    return (obs.sample.taken_at - obs.rates_since).total_seconds()


def _covers(obs: SnmpObservation, first_bad_at: datetime) -> bool:
    """Whether the poll's utilization interval lies mostly after the first held round."""
    start, end = obs.rates_since, obs.sample.taken_at
    if start is None or end <= start:
        return False  # no rates in this poll (the first one, or after a failure)
    after = (end - max(start, first_bad_at)).total_seconds()
    return after / (end - start).total_seconds() >= _COVERED


class HealthMonitor:
    """An ObservationSink: judged states, transitions and incidents, updated every batch."""

    def __init__(self, inventory: Inventory, *, history: int = 500) -> None:
        self.topology = topology_of(inventory)
        self.links = LinkEvaluator(policies=policies_of(inventory))
        self.portals = PortalEvaluator()
        self.nodes = NodeEvaluator()
        # The incidents, each carrying what was measured of its subject (a link's latest judged
        # round), refreshed on a change and after each ICMP round. _decided: as root cause
        # decided them.
        self.incidents: tuple[Incident, ...] = ()
        self._decided: tuple[Incident, ...] = ()
        self._last_round: dict[str, LinkRound] = {}  # by link id: the latest round judged
        self._icmp_rounds = ShardRounds()  # the shards' ICMP reports: when a slot is complete
        self.transitions: deque[Transition] = deque(maxlen=history)  # the latest, for display
        self._unrecorded: list[Transition] = []  # not yet in the store's state history
        # Subjects whose first judged state is in the history already. A subject starts in its
        # good state without a transition (hysteresis has nothing to change), but availability
        # needs that first interval: without it a link that was always fine has no data, and one
        # that was fine for weeks then down for a minute shows 0 %.
        self._recorded: set[str] = set()
        self._first_seen: list[str] = []  # observed this batch, first state not yet recorded
        self._routers: dict[str, _RouterView] = {}
        self._pending: dict[str, list[LinkRound]] = {}  # rounds waiting for a utilization reading
        # The keys (stored forms: a str caches its hash) of the ICMP targets and portal jobs now
        # in a bad state, kept from the transitions: fast confirmation asks for every target on
        # every sweep of the round, and each answer costs one set lookup.
        self._bad: set[str] = set()
        # Each subject judged here, by its state-history name: its key (built once).
        self._key_of: dict[str, SubjectKey] = _keys_of(inventory, self.topology)
        # Called after a batch that changed the incidents (alerting evaluates at once).
        self.on_change: list[Callable[[], None]] = []
        # The view from inside the communes (issue 11), set by netwatch.inside.judge; None: no
        # agent judged, root cause as before. The communes with an agent, from the inventory.
        self._inside: InsideView | None = None
        self.agent_communes = _agent_communes(inventory)

    def reload(self, inventory: Inventory, now: datetime) -> frozenset[SubjectKey]:
        """Take a reloaded inventory: new topology and thresholds; the subjects that left it are
        forgotten (their states, held rounds, router views) and returned, so that alerting can
        close their tickets. Subjects that stay keep their state and hysteresis."""
        topology = topology_of(inventory)
        keys = _keys_of(inventory, topology)
        gone = {name: key for name, key in self._key_of.items() if name not in keys}
        for name, key in gone.items():
            if key.kind is SubjectKind.LINK:
                self.links.forget(name)
                self._routers.pop(name, None)
                self._pending.pop(name, None)
                self._last_round.pop(name, None)
            elif key.kind is SubjectKind.PORTAL:
                self.portals.forget(key.name, CENTRAL)
            else:
                self.nodes.forget(name)
            self._bad.discard(key.encoded)
            if name in self._recorded:  # the state history: not watched from now on
                self._recorded.discard(name)
                self._unrecorded.append(
                    Transition(name, "", "unknown", now, now, "removed from monitoring")
                )
        self.topology = topology
        self.links.set_policies(policies_of(inventory))
        self._key_of = keys
        self.agent_communes = _agent_communes(inventory)
        # The incidents again, without the subjects that left (alerting closes their tickets
        # as removed before it evaluates these: netwatch.alerting.Alerting.reload).
        self._decided = self._decide()
        self.incidents = self._measured(self._decided)
        return frozenset(gone.values())

    def observe(self, batch: Sequence[Observation]) -> None:
        """Feed one round's observations to the evaluators, then decide the incidents."""
        found: list[Transition | None] = []
        suspects = self._suspects(batch)
        for obs in batch:
            if isinstance(obs, SnmpObservation):
                found.extend(self._observe_snmp(obs))
        for obs in batch:
            if isinstance(obs, IcmpObservation):
                found.extend(self._observe_icmp(obs))
            elif isinstance(obs, PortalObservation):
                h = obs.http
                if portal_subject(obs.job.portal, CENTRAL) not in self._key_of:
                    continue  # a probe begun before a reload removed the portal
                self._seen(portal_subject(obs.job.portal, CENTRAL))
                found.append(
                    self.portals.observe(
                        PortalRound(
                            portal=obs.job.portal,
                            vantage=CENTRAL,
                            at=h.started_at,
                            ok=h.failure is None,
                            total_s=h.total_s,
                            failed_phase=h.failed_phase.value if h.failed_phase else None,
                        )
                    )
                )
        changed = False
        for transition in found:
            if transition is not None:
                changed = True
                self._track_bad(transition)
                self.transitions.append(transition)
                self._unrecorded.append(transition)
                self._recorded.add(transition.subject)
                log.warning(
                    "state changed subject=%s old=%s new=%s since=%s detail=%s",
                    transition.subject,
                    transition.old,
                    transition.new,
                    transition.since.isoformat(),
                    transition.detail,
                )
        if self._first_seen:
            self._record_first_states(self._first_seen)
            self._first_seen = []
        if changed or not batch:
            self._decided = self._decide()
            self.incidents = self._measured(self._decided)
        elif suspects and not self._suspects(batch) >= suspects:
            # A node, reference or link whose latest round was DOWN came back before its
            # hysteresis confirmed it: what root cause held for it is judged on its own now.
            decided = self._decide()
            if decided != self._decided:
                self._decided = decided
                self.incidents = self._measured(decided)
                changed = True
        if changed:
            for hook in self.on_change:
                hook()

    def _suspects(self, batch: Sequence[Observation]) -> set[str]:
        """The batch's ICMP subjects whose latest round is DOWN while their state is not
        (links, upstream nodes, reference targets: what root cause holds links for)."""
        out: set[str] = set()
        for obs in batch:
            if not isinstance(obs, IcmpObservation):
                continue
            link, key = obs.target.link, obs.target.key.encoded
            if link is not None and self.links.unconfirmed(link.id, LinkState.DOWN):
                out.add(link.id)
            elif link is None and self.nodes.unconfirmed(key, NodeState.DOWN):
                out.add(key)  # an upstream node or a reference target
        return out

    def _decide(self) -> tuple[Incident, ...]:
        return decide(
            self.topology,
            self.links.statuses(),
            self.nodes.statuses(),
            self.portals.statuses(),
            inside=self._inside,
        )

    # -- the view from inside the communes (netwatch.inside.judge) --------------------------
    def set_inside(self, view: InsideView | None) -> bool:
        """Judge with this view from inside from now on; decide again at once. True (and the
        on_change hooks called) when the incidents changed."""
        self._inside = view
        decided = self._decide()
        if decided == self._decided:
            return False
        self._decided = decided
        self.incidents = self._measured(decided)
        for hook in self.on_change:
            hook()
        return True

    def observe_agent_portal(self, rnd: PortalRound) -> Transition | None:
        """One portal timing from an agent's path (vantage ``agent:<link>``): judged like the
        centre's (hysteresis per portal and vantage); not written to the state history."""
        transition = self.portals.observe(rnd)
        if transition is not None:
            self.transitions.append(transition)
            log.warning(
                "state changed subject=%s old=%s new=%s since=%s detail=%s",
                transition.subject,
                transition.old,
                transition.new,
                transition.since.isoformat(),
                transition.detail,
            )
        return transition

    def utilization_of(self, link: str) -> float | None:
        """A link's latest SNMP utilization (the busier direction), None when not polled."""
        view = self._routers.get(link)
        return view.utilization_ratio if view is not None else None

    def _measured(self, incidents: tuple[Incident, ...]) -> tuple[Incident, ...]:
        """The incidents, a link's carrying the figures of its latest judged round (and what
        the commune's agent saw from inside, as root cause attached it)."""
        if not any(i.kind in _MEASURED for i in incidents):
            return incidents
        return tuple(
            replace(i, measured=self._merged(i)) if i.kind in _MEASURED else i for i in incidents
        )

    def _merged(self, incident: Incident) -> Measurements:
        inside = incident.measured
        if inside is not None and incident.detail == BACKFILL:
            return inside  # a past outage: the centre's figures of now would say "fine"
        centre = self._measurements(incident.key)
        if inside is None:
            return centre
        return replace(
            centre,
            utilization_ratio=centre.utilization_ratio
            if centre.utilization_ratio is not None
            else inside.utilization_ratio,
            inside_paths=inside.inside_paths,
            inside_portals=inside.inside_portals,
        )

    def _measurements(self, key: SubjectKey) -> Measurements:
        rnd = self._last_round.get(key.name)
        if rnd is None:
            return Measurements()
        return Measurements(
            loss_ratio=rnd.loss_ratio,
            rtt_median_s=rnd.rtt_median_s,
            interface_up=rnd.interface_up,
            utilization_ratio=rnd.utilization_ratio,
        )

    def _judge_link(self, rnd: LinkRound) -> Transition | None:
        self._last_round[rnd.link] = rnd
        return self.links.observe(rnd)

    def _track_bad(self, transition: Transition) -> None:
        key = self._key_of.get(transition.subject)
        if key is None:
            return  # another vantage point's view: not confirmed from here
        if transition.new in (LinkState.OK.value, NodeState.UP.value):
            self._bad.discard(key.encoded)
        else:
            self._bad.add(key.encoded)

    # -- what fast confirmation asks (netwatch.confirm.Judge) --------------------------------
    def is_bad(self, key: SubjectKey) -> bool:
        """True while the subject (an ICMP target's or a portal job's key) is in a bad state."""
        return key.encoded in self._bad

    def thresholds(self, key: SubjectKey) -> Thresholds | None:
        """The thresholds of an ICMP target's subject; None for what is not judged."""
        if key.kind is SubjectKind.LINK:
            p = self.links.policy(key.name)
            return Thresholds(p.rtt_s, p.loss_ratio, p.enter_rounds, p.enter_window, p.exit_rounds)
        if key.is_node:
            n = self.nodes.policy
            return Thresholds(math.inf, n.loss_ratio, n.enter_rounds, n.enter_window, n.exit_rounds)
        if key.kind is SubjectKind.PORTAL:  # rtt_s: the portal's slow threshold on its total time
            q = self.portals.policy
            return Thresholds(q.slow_s, 0.0, q.enter_rounds, q.enter_window, q.exit_rounds)
        return None

    def _seen(self, subject: str) -> None:
        if subject not in self._recorded:
            self._first_seen.append(subject)

    def _status_of(
        self, subject: str
    ) -> Status[LinkState] | Status[NodeState] | Status[PortalState] | None:
        if subject in self.topology.links:
            return self.links.status(subject)
        key = self._key_of.get(subject)
        if key is not None and key.kind is SubjectKind.PORTAL:
            return self.portals.status(key.name, CENTRAL)
        return self.nodes.status(subject)

    def resync_history(self, at: datetime) -> None:
        """Every judged state again, from `at`: for an instance taking over the history from
        another (what it judged while standing by was not written)."""
        self._unrecorded = []
        statuses: list[Status[LinkState] | Status[NodeState] | Status[PortalState]] = [
            *self.links.statuses().values(),
            *self.nodes.statuses().values(),
            *self.portals.statuses().values(),
        ]
        self._recorded = {s.subject for s in statuses}
        self._unrecorded = [
            Transition(s.subject, "unknown", s.state.value, at, at, s.detail) for s in statuses
        ]

    def _record_first_states(self, subjects: Sequence[str]) -> None:
        """History-only entries (no log, no incident) for subjects judged for the first time."""
        for subject in subjects:
            status = self._status_of(subject)
            if status is None or subject in self._recorded:
                continue  # rounds held for the router's next reading: not judged yet
            self._recorded.add(subject)
            self._unrecorded.append(
                Transition(
                    subject=subject,
                    old="unknown",
                    new=status.state.value,
                    at=status.since,
                    since=status.since,
                    detail=status.detail,
                )
            )

    def round_done(self, report: RoundReport) -> None:
        """After each ICMP slot, the incidents carry its figures. (Only then and on a change: the
        status pages rebuild when the incidents tuple is another one.) Probe workers report a
        slot once per shard: the figures are taken once every shard's report is in (ShardRounds),
        not once per shard."""
        if report.kind == "icmp" and self._icmp_rounds.add(report):
            self.incidents = self._measured(self._decided)

    def _observe_snmp(self, obs: SnmpObservation) -> list[Transition | None]:
        reachable = obs.sample.failure is None
        out: list[Transition | None] = []
        for reading in obs.interfaces:
            key = reading.link_key.name  # the link id
            if key not in self._key_of:
                continue  # a poll begun before a reload removed the link
            view = self._routers.setdefault(key, _RouterView())
            view.router_reachable = reachable
            view.rebooted = view.rebooted or obs.rebooted
            short = _rate_interval_s(obs) < _MIN_RATE_INTERVAL_S
            if reachable:
                view.interface_up = reading.oper_up
                ratios = [
                    r
                    for r in (reading.in_utilization_ratio, reading.out_utilization_ratio)
                    if r is not None
                ]
                if not (short and ratios):  # a noisy rate keeps the last good one
                    view.utilization_ratio = max(ratios) if ratios else None
            # The rounds held back for a reading: judged with this one if it was measured
            # while they were bad (or the router stopped answering: nothing better will come).
            held = self._pending.get(key)
            if held and reachable and (short or not _covers(obs, min(r.at for r in held))):
                continue
            out.extend(self._flush(key, view))
        return out

    def _observe_icmp(self, obs: IcmpObservation) -> list[Transition | None]:
        target, result = obs.target, obs.result
        if target.link is None:
            if target.role not in ("upstream", "reference"):
                return []  # front-office devices are shown, not ticketed (for now)
            subject = target.key.encoded
            if subject not in self._key_of:
                return []  # a round begun before a reload removed the node
            node = NodeRound(
                subject, result.started_at, result.received > 0, result.loss_ratio, result.sent
            )
            self._seen(subject)
            return [self.nodes.observe(node)]
        key = target.link.id
        if key not in self._key_of:
            return []  # a round begun before a reload removed the link
        self._seen(key)
        view = self._routers.get(key)
        rnd = LinkRound(key, result.started_at, result.sent, result.received, result.rtt_median_s)
        if view is None:  # no router polled for this link: judged on the echoes alone
            return [self._judge_link(rnd)]
        pending = self._pending.setdefault(key, [])
        policy = self.links.policy(key)
        suspect = result.received > 0 and (
            loss_over(rnd.sent, rnd.received, policy.loss_ratio)
            or (rnd.rtt_median_s is not None and rnd.rtt_median_s > policy.rtt_s)
        )
        if (suspect or pending) and result.received > 0 and len(pending) < _MAX_HELD:
            # Loss or RTT inflation is a fault of the line or a full line: which one, only the
            # router's next utilization reading (taken after this round) can tell. Judged then,
            # so a congested line is never first ticketed to the ISP as a fault.
            pending.append(rnd)
            return []
        pending.append(rnd)  # a down round (no echo) is judged at once, with those before it
        return self._flush(key, view)

    def _flush(self, key: str, view: _RouterView) -> list[Transition | None]:
        pending = self._pending.pop(key, [])
        out = []
        for rnd in pending:
            out.append(
                self._judge_link(
                    replace(
                        rnd,
                        interface_up=view.interface_up,
                        router_reachable=view.router_reachable,
                        router_rebooted=view.rebooted,
                        utilization_ratio=view.utilization_ratio,
                    )
                )
            )
            view.rebooted = False
        return out

    def drain_transitions(self) -> list[Transition]:
        """The transitions not handed out yet (to write into the state history)."""
        out, self._unrecorded = self._unrecorded, []
        return out

    def requeue_transitions(self, transitions: list[Transition]) -> None:
        """Give back transitions that could not be written; they come first next time."""
        self._unrecorded = transitions + self._unrecorded

    # -- what the web shows ----------------------------------------------------------------
    def link_status(self, commune: str, link: str) -> Status[LinkState] | None:
        """The judged state of one link, or None before its first round."""
        return self.links.status(link_id(commune, link))

    def portal_status(self, portal: str) -> Status[PortalState] | None:
        """The judged state of a portal from the central vantage point."""
        return self.portals.status(portal, CENTRAL)

    def node_status(self, node: str) -> Status[NodeState] | None:
        """The judged state of an upstream node or reference target ('upstream:ID')."""
        return self.nodes.status(node)
