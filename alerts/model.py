"""The types alerts/ works on: rounds in, states and incidents out.

NetWatch (netwatch/) turns probe observations into these; alerts/ never sees how a value was
measured (the import contracts forbid it). Times are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from alerts.subject import SubjectKey


class LinkState(enum.Enum):
    """The health of one WAN link, after hysteresis."""

    OK = "ok"
    SLOW = "slow"  # RTT over threshold, line not full: an ISP fault
    LOSSY = "lossy"  # loss over threshold, line not full: an ISP fault
    CONGESTED = "congested"  # loss or RTT while the line is near its contracted bandwidth
    DOWN = "down"  # no echo answered


class DownCause(enum.Enum):
    """What else was seen while a link answered no echo."""

    INTERFACE_DOWN = "interface_down"  # the router answers SNMP and says its WAN port is down
    ROUTER_REBOOTED = "router_rebooted"  # sysUpTime went back: the router restarted
    ROUTER_UNREACHABLE = "router_unreachable"  # SNMP is silent too
    NO_ECHO = "no_echo"  # nothing else known (no router polled, or it looks fine)


class PortalState(enum.Enum):
    """The health of one portal from one vantage point, after hysteresis."""

    OK = "ok"
    SLOW = "slow"
    FAILING = "failing"


class NodeState(enum.Enum):
    """An upstream node or a reference target."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class LinkRound:
    """One ICMP round of one link, with the router's latest SNMP view joined in."""

    link: str  # "24848/vnpt-tslcd"
    at: datetime
    sent: int
    received: int
    rtt_median_s: float | None
    interface_up: bool | None = None  # None: no router, or not polled yet
    router_reachable: bool | None = None
    router_rebooted: bool = False
    utilization_ratio: float | None = None  # the busier direction of the latest SNMP interval

    @property
    def loss_ratio(self) -> float:
        """Share of echoes without answer (1.0 when nothing was sent)."""
        # (sent - received) / sent, not 1 - received / sent: 2 lost of 100 is exactly 0.02,
        # so a loss at the threshold is not "over" it through a rounding error.
        return (self.sent - self.received) / self.sent if self.sent else 1.0


@dataclass(frozen=True, slots=True)
class PortalRound:
    """One probe of one portal from one vantage point."""

    portal: str  # portal id
    vantage: str  # "central" or an agent's name
    at: datetime
    ok: bool
    total_s: float | None
    failed_phase: str | None = None  # "dns", "connect", "tls", "http", "content"


@dataclass(frozen=True, slots=True)
class NodeRound:
    """One round of an upstream node or reference target."""

    node: str  # the node's SubjectKey.encoded: "upstream:pop-vnpt-1", "reference:10.0.0.1"
    at: datetime
    reachable: bool
    loss_ratio: float = 0.0  # of the round's echoes; a node losing them counts as bad
    sent: int = 0  # echoes sent (0: unknown; the ratio alone is judged)


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Thresholds and hysteresis for one link (the commune's effective thresholds)."""

    rtt_s: float = 0.050  # QCVN 34: mean latency <= 50 ms
    loss_ratio: float = 0.02
    utilization_ratio: float = 0.85
    enter_rounds: int = 3  # bad rounds among the last enter_window rounds that open an episode
    # Issue 4: a line down 20 s, up 20 s (2 bad, 2 good rounds) is never 3 bad in a row, yet
    # is offline half the time; 3 of 5 reports it, while one noisy round in 5 never does.
    enter_window: int = 5  # below enter_rounds counts as enter_rounds (3 in a row)
    exit_rounds: int = 5  # good rounds in a row that close it


@dataclass(frozen=True, slots=True)
class PortalPolicy:
    """Thresholds and hysteresis for portals."""

    slow_s: float = 5.0
    enter_rounds: int = 2
    enter_window: int = 5  # as LinkPolicy's: enter_rounds bad probes among the last enter_window
    exit_rounds: int = 3
    failing_share: float = 0.5  # share of vantage points failing that makes a portal incident


@dataclass(frozen=True, slots=True)
class NodePolicy:
    """Hysteresis for upstream nodes and reference targets.

    The defaults match LinkPolicy's so that an upstream node and the links behind it, failing in
    the same rounds, are confirmed down in the same round: the outage is then blamed on the node
    from the first evaluation, never first on each link.
    """

    loss_ratio: float = 0.02  # as LinkPolicy: a node losing echoes is judged like its links
    enter_rounds: int = 3
    enter_window: int = 5
    exit_rounds: int = 5


@dataclass(frozen=True, slots=True)
class PathHop:
    """One hop of a path trace toward a failing address (an MTR line)."""

    ttl: int
    address: str | None  # None: nothing answered at this TTL
    name: str = ""  # what the inventory calls that address ("POP VNPT số 1"), "" if unknown
    rtt_s: float | None = None  # median of the answers at this TTL
    sent: int = 0
    received: int = 0


@dataclass(frozen=True, slots=True)
class PathTrace:
    """Where the path from NetWatch toward an address breaks, as measured when it failed.

    alerts/ only carries it into the ticket's evidence; how it was measured is not its business.
    """

    target: str  # the address traced toward
    at: datetime
    hops: tuple[PathHop, ...]
    reached: bool  # the target itself answered

    def last_hop(self) -> PathHop | None:
        """The farthest hop that answered (where the path stops when not reached)."""
        answered = [h for h in self.hops if h.address is not None and h.received > 0]
        return answered[-1] if answered else None


@dataclass(frozen=True, slots=True)
class Measurements:
    """Figures measured for an incident's subject (None: not measured).

    The one evidence-figures type: health attaches it to incidents, the ticket keeps the first
    and the worst, the store keeps them as JSON and the notices say them.
    """

    loss_ratio: float | None = None
    rtt_median_s: float | None = None
    interface_up: bool | None = None
    utilization_ratio: float | None = None
    path: PathTrace | None = None  # where the path toward the subject broke, traced at opening
    rtt_max_s: float | None = None
    down_cause: DownCause | None = None
    # What the commune's agent saw from inside (its rounds, with their times): a path's echoes
    # toward the link's far end with the LAN gateway's answer, or the portal's timings over it.
    inside_paths: tuple[InsidePath, ...] = ()
    inside_portals: tuple[InsidePortal, ...] = ()


@dataclass(frozen=True, slots=True)
class InsidePath:
    """One WAN path in one round, seen from inside the commune (by its agent).

    alerts/ knows nothing of how the agent measured it or how it travelled: a fact with its time.
    """

    link: str  # the link's id, "24848/vnpt-tslcd"
    at: datetime  # when the agent measured it
    lan_up: bool | None  # the router answered on the LAN in that round (None: not measured)
    answered: bool  # the path's far end answered over this path
    loss_ratio: float | None = None
    rtt_median_s: float | None = None
    backfilled: bool = False  # reached the centre late: it waited on the box (lines down)
    received_at: datetime | None = None  # when the centre got it


@dataclass(frozen=True, slots=True)
class InsidePortal:
    """One portal over one WAN path in one round, seen from inside the commune."""

    portal: str
    link: str  # the link's id, "24848/vnpt-tslcd"
    at: datetime
    ok: bool
    total_s: float | None
    failed_phase: str | None = None
    dns_s: float | None = None
    connect_s: float | None = None
    tls_s: float | None = None
    first_byte_s: float | None = None


@dataclass(frozen=True, slots=True)
class SiteView:
    """What the centre knows of one commune's agent, as root cause needs it."""

    commune: str
    links: tuple[str, ...]  # the commune's link ids (the agent's paths among them)
    heard_at: datetime | None  # the agent's last live word (heartbeat or live round)
    # Recent live rounds per path and the backfilled rounds that prove a path down while the
    # LAN was up, oldest first (bounded by the judge that builds the view).
    paths: tuple[InsidePath, ...] = ()
    # The latest timings of each portal over each path (the evidence of a per-path verdict).
    portals: tuple[InsidePortal, ...] = ()


@dataclass(frozen=True, slots=True)
class InsidePolicy:
    """How the view from inside is judged (docs/alerting.md, "The view from inside")."""

    silent_after_s: float = 90.0  # no live word this long: the agent is silent
    # All paths down since T: a word heard later than T + this came through some path, so the
    # site is not dark (a heartbeat already on its way at the cut arrives within it).
    heard_grace_s: float = 15.0
    # A past outage proven by backfill stays an incident this long after the proof arrived
    # (the line is usually back by then): long enough for the ticket to open.
    backfill_hold_s: float = 120.0
    evidence_samples: int = 6  # inside rounds attached to a ticket: the first and the latest


@dataclass(frozen=True, slots=True)
class InsideView:
    """Every commune agent's facts at one moment, for root cause (alerts.rootcause.decide)."""

    at: datetime  # when the facts are judged (the evaluation's time)
    sites: Mapping[str, SiteView] = field(default_factory=dict)  # by commune code
    utilization: Mapping[str, float] = field(default_factory=dict)  # latest SNMP, by link id
    capacity_ratio: Mapping[str, float] = field(default_factory=dict)  # threshold, by link id
    policy: InsidePolicy = field(default_factory=InsidePolicy)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What root-cause analysis and ticket routing need to know about a link."""

    link: str
    province: str
    commune: str
    commune_name: str
    isp: str
    circuit: str
    upstream: str | None = None
    capacity_to_isp: bool = False  # also send capacity (congestion) tickets to the ISP


@dataclass(frozen=True, slots=True)
class UpstreamInfo:
    """An upstream node (district POP) and what hangs off it."""

    upstream: str
    isp: str
    name: str
    pinged: bool  # False: its state is inferred from its links
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Topology:
    """The shape of the network, from the inventory."""

    links: Mapping[str, LinkInfo]
    upstreams: Mapping[str, UpstreamInfo] = field(default_factory=dict)
    references: tuple[str, ...] = ()  # node keys of NetWatch's own reference targets

    def upstream_chain(self, upstream: str | None) -> list[str]:
        """A node and its ancestors (nearest first), stopping at unknown nodes and cycles."""
        out: list[str] = []
        while upstream is not None and upstream in self.upstreams and upstream not in out:
            out.append(upstream)
            upstream = self.upstreams[upstream].parent
        return out


S = TypeVar("S", LinkState, PortalState, NodeState)


@dataclass(frozen=True, slots=True)
class Status(Generic[S]):
    """The current judged state of one subject, for the status page and root-cause analysis."""

    subject: str
    state: S  # after hysteresis
    since: datetime  # first round of this state (the first round ever seen, for the initial OK)
    detail: str  # DownCause value or failed portal phase of the state; "" otherwise
    last_at: datetime  # time of the latest round
    last_round: S  # the latest round's own classification, before hysteresis
    last_detail: str = ""  # detail of the latest round
    # When its last two rounds judged good began, latest last (fewer before that many were
    # seen): how fresh a link's outage is next to its node's (alerts/rootcause.py, rule 2).
    good_at: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change that held long enough to count."""

    subject: str  # link "24848/vnpt-tslcd", portal "dvcqg@central", node "upstream:pop-1"
    old: str
    new: str
    at: datetime  # when the change was confirmed
    since: datetime  # first round of the new state
    detail: str = ""  # e.g. a DownCause value, a failed portal phase


class IncidentKind(enum.Enum):
    """Who is to blame, decided before anyone is told."""

    LINK_FAULT = "link_fault"  # down / lossy / slow: the ISP's
    CAPACITY = "capacity"  # congested: provincial IT (and the ISP where configured)
    UPSTREAM_OUTAGE = "upstream_outage"  # one ticket for the node; its communes linked
    PORTAL_OUTAGE = "portal_outage"  # the portal fails from most vantage points: not the ISP's
    MONITOR_CONNECTIVITY = "monitor_connectivity"  # NetWatch's own line: no ISP ticket
    # Every path of a commune down and its agent silent: power or LAN, provincial IT and the
    # commune's own contacts, never an ISP (issue 11).
    SITE_UNREACHABLE = "site_unreachable"
    AGENT_HEALTH = "agent_health"  # the commune agent is silent while its lines answer


class Route(enum.Enum):
    """Who a ticket goes to."""

    ISP = "isp"
    PROVINCIAL_IT = "provincial_it"
    ISP_AND_PROVINCIAL_IT = "isp_and_provincial_it"
    # Provincial IT and the commune's own contacts (the incident key names the commune).
    PROVINCIAL_IT_AND_COMMUNE = "provincial_it_and_commune"


@dataclass(frozen=True, slots=True)
class Incident:
    """One thing that is wrong now, with its root cause decided."""

    key: SubjectKey  # stable per subject: link, upstream node, portal or the monitor
    kind: IncidentKind
    state: str  # the LinkState / PortalState / NodeState value behind it
    since: datetime
    route: Route
    isp: str | None = None
    links: tuple[str, ...] = ()  # links affected (an upstream outage lists its communes' links)
    detail: str = ""
    # What the health monitor measured of the subject in the round that judged it (a link's
    # loss, RTT, interface state and utilization); None where nothing is measured per subject.
    measured: Measurements | None = None
