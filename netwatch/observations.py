"""What probe rounds hand to metrics, health evaluator and store: one typed interface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from alerts.subject import SubjectKey
from netwatch.plan import IcmpTarget, PortalJob, SnmpJob
from probes.dns import DnsResult
from probes.http import HttpResult
from probes.icmp import PingResult
from probes.snmp_types import RouterSample

Kind = Literal["icmp", "snmp", "http"]


@dataclass(frozen=True, slots=True)
class InterfaceReading:
    """One WAN interface of a router as seen in one SNMP round."""

    link_key: SubjectKey  # the link's (the plan's LinkRef.key)
    if_index: int | None  # None: the configured name was not found on the router
    oper_up: bool | None
    in_bps: float | None
    out_bps: float | None
    in_utilization_ratio: float | None
    out_utilization_ratio: float | None
    in_octets: int | None
    out_octets: int | None
    in_errors: int | None
    out_errors: int | None
    in_discards: int | None
    out_discards: int | None


@dataclass(frozen=True, slots=True)
class IcmpObservation:
    """One target's ping round."""

    target: IcmpTarget
    result: PingResult


@dataclass(frozen=True, slots=True)
class SnmpObservation:
    """One router's poll, with rates computed against the previous poll."""

    job: SnmpJob
    sample: RouterSample
    interfaces: tuple[InterfaceReading, ...]
    rebooted: bool
    # When the interval of the rates began (the previous good poll): a utilization reading
    # speaks for [rates_since, sample.taken_at] only. None: no rates in this poll.
    rates_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class PortalObservation:
    """One portal's HTTPS timing and, when it has a name, its DNS resolution."""

    job: PortalJob
    http: HttpResult
    dns: DnsResult | None


@dataclass(frozen=True, slots=True)
class RoundReport:
    """How one round of one probe kind went: NetWatch's own health."""

    kind: Kind
    scheduled_at: datetime
    started_at: datetime
    lag_s: float  # how late the round started against its schedule
    duration_s: float
    targets: int
    skipped_rounds: int  # slots missed because the previous round overran
    # Which probe worker ran it (its shard, docs/bus.md); 0 in the single process. Reports of
    # one kind come from every shard, and the round metrics add them up per kind.
    shard: int = 0


Observation = IcmpObservation | SnmpObservation | PortalObservation


class ObservationSink(Protocol):
    """Anything that consumes observations: metrics, health evaluator, store."""

    def observe(self, batch: Sequence[Observation]) -> None:
        """Take one round's observations (called on the event loop; must not block)."""

    def round_done(self, report: RoundReport) -> None:
        """Take the report of a finished round."""
