"""Prometheus exposition: a collector that turns the latest observations into metric families.

One custom collector (client_python's one-method Collector protocol) on an explicit registry:
the rounds store plain numbers, and families are built only when Prometheus scrapes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from netwatch.observations import (
    IcmpObservation,
    Observation,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)
from netwatch.plan import IcmpTarget, LinkRef, Plan

# RTT buckets from LAN (0.5 ms) to a satellite hop (2 s): fine enough for SmokePing-like
# heatmaps of Vietnamese fibre/xDSL/4G links.
RTT_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0,
)  # fmt: skip
LINK_LABELS = ("province", "commune", "commune_name", "link", "isp", "path")


def link_labels(ref: LinkRef) -> list[str]:
    """Label values of a link, in LINK_LABELS order."""
    return [ref.province, ref.commune, ref.commune_name, ref.link, ref.isp, ref.path]


@dataclass(slots=True)
class _Icmp:
    target: IcmpTarget
    up: float = 0.0
    loss_ratio: float = float("nan")
    rtt_median_s: float = float("nan")
    rtt_min_s: float = float("nan")
    rtt_max_s: float = float("nan")
    jitter_s: float = float("nan")
    sent_total: int = 0
    received_total: int = 0
    rtt_buckets: list[int] = field(default_factory=lambda: [0] * (len(RTT_BUCKETS_S) + 1))
    rtt_sum_s: float = 0.0


@dataclass(slots=True)
class _Round:
    duration_s: float = 0.0
    lag_s: float = 0.0
    targets: int = 0
    rounds_total: int = 0
    skipped_total: int = 0


class MetricsCollector:
    """Keeps the latest measurement of every target and exposes it on scrape."""

    def __init__(self, plan: Plan) -> None:
        self._icmp: dict[str, _Icmp] = {t.key: _Icmp(t) for t in plan.icmp}
        self._snmp: dict[str, SnmpObservation] = {}
        self._reboots: dict[str, int] = {}
        self._portals: dict[str, PortalObservation] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._rounds: dict[str, _Round] = {}
        self._plan_counts = plan.counts()

    def register(self, registry: CollectorRegistry) -> None:
        """Add this collector to an explicit registry."""
        registry.register(self)

    # -- ObservationSink ---------------------------------------------------------------
    def observe(self, batch: Sequence[Observation]) -> None:
        """Fold one round's observations into the current values."""
        for obs in batch:
            if isinstance(obs, IcmpObservation):
                self._observe_icmp(obs)
            elif isinstance(obs, SnmpObservation):
                self._snmp[obs.job.key] = obs
                if obs.rebooted:
                    self._reboots[obs.job.key] = self._reboots.get(obs.job.key, 0) + 1
                if obs.sample.failure is not None:
                    self._fail("snmp", obs.sample.failure.value)
            else:
                self._portals[obs.job.key] = obs
                if obs.http.failure is not None:
                    self._fail("http", obs.http.failure.value)
                if obs.dns is not None and obs.dns.failure is not None:
                    self._fail("dns", obs.dns.failure.value)

    def round_done(self, report: RoundReport) -> None:
        """Record NetWatch's own round health."""
        r = self._rounds.setdefault(report.kind, _Round())
        r.duration_s = report.duration_s
        r.lag_s = report.lag_s
        r.targets = report.targets
        r.rounds_total += 1
        r.skipped_total += report.skipped_rounds

    def _fail(self, kind: str, reason: str) -> None:
        key = (kind, reason)
        self._failures[key] = self._failures.get(key, 0) + 1

    def _observe_icmp(self, obs: IcmpObservation) -> None:
        state = self._icmp.get(obs.target.key)
        if state is None:
            return
        r = obs.result
        nan = float("nan")
        state.up = 1.0 if r.received > 0 else 0.0
        state.loss_ratio = r.loss_ratio
        state.rtt_median_s = r.rtt_median_s if r.rtt_median_s is not None else nan
        state.rtt_min_s = r.rtt_min_s if r.rtt_min_s is not None else nan
        state.rtt_max_s = r.rtt_max_s if r.rtt_max_s is not None else nan
        state.jitter_s = r.jitter_s if r.jitter_s is not None else nan
        state.sent_total += r.sent
        state.received_total += r.received
        buckets = state.rtt_buckets
        for rtt in r.rtts_s:
            buckets[bisect_left(RTT_BUCKETS_S, rtt)] += 1
            state.rtt_sum_s += rtt
        if r.failure is not None:
            self._fail("icmp", r.failure.value)

    # -- Collector -----------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """Build the metric families (called by prometheus_client on scrape)."""
        yield from self._collect_links()
        yield from self._collect_other_icmp()
        yield from self._collect_snmp()
        yield from self._collect_portals()
        yield from self._collect_self()

    def _collect_links(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "netwatch_link_up",
            "1 if the link answered at least one echo in the last round",
            labels=LINK_LABELS,
        )
        loss = GaugeMetricFamily(
            "netwatch_link_loss_ratio",
            "Share of echoes lost in the last round (0-1)",
            labels=LINK_LABELS,
        )
        rtt = GaugeMetricFamily(
            "netwatch_link_round_rtt_seconds",
            "Round-trip time statistics of the last round",
            labels=(*LINK_LABELS, "stat"),
        )
        jitter = GaugeMetricFamily(
            "netwatch_link_jitter_seconds",
            "Mean absolute difference of consecutive RTTs in the last round",
            labels=LINK_LABELS,
        )
        sent = CounterMetricFamily(
            "netwatch_link_echoes_sent", "Echo requests sent to the link", labels=LINK_LABELS
        )
        received = CounterMetricFamily(
            "netwatch_link_echoes_received",
            "Echo replies received from the link",
            labels=LINK_LABELS,
        )
        hist = HistogramMetricFamily(
            "netwatch_link_rtt_seconds",
            "Round-trip time of every echo reply",
            labels=LINK_LABELS,
        )
        for state in self._icmp.values():
            ref = state.target.link
            if ref is None:
                continue
            labels = link_labels(ref)
            up.add_metric(labels, state.up)
            loss.add_metric(labels, state.loss_ratio)
            rtt.add_metric([*labels, "min"], state.rtt_min_s)
            rtt.add_metric([*labels, "median"], state.rtt_median_s)
            rtt.add_metric([*labels, "max"], state.rtt_max_s)
            jitter.add_metric(labels, state.jitter_s)
            sent.add_metric(labels, state.sent_total)
            received.add_metric(labels, state.received_total)
            hist.add_metric(labels, _cumulative(state.rtt_buckets), state.rtt_sum_s)
        yield from (up, loss, rtt, jitter, sent, received, hist)

    def _collect_other_icmp(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "netwatch_node_up",
            "1 if an upstream node, reference target or device answered in the last round",
            labels=("role", "node", "name", "commune"),
        )
        rtt = GaugeMetricFamily(
            "netwatch_node_rtt_median_seconds",
            "Median RTT of the last round",
            labels=("role", "node", "name", "commune"),
        )
        for state in self._icmp.values():
            t = state.target
            if t.link is not None:
                continue
            labels = [t.role, t.key.split(":", 1)[1], t.name, t.commune]
            up.add_metric(labels, state.up)
            rtt.add_metric(labels, state.rtt_median_s)
        yield from (up, rtt)

    def _collect_snmp(self) -> Iterator[Metric]:
        router_labels = ("province", "commune", "commune_name")
        router_up = GaugeMetricFamily(
            "netwatch_router_up",
            "1 if the router answered SNMP in the last round",
            labels=router_labels,
        )
        uptime = GaugeMetricFamily(
            "netwatch_router_uptime_seconds", "SNMP agent uptime (sysUpTime)", labels=router_labels
        )
        reboots = CounterMetricFamily(
            "netwatch_router_reboots",
            "Reboots seen (sysUpTime went backwards)",
            labels=router_labels,
        )
        oper = GaugeMetricFamily(
            "netwatch_interface_oper_up",
            "1 if the link's router interface is up (ifOperStatus)",
            labels=LINK_LABELS,
        )
        util = GaugeMetricFamily(
            "netwatch_link_utilization_ratio",
            "Traffic over the contracted bandwidth, per direction (0-1)",
            labels=(*LINK_LABELS, "direction"),
        )
        rate = GaugeMetricFamily(
            "netwatch_link_traffic_bits_per_second",
            "Traffic rate between the last two polls",
            labels=(*LINK_LABELS, "direction"),
        )
        octets = CounterMetricFamily(
            "netwatch_interface_octets",
            "Interface octet counter as read from the router",
            labels=(*LINK_LABELS, "direction"),
        )
        errors = CounterMetricFamily(
            "netwatch_interface_errors",
            "Interface error counter as read from the router",
            labels=(*LINK_LABELS, "direction"),
        )
        discards = CounterMetricFamily(
            "netwatch_interface_discards",
            "Interface discard counter as read from the router",
            labels=(*LINK_LABELS, "direction"),
        )
        bandwidth = GaugeMetricFamily(
            "netwatch_link_bandwidth_bits_per_second",
            "Contracted bandwidth of the link",
            labels=LINK_LABELS,
        )
        for key, obs in self._snmp.items():
            job = obs.job
            rl = [job.province, job.commune, job.commune_name]
            router_up.add_metric(rl, 1.0 if obs.sample.failure is None else 0.0)
            if obs.sample.uptime_s is not None:
                uptime.add_metric(rl, obs.sample.uptime_s)
            reboots.add_metric(rl, self._reboots.get(key, 0))
            for iface, reading in zip(job.interfaces, obs.interfaces, strict=True):
                labels = link_labels(iface.link)
                bandwidth.add_metric(labels, iface.link.bandwidth_bps)
                if reading.oper_up is not None:
                    oper.add_metric(labels, 1.0 if reading.oper_up else 0.0)
                for direction, u, bps, o, e, d in (
                    ("in", reading.in_utilization_ratio, reading.in_bps, reading.in_octets,
                     reading.in_errors, reading.in_discards),
                    ("out", reading.out_utilization_ratio, reading.out_bps, reading.out_octets,
                     reading.out_errors, reading.out_discards),
                ):  # fmt: skip
                    dl = [*labels, direction]
                    if u is not None:
                        util.add_metric(dl, u)
                    if bps is not None:
                        rate.add_metric(dl, bps)
                    if o is not None:
                        octets.add_metric(dl, o)
                    if e is not None:
                        errors.add_metric(dl, e)
                    if d is not None:
                        discards.add_metric(dl, d)
        yield from (
            router_up,
            uptime,
            reboots,
            oper,
            util,
            rate,
            octets,
            errors,
            discards,
            bandwidth,
        )

    def _collect_portals(self) -> Iterator[Metric]:
        labels = ("portal", "portal_name")
        up = GaugeMetricFamily(
            "netwatch_portal_up",
            "1 if the portal answered as expected in the last round",
            labels=labels,
        )
        phase = GaugeMetricFamily(
            "netwatch_portal_phase_seconds",
            "Duration of each phase of the last probe",
            labels=(*labels, "phase"),
        )
        status = GaugeMetricFamily(
            "netwatch_portal_http_status_code", "HTTP status of the last probe", labels=labels
        )
        cert = GaugeMetricFamily(
            "netwatch_portal_tls_cert_expiry_seconds",
            "Seconds until the portal's TLS certificate expires",
            labels=labels,
        )
        dns_time = GaugeMetricFamily(
            "netwatch_dns_lookup_seconds",
            "Time the resolver took to answer for the portal name",
            labels=(*labels, "resolver"),
        )
        dns_up = GaugeMetricFamily(
            "netwatch_dns_up",
            "1 if the resolver answered with an address",
            labels=(*labels, "resolver"),
        )
        for obs in self._portals.values():
            pl = [obs.job.portal, obs.job.name]
            h = obs.http
            up.add_metric(pl, 1.0 if h.failure is None else 0.0)
            for name, value in (
                ("dns", h.dns_s), ("connect", h.connect_s), ("tls", h.tls_s),
                ("first_byte", h.first_byte_s), ("transfer", h.transfer_s), ("total", h.total_s),
            ):  # fmt: skip
                if value is not None:
                    phase.add_metric([*pl, name], value)
            if h.status is not None:
                status.add_metric(pl, h.status)
            if h.cert_days_left is not None:
                cert.add_metric(pl, h.cert_days_left * 86400.0)
            if obs.dns is not None:
                dl = [*pl, obs.dns.resolver]
                dns_up.add_metric(dl, 1.0 if obs.dns.failure is None else 0.0)
                if obs.dns.rtt_s is not None:
                    dns_time.add_metric(dl, obs.dns.rtt_s)
        yield from (up, phase, status, cert, dns_time, dns_up)

    def _collect_self(self) -> Iterator[Metric]:
        failures = CounterMetricFamily(
            "netwatch_probe_failures",
            "Probe failures by kind and reason",
            labels=("kind", "reason"),
        )
        for (kind, reason), count in sorted(self._failures.items()):
            failures.add_metric([kind, reason], count)
        duration = GaugeMetricFamily(
            "netwatch_round_duration_seconds", "Duration of the last round", labels=("kind",)
        )
        lag = GaugeMetricFamily(
            "netwatch_round_lag_seconds", "How late the last round started", labels=("kind",)
        )
        rounds = CounterMetricFamily("netwatch_rounds", "Rounds completed", labels=("kind",))
        skipped = CounterMetricFamily(
            "netwatch_rounds_skipped",
            "Round slots skipped because a round overran",
            labels=("kind",),
        )
        targets = GaugeMetricFamily(
            "netwatch_targets", "Targets configured per probe kind", labels=("kind",)
        )
        for kind, count in self._plan_counts.items():
            targets.add_metric([kind], count)
        for kind, r in sorted(self._rounds.items()):
            duration.add_metric([kind], r.duration_s)
            lag.add_metric([kind], r.lag_s)
            rounds.add_metric([kind], r.rounds_total)
            skipped.add_metric([kind], r.skipped_total)
        yield from (failures, duration, lag, rounds, skipped, targets)


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*RTT_BUCKETS_S, float("inf")), buckets, strict=True):
        running += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
    return out
