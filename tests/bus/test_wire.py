"""The observation wire format: round trips, old payloads, newer writers, garbage."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import pytest

from alerts.subject import SubjectKey
from netwatch.bus import wire
from netwatch.observations import IcmpObservation, Kind, PortalObservation, SnmpObservation
from netwatch.plan import Plan
from probes.http import HttpFailure, HttpPhase
from probes.icmp import PingFailure
from probes.snmp_types import SnmpFailure
from tests.bus import national

FIXTURES = Path(__file__).parent / "fixtures"
SENT = datetime(2026, 12, 5, 1, 30, 29, 512345, tzinfo=UTC)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return national.national_plan(60)


@pytest.fixture(scope="module")
def index(plan: Plan) -> wire.PlanIndex:
    return wire.PlanIndex.from_plan(plan)


@pytest.mark.parametrize(
    ("kind", "build"),
    [("icmp", national.icmp_round), ("snmp", national.snmp_round), ("http", national.http_round)],
)
def test_a_round_comes_back_as_the_same_dataclasses(
    plan: Plan, index: wire.PlanIndex, kind: Kind, build: object
) -> None:
    observations = build(plan)  # type: ignore[operator]
    payload = wire.encode_observations(kind, observations, round_id=7, shard=3, sent_at=SENT)
    batch = wire.decode(payload, index)
    assert list(batch.observations) == observations
    assert (batch.version, batch.kind, batch.round_id, batch.shard) == (1, kind, 7, 3)
    assert batch.sent_at == SENT
    assert batch.sent_at.tzinfo is UTC
    assert (batch.report, batch.unknown, batch.fast) == (None, 0, False)


def test_decoded_observations_carry_the_readers_plan_objects(
    plan: Plan, index: wire.PlanIndex
) -> None:
    obs = national.icmp_round(plan)[:3] + national.snmp_round(plan)[:1]
    icmp = wire.decode(
        wire.encode_observations("icmp", obs[:3], round_id=1, shard=0, sent_at=SENT), index
    )
    snmp = wire.decode(
        wire.encode_observations("snmp", obs[3:], round_id=1, shard=0, sent_at=SENT), index
    )
    first = icmp.observations[0]
    assert isinstance(first, IcmpObservation)
    assert first.target is plan.icmp[0]  # no copy of the plan crosses the wire
    router = snmp.observations[0]
    assert isinstance(router, SnmpObservation)
    assert router.job is plan.snmp[0]
    assert router.interfaces[0].link_key is plan.snmp[0].interfaces[0].link.key


def test_a_round_report_round_trips(index: wire.PlanIndex) -> None:
    report = national.round_report(9997)
    batch = wire.decode(wire.encode_report(report, round_id=9, shard=1, sent_at=SENT), index)
    assert batch.report == replace(report, shard=1)  # the shard comes from the envelope
    assert batch.observations == ()


def test_subjects_name_province_and_kind(plan: Plan, index: wire.PlanIndex) -> None:
    groups = wire.group_by_subject(national.icmp_round(plan), index, "icmp")
    assert "nw.obs.v1.01.icmp" in groups
    assert "nw.obs.v1.nation.icmp" in groups  # upstream nodes belong to no province
    assert all(len(s.split(".")) == 5 for s in groups)
    # A kiosk (a device: no link, only a commune) goes with its commune's province.
    kiosk = next(o for o in national.icmp_round(plan) if o.target.role == "device")
    assert index.province_of(kiosk) == plan.snmp[0].province
    fast = wire.group_by_subject(national.icmp_round(plan)[:1], index, "icmp", fast=True)
    assert list(fast) == ["nw.obs.v1.01.icmp.fast"]
    assert wire.report_subject("snmp") == "nw.obs.v1.round.snmp"


def test_message_ids_are_deterministic_and_distinct() -> None:
    a = wire.msg_id(1796434200000, 2, "nw.obs.v1.24.icmp")
    assert a == wire.msg_id(1796434200000, 2, "nw.obs.v1.24.icmp")
    others = {
        wire.msg_id(1796434230000, 2, "nw.obs.v1.24.icmp"),
        wire.msg_id(1796434200000, 3, "nw.obs.v1.24.icmp"),
        wire.msg_id(1796434200000, 2, "nw.obs.v1.25.icmp"),
        wire.msg_id(1796434200000, 2, "nw.obs.v1.24.icmp", 1000),
    }
    assert a not in others
    assert len(others) == 4


# --- version 1 payloads, as committed: they must decode for as long as v1 is read ----------


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"v1-{name}.msgpack").read_bytes()


@pytest.mark.parametrize("name", ["icmp", "snmp", "http", "report"])
def test_the_json_view_of_each_fixture_is_its_bytes(name: str) -> None:
    view = json.loads((FIXTURES / f"v1-{name}.json").read_text(encoding="utf-8"))
    assert msgpack.unpackb(_fixture(name)) == view


def test_version_1_payloads_still_decode() -> None:
    index = wire.PlanIndex.from_plan(national.national_plan(3))
    icmp = wire.decode(_fixture("icmp"), index)
    assert (icmp.version, icmp.kind, icmp.shard, icmp.plan, icmp.fast) == (
        1,
        "icmp",
        2,
        "fixture",
        False,
    )
    assert icmp.round_id == 1796434200000
    assert icmp.sent_at == SENT
    assert len(icmp.observations) == 3 * 3 + national.PROVINCES
    lost, ok = icmp.observations[0], icmp.observations[1]
    assert isinstance(lost, IcmpObservation)
    assert isinstance(ok, IcmpObservation)
    assert lost.target.key == SubjectKey.parse("link:10000/vnpt-tslcd")
    assert lost.result.failure is PingFailure.NO_REPLY
    assert lost.result.loss_ratio == 1.0
    assert ok.result.rtts_s == (0.011, 0.012, 0.013000000000000001, 0.014, 0.015)
    assert ok.result.address == "10.0.0.2"  # not on the wire: the target's
    assert ok.result.started_at == datetime(2026, 12, 5, 1, 30, tzinfo=UTC)

    snmp = wire.decode(_fixture("snmp"), index)
    down, up = snmp.observations[0], snmp.observations[1]
    assert isinstance(down, SnmpObservation)
    assert isinstance(up, SnmpObservation)
    assert down.sample.failure is SnmpFailure.TIMEOUT
    assert down.rates_since is None
    assert up.sample.interfaces[1].in_discards is SnmpFailure.NO_SUCH_INSTANCE
    assert up.interfaces[0].in_bps == 1.5e6 + 1
    assert up.sample.uptime_s == 86401.0

    http = wire.decode(_fixture("http"), index)
    assert http.fast
    good, bad, bare = http.observations
    assert isinstance(good, PortalObservation)
    assert isinstance(bad, PortalObservation)
    assert good.http.status == 200
    assert good.dns is not None
    assert good.dns.addresses == ("203.0.113.10",)
    assert good.http.cert_not_after == datetime(2027, 3, 1, tzinfo=UTC)
    assert bad.http.failure is HttpFailure.TIMEOUT
    assert bad.http.failed_phase is HttpPhase.TLS
    assert isinstance(bare, PortalObservation)
    assert bare.dns is None

    report = wire.decode(_fixture("report"), index).report
    assert report is not None
    assert report.targets == 3 * 3 + national.PROVINCES


# --- the version rules -----------------------------------------------------------------------


def _edit(payload: bytes, **changes: object) -> bytes:
    env = msgpack.unpackb(payload)
    env.update(changes)
    return bytes(msgpack.packb(env))


def test_fields_added_by_a_newer_writer_are_ignored() -> None:
    # "Add fields only": a later version appends to rows and adds envelope keys; this reader
    # takes what it knows (here within v1, as a writer of the next version would send it).
    index = wire.PlanIndex.from_plan(national.national_plan(3))
    env = msgpack.unpackb(_fixture("icmp"))
    rows = [[*row, "a future field"] for row in env["obs"]]
    batch = wire.decode(_edit(_fixture("icmp"), obs=rows, future={"x": 1}), index)
    assert batch.observations == wire.decode(_fixture("icmp"), index).observations


def test_a_newer_version_is_refused_naming_the_upgrade_order() -> None:
    index = wire.PlanIndex.from_plan(national.national_plan(3))
    with pytest.raises(wire.WireError, match="upgrade the readers"):
        wire.decode(_edit(_fixture("icmp"), v=wire.VERSION + 1), index)


def test_observations_of_subjects_not_in_the_plan_are_counted(plan: Plan) -> None:
    small = wire.PlanIndex.from_plan(national.national_plan(3))
    payload = wire.encode_observations(
        "icmp", national.icmp_round(plan), round_id=1, shard=0, sent_at=SENT
    )
    batch = wire.decode(payload, small)
    assert batch.unknown == len(plan.icmp) - len(batch.observations)
    assert batch.unknown == (60 - 3) * 3


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "not a msgpack payload"),
        (b"\xc1garbage", "not a msgpack payload"),
        (bytes(msgpack.packb([1, 2, 3])), "not a map"),
        (bytes(msgpack.packb({"v": "1"})), "'v' missing or of the wrong type"),
        (bytes(msgpack.packb({"v": True})), "'v' missing or of the wrong type"),
        (bytes(msgpack.packb({"v": 1, "kind": "smtp"})), "unknown observation kind 'smtp'"),
        (bytes(msgpack.packb({"v": 0, "kind": "icmp"})), "older than the oldest"),
    ],
)
def test_garbage_is_a_clear_error(payload: bytes, message: str, index: wire.PlanIndex) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.decode(payload, index)


def test_a_malformed_row_names_the_row(index: wire.PlanIndex) -> None:
    env = msgpack.unpackb(_fixture("icmp"))
    good = env["obs"][1]
    bad_enum = [*good[:10], "exploded", *good[11:]]
    for rows, message in [
        ([good, [good[0], None]], r"\(row 1\): icmp row must be an array of at least 12"),
        ([good, bad_enum], r"\(row 1\): unknown PingFailure 'exploded'"),
        ([[*good[:11], "noon"]], r"\(row 0\): a time must be integer microseconds"),
        ("rows", "obs must be an array"),
    ]:
        with pytest.raises(wire.WireError, match=message):
            wire.decode(_edit(_fixture("icmp"), obs=rows), index)
    truncated = _fixture("icmp")[:-40]
    with pytest.raises(wire.WireError):
        wire.decode(truncated, index)


def test_naive_times_are_refused_when_encoding(plan: Plan) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        wire.encode_observations("icmp", [], round_id=1, shard=0, sent_at=datetime(2026, 12, 5))  # noqa: DTZ001
