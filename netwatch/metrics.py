"""Prometheus exposition of every target's latest measurement, and of NetWatch's own health.

The per-target families (~10,000 ICMP targets, 3,321 routers at national scale) are rendered
straight to the text format from label strings escaped once, when the collector is built:
client_python's generic exposition spent 2.7 s of CPU per national scrape (33 MB, measured in
benchmarks/bench_national.py), which every 15 s scrape would repeat. NetWatch's own health
(rounds, lag, failures, targets) stays a client_python Collector on an explicit registry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from alerts.subject import SubjectKey
from netwatch.observations import (
    IcmpObservation,
    Observation,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)
from netwatch.plan import IcmpTarget, LinkRef, Plan
from netwatch.state import STALE_ROUNDS

if TYPE_CHECKING:
    from probes.icmp import PingerStats
    from probes.snmp_wire import WireStats

# RTT buckets from LAN (0.5 ms) to a satellite hop (2 s): fine enough for SmokePing-like
# heatmaps of Vietnamese fibre/xDSL/4G links.
RTT_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.0,
)
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


_CHUNK_LINES = 2000
# Per-interface counters and rates with a direction label: (name, type, help, in field, out field,
# scale). Rates are exported in bytes per second, Prometheus's base unit (`promtool check
# metrics` warns on bits, issue 15): the probes measure bits (what ISPs sell), hence the 1/8.
_BITS_TO_BYTES = 1 / 8
_DIRECTIONAL = (
    (
        "netwatch_link_utilization_ratio",
        "gauge",
        "Traffic over the contracted bandwidth, per direction (0-1)",
        "in_utilization_ratio",
        "out_utilization_ratio",
        1.0,
    ),
    (
        "netwatch_link_traffic_bytes_per_second",
        "gauge",
        "Traffic rate between the last two polls",
        "in_bps",
        "out_bps",
        _BITS_TO_BYTES,
    ),
    (
        "netwatch_interface_octets_total",
        "counter",
        "Interface octet counter as read from the router",
        "in_octets",
        "out_octets",
        1.0,
    ),
    (
        "netwatch_interface_errors_total",
        "counter",
        "Interface error counter as read from the router",
        "in_errors",
        "out_errors",
        1.0,
    ),
    (
        "netwatch_interface_discards_total",
        "counter",
        "Interface discard counter as read from the router",
        "in_discards",
        "out_discards",
        1.0,
    ),
)


Family = tuple[str, str, str, Iterable[str]]  # name, type, help, sample lines


def _family(
    name: str, kind: str, help_text: str, pairs: Iterable[tuple[str, float | None]]
) -> Family:
    """One family whose samples are (label set, value) pairs."""
    return (name, kind, help_text, _lines(name, pairs))


IGNORED_PACKETS = "netwatch_probe_ignored_packets_total"
IGNORED_PACKETS_HELP = (
    "Datagrams the probes received, counted and ignored (not an answer of theirs)"
)


class _Pinger(Protocol):
    def stats(self) -> PingerStats: ...


class _Poller(Protocol):
    def stats(self) -> WireStats: ...


def ignored_packets(pinger: _Pinger | None, snmp: _Poller | None) -> list[tuple[str, str, int]]:
    """(kind, reason, count) of what the ICMP pinger and the SNMP poller read and ignored:
    garbage, foreign, late or duplicate replies (issue 15: counted, never a crash)."""
    out: list[tuple[str, str, int]] = []
    if pinger is not None:
        p = pinger.stats()
        out += [
            ("icmp", "foreign", p.foreign),
            ("icmp", "late", p.late),
            ("icmp", "duplicate", p.duplicate),
            ("icmp", "malformed", p.malformed),
            ("icmp", "other_type", p.other_types),
        ]
    if snmp is not None:
        w = snmp.stats()
        out += [("snmp", "undecodable", w.decode_errors), ("snmp", "stray", w.stray)]
    return out


def ignored_packets_family(pinger: _Pinger | None, snmp: _Poller | None) -> Family:
    """`netwatch_probe_ignored_packets_total{kind,reason}` of the single process's probes."""
    pairs = (
        (labelset(("kind", "reason"), (kind, reason)), float(count))
        for kind, reason, count in ignored_packets(pinger, snmp)
    )
    return _family(IGNORED_PACKETS, "counter", IGNORED_PACKETS_HELP, pairs)


def _scaled(value: float | None, scale: float) -> float | None:
    """A sample value in the exported unit; None (no sample) stays None."""
    return value if value is None or scale == 1.0 else value * scale


def _lines(name: str, pairs: Iterable[tuple[str, float | None]]) -> Iterator[str]:
    """Sample lines of one family; a None value means no sample."""
    for labels, value in pairs:
        if value is not None:
            yield f"{name}{{{labels}}} {_num(value)}\n"


def _histogram_lines(links: Iterable[_Icmp]) -> Iterator[str]:
    for s in links:
        running = 0
        for le, count in zip(_LE, s.rtt_buckets, strict=True):
            running += count
            yield f'netwatch_link_rtt_seconds_bucket{{{s.labels},le="{le}"}} {running}\n'
        yield f"netwatch_link_rtt_seconds_count{{{s.labels}}} {running}\n"
        yield f"netwatch_link_rtt_seconds_sum{{{s.labels}}} {_num(s.rtt_sum_s)}\n"


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
    started_at: datetime | None = None  # the shard's last round


def _per_kind(
    rounds: dict[tuple[str, int], _Round], retired: dict[str, _Round] | None = None
) -> list[tuple[str, _Round]]:
    """The round series of each kind over its shards (probe workers, docs/bus.md), with the
    meaning they have in one process: the slowest and latest shard's last round, the rounds run
    (the busiest shard's count: every shard runs every slot) and every slot any shard skipped.
    Per-shard figures are on each probe worker's own /metrics. `retired`: what forgotten shards
    had counted, per kind, so that the counters never go down."""
    merged: dict[str, _Round] = {}
    for kind, r in (retired or {}).items():
        merged[kind] = _Round(0.0, 0.0, 0, r.rounds_total, r.skipped_total)
    for (kind, _shard), r in sorted(rounds.items()):
        m = merged.get(kind)
        if m is None:
            merged[kind] = _Round(r.duration_s, r.lag_s, r.targets, r.rounds_total, r.skipped_total)
            continue
        m.duration_s = max(m.duration_s, r.duration_s)
        m.lag_s = max(m.lag_s, r.lag_s)
        m.targets += r.targets
        m.rounds_total = max(m.rounds_total, r.rounds_total)
        m.skipped_total += r.skipped_total
    return sorted(merged.items())


class MetricsCollector:
    """Keeps the latest measurement of every target; renders it when Prometheus scrapes."""

    def __init__(self, plan: Plan) -> None:
        self._icmp: dict[SubjectKey, _Icmp] = {}
        self._link_labels: dict[SubjectKey, str] = {}
        for t in plan.icmp:
            if t.link is not None:
                labels = link_labelset(t.link)
                self._link_labels[t.key] = labels
            else:
                node = t.key.name
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
                self._link_labels.setdefault(iface.link.key, link_labelset(iface.link))
        self._portal_labels = {
            job.key: labelset(("portal", "portal_name"), (job.portal, job.name))
            for job in plan.portals
        }
        self._snmp: dict[SubjectKey, SnmpObservation] = {}
        self._reboots: dict[SubjectKey, int] = {}
        self._portals: dict[SubjectKey, PortalObservation] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._rounds: dict[tuple[str, int], _Round] = {}  # (kind, shard)
        self._retired: dict[str, _Round] = {}  # by kind: the counts of forgotten shards
        self._intervals = plan.intervals()
        self._plan_counts = plan.counts()
        self._sources: list[Callable[[], Iterable[Family]]] = []

    def register(self, registry: CollectorRegistry) -> None:
        """Add NetWatch's own health metrics to an explicit registry."""
        registry.register(self)

    def add_families(self, source: Callable[[], Iterable[Family]]) -> None:
        """Stream more per-target families after the probes' (netwatch/ops_metrics.py)."""
        self._sources.append(source)

    def exposition(self, registry: CollectorRegistry) -> bytes:
        """The whole /metrics body: the registry's families, then every target's."""
        return generate_latest(registry) + b"".join(self.render_chunks())

    # -- ObservationSink ---------------------------------------------------------------
    def observe(self, batch: Sequence[Observation]) -> None:
        """Fold one round's observations into the current values."""
        for obs in batch:
            if isinstance(obs, IcmpObservation):
                self._observe_icmp(obs)
            elif isinstance(obs, SnmpObservation):
                if obs.job.key not in self._router_labels or any(
                    r.link_key not in self._link_labels for r in obs.interfaces
                ):
                    continue  # polled as a reload removed it: no series any more
                self._snmp[obs.job.key] = obs
                if obs.rebooted:
                    self._reboots[obs.job.key] = self._reboots.get(obs.job.key, 0) + 1
                if obs.sample.failure is not None:
                    self._fail("snmp", obs.sample.failure.value)
            else:
                if obs.job.key not in self._portal_labels:
                    continue  # probed as a reload removed it
                self._portals[obs.job.key] = obs
                if obs.http.failure is not None:
                    self._fail("http", obs.http.failure.value)
                if obs.dns is not None and obs.dns.failure is not None:
                    self._fail("dns", obs.dns.failure.value)

    def round_done(self, report: RoundReport) -> None:
        """Record NetWatch's own round health; forget shards of the kind that stopped reporting
        (netwatch.state.STALE_ROUNDS intervals), keeping what they counted."""
        r = self._rounds.setdefault((report.kind, report.shard), _Round())
        r.duration_s = report.duration_s
        r.lag_s = report.lag_s
        r.targets = report.targets
        r.rounds_total += 1
        r.skipped_total += report.skipped_rounds
        r.started_at = report.started_at
        interval_s = self._intervals.get(report.kind)
        if not interval_s:
            return
        before = report.started_at - timedelta(seconds=STALE_ROUNDS * interval_s)
        for key, old in list(self._rounds.items()):
            if key[0] == report.kind and old.started_at is not None and old.started_at < before:
                del self._rounds[key]
                kept = self._retired.setdefault(report.kind, _Round())
                kept.rounds_total = max(kept.rounds_total, old.rounds_total)
                kept.skipped_total += old.skipped_total

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
    def render_chunks(self) -> Iterator[bytes]:
        """Every target's families, encoded, a few thousand lines at a time: a national scrape
        (~45 MB) never sits in memory whole, and the event loop gets turns between chunks."""
        buffer: list[str] = []
        for name, kind, help_text, lines in self._families():
            buffer.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            for line in lines:
                buffer.append(line)
                if len(buffer) >= _CHUNK_LINES:
                    yield "".join(buffer).encode()
                    buffer.clear()
        if buffer:
            yield "".join(buffer).encode()

    def _families(self) -> Iterator[Family]:
        # Snapshots of the lists, so a round landing between two chunks never changes the size
        # of what is being iterated; values may be one round newer in later families.
        links = [s for s in self._icmp.values() if s.target.link is not None and s.measured]
        nodes = [s for s in self._icmp.values() if s.target.link is None and s.measured]
        yield from self._link_families(links)
        yield _family(
            "netwatch_node_up",
            "gauge",
            "1 if an upstream node, reference target or device answered in the last round",
            ((s.labels, s.up) for s in nodes),
        )
        yield _family(
            "netwatch_node_rtt_median_seconds",
            "gauge",
            "Median RTT of the last round",
            ((s.labels, s.rtt_median_s) for s in nodes),
        )
        yield from self._router_families(list(self._snmp.items()))
        yield from self._portal_families(list(self._portals.items()))
        for source in self._sources:
            yield from source()

    def _link_families(self, links: list[_Icmp]) -> Iterator[Family]:
        def gauge(name: str, help_text: str, field_name: str) -> Family:
            pairs = ((s.labels, getattr(s, field_name)) for s in links)
            return (name, "gauge", help_text, _lines(name, pairs))

        def counter(name: str, help_text: str, field_name: str) -> Family:
            pairs = ((s.labels, getattr(s, field_name)) for s in links)
            return (name, "counter", help_text, _lines(name, pairs))

        yield gauge(
            "netwatch_link_up", "1 if the link answered at least one echo in the last round", "up"
        )
        yield gauge(
            "netwatch_link_loss_ratio", "Share of echoes lost in the last round (0-1)", "loss_ratio"
        )
        stats = (
            (f'{s.labels},stat="{stat}"', value)
            for s in links
            for stat, value in (
                ("min", s.rtt_min_s),
                ("median", s.rtt_median_s),
                ("max", s.rtt_max_s),
            )
        )
        yield _family(
            "netwatch_link_round_rtt_seconds",
            "gauge",
            "Round-trip time statistics of the last round",
            stats,
        )
        yield gauge(
            "netwatch_link_jitter_seconds",
            "Mean absolute difference of consecutive RTTs in the last round",
            "jitter_s",
        )
        yield counter(
            "netwatch_link_echoes_sent_total", "Echo requests sent to the link", "sent_total"
        )
        yield counter(
            "netwatch_link_echoes_received_total",
            "Echo replies received from the link",
            "received_total",
        )
        yield (
            "netwatch_link_rtt_seconds",
            "histogram",
            "Round-trip time of every echo reply",
            _histogram_lines(links),
        )

    def _router_families(
        self, routers: list[tuple[SubjectKey, SnmpObservation]]
    ) -> Iterator[Family]:
        def per_router(
            name: str,
            kind: str,
            help_text: str,
            value: Callable[[SubjectKey, SnmpObservation], float | None],
        ) -> Family:
            pairs = ((self._router_labels[key], value(key, obs)) for key, obs in routers)
            return (name, kind, help_text, _lines(name, pairs))

        yield per_router(
            "netwatch_router_up",
            "gauge",
            "1 if the router answered SNMP in the last round",
            lambda _k, o: 1.0 if o.sample.failure is None else 0.0,
        )
        yield per_router(
            "netwatch_router_uptime_seconds",
            "gauge",
            "SNMP agent uptime (sysUpTime)",
            lambda _k, o: o.sample.uptime_s,
        )
        yield per_router(
            "netwatch_router_reboots_total",
            "counter",
            "Reboots seen (sysUpTime went backwards)",
            lambda k, _o: self._reboots.get(k, 0),
        )
        rows = [
            (self._link_labels[reading.link_key], iface.link.bandwidth_bps, reading)
            for _key, obs in routers
            for iface, reading in zip(obs.job.interfaces, obs.interfaces, strict=True)
        ]
        yield _family(
            "netwatch_link_bandwidth_bytes_per_second",
            "gauge",
            "Contracted bandwidth of the link",
            ((lb, bw * _BITS_TO_BYTES) for lb, bw, _r in rows),
        )
        oper = ((lb, None if r.oper_up is None else float(r.oper_up)) for lb, _bw, r in rows)
        yield _family(
            "netwatch_interface_oper_up",
            "gauge",
            "1 if the link's router interface is up (ifOperStatus)",
            oper,
        )
        for name, kind, help_text, field_in, field_out, scale in _DIRECTIONAL:
            pairs = (
                (f'{lb},direction="{direction}"', _scaled(getattr(r, field_name), scale))
                for lb, _bw, r in rows
                for direction, field_name in (("in", field_in), ("out", field_out))
            )
            yield (name, kind, help_text, _lines(name, pairs))

    def _portal_families(
        self, portals: list[tuple[SubjectKey, PortalObservation]]
    ) -> Iterator[Family]:
        rows = [(self._portal_labels[key], obs) for key, obs in portals]
        yield _family(
            "netwatch_portal_up",
            "gauge",
            "1 if the portal answered as expected in the last round",
            ((pl, 1.0 if o.http.failure is None else 0.0) for pl, o in rows),
        )
        phases = (
            (f'{pl},phase="{name}"', value)
            for pl, o in rows
            for name, value in (
                ("dns", o.http.dns_s),
                ("connect", o.http.connect_s),
                ("tls", o.http.tls_s),
                ("first_byte", o.http.first_byte_s),
                ("transfer", o.http.transfer_s),
                ("total", o.http.total_s),
            )
        )
        yield _family(
            "netwatch_portal_phase_seconds",
            "gauge",
            "Duration of each phase of the last probe",
            phases,
        )
        yield _family(
            "netwatch_portal_http_status_code",
            "gauge",
            "HTTP status of the last probe",
            ((pl, o.http.status) for pl, o in rows),
        )
        expiry = (
            (pl, None if o.http.cert_days_left is None else o.http.cert_days_left * 86400.0)
            for pl, o in rows
        )
        yield _family(
            "netwatch_portal_tls_cert_expiry_seconds",
            "gauge",
            "Seconds until the portal's TLS certificate expires",
            expiry,
        )
        dns_rows = [
            (f'{pl},resolver="{_escape(o.dns.resolver)}"', o.dns)
            for pl, o in rows
            if o.dns is not None
        ]
        yield _family(
            "netwatch_dns_lookup_seconds",
            "gauge",
            "Time the resolver took to answer for the portal name",
            ((dl, d.rtt_s) for dl, d in dns_rows),
        )
        yield _family(
            "netwatch_dns_up",
            "gauge",
            "1 if the resolver answered with an address",
            ((dl, 1.0 if d.failure is None else 0.0) for dl, d in dns_rows),
        )

    def reload(self, plan: Plan) -> None:
        """A reloaded plan: the series of targets that left it go, new targets get theirs from
        their first round; a target measured as before keeps its counters and histogram."""
        fresh = MetricsCollector(plan)
        kept = {
            key: state
            for key, state in self._icmp.items()
            if key in fresh._icmp and fresh._icmp[key].target == state.target
        }
        self._icmp = {**fresh._icmp, **kept}
        self._link_labels = fresh._link_labels
        self._router_labels = fresh._router_labels
        self._portal_labels = fresh._portal_labels
        self._snmp = {
            k: v
            for k, v in self._snmp.items()
            if k in fresh._router_labels
            and all(r.link_key in fresh._link_labels for r in v.interfaces)
        }
        self._reboots = {k: v for k, v in self._reboots.items() if k in fresh._router_labels}
        self._portals = {k: v for k, v in self._portals.items() if k in fresh._portal_labels}
        self._plan_counts = fresh._plan_counts
        self._intervals = fresh._intervals

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
        for kind, r in _per_kind(self._rounds, self._retired):
            duration.add_metric([kind], r.duration_s)
            lag.add_metric([kind], r.lag_s)
            rounds.add_metric([kind], r.rounds_total)
            skipped.add_metric([kind], r.skipped_total)
        yield from (failures, duration, lag, rounds, skipped, targets)
