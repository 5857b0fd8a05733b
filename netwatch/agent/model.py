"""The commune agent's contract with the centre (issue 11): what it is told, what it reports.

Shared by the agent box (``netwatch agent``) and the centre (``netwatch.inside``): both sides
import these types and nothing else of each other. Plain frozen dataclasses, no pydantic, so the
agent stays small (< 60 MB). The wire encoding (msgpack, versioned) is ``netwatch.agent.wire``.

Subjects (one commune's agent may publish only under its own commune's prefix; the centre's
nats-server enforces it per credential, docs/agent.md):

    nw.agent.v1.<commune>.obs     InsideRound, one per agent round, buffered on the box
                                  (JetStream, <= 72 h) and forwarded in order, exactly once
    nw.agent.v1.<commune>.hb      AgentHeartbeat, live only (never buffered), every 10 s
    nw.agent.v1.<commune>.cfg     request/reply: the agent asks, the centre answers AgentConfig

Times are timezone-aware UTC. ``commune`` is the official commune code as the inventory writes
it ("24848"); ``link`` is the link's id within its commune ("vnpt-tslcd"), so the centre's link
key is ``f"{commune}/{link}"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

SUBJECT_PREFIX: Final = "nw.agent.v1"
HEARTBEAT_INTERVAL_S: Final = 10.0


def obs_subject(commune: str) -> str:
    """Where an agent's rounds go: ``nw.agent.v1.24848.obs``."""
    return f"{SUBJECT_PREFIX}.{commune}.obs"


def heartbeat_subject(commune: str) -> str:
    """Where an agent's live heartbeats go: ``nw.agent.v1.24848.hb``."""
    return f"{SUBJECT_PREFIX}.{commune}.hb"


def config_subject(commune: str) -> str:
    """Where an agent asks for its configuration: ``nw.agent.v1.24848.cfg``."""
    return f"{SUBJECT_PREFIX}.{commune}.cfg"


# --- what the centre tells an agent --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathConfig:
    """One WAN path measured apart from the others: traffic from ``source`` leaves by ``link``.

    The commune router routes by source address (policy routing), or the box has one interface
    per path (``interface``, bound with SO_BINDTODEVICE); at least one of the two is set.
    """

    link: str  # the link's id within the commune: "vnpt-tslcd"
    source: str | None  # the box's address whose traffic the router sends by this link
    interface: str | None  # or: the box's interface on this path
    target: str  # pinged over the path: the link's far end (its upstream node's address)


@dataclass(frozen=True, slots=True)
class PortalConfig:
    """A portal timed over every path as an officer's browser reaches it."""

    id: str  # the inventory's portal id
    url: str
    expect_status: tuple[int, ...]
    expect_text: str | None
    ca_pem: str | None  # the CA to trust (PEM text), None: the system's
    dns_resolver: str | None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """A front-office device on the LAN (kiosk, queue machine, printer, camera)."""

    name: str
    kind: Literal["kiosk", "queue", "printer", "camera", "other"]
    address: str


@dataclass(frozen=True, slots=True)
class ThroughputConfig:
    """An optional short download per path; off unless provincial IT turns it on."""

    enabled: bool = False
    url: str | None = None
    max_bytes: int = 2_000_000
    every_s: float = 3600.0  # at most one sample per path this often
    rate_limit_bps: int = 2_000_000  # never read faster than this


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything one agent measures: its commune's part of the inventory, nothing else."""

    commune: str
    agent: str  # the agent's id (one per commune box)
    revision: str  # a digest of the content: changes whenever the config does
    interval_s: float  # one round every interval
    echoes: int  # echoes per target per round
    lan_gateway: str | None  # the router's LAN address
    paths: tuple[PathConfig, ...]
    portals: tuple[PortalConfig, ...]
    devices: tuple[DeviceConfig, ...]
    throughput: ThroughputConfig = ThroughputConfig()


# --- what an agent reports -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """One target's echoes in one round (the LAN gateway, a path's far end, a device)."""

    target: str  # the address pinged
    sent: int
    received: int
    rtt_median_s: float | None
    rtt_max_s: float | None
    failure: str | None  # probes.icmp.PingFailure value, None when answered

    @property
    def answered(self) -> bool:
        """At least one echo came back."""
        return self.received > 0


@dataclass(frozen=True, slots=True)
class PathPing:
    """A WAN path's round from inside: echoes from the path's source to its target."""

    link: str
    ping: Ping


@dataclass(frozen=True, slots=True)
class PortalTiming:
    """One portal over one path, phase by phase (seconds; None: phase not reached)."""

    portal: str
    link: str
    ok: bool
    dns_s: float | None
    connect_s: float | None
    tls_s: float | None
    first_byte_s: float | None
    total_s: float
    status: int | None
    failure: str | None  # probes.http.HttpFailure value
    failed_phase: str | None  # probes.http.HttpPhase value: "dns", "connect", "tls", ...


@dataclass(frozen=True, slots=True)
class DevicePing:
    """A front-office device's round."""

    name: str
    ping: Ping


@dataclass(frozen=True, slots=True)
class Throughput:
    """A short download over one path."""

    link: str
    bytes: int
    duration_s: float
    error: str | None = None

    @property
    def bps(self) -> float | None:
        """Bits per second, None when nothing was read."""
        return self.bytes * 8 / self.duration_s if self.bytes and self.duration_s > 0 else None


@dataclass(frozen=True, slots=True)
class InsideRound:
    """One round of one agent: the view from inside the commune centre.

    ``seq`` counts the agent's rounds from 1 and never repeats for one ``agent`` (kept on the
    box's disk across restarts): it orders the rounds and names the message (``Nats-Msg-Id``
    ``f"{agent}:{seq}"``), so a round forwarded twice is stored once.
    """

    commune: str
    agent: str
    seq: int
    at: datetime  # when the round started (the box's clock, UTC)
    config_revision: str
    gateway: Ping | None  # the router's LAN address; None: not configured
    paths: tuple[PathPing, ...]
    portals: tuple[PortalTiming, ...]
    devices: tuple[DevicePing, ...]
    throughput: tuple[Throughput, ...] = ()

    @property
    def lan_up(self) -> bool | None:
        """The router answered on the LAN (None: no gateway configured)."""
        return None if self.gateway is None else self.gateway.answered

    def path(self, link: str) -> PathPing | None:
        """This round's ping over one link's path."""
        return next((p for p in self.paths if p.link == link), None)


@dataclass(frozen=True, slots=True)
class AgentHeartbeat:
    """The agent's own health, sent live every ``HEARTBEAT_INTERVAL_S`` (never buffered)."""

    commune: str
    agent: str
    version: str  # NetWatch's version on the box
    at: datetime
    config_revision: str | None  # None: no config yet (never reached the centre)
    last_seq: int  # the last round measured
    buffer_messages: int  # rounds on the box not yet acknowledged by the centre
    buffer_bytes: int
    buffer_oldest_at: datetime | None  # the oldest of them
    dropped_total: int  # rounds dropped from the buffer because it was full (oldest first)
    uptime_s: float
