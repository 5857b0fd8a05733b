"""SNMP poller against real peers: net-snmp snmpd, snmpsim with real router recordings, junk."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, cast

import pytest
from pysnmp.proto.api import v2c

from probes.snmp import (
    IF_DESCR,
    IF_NAME,
    InterfaceRates,
    InterfaceSample,
    RateGap,
    RouterSample,
    SnmpFailure,
    SnmpPoller,
    SnmpTarget,
    SnmpV2c,
    SnmpV3,
    compute_rates,
    format_snmp_summary,
)
from probes.snmp_wire import Kind, Value, WireFailure, get_request
from tests.probes import snmp_peers as peers
from tests.waiting import async_wait_until

LOOPBACK = "127.0.0.1"


def v3_credentials(index: int) -> SnmpV3:
    """The poller-side credentials of the index-th v3 user of the test snmpd."""
    user, _, auth_key, _, priv_key, auth, priv = peers.V3_USERS[index]
    return SnmpV3(user, auth, auth_key, priv, priv_key)


@pytest.fixture(scope="module")
def snmpd() -> Iterator[peers.Snmpd]:
    """One net-snmp agent for the module's tests."""
    with peers.running_snmpd(peers.SNMPD_PORT) as agent:
        yield agent


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[str]:
    """snmpsim serving the routeros, draytek and junos recordings (fails loudly if it cannot)."""
    with peers.running_snmpsim(peers.SNMPSIM_PORT) as host:
        yield host


@pytest.fixture
async def poller() -> AsyncIterator[SnmpPoller]:
    """A fresh poller (one engine, its sockets) per test."""
    async with await SnmpPoller.open(max_in_flight=64) as p:
        yield p


def v2c_target(port: int = peers.SNMPD_PORT, community: str = peers.COMMUNITY) -> SnmpTarget:
    """A v2c target on loopback with short timeouts."""
    return SnmpTarget(LOOPBACK, SnmpV2c(community), port=port, timeout_s=1.0, retries=1)


def sim_target(recording: str) -> SnmpTarget:
    """The snmpsim agent for one recording (community = recording name)."""
    return SnmpTarget(LOOPBACK, SnmpV2c(recording), port=peers.SNMPSIM_PORT, timeout_s=2.0)


# --- net-snmp snmpd -------------------------------------------------------------------------


async def test_v2c_resolves_loopback_and_polls_it(snmpd: peers.Snmpd, poller: SnmpPoller) -> None:
    target = v2c_target()
    names = await poller.resolve_interfaces(target, ["lo", "no-such-interface"])
    assert names == {"lo": 1}

    sample = await poller.poll(target, [1])
    assert sample.failure is None, sample.detail
    assert sample.uptime_s is not None
    assert sample.uptime_s >= 0
    assert sample.taken_at.tzinfo is UTC
    (lo,) = sample.interfaces
    assert lo.if_index == 1
    assert lo.oper_up is True
    assert lo.oper_status == 1
    assert lo.counter_bits == 64
    assert isinstance(lo.in_octets, int)
    assert isinstance(lo.out_octets, int)
    assert lo.in_errors == 0
    assert lo.in_discards == 0
    assert isinstance(lo.discontinuity_ticks, int)


@pytest.mark.parametrize("user_index", [0, 1], ids=["sha-aes", "sha256-aes256"])
async def test_v3_auth_priv_polls(snmpd: peers.Snmpd, poller: SnmpPoller, user_index: int) -> None:
    target = SnmpTarget(LOOPBACK, v3_credentials(user_index), port=peers.SNMPD_PORT, timeout_s=1.0)
    assert await poller.resolve_interfaces(target, ["lo"]) == {"lo": 1}
    sample = await poller.poll(target, [1])
    assert sample.failure is None, sample.detail
    assert sample.interfaces[0].oper_up is True
    assert isinstance(sample.interfaces[0].in_octets, int)


# Polls a v2c agent, then a v3 one, in a fresh interpreter: after each, the failure (None) and
# whether pysnmp is loaded. argv: port, community, then the v3 credentials as SnmpV3 takes them.
_V2C_THEN_V3 = """
import asyncio, sys
from probes.snmp import SnmpPoller, SnmpTarget, SnmpV2c, SnmpV3

async def main():
    port, community, *v3 = sys.argv[1:]
    async with await SnmpPoller.open() as poller:
        for creds in (SnmpV2c(community), SnmpV3(*v3)):
            target = SnmpTarget("127.0.0.1", creds, port=int(port), timeout_s=1.0)
            sample = await poller.poll(target, [1])
            print(sample.failure, sample.detail or "-", "pysnmp" in sys.modules)

asyncio.run(main())
"""


def test_pysnmp_is_imported_on_the_first_v3_poll_only(snmpd: peers.Snmpd) -> None:
    # v2c has its own codec: an SNMP worker polling v2c routers only must not carry pysnmp
    # (issue 10: ~22 MB per process); v3 still works once it loads it.
    v3 = v3_credentials(0)
    assert v3.priv_protocol is not None  # authPriv
    assert v3.priv_key is not None
    creds = [v3.user, v3.auth_protocol, v3.auth_key, v3.priv_protocol, v3.priv_key]
    out = subprocess.run(
        [sys.executable, "-c", _V2C_THEN_V3, str(peers.SNMPD_PORT), peers.COMMUNITY, *creds],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert out.splitlines() == ["None - False", "None - True"]


@pytest.mark.parametrize(
    "change",
    [{"auth_key": "wrong-auth-key"}, {"user": "nobody-here"}],
    ids=["wrong-auth-key", "unknown-user"],
)
async def test_v3_bad_credentials_are_auth_failure(
    snmpd: peers.Snmpd, poller: SnmpPoller, change: dict[str, str]
) -> None:
    target = SnmpTarget(
        LOOPBACK, replace(v3_credentials(0), **change), port=peers.SNMPD_PORT, timeout_s=1.0
    )
    sample = await poller.poll(target, [1])
    assert sample.failure is SnmpFailure.AUTH_FAILURE
    assert sample.interfaces == ()
    assert await poller.resolve_interfaces(target, ["lo"]) is SnmpFailure.AUTH_FAILURE


async def test_v3_wrong_priv_key_is_timeout_with_hint(
    snmpd: peers.Snmpd, poller: SnmpPoller
) -> None:
    # net-snmp answers discovery, then drops what it cannot decrypt: no Report, so a timeout.
    creds = replace(v3_credentials(0), priv_key="wrong-priv-key")
    target = SnmpTarget(LOOPBACK, creds, port=peers.SNMPD_PORT, timeout_s=0.3, retries=0)
    sample = await poller.poll(target, [1])
    assert sample.failure is SnmpFailure.TIMEOUT
    assert "priv key" in sample.detail


async def test_v2c_wrong_community_is_timeout(snmpd: peers.Snmpd, poller: SnmpPoller) -> None:
    # net-snmp drops a request with an unknown community: nothing on the wire says "auth".
    target = replace(v2c_target(community="not-the-community"), timeout_s=0.3)
    sample = await poller.poll(target, [1])
    assert sample.failure is SnmpFailure.TIMEOUT
    assert await poller.resolve_interfaces(target, ["lo"]) is SnmpFailure.TIMEOUT


@pytest.mark.parametrize("creds", [SnmpV2c("x"), v3_credentials(0)], ids=["v2c", "v3"])
async def test_closed_port_times_out_quickly(poller: SnmpPoller, creds: SnmpV2c | SnmpV3) -> None:
    target = SnmpTarget(LOOPBACK, creds, port=peers.CLOSED_PORT, timeout_s=0.3, retries=1)
    started = time.monotonic()
    sample = await poller.poll(target, [1])
    assert sample.failure is SnmpFailure.TIMEOUT
    # Behaviour, not a benchmark: bounded by timeout x tries, far from the 180 s test timeout.
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("creds", [SnmpV2c("x"), v3_credentials(0)], ids=["v2c", "v3"])
async def test_close_fails_requests_in_flight_and_queued(creds: SnmpV2c | SnmpV3) -> None:
    # Nothing answers and the timeout is long: only close() can end these polls.
    target = SnmpTarget(LOOPBACK, creds, port=peers.CLOSED_PORT, timeout_s=60.0, retries=0)
    poller = await SnmpPoller.open(max_in_flight=1)
    polls = [asyncio.create_task(poller.poll(target, [1])) for _ in range(3)]
    # The first holds the only slot (on the wire), the other two wait for it.
    slots = poller._in_flight
    await async_wait_until(
        lambda: slots.locked() and len(slots._waiters or ()) == 2,  # type: ignore[attr-defined]
        message="one poll in flight, two queued",
    )
    await poller.close()
    samples = await asyncio.wait_for(asyncio.gather(*polls), timeout=10)
    assert [(s.failure, s.detail) for s in samples] == [
        (SnmpFailure.TRANSPORT_ERROR, "poller closed")
    ] * 3
    assert (await poller.poll(target, [1])).failure is SnmpFailure.TRANSPORT_ERROR


async def test_counters_move_with_traffic_on_lo(snmpd: peers.Snmpd, poller: SnmpPoller) -> None:
    target = v2c_target()
    first = await poller.poll(target, [1])
    assert first.failure is None
    payload = b"x" * 1400
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # net-snmp caches interface statistics for a few seconds: send, then poll until they move.
        async def moved() -> RouterSample | None:
            for _ in range(200):
                sock.sendto(payload, (LOOPBACK, peers.TRAFFIC_SINK_PORT))
            sample = await poller.poll(target, [1])
            assert sample.failure is None
            assert isinstance(sample.interfaces[0].in_octets, int)
            assert isinstance(first.interfaces[0].in_octets, int)
            grown = sample.interfaces[0].in_octets > first.interfaces[0].in_octets + 200 * 1400
            return sample if grown else None

        second = await async_wait_until(moved, 30, 0.5, "lo counters moved")
    rates, rebooted = compute_rates(first, second, {1: 100e6})
    assert not rebooted
    (lo,) = rates
    assert lo.reason is None
    assert lo.in_bps is not None
    assert lo.in_bps > 0
    assert lo.in_utilization_ratio == pytest.approx(lo.in_bps / 100e6)
    assert lo.in_errors_per_s == 0


async def test_snmpd_restart_is_a_reboot_without_rate_spike(poller: SnmpPoller) -> None:
    with peers.running_snmpd(peers.SNMPD_RESTART_PORT) as agent:
        target = v2c_target(port=agent.port)

        # Let the agent's uptime grow past what it will have right after the restart.
        async def grown() -> RouterSample | None:
            sample = await poller.poll(target, [1])
            return sample if sample.uptime_s is None or sample.uptime_s >= 2.0 else None

        before = await async_wait_until(grown, 30, 0.5, "the agent's uptime past 2 s")
        assert before.failure is None
        agent.restart()
        after = await poller.poll(target, [1])
    assert after.failure is None
    assert after.uptime_s is not None
    assert before.uptime_s is not None
    assert after.uptime_s < before.uptime_s
    rates, rebooted = compute_rates(before, after, {1: 10e6})
    assert rebooted
    assert [(r.in_bps, r.out_bps, r.reason) for r in rates] == [(None, None, RateGap.REBOOT)]


async def test_system_summary_of_snmpd(snmpd: peers.Snmpd, poller: SnmpPoller) -> None:
    summary = await poller.system_summary(v2c_target())
    assert summary.failure is None
    assert summary.sys_name == "nws-test-agent"
    lo = next(i for i in summary.interfaces if i.if_index == 1)
    assert (lo.name, lo.descr, lo.oper_status, lo.has_hc_counters) == ("lo", "lo", 1, True)
    text = format_snmp_summary(summary)
    assert "nws-test-agent" in text
    assert "lo" in text
    assert "64-bit" in text


async def test_credentials_never_printed(
    snmpd: peers.Snmpd, poller: SnmpPoller, caplog: pytest.LogCaptureFixture
) -> None:
    creds = v3_credentials(0)
    v2 = SnmpV2c(peers.COMMUNITY)
    caplog.set_level(logging.DEBUG)
    failing = SnmpTarget(LOOPBACK, replace(creds, auth_key="wrong-auth-key"), port=peers.SNMPD_PORT)
    texts = [repr(creds), str(creds), repr(v2), repr(v2c_target()), repr(failing)]
    texts.append((await poller.poll(failing, [1])).detail)
    texts.append(format_snmp_summary(await poller.system_summary(v2c_target(community="wrong"))))
    texts.append(caplog.text)
    for secret in (creds.auth_key, str(creds.priv_key), "wrong-auth-key", peers.COMMUNITY):
        assert all(secret not in t for t in texts), secret


# --- real router recordings (snmpsim) -------------------------------------------------------


async def test_routeros_has_64_bit_counters(snmpsim: str, poller: SnmpPoller) -> None:
    target = sim_target("routeros")
    names = await poller.resolve_interfaces(target, ["WAN", "pppoe-out1", "ether2"])
    assert names == {"WAN": 3, "pppoe-out1": 11, "ether2": 4}
    sample = await poller.poll(target, [names["WAN"], names["pppoe-out1"]])
    assert sample.failure is None
    wan, pppoe = sample.interfaces
    assert wan.counter_bits == 64
    assert wan.in_octets == 6422347895  # Counter64 beyond 2**32, as recorded
    assert wan.out_octets == 358657426
    assert wan.oper_up is True
    assert (wan.in_errors, wan.out_errors, wan.in_discards, wan.out_discards) == (0, 0, 0, 0)
    assert pppoe.in_octets == 6300311612
    # The recording has no ifCounterDiscontinuityTime: a per-OID value, not a failed poll.
    missing = {SnmpFailure.NO_SUCH_OBJECT, SnmpFailure.NO_SUCH_INSTANCE}
    assert wan.discontinuity_ticks in missing
    assert sample.uptime_s == pytest.approx(20204.0)


async def test_draytek_falls_back_to_32_bit_counters(snmpsim: str, poller: SnmpPoller) -> None:
    target = sim_target("draytek")
    # No ifXTable: names come from ifDescr.
    names = await poller.resolve_interfaces(target, ["WAN1", "LAN", "WAN4"])
    assert names == {"WAN1": 4, "LAN": 1}
    for _ in range(2):  # the second poll goes straight to 32-bit (one GET)
        sample = await poller.poll(target, [4])
        assert sample.failure is None
        (wan1,) = sample.interfaces
        assert wan1.counter_bits == 32
        assert wan1.in_octets == 3784916249
        assert wan1.out_octets == 1463696936
        assert wan1.oper_up is True
        assert wan1.discontinuity_ticks is SnmpFailure.NO_SUCH_OBJECT
        # Remembered per agent: later rounds ask for 32-bit counters straight away.
        assert (LOOPBACK, peers.SNMPSIM_PORT) in poller._no_hc


async def test_junos_without_counters_gives_per_oid_failures(
    snmpsim: str, poller: SnmpPoller
) -> None:
    target = sim_target("junos")
    names = await poller.resolve_interfaces(target, ["lo0", "gre"])
    assert names == {"lo0": 6, "gre": 8}
    sample = await poller.poll(target, [6])
    assert sample.failure is None
    assert sample.uptime_s == pytest.approx(3979915.13)
    (lo0,) = sample.interfaces
    # snmpsim answers noSuchInstance for an object the recording does not hold.
    missing = {SnmpFailure.NO_SUCH_OBJECT, SnmpFailure.NO_SUCH_INSTANCE}
    for value in (lo0.oper_status, lo0.in_octets, lo0.out_octets, lo0.in_errors, lo0.out_discards):
        assert value in missing
    assert lo0.oper_up is None
    rates, rebooted = compute_rates(
        sample, replace(sample, monotonic_s=sample.monotonic_s + 60), {}
    )
    assert not rebooted
    assert rates[0].reason is RateGap.MISSING_COUNTER


async def test_summary_of_recordings(snmpsim: str, poller: SnmpPoller) -> None:
    routeros = await poller.system_summary(sim_target("routeros"))
    assert routeros.failure is None
    assert [i.name for i in routeros.interfaces][:3] == ["wlan1", "wlan2", "WAN"]
    assert all(i.has_hc_counters for i in routeros.interfaces)
    draytek = await poller.system_summary(sim_target("draytek"))
    assert "DrayTek" in draytek.sys_descr
    assert not any(i.has_hc_counters for i in draytek.interfaces)
    assert "WAN1" in format_snmp_summary(draytek)


# --- junk answers ---------------------------------------------------------------------------


async def test_undecodable_answer_is_garbage(poller: SnmpPoller) -> None:
    async with peers.udp_answerer(peers.JUNK_PORT, peers.junk_reply):
        sample = await poller.poll(v2c_target(port=peers.JUNK_PORT), [1])
        assert sample.failure is SnmpFailure.GARBAGE
        assert sample.detail == "undecodable datagram: length runs past its container"
        assert poller.stats().decode_errors == 1
        assert await poller.resolve_interfaces(v2c_target(port=peers.JUNK_PORT), ["lo"]) is (
            SnmpFailure.GARBAGE
        )
        # pysnmp's v3 engine drops what it cannot parse: over v3 junk surfaces as TIMEOUT.
        v3 = SnmpTarget(LOOPBACK, v3_credentials(0), port=peers.JUNK_PORT, timeout_s=0.3)
        assert (await poller.poll(v3, [1])).failure is SnmpFailure.TIMEOUT


async def test_values_of_wrong_type_are_garbage(poller: SnmpPoller) -> None:
    async with peers.udp_answerer(peers.WRONG_TYPES_PORT, peers.wrong_types_reply):
        sample = await poller.poll(v2c_target(port=peers.WRONG_TYPES_PORT), [3])
    assert sample.failure is None
    assert sample.uptime_s is None
    assert "sysUpTime" in sample.detail
    (iface,) = sample.interfaces
    assert iface.in_octets is SnmpFailure.GARBAGE
    assert iface.oper_up is None


async def test_a_broken_value_fails_its_request_with_the_reason_and_is_counted(
    poller: SnmpPoller,
) -> None:
    # Valid up to the request-id: the decoder knows which request the broken answer is for.
    async with peers.udp_answerer(peers.WRONG_TYPES_PORT, peers.broken_counter_reply):
        sample = await poller.poll(v2c_target(port=peers.WRONG_TYPES_PORT), [3])
    assert sample.failure is SnmpFailure.GARBAGE
    assert sample.detail == "undecodable response: Counter32 -1 out of range"
    assert poller.stats().decode_errors == 1
    assert poller.stats().stray == 0


async def test_an_answer_nobody_asked_for_is_counted_and_ignored(poller: SnmpPoller) -> None:
    async with peers.udp_answerer(peers.WRONG_TYPES_PORT, peers.stray_then_real_reply):
        sample = await poller.poll(v2c_target(port=peers.WRONG_TYPES_PORT), [3])
        # The real answer came right behind the stray one: wait until both were read.
        await async_wait_until(lambda: poller.stats().stray == 1, message="stray counted")
    assert sample.failure is None
    assert sample.uptime_s == 42.0
    assert poller.stats().decode_errors == 0


async def test_answer_for_other_oids_is_garbage(poller: SnmpPoller) -> None:
    async with peers.udp_answerer(peers.WRONG_TYPES_PORT, peers.shifted_oids_reply):
        sample = await poller.poll(v2c_target(port=peers.WRONG_TYPES_PORT), [3])
    assert sample.failure is SnmpFailure.GARBAGE


# --- differential: the lean v2c path against pysnmp's hlapi on the same agents --------------


@contextlib.asynccontextmanager
async def _hlapi(target: SnmpTarget) -> AsyncIterator[tuple[Any, Any, Any]]:
    """pysnmp's hlapi ready to ask `target`: dispatcher (closed after), community, transport."""
    from pysnmp.hlapi.v1arch.asyncio import CommunityData, SnmpDispatcher, UdpTransportTarget

    assert isinstance(target.credentials, SnmpV2c)
    dispatcher = SnmpDispatcher()
    try:
        transport = await UdpTransportTarget.create((target.address, target.port), timeout=2)
        yield dispatcher, CommunityData(target.credentials.community), transport
    finally:
        dispatcher.close()


async def _hlapi_get(
    target: SnmpTarget, oids: list[tuple[int, ...]]
) -> list[tuple[tuple[int, ...], object]]:
    from pysnmp.hlapi.v1arch.asyncio import get_cmd

    async with _hlapi(target) as (dispatcher, community, transport):
        err, status, _, varbinds = await get_cmd(
            dispatcher, community, transport, *[(oid, None) for oid in oids], lookupMib=False
        )
    assert err is None
    assert not status
    return [(tuple(name), val) for name, val in varbinds]


async def _hlapi_walk(
    target: SnmpTarget, column: tuple[int, ...]
) -> list[tuple[tuple[int, ...], object]]:
    from pysnmp.hlapi.v1arch.asyncio import bulk_walk_cmd

    rows = []
    async with _hlapi(target) as (dispatcher, community, transport):
        async for err, status, _, varbinds in bulk_walk_cmd(
            dispatcher, community, transport, 0, 25,
            (column, None), lookupMib=False, lexicographicMode=False,
        ):  # fmt: skip
            assert err is None
            assert not status
            rows += [(tuple(name), val) for name, val in varbinds]
    return rows


def _plain(value: object) -> object:
    """A pysnmp value as the lean path's Value would carry it."""
    kind = {"NoSuchObject": Kind.NO_SUCH_OBJECT, "NoSuchInstance": Kind.NO_SUCH_INSTANCE}
    name = type(value).__name__
    if name in kind:
        return Value(kind[name], None)
    if name in ("OctetString", "DisplayString", "IpAddress", "Opaque"):
        return value.asOctets()  # type: ignore[attr-defined]
    if name == "ObjectIdentifier":
        return tuple(cast(Iterable[int], value))
    return int(value)  # type: ignore[call-overload]


def _lean(value: Value) -> object:
    return value if value.data is None else value.data


def _typed(value: object) -> Value:
    """A pysnmp value as a Value, kind included (the v3 path's converter, on pyasn1's objects)."""
    from probes.snmp_v3 import convert_varbinds

    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, [((1, 3), value)])
    ((_, converted),) = convert_varbinds(pdu)
    return converted


def _recorded_oids(recording: str) -> list[tuple[int, ...]]:
    lines = (peers.RECORDINGS / f"{recording}.snmprec").read_text().splitlines()
    return [tuple(int(arc) for arc in line.split("|", 1)[0].split(".")) for line in lines if line]


@pytest.mark.parametrize("recording", ["routeros", "draytek", "junos"])
async def test_every_recorded_object_reads_as_pyasn1_reads_it(
    snmpsim: str, poller: SnmpPoller, recording: str
) -> None:
    # Every value of three real routers, each SMI type they use (IpAddress, Counter64, OIDs,
    # binary strings...), through probes/ber.py and through pysnmp's hlapi (pyasn1).
    target = sim_target(recording)
    oids = _recorded_oids(recording)
    assert len(oids) > 200
    for start in range(0, len(oids), 24):
        chunk = oids[start : start + 24]
        outcome = await poller._exchange(target, get_request(chunk))
        assert not isinstance(outcome, WireFailure), outcome
        reference = [(o, _typed(v)) for o, v in await _hlapi_get(target, chunk)]
        assert list(outcome.varbinds) == reference


async def test_snmpd_subtrees_read_as_pyasn1_reads_them(
    snmpd: peers.Snmpd, poller: SnmpPoller
) -> None:
    # system (OIDs, TimeTicks), interfaces, ipAddrTable (IpAddress) and ifXTable (Counter64)
    # of a live net-snmp agent. Counters and uptimes move between the two walks: for integers
    # only the kind is compared, everything else in full.
    target = v2c_target()
    for subtree in [(1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 2), (1, 3, 6, 1, 2, 1, 4, 20),
                    (1, 3, 6, 1, 2, 1, 31)]:  # fmt: skip
        rows = await poller.walk(target, subtree)
        assert not isinstance(rows, WireFailure)
        reference = [(o[len(subtree) :], _typed(v)) for o, v in await _hlapi_walk(target, subtree)]
        assert len(rows) > 3
        assert [(s, v.kind) for s, v in rows] == [(s, v.kind) for s, v in reference]
        assert [v for _, v in rows if not isinstance(v.data, int)] == [
            v for _, v in reference if not isinstance(v.data, int)
        ]


@pytest.mark.parametrize("recording", ["routeros", "draytek", "junos"])
async def test_lean_v2c_matches_pysnmp_hlapi_on_recordings(
    snmpsim: str, poller: SnmpPoller, recording: str
) -> None:
    from probes import snmp

    target = sim_target(recording)
    # The poll's own OIDs (both counter widths) plus text and OID-typed scalars.
    oids = [*snmp._poll_oids([1, 4], 64), *snmp._poll_oids([4], 32)[1:],
            snmp.SYS_DESCR, (1, 3, 6, 1, 2, 1, 1, 2, 0)]  # fmt: skip
    plan_request = get_request(oids)
    outcome = await poller._exchange(target, plan_request)
    assert not isinstance(outcome, WireFailure)
    reference = await _hlapi_get(target, oids)
    assert [(o, _lean(v)) for o, v in outcome.varbinds] == [(o, _plain(v)) for o, v in reference]
    for column in (IF_DESCR, IF_NAME):
        rows = await poller.walk(target, column)
        assert not isinstance(rows, WireFailure)
        expected = [(o[len(column) :], _plain(v)) for o, v in await _hlapi_walk(target, column)]
        assert [(s, _lean(v)) for s, v in rows] == expected


async def test_lean_v2c_and_v3_match_pysnmp_hlapi_on_snmpd(
    snmpd: peers.Snmpd, poller: SnmpPoller
) -> None:
    from probes import snmp

    static = [snmp.SYS_DESCR, snmp.SYS_NAME, (1, 3, 6, 1, 2, 1, 1, 2, 0), (*IF_DESCR, 1)]
    reference = [(o, _plain(v)) for o, v in await _hlapi_get(v2c_target(), static)]
    for creds in (SnmpV2c(peers.COMMUNITY), v3_credentials(1)):
        target = SnmpTarget(LOOPBACK, creds, port=peers.SNMPD_PORT)
        outcome = await poller._exchange(target, get_request(static))
        assert not isinstance(outcome, WireFailure)
        assert [(o, _lean(v)) for o, v in outcome.varbinds] == reference
        rows = await poller.walk(target, IF_DESCR)
        assert not isinstance(rows, WireFailure)
        expected = [
            (o[len(IF_DESCR) :], _plain(v)) for o, v in await _hlapi_walk(v2c_target(), IF_DESCR)
        ]
        assert [(s, _lean(v)) for s, v in rows] == expected


def test_indexed_usm_finds_users_like_stock_pysnmp() -> None:
    # The poller replaces USM's securityName lookup (quadratic with one engine-id per router);
    # it must answer exactly what pysnmp's own lookup answers, for local and cloned users.
    from pyasn1.type import univ
    from pysnmp.entity import config, engine
    from pysnmp.smi.error import NoSuchInstanceError

    from probes.snmp_v3 import indexed_usm

    answers = []
    for replace_usm in (True, False):
        snmp_engine = engine.SnmpEngine()
        if replace_usm:
            snmp_engine.security_models[3] = indexed_usm()
        for user in ("ops", "noc"):
            config.add_v3_user(
                snmp_engine, user, config.USM_AUTH_HMAC192_SHA256, "auth-key-" + user,
                config.USM_PRIV_CFB128_AES, "priv-key-" + user,
            )  # fmt: skip
        usm = snmp_engine.security_models[3]
        sec2usr = usm._SnmpUSMSecurityModel__sec2usr
        (admin,) = snmp_engine.get_mib_builder().import_symbols(
            "SNMP-FRAMEWORK-MIB", "SnmpAdminString"
        )
        seen = []
        for n in range(5):
            engine_id = univ.OctetString(bytes([0x80, 0, 0x1F, 0x88, 4, n]))
            with pytest.raises(NoSuchInstanceError):
                sec2usr(snmp_engine, admin("ops"), engine_id)
            usm._SnmpUSMSecurityModel__clone_user_info(
                snmp_engine, engine_id, sec2usr(snmp_engine, admin("ops"))
            )
            seen.append(bytes(sec2usr(snmp_engine, admin("ops"), engine_id)))
            with pytest.raises(NoSuchInstanceError):
                sec2usr(snmp_engine, admin("noc"), engine_id)
        seen.append(bytes(sec2usr(snmp_engine, admin("noc"))))
        with pytest.raises(NoSuchInstanceError):
            sec2usr(snmp_engine, admin("nobody"))
        answers.append(seen)
    assert answers[0] == answers[1] == [b"ops"] * 5 + [b"noc"]


async def test_the_indexed_usm_is_installed_and_serves_v3_lookups(
    snmpd: peers.Snmpd, poller: SnmpPoller
) -> None:
    # indexed_usm() overrides a private pysnmp method (pysnmp pinned to the minor version it was
    # tested against): if a pysnmp release renames it or stops calling it, v3 still works on the
    # stock quadratic path, so only this test tells. It must be installed on the engine and
    # answer the securityName lookups of a real v3 exchange with snmpd.
    target = SnmpTarget(LOOPBACK, v3_credentials(0), port=peers.SNMPD_PORT, timeout_s=1.0)
    sample = await poller.poll(target, [1])
    assert sample.failure is None, sample.detail
    v3 = poller._v3
    assert v3 is not None
    usm = v3.usm
    assert type(usm).__name__ == "IndexedUsm"
    assert v3._engine.security_models[usm.SECURITY_MODEL_ID] is usm
    assert usm.indexed_lookups > 0


def test_indexed_usm_warns_when_pysnmp_has_no_lookup_to_override(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pysnmp.proto.secmod.rfc3414.service import SnmpUSMSecurityModel

    from probes.snmp_v3 import indexed_usm

    monkeypatch.delattr(SnmpUSMSecurityModel, "_SnmpUSMSecurityModel__sec2usr")
    with caplog.at_level(logging.WARNING, logger="probes.snmp_v3"):
        usm = indexed_usm()
    assert type(usm) is SnmpUSMSecurityModel
    assert "snmp usm index not installed" in caplog.text


# --- rates: pure unit tests with realistic counter sequences --------------------------------


def _sample(
    t_s: float,
    uptime_s: float | None,
    in_octets: int,
    out_octets: int,
    bits: int = 64,
    errors: int = 0,
    discontinuity: int = 0,
) -> RouterSample:
    iface = InterfaceSample(
        if_index=3, oper_status=1, in_octets=in_octets, out_octets=out_octets, counter_bits=bits,
        in_errors=errors, out_errors=0, in_discards=0, out_discards=0,
        discontinuity_ticks=discontinuity if bits == 64 else SnmpFailure.NO_SUCH_OBJECT,
    )  # fmt: skip
    return RouterSample("10.92.0.1", datetime.now(UTC), t_s, uptime_s, (iface,), None)


def _one(
    prev: RouterSample, cur: RouterSample, bandwidth_bps: float = 100e6
) -> tuple[InterfaceRates, bool]:
    rates, rebooted = compute_rates(prev, cur, {3: bandwidth_bps})
    assert len(rates) == 1
    return rates[0], rebooted


def test_rates_64_bit() -> None:
    # 60 s at 50 Mbit/s in, 10 Mbit/s out on a 100 Mbit/s link.
    r, rebooted = _one(
        _sample(0, 1000, 6_422_347_895, 10),
        _sample(60, 1060, 6_422_347_895 + 375_000_000, 75_000_010),
    )
    assert not rebooted
    assert r.reason is None
    assert r.in_bps == pytest.approx(50e6)
    assert r.out_bps == pytest.approx(10e6)
    assert r.in_utilization_ratio == pytest.approx(0.5)
    assert r.out_utilization_ratio == pytest.approx(0.1)


def test_rates_32_bit_wrap_is_corrected_when_plausible() -> None:
    # DrayTek-like: ifInOctets 4,200,000,000 wraps to 80,000,000 in 60 s = 23.5 MB = 22.6 Mbit/s.
    prev = _sample(0, 5000, 4_200_000_000, 1_000, bits=32)
    cur = _sample(60, 5060, 80_000_000, 2_000, bits=32)
    r, _ = _one(prev, cur)
    assert r.in_bps == pytest.approx((2**32 - 4_200_000_000 + 80_000_000) * 8 / 60)
    assert r.out_bps == pytest.approx(1000 * 8 / 60)


def test_rates_32_bit_implausible_wrap_is_no_rate() -> None:
    # A "wrap" that would mean 106 Mbit/s on a 10 Mbit/s line is not traffic.
    prev = _sample(0, 5000, 4_000_000_000, 0, bits=32)
    cur = _sample(60, 5060, 500_000_000, 0, bits=32)
    r, _ = _one(prev, cur, bandwidth_bps=10e6)
    assert r.in_bps is None
    assert r.reason is RateGap.IMPLAUSIBLE_WRAP


def test_rates_32_bit_reset_to_zero_is_no_rate() -> None:
    prev = _sample(0, 5000, 3_784_916_249, 1_463_696_936, bits=32)
    cur = _sample(60, 5060, 1_200, 800, bits=32)
    r, rebooted = _one(prev, cur)
    assert not rebooted
    assert (r.in_bps, r.out_bps, r.reason) == (None, None, RateGap.COUNTER_RESET)


def test_rates_64_bit_counter_going_back_is_reset() -> None:
    r, _ = _one(_sample(0, 5000, 6_422_347_895, 5), _sample(60, 5060, 100, 5))
    # The interface's counters were reset together: out (unchanged by luck) gets no rate either.
    assert (r.in_bps, r.out_bps, r.reason) == (None, None, RateGap.COUNTER_RESET)


def test_32_bit_step_back_alone_is_taken_as_a_wrap() -> None:
    # Documented ambiguity: only ifInOctets went back, by a plausible wrap: corrected.
    prev = _sample(0, 5000, 3_784_916_249, 1_463_696_936, bits=32)
    cur = _sample(60, 5060, 1_200, 1_463_697_936, bits=32)
    r, _ = _one(prev, cur)
    assert r.reason is None
    assert r.in_bps == pytest.approx((2**32 - 3_784_916_249 + 1_200) * 8 / 60)


def test_reboot_by_uptime_going_back_gives_no_rates() -> None:
    # Router rebooted: uptime 86,400 s -> 20 s, counters restarted near zero.
    r, rebooted = _one(
        _sample(0, 86_400, 9_000_000_000, 9_000_000_000), _sample(60, 20, 50_000, 40_000)
    )
    assert rebooted
    assert (r.in_bps, r.out_bps, r.reason) == (None, None, RateGap.REBOOT)


def test_reboot_within_interval_without_uptime_going_back() -> None:
    # Up 10 s at the first poll, rebooted 30 s later: 20 s up at the next poll (60 s later).
    # The counters grew past the old values: without uptime this would look like traffic.
    r, rebooted = _one(_sample(0, 10, 1_000, 1_000), _sample(60, 20, 900_000_000, 1_000))
    assert rebooted
    assert r.in_bps is None
    assert r.reason is RateGap.REBOOT


def test_uptime_wrap_after_497_days_is_not_a_reboot() -> None:
    wrap_s = 2**32 / 100
    r, rebooted = _one(_sample(0, wrap_s - 30, 0, 0), _sample(60, 30, 7_500_000, 0))
    assert not rebooted
    assert r.in_bps == pytest.approx(1e6)


def test_discontinuity_time_change_gives_no_rate() -> None:
    r, rebooted = _one(
        _sample(0, 5000, 10, 10), _sample(60, 5060, 20_000, 20_000, discontinuity=500_100)
    )
    assert not rebooted
    assert r.reason is RateGap.DISCONTINUITY
    assert r.in_bps is None


def test_rates_need_two_good_samples() -> None:
    good = _sample(0, 5000, 10, 10)
    failed = RouterSample("10.92.0.1", datetime.now(UTC), 60, None, (), SnmpFailure.TIMEOUT)
    assert compute_rates(good, failed, {}) == ([], False)
    r, rebooted = _one(failed, _sample(120, 5120, 20, 20))
    assert not rebooted
    assert r.reason is RateGap.FAILED_SAMPLE
    r, _ = _one(_sample(60, 5060, 10, 10), _sample(60, 5060, 20, 20))
    assert r.reason is RateGap.BAD_INTERVAL
    r, _ = _one(_sample(0, 5000, 10, 10, bits=64), _sample(60, 5060, 20, 20, bits=32))
    assert r.reason is RateGap.WIDTH_CHANGED


def test_error_rates_and_unknown_bandwidth() -> None:
    rates, _ = compute_rates(
        _sample(0, 5000, 0, 0, errors=100), _sample(10, 5010, 1250, 0, errors=150), {}
    )
    (r,) = rates
    assert r.in_errors_per_s == pytest.approx(5.0)
    assert r.in_bps == pytest.approx(1000.0)
    assert r.in_utilization_ratio is None


def test_secret_fields_are_not_in_repr() -> None:
    creds = SnmpV3("ops", "sha256", "very-secret-auth", "aes256", "very-secret-priv")
    target = SnmpTarget("10.92.0.1", creds)
    assert "very-secret" not in repr(target)
    assert "very-secret" not in str(creds)
    assert "hush" not in repr(SnmpV2c("hush"))
    with pytest.raises(ValueError, match="priv protocol"):
        SnmpV3("ops", "sha", "12345678", "rot13", "12345678")
    with pytest.raises(ValueError, match="at least 8"):
        SnmpV3("ops", "sha", "short")
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        SnmpTarget("router.example", SnmpV2c("x"))


async def test_32_bit_counter_wraps_give_the_true_rate_not_a_spike(
    snmpsim: str, poller: SnmpPoller
) -> None:
    """A real agent (snmpsim's numeric variation) whose ifInOctets wraps every ~4.3 s."""
    target = sim_target("wrapping")
    assert await poller.resolve_interfaces(target, ["wan"]) == {"wan": 1}
    samples = []
    for _ in range(7):
        sample = await poller.poll(target, [1])
        assert sample.failure is None, sample.detail
        samples.append(sample)
        await asyncio.sleep(1.0)
    assert {s.interfaces[0].counter_bits for s in samples} == {32}
    octets = [cast(int, s.interfaces[0].in_octets) for s in samples]
    assert any(b < a for a, b in pairwise(octets)), "no wrap was seen"
    for prev, cur in pairwise(samples):
        rates, rebooted = compute_rates(prev, cur, {1: 10e9})
        assert not rebooted
        (rate,) = rates
        assert rate.in_bps is not None, rate.reason
        assert rate.out_bps is not None, rate.reason
        # 8 Gbit/s in and 2 Gbit/s out, whatever the wraps (wide band: the agent's clock and
        # ours sample at slightly different moments).
        assert 6e9 < rate.in_bps < 10e9
        assert 1.5e9 < rate.out_bps < 2.5e9
