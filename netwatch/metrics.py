"""Prometheus exposition of every target's latest measurement, and of NetWatch's own health.

The per-target families (~10,000 ICMP targets, 3,321 routers at national scale) are rendered
straight to the text format from label strings escaped once, when the collector is built:
client_python's generic exposition spent 2.7 s of CPU per national scrape (33 MB, measured in
benchmarks/bench_national.py), which every 15 s scrape would repeat. NetWatch's own health
(rounds, lag, failures, targets) stays a client_python Collector on an explicit registry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
_LE = (*(repr(b) for b in RTT_BUCKETS_S), "+Inf")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labelset(names: Sequence[str], values: Sequence[str]) -> str:
    """'a="1",b="x"': a label set in exposition syntax, escaped."""
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def link_labelset(ref: LinkRef) -> str:
    """The label set of a link's series."""
    values = (ref.province, ref.commune, ref.commune_name, ref.link, ref.isp, ref.path)
    return labelset(LINK_LABELS, values)


def _num(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Family:
    """Lines of one metric family in the text exposition format (version 0.0.4)."""

    __slots__ = ("lines", "name")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.lines = [f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"]

    def add(self, labels: str, value: float, suffix: str = "") -> None:
        self.lines.append(f"{self.name}{suffix}{{{labels}}} {_num(value)}\n")


@dataclass(slots=True)
class _Icmp:
    target: IcmpTarget
    labels: str  # escaped once: link labels, or role/node/name/commune
    up: float = 0.0
    measured: bool = False
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
    """Keeps the latest measurement of every target; renders it when Prometheus scrapes."""

    def __init__(self, plan: Plan) -> None:
        self._icmp: dict[str, _Icmp] = {}
        self._link_labels: dict[str, str] = {}
        for t in plan.icmp:
            if t.link is not None:
                labels = link_labelset(t.link)
                self._link_labels[t.key] = labels
            else:
                node = t.key.split(":", 1)[1]
                labels = labelset(
                    ("role", "node", "name", "commune"), (t.role, node, t.name, t.commune)
                )
            self._icmp[t.key] = _Icmp(t, labels)
        self._router_labels = {
            job.key: labelset(
                ("province", "commune", "commune_name"),
                (job.province, job.commune, job.commune_name),
            )
            for job in plan.snmp
        }
        for job in plan.snmp:
            for iface in job.interfaces:
                key = f"link:{iface.link.commune}/{iface.link.link}"
                self._link_labels.setdefault(key, link_labelset(iface.link))
        self._portal_labels = {
            job.key: labelset(("portal", "portal_name"), (job.portal, job.name))
            for job in plan.portals
        }
        self._snmp: dict[str, SnmpObservation] = {}
        self._reboots: dict[str, int] = {}
        self._portals: dict[str, PortalObservation] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._rounds: dict[str, _Round] = {}
        self._plan_counts = plan.counts()

    def register(self, registry: CollectorRegistry) -> None:
        """Add NetWatch's own health metrics to an explicit registry."""
        registry.register(self)

    def exposition(self, registry: CollectorRegistry) -> bytes:
        """The whole /metrics body: the registry's families, then every target's."""
        return generate_latest(registry) + "".join(self.render_targets()).encode()

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
        state.measured = True
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

    # -- the per-target exposition ---------------------------------------------------------
    def render_targets(self) -> Iterator[str]:
        """Every target's families as text-format chunks."""
        for family in (*self._links(), *self._nodes(), *self._routers(), *self._portals_families()):
            yield "".join(family.lines)

    def _links(self) -> Iterable[_Family]:
        up = _Family(
            "netwatch_link_up",
            "gauge",
            "1 if the link answered at least one echo in the last round",
        )
        loss = _Family(
            "netwatch_link_loss_ratio", "gauge", "Share of echoes lost in the last round (0-1)"
        )
        rtt = _Family(
            "netwatch_link_round_rtt_seconds",
            "gauge",
            "Round-trip time statistics of the last round",
        )
        jitter = _Family(
            "netwatch_link_jitter_seconds", "gauge",
            "Mean absolute difference of consecutive RTTs in the last round",
        )  # fmt: skip
        sent = _Family(
            "netwatch_link_echoes_sent_total", "counter", "Echo requests sent to the link"
        )
        received = _Family(
            "netwatch_link_echoes_received_total", "counter", "Echo replies received from the link"
        )
        hist = _Family(
            "netwatch_link_rtt_seconds", "histogram", "Round-trip time of every echo reply"
        )
        hist_lines = hist.lines
        for state in self._icmp.values():
            if state.target.link is None or not state.measured:
                continue
            labels = state.labels
            up.add(labels, state.up)
            loss.add(labels, state.loss_ratio)
            rtt.add(f'{labels},stat="min"', state.rtt_min_s)
            rtt.add(f'{labels},stat="median"', state.rtt_median_s)
            rtt.add(f'{labels},stat="max"', state.rtt_max_s)
            jitter.add(labels, state.jitter_s)
            sent.add(labels, state.sent_total)
            received.add(labels, state.received_total)
            running = 0
            for le, count in zip(_LE, state.rtt_buckets, strict=True):
                running += count
                hist_lines.append(
                    f'netwatch_link_rtt_seconds_bucket{{{labels},le="{le}"}} {running}\n'
                )
            hist.add(labels, running, "_count")
            hist.add(labels, state.rtt_sum_s, "_sum")
        return (up, loss, rtt, jitter, sent, received, hist)

    def _nodes(self) -> Iterable[_Family]:
        up = _Family(
            "netwatch_node_up", "gauge",
            "1 if an upstream node, reference target or device answered in the last round",
        )  # fmt: skip
        rtt = _Family("netwatch_node_rtt_median_seconds", "gauge", "Median RTT of the last round")
        for state in self._icmp.values():
            if state.target.link is not None or not state.measured:
                continue
            up.add(state.labels, state.up)
            rtt.add(state.labels, state.rtt_median_s)
        return (up, rtt)

    def _routers(self) -> Iterable[_Family]:
        router_up = _Family(
            "netwatch_router_up", "gauge", "1 if the router answered SNMP in the last round"
        )
        uptime = _Family("netwatch_router_uptime_seconds", "gauge", "SNMP agent uptime (sysUpTime)")
        reboots = _Family(
            "netwatch_router_reboots_total", "counter", "Reboots seen (sysUpTime went backwards)"
        )
        oper = _Family(
            "netwatch_interface_oper_up",
            "gauge",
            "1 if the link's router interface is up (ifOperStatus)",
        )
        util = _Family(
            "netwatch_link_utilization_ratio", "gauge",
            "Traffic over the contracted bandwidth, per direction (0-1)",
        )  # fmt: skip
        rate = _Family(
            "netwatch_link_traffic_bits_per_second",
            "gauge",
            "Traffic rate between the last two polls",
        )
        octets = _Family(
            "netwatch_interface_octets_total",
            "counter",
            "Interface octet counter as read from the router",
        )
        errors = _Family(
            "netwatch_interface_errors_total",
            "counter",
            "Interface error counter as read from the router",
        )
        discards = _Family(
            "netwatch_interface_discards_total", "counter",
            "Interface discard counter as read from the router",
        )  # fmt: skip
        bandwidth = _Family(
            "netwatch_link_bandwidth_bits_per_second", "gauge", "Contracted bandwidth of the link"
        )
        for key, obs in self._snmp.items():
            rl = self._router_labels[key]
            router_up.add(rl, 1.0 if obs.sample.failure is None else 0.0)
            if obs.sample.uptime_s is not None:
                uptime.add(rl, obs.sample.uptime_s)
            reboots.add(rl, self._reboots.get(key, 0))
            for iface, reading in zip(obs.job.interfaces, obs.interfaces, strict=True):
                labels = self._link_labels[reading.link_key]
                bandwidth.add(labels, iface.link.bandwidth_bps)
                if reading.oper_up is not None:
                    oper.add(labels, 1.0 if reading.oper_up else 0.0)
                for direction, u, bps, o, e, d in (
                    ("in", reading.in_utilization_ratio, reading.in_bps, reading.in_octets,
                     reading.in_errors, reading.in_discards),
                    ("out", reading.out_utilization_ratio, reading.out_bps, reading.out_octets,
                     reading.out_errors, reading.out_discards),
                ):  # fmt: skip
                    dl = f'{labels},direction="{direction}"'
                    for family, value in (
                        (util, u),
                        (rate, bps),
                        (octets, o),
                        (errors, e),
                        (discards, d),
                    ):
                        if value is not None:
                            family.add(dl, value)
        return (router_up, uptime, reboots, oper, util, rate, octets, errors, discards, bandwidth)

    def _portals_families(self) -> Iterable[_Family]:
        up = _Family(
            "netwatch_portal_up", "gauge", "1 if the portal answered as expected in the last round"
        )
        phase = _Family(
            "netwatch_portal_phase_seconds", "gauge", "Duration of each phase of the last probe"
        )
        status = _Family(
            "netwatch_portal_http_status_code", "gauge", "HTTP status of the last probe"
        )
        cert = _Family(
            "netwatch_portal_tls_cert_expiry_seconds", "gauge",
            "Seconds until the portal's TLS certificate expires",
        )  # fmt: skip
        dns_time = _Family(
            "netwatch_dns_lookup_seconds",
            "gauge",
            "Time the resolver took to answer for the portal name",
        )
        dns_up = _Family("netwatch_dns_up", "gauge", "1 if the resolver answered with an address")
        for key, obs in self._portals.items():
            pl = self._portal_labels[key]
            h = obs.http
            up.add(pl, 1.0 if h.failure is None else 0.0)
            for name, value in (
                ("dns", h.dns_s), ("connect", h.connect_s), ("tls", h.tls_s),
                ("first_byte", h.first_byte_s), ("transfer", h.transfer_s), ("total", h.total_s),
            ):  # fmt: skip
                if value is not None:
                    phase.add(f'{pl},phase="{name}"', value)
            if h.status is not None:
                status.add(pl, h.status)
            if h.cert_days_left is not None:
                cert.add(pl, h.cert_days_left * 86400.0)
            if obs.dns is not None:
                dl = f'{pl},resolver="{_escape(obs.dns.resolver)}"'
                dns_up.add(dl, 1.0 if obs.dns.failure is None else 0.0)
                if obs.dns.rtt_s is not None:
                    dns_time.add(dl, obs.dns.rtt_s)
        return (up, phase, status, cert, dns_time, dns_up)

    # -- Collector: NetWatch's own health ------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """NetWatch's own families (called by prometheus_client on scrape)."""
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
