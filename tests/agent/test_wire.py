"""The agent's wire format: every message type round-trips, old payloads keep decoding, bad
input is refused with a reason (netwatch/agent/wire.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgpack
import pytest

from netwatch.agent.model import (
    AgentConfig,
    AgentHeartbeat,
    DeviceConfig,
    DevicePing,
    InsideRound,
    PathConfig,
    PathPing,
    Ping,
    PortalConfig,
    PortalTiming,
    Throughput,
    ThroughputConfig,
)
from netwatch.agent.wire import (
    VERSION,
    AgentWireError,
    decode_config,
    decode_heartbeat,
    decode_round,
    encode_config,
    encode_heartbeat,
    encode_round,
)

FIXTURES = Path(__file__).parent / "fixtures"
AT = datetime(2026, 12, 6, 3, 0, 0, 123456, tzinfo=UTC)


def a_round() -> InsideRound:
    return InsideRound(
        commune="24848",
        agent="a24848",
        seq=42,
        at=AT,
        config_revision="r1",
        gateway=Ping("10.88.10.129", 5, 5, 0.0004, 0.0009, None),
        paths=(
            PathPing("vnpt-tslcd", Ping("10.88.1.1", 5, 0, None, None, "no_reply")),
            PathPing("viettel-internet", Ping("10.88.3.1", 5, 4, 0.012, 0.02, None)),
        ),
        portals=(
            PortalTiming(
                "dvc", "viettel-internet", True, 0.001, 0.01, 0.02, 0.05, 0.06, 200, None, None
            ),
            PortalTiming(
                "dvc",
                "vnpt-tslcd",
                False,
                0.001,
                None,
                None,
                None,
                10.0,
                None,
                "timeout",
                "connect",
            ),
        ),
        devices=(DevicePing("Kiosk 1", Ping("10.88.10.140", 3, 3, 0.001, 0.002, None)),),
        throughput=(Throughput("viettel-internet", 1_000_000, 0.5),),
    )


def a_config() -> AgentConfig:
    return AgentConfig(
        commune="24848",
        agent="a24848",
        revision="abc",
        interval_s=30.0,
        echoes=5,
        lan_gateway="10.88.10.129",
        paths=(PathConfig("vnpt-tslcd", "10.88.10.130", None, "10.88.1.1"),),
        portals=(
            PortalConfig(
                "dvc", "https://dichvucong.lab.netwatch.vn/", (200,), "Cổng", None, None, 10.0
            ),
        ),
        devices=(DeviceConfig("Kiosk 1", "kiosk", "10.88.10.140"),),
        throughput=ThroughputConfig(enabled=True, url="https://x.lab.netwatch.vn/blob"),
    )


def a_heartbeat() -> AgentHeartbeat:
    return AgentHeartbeat("24848", "a24848", "0.1.0", AT, "abc", 42, 3, 1500, AT, 7, 3600.5)


def test_every_message_type_round_trips() -> None:
    assert decode_round(encode_round(a_round())) == a_round()
    assert decode_config(encode_config(a_config())) == a_config()
    assert decode_heartbeat(encode_heartbeat(a_heartbeat())) == a_heartbeat()
    assert decode_round(encode_round(a_round())).at.tzinfo is UTC


def test_every_version_ever_written_still_decodes() -> None:
    # One fixture per schema version and type, written once by the version that wrote it.
    for version in range(1, VERSION + 1):
        assert decode_round((FIXTURES / f"round-v{version}.msgpack").read_bytes()).seq == 42
        assert decode_config((FIXTURES / f"cfg-v{version}.msgpack").read_bytes()).echoes == 5
        assert (
            decode_heartbeat((FIXTURES / f"hb-v{version}.msgpack").read_bytes()).dropped_total == 7
        )


def test_a_newer_writers_extra_field_is_ignored_and_a_missing_default_is_filled() -> None:
    plain = msgpack.unpackb(encode_round(a_round()))
    plain["d"]["from_the_future"] = [1, 2]
    del plain["d"]["throughput"]  # has a default: an older writer may lack it
    decoded = decode_round(msgpack.packb(plain))
    assert decoded.throughput == ()
    assert decoded.paths == a_round().paths


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1garbage", "not msgpack"),
        (msgpack.packb([1, 2]), "expected a map"),
        (msgpack.packb({"t": "round", "d": {}}), "no schema version"),
        (msgpack.packb({"v": VERSION + 1, "t": "round", "d": {}}), "upgrade the centre"),
        (msgpack.packb({"v": VERSION, "t": "hb", "d": {}}), "expected a 'round' message"),
        (msgpack.packb({"v": VERSION, "t": "round", "d": {"commune": "1"}}), "missing field"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(AgentWireError, match=reason):
        decode_round(payload)


def test_a_field_of_the_wrong_type_names_where() -> None:
    plain = msgpack.unpackb(encode_round(a_round()))
    plain["d"]["paths"][1]["ping"]["sent"] = "five"
    with pytest.raises(AgentWireError, match=r"round\.paths\[1\]\.ping\.sent: expected int"):
        decode_round(msgpack.packb(plain))
    plain = msgpack.unpackb(encode_config(a_config()))
    plain["d"]["devices"][0]["kind"] = "toaster"
    with pytest.raises(AgentWireError, match="toaster"):
        decode_config(msgpack.packb(plain))
