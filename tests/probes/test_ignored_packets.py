"""Garbage and foreign datagrams on the probes' real sockets are counted and ignored (issue 15).

SNMP: while a poll is in flight, another UDP socket on loopback sends the poller's socket
whatever Hypothesis makes (random octets, truncated and altered v2c answers, empty datagrams);
each is counted (undecodable or stray), none fails or answers the poll, and polling goes on.
ICMP (raw sockets, root): echo replies that are not ours (another identifier, any checksum,
any payload) and ICMP messages too short for an echo header are sent to 127.0.0.1 from a raw
socket; the pinger counts each (foreign or malformed) and still measures a round. Both reach
/metrics as `netwatch_probe_ignored_packets_total{kind,reason}`.
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netwatch.metrics import ignored_packets, ignored_packets_family
from probes import ber
from probes.icmp import IcmpPinger
from probes.snmp import SnmpPoller, SnmpTarget, SnmpV2c
from tests.probes import snmp_peers as peers
from tests.waiting import async_wait_until

LOOPBACK = "127.0.0.1"
FUZZ = settings(max_examples=60, deadline=None)


class _Agent(asyncio.DatagramProtocol):
    """Answers each request for real, after `garbage` went to the asker from another socket."""

    def __init__(self, garbage: list[bytes], side: socket.socket) -> None:
        self.garbage = garbage
        self.side = side
        self.transport: asyncio.DatagramTransport | None = None
        self.asked = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        assert self.transport is not None
        self.asked += 1
        if self.asked == 1:
            for datagram in self.garbage:
                self.side.sendto(datagram, addr)
        self.transport.sendto(peers.stray_then_real_reply(data)[1], addr)  # sysUpTime 42 s


def _undecodable(datagram: bytes) -> bool:
    try:
        ber.decode_header(datagram)
    except ber.BerError:
        return True
    return False


@st.composite
def altered_answer(draw: st.DrawFn) -> bytes:
    """A real v2c answer (to another request-id) cut short or with octets changed."""
    varbinds = (((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.Value(ber.Kind.TIMETICKS, 42)),)
    rid = draw(st.integers(min_value=0, max_value=2**31 - 1))
    data = bytearray(ber.encode_message(b"public", ber.RESPONSE, rid, 0, 0, varbinds))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[i] = draw(st.integers(min_value=0, max_value=255))
    return bytes(data[: draw(st.integers(min_value=0, max_value=len(data)))])


garbage_datagrams = st.lists(
    st.one_of(st.binary(max_size=300), altered_answer(), st.just(b"")), min_size=1, max_size=6
)


async def _poll_through_garbage(garbage: list[bytes]) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as side:
        side.bind((LOOPBACK, 0))
        agent = _Agent(garbage, side)
        transport, _ = await loop.create_datagram_endpoint(lambda: agent, local_addr=(LOOPBACK, 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            target = SnmpTarget(LOOPBACK, SnmpV2c("public"), port=port, timeout_s=2.0, retries=0)
            async with await SnmpPoller.open(max_in_flight=4) as poller:
                sample = await poller.poll(target, [])
                assert sample.failure is None, sample.detail
                assert sample.uptime_s == 42.0
                undecodable = sum(map(_undecodable, garbage))
                expected = (undecodable, len(garbage) - undecodable)

                def counted() -> bool:
                    stats = poller.stats()
                    return (stats.decode_errors, stats.stray) == expected

                await async_wait_until(counted, message=f"garbage counted {expected}")
                assert ignored_packets(None, poller) == [
                    ("snmp", "undecodable", expected[0]),
                    ("snmp", "stray", expected[1]),
                ]
                again = await poller.poll(target, [])  # and polling goes on
                assert again.failure is None
                assert again.uptime_s == 42.0
        finally:
            transport.close()


@FUZZ
@given(garbage_datagrams)
def test_garbage_sent_to_the_snmp_poller_is_counted_and_ignored(garbage: list[bytes]) -> None:
    asyncio.run(_poll_through_garbage(garbage))


def test_the_metric_family_names_kind_and_reason() -> None:
    class Poller:
        def stats(self) -> object:
            return type("S", (), {"decode_errors": 3, "stray": 1})()

    name, kind, _help, lines = ignored_packets_family(None, Poller())  # type: ignore[arg-type]
    assert (name, kind) == ("netwatch_probe_ignored_packets_total", "counter")
    assert list(lines) == [
        'netwatch_probe_ignored_packets_total{kind="snmp",reason="undecodable"} 3.0\n',
        'netwatch_probe_ignored_packets_total{kind="snmp",reason="stray"} 1.0\n',
    ]


# -- ICMP ------------------------------------------------------------------------------------
ECHO_REPLY = 0
HEADER = 16  # type, code, checksum, identifier, sequence, cookie, serial's high bits

icmp_datagrams = st.lists(
    st.one_of(
        # Too short for our header (the kernel's filter drops ICMP under 8 octets).
        st.binary(min_size=7, max_size=HEADER - 1),
        st.binary(min_size=HEADER - 1, max_size=200),  # any identifier, checksum, payload
    ).map(lambda data: bytes([ECHO_REPLY]) + data),
    min_size=1,
    max_size=8,
)


async def _ping_through_foreign(packets: list[bytes]) -> None:
    async with await IcmpPinger.open() as pinger:
        assert pinger.privileged, "a raw socket: the pinger sees every echo reply"
        before = pinger.stats()
        short = sum(len(p) < HEADER for p in packets)
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
            for packet in packets:
                raw.sendto(packet, (LOOPBACK, 0))

        def counted() -> bool:
            # >=: other programs' echo replies on this host are foreign to this pinger too.
            now = pinger.stats()
            return (
                now.malformed - before.malformed >= short
                and now.foreign - before.foreign >= len(packets) - short
            )

        await async_wait_until(counted, message="foreign and short replies counted")
        assert pinger.stats().received == before.received
        [result] = await pinger.round([LOOPBACK], echoes=2, spacing_s=0.01, timeout_s=2.0)
        assert result.received == 2, result
        by_reason = {reason: n for kind, reason, n in ignored_packets(pinger, None)}
        assert by_reason["malformed"] >= short


@pytest.mark.privileged
@FUZZ
@given(icmp_datagrams)
def test_foreign_and_truncated_icmp_is_counted_and_ignored(packets: list[bytes]) -> None:
    asyncio.run(_ping_through_foreign(packets))
