"""sendmmsg/recvmmsg for the ICMP probe (probes/_icmp_batch.py), on loopback."""

from __future__ import annotations

import errno
import os
import socket
import time

import pytest

from probes import _icmp_batch as batch
from probes import _icmp_packet as pkt
from probes.icmp import IcmpPinger, open_icmp_socket


def test_sockaddr_records() -> None:
    v4, v4_length = batch.sockaddr(socket.AF_INET, "10.91.0.2")
    assert (len(v4), v4_length) == (32, 16)
    assert int.from_bytes(v4[:2], "little") == socket.AF_INET
    assert v4[4:8] == socket.inet_aton("10.91.0.2")
    assert batch.sockaddrs_v4(["10.91.0.2"]) == [v4]
    v6, v6_length = batch.sockaddr(socket.AF_INET6, "fd91::2")
    assert (len(v6), v6_length) == (32, 28)
    assert v6[8:24] == socket.inet_pton(socket.AF_INET6, "fd91::2")
    assert int.from_bytes(v6[24:28], "little") == 0
    # A link-local scope by interface name, as sendto() resolved it; an unknown interface
    # leaves it 0 (the kernel then refuses the echoes: a send error, not a failed round).
    scoped, _ = batch.sockaddr(socket.AF_INET6, "fe80::1%lo")
    assert int.from_bytes(scoped[24:28], "little") == socket.if_nametoindex("lo")
    unknown, _ = batch.sockaddr(socket.AF_INET6, "fe80::1%nosuchif0")
    assert int.from_bytes(unknown[24:28], "little") == 0
    for bad in ("example.invalid", "10.1", "10.0.0.1%lo"):
        with pytest.raises(OSError, match="illegal IP address"):
            batch.sockaddr(socket.AF_INET, bad)
    with pytest.raises(OSError, match="illegal IP address"):
        batch.sockaddrs_v4(["10.0.0.1", "nope"])


@pytest.mark.privileged
def test_one_call_sends_and_one_call_reads_a_batch_on_loopback() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for raw ICMP sockets")
    sock = open_icmp_socket(socket.AF_INET, raw=True)
    try:
        targets = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        identifier = 0x4E57
        template, partial = pkt.echo_template(pkt.ECHO_REQUEST_V4, identifier, 0xC0FFEE, 56)
        packets = bytearray()
        for seq in range(3):
            packet = bytearray(template)
            csum = partial + seq
            csum = (csum & 0xFFFF) + (csum >> 16)
            pkt.ECHO_FIELDS.pack_into(packet, 2, ~csum & 0xFFFF, identifier, seq, 0xC0FFEE, 0)
            packets += packet
        outbox = batch.Outbox(batch.sockaddrs_v4(targets), [16] * 3, bytes(packets), 3)
        inbox = batch.Inbox()
        # An empty socket says EAGAIN (never blocks). A raw socket sees every ICMP packet of
        # the namespace, so other programs' (parallel tests') packets are drained first.
        drained = [inbox.receive(sock.fileno()) for _ in range(1000)]
        assert -errno.EAGAIN in drained, drained[:5]
        before = time.time_ns()
        assert batch.send(sock.fileno(), outbox, 0, 3) == 3
        # Loopback answers at once; other programs' echo replies may be read too.
        replies: dict[int, tuple[int, int]] = {}
        deadline = time.monotonic() + 2.0
        while len(replies) < 3 and time.monotonic() < deadline:
            got = inbox.receive(sock.fileno())
            if got <= 0:
                time.sleep(0.01)
                continue
            fields = inbox.echo_fields(got, 20)
            for j, (size, stamp) in enumerate(
                zip(inbox.sizes(got), inbox.stamps(got), strict=True)
            ):
                icmp_type, ident, seq, cookie, _high = fields[5 * j : 5 * j + 5]
                if (icmp_type, ident, cookie) == (pkt.ECHO_REPLY_V4, identifier, 0xC0FFEE):
                    replies[seq] = (size, stamp)
        assert sorted(replies) == [0, 1, 2]
        for size, stamp in replies.values():
            assert size == 20 + 64
            assert stamp >= before
        assert inbox.first_bytes(1) == b"\x45"
    finally:
        sock.close()


@pytest.mark.privileged
async def test_a_round_accounts_reply_batches_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loopback answers a sweep's echoes faster than the pacing tick: replies are read by
    # recvmmsg in batches, and the usual batch is accounted at once (IcmpPinger._take_batch).
    if os.geteuid() != 0:
        pytest.skip("needs root for raw ICMP sockets")
    taken: list[bool] = []
    take_batch = IcmpPinger._take_batch

    def counting(self: IcmpPinger, *args: object) -> bool:
        result: bool = take_batch(self, *args)  # type: ignore[arg-type]
        taken.append(result)
        return result

    monkeypatch.setattr(IcmpPinger, "_take_batch", counting)
    targets = [f"127.0.1.{i}" for i in range(1, 201)]
    async with await IcmpPinger.open(rate_pps=20_000) as pinger:
        results = await pinger.round(targets, echoes=3, spacing_s=0.05, timeout_s=1.0)
        stats = pinger.stats()
    assert [(r.address, r.sent, r.received) for r in results] == [(t, 3, 3) for t in targets]
    assert (stats.sent, stats.received, stats.late, stats.duplicate) == (600, 600, 0, 0)
    assert True in taken
