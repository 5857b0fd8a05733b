"""The metrics collector: observations in, Prometheus families out (checked by promtool)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from alerts.subject import SubjectKey
from netwatch.inventory import load_inventory
from netwatch.metrics import MetricsCollector
from netwatch.observations import (
    IcmpObservation,
    InterfaceReading,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)
from netwatch.plan import Plan, compile_plan
from probes.dns import DnsResult
from probes.http import HttpFailure, HttpPhase, HttpResult
from probes.icmp import PingFailure, PingResult
from probes.snmp_types import InterfaceSample, RouterSample
from tests.lam_dong import ENV, EXAMPLE, LAC_DUONG_VNPT, assert_promtool_accepts

NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


class Scrape:
    """What Prometheus would read from /metrics, parsed back by client_python's parser."""

    def __init__(self, collector: MetricsCollector, registry: CollectorRegistry) -> None:
        text = collector.exposition(registry).decode()
        self.samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def __call__(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        wanted = labels or {}
        found = [s.value for s in self.samples if s.name == name and s.labels == wanted]
        assert len(found) <= 1, f"{name}{wanted} appears {len(found)} times"
        return found[0] if found else None


@pytest.fixture(scope="module")
def plan() -> Plan:
    return compile_plan(load_inventory(EXAMPLE, environ=ENV))


def ping(address: str, rtts: tuple[float, ...], sent: int = 5) -> PingResult:
    received = len(rtts)
    ordered = sorted(rtts)
    return PingResult(
        address=address,
        sent=sent,
        received=received,
        loss_ratio=(sent - received) / sent,
        rtt_min_s=ordered[0] if rtts else None,
        rtt_median_s=ordered[len(ordered) // 2] if rtts else None,
        rtt_max_s=ordered[-1] if rtts else None,
        jitter_s=0.001 if len(rtts) > 1 else None,
        rtts_s=rtts,
        failure=None if rtts else PingFailure.NO_REPLY,
        started_at=NOW,
    )


def test_plan_is_flat_and_complete(plan: Plan) -> None:
    assert plan.counts() == {"icmp": 11 + 2 + 4 + 2, "snmp": 8, "http": 2}
    link = next(t for t in plan.icmp if t.key.encoded == "link:24848/vnpt-tslcd")
    assert link.address == "10.68.10.1"
    assert link.link is not None
    assert link.link.bandwidth_bps == 100e6
    router = next(j for j in plan.snmp if j.commune == "24848")
    assert [i.interface for i in router.interfaces] == ["ether1", "ether2"]
    assert "authkey" not in repr(router)


def test_icmp_observations_become_link_metrics(plan: Plan) -> None:
    registry = CollectorRegistry()
    collector = MetricsCollector(plan)
    collector.register(registry)
    target = next(t for t in plan.icmp if t.key.encoded == "link:24848/vnpt-tslcd")
    down = next(t for t in plan.icmp if t.key.encoded == "link:24781/vnpt-tslcd")
    collector.observe(
        [
            IcmpObservation(target, ping(target.address, (0.004, 0.006, 0.020, 0.005))),
            IcmpObservation(down, ping(down.address, ())),
        ]
    )
    collector.observe([IcmpObservation(target, ping(target.address, (0.004,) * 5))])
    value = Scrape(collector, registry)
    assert value("netwatch_link_up", LAC_DUONG_VNPT) == 1
    assert value("netwatch_link_loss_ratio", LAC_DUONG_VNPT) == 0
    assert value("netwatch_link_echoes_sent_total", LAC_DUONG_VNPT) == 10
    assert value("netwatch_link_echoes_received_total", LAC_DUONG_VNPT) == 9
    assert value("netwatch_link_round_rtt_seconds", {**LAC_DUONG_VNPT, "stat": "median"}) == 0.004
    assert value("netwatch_link_rtt_seconds_bucket", {**LAC_DUONG_VNPT, "le": "0.005"}) == 7
    assert value("netwatch_link_rtt_seconds_bucket", {**LAC_DUONG_VNPT, "le": "+Inf"}) == 9
    assert value("netwatch_link_rtt_seconds_count", LAC_DUONG_VNPT) == 9
    xuan_huong = {
        **LAC_DUONG_VNPT,
        "commune": "24781",
        "commune_name": "Phường Xuân Hương - Đà Lạt",
    }
    assert value("netwatch_link_up", xuan_huong) == 0
    # A link not measured yet has no series rather than a made-up value.
    assert (
        value(
            "netwatch_link_up",
            {**LAC_DUONG_VNPT, "commune": "24846", "commune_name": "Phường Lang Biang - Đà Lạt"},
        )
        is None
    )
    assert value("netwatch_link_loss_ratio", xuan_huong) == 1
    assert value("netwatch_probe_failures_total", {"kind": "icmp", "reason": "no_reply"}) == 1


def test_snmp_portal_and_round_metrics(plan: Plan) -> None:
    registry = CollectorRegistry()
    collector = MetricsCollector(plan)
    collector.register(registry)
    job = next(j for j in plan.snmp if j.commune == "24848")
    sample = RouterSample(
        address=job.target.address,
        taken_at=NOW,
        monotonic_s=100.0,
        uptime_s=3600.0,
        interfaces=(InterfaceSample(2, 1, 10_000, 20_000, 64, 1, 2, 3, 4),),
        failure=None,
    )
    reading = InterfaceReading(
        SubjectKey.parse("link:24848/vnpt-tslcd"),
        2,
        True,
        8e6,
        2e6,
        0.08,
        0.02,
        10_000,
        20_000,
        1,
        2,
        3,
        4,
    )
    missing = InterfaceReading(
        SubjectKey.parse("link:24848/viettel-internet"), None, None, None, None, None, None, None, None, None,
        None, None, None,
    )  # fmt: skip
    collector.observe([SnmpObservation(job, sample, (reading, missing), rebooted=True)])
    portal = plan.portals[0]
    http = HttpResult(
        url=portal.check.url, started_at=NOW, dns_s=0.01, connect_s=0.02, tls_s=0.03,
        first_byte_s=None, transfer_s=None, total_s=5.0, status=None, redirects=0,
        body_bytes=0, content_ok=None, cert_not_after=None, cert_days_left=30.0,
        failure=HttpFailure.TIMEOUT, failed_phase=HttpPhase.HTTP, detail="timed out",
    )  # fmt: skip
    dns = DnsResult("dichvucong.gov.vn", "10.0.0.53", "A", ("10.0.0.1",), 0.002, None, "", NOW)
    collector.observe([PortalObservation(portal, http, dns)])
    collector.round_done(RoundReport("snmp", NOW, NOW, 0.25, 1.5, 8, 1))
    value = Scrape(collector, registry)
    router = {k: LAC_DUONG_VNPT[k] for k in ("province", "commune", "commune_name")}
    assert value("netwatch_router_up", router) == 1
    assert value("netwatch_router_reboots_total", router) == 1
    assert value("netwatch_interface_oper_up", LAC_DUONG_VNPT) == 1
    assert value("netwatch_link_utilization_ratio", {**LAC_DUONG_VNPT, "direction": "in"}) == 0.08
    assert (
        value("netwatch_interface_octets_total", {**LAC_DUONG_VNPT, "direction": "out"}) == 20_000
    )
    # Rates in bytes/s, Prometheus's base unit (issue 15): the probe measured 8 Mbit/s in.
    assert value("netwatch_link_bandwidth_bytes_per_second", LAC_DUONG_VNPT) == 100e6 / 8
    traffic_in = {**LAC_DUONG_VNPT, "direction": "in"}
    assert value("netwatch_link_traffic_bytes_per_second", traffic_in) == 1e6
    pl = {"portal": "dvcqg", "portal_name": "Cổng Dịch vụ công quốc gia"}
    assert value("netwatch_portal_up", pl) == 0
    assert value("netwatch_portal_phase_seconds", {**pl, "phase": "tls"}) == 0.03
    assert value("netwatch_portal_phase_seconds", {**pl, "phase": "first_byte"}) is None
    assert value("netwatch_portal_tls_cert_expiry_seconds", pl) == 30 * 86400
    assert value("netwatch_dns_lookup_seconds", {**pl, "resolver": "10.0.0.53"}) == 0.002
    assert value("netwatch_probe_failures_total", {"kind": "http", "reason": "timeout"}) == 1
    assert value("netwatch_round_lag_seconds", {"kind": "snmp"}) == 0.25
    assert value("netwatch_rounds_skipped_total", {"kind": "snmp"}) == 1
    assert value("netwatch_targets", {"kind": "icmp"}) == 19


def test_round_series_add_up_the_shards_per_kind(plan: Plan) -> None:
    """With probe workers every shard reports each slot (netwatch/bus): the series keep their
    single-process meaning per kind, not the last shard's figures nor N rounds per slot."""
    registry = CollectorRegistry()
    collector = MetricsCollector(plan)
    collector.register(registry)
    for _slot in range(3):
        collector.round_done(RoundReport("icmp", NOW, NOW, 0.1, 20.0, 5000, 0, shard=0))
        collector.round_done(RoundReport("icmp", NOW, NOW, 0.4, 12.0, 4997, 1, shard=1))
    value = Scrape(collector, registry)
    assert value("netwatch_rounds_total", {"kind": "icmp"}) == 3
    assert value("netwatch_round_lag_seconds", {"kind": "icmp"}) == 0.4
    assert value("netwatch_round_duration_seconds", {"kind": "icmp"}) == 20.0
    assert value("netwatch_rounds_skipped_total", {"kind": "icmp"}) == 3


def test_a_shard_that_stopped_reporting_leaves_the_round_series(plan: Plan) -> None:
    """Three workers, then two (a worker gone for good, or N lowered): after three intervals
    without a report the third's old figures (here a 9 s lag, which would keep NetWatchLagging
    firing) leave the series, and the counters it had counted never go down."""
    registry = CollectorRegistry()
    collector = MetricsCollector(plan)
    collector.register(registry)
    interval = timedelta(seconds=plan.icmp_interval_s)
    for slot in range(2):
        at = NOW + slot * interval
        for shard, lag in ((0, 0.1), (1, 0.2), (2, 9.0)):
            collector.round_done(RoundReport("icmp", at, at, lag, 2.0, 100, 1, shard=shard))
    value = Scrape(collector, registry)
    assert value("netwatch_round_lag_seconds", {"kind": "icmp"}) == 9.0
    for slot in range(2, 6):  # shard 2 is silent from now on
        at = NOW + slot * interval
        for shard, lag in ((0, 0.1), (1, 0.2)):
            collector.round_done(RoundReport("icmp", at, at, lag, 2.0, 100, 0, shard=shard))
    value = Scrape(collector, registry)
    assert value("netwatch_round_lag_seconds", {"kind": "icmp"}) == 0.2
    assert value("netwatch_rounds_total", {"kind": "icmp"}) == 6
    assert value("netwatch_rounds_skipped_total", {"kind": "icmp"}) == 6  # shard 2's 2 kept


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool comes with `make test`")
def test_exposition_passes_promtool(plan: Plan) -> None:
    registry = CollectorRegistry()
    collector = MetricsCollector(plan)
    collector.register(registry)
    for target in plan.icmp:
        collector.observe([IcmpObservation(target, ping(target.address, (0.003, 0.004)))])
    collector.round_done(RoundReport("icmp", NOW, NOW, 0.0, 2.0, len(plan.icmp), 0))
    text = collector.exposition(registry)
    assert_promtool_accepts(text)
