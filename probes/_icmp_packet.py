"""ICMP echo wire format, checksums and socket setup for the ICMP probe (internal)."""

from __future__ import annotations

import errno
import socket
import struct
from typing import Final

# Python 3.11's socket module lacks these Linux constants (asm-generic/socket.h, linux/in.h,
# linux/in6.h, linux/icmp.h, linux/icmpv6.h); the values are ABI and never change.
SO_TIMESTAMPNS: Final = 35
SO_RCVBUFFORCE: Final = 33
SOL_RAW: Final = 255
ICMP_FILTER: Final = 1
ICMP6_FILTER: Final = 1
IP_RECVERR: Final = 11
IPV6_RECVERR: Final = 25
MSG_ERRQUEUE: Final = 0x2000
SO_EE_ORIGIN_ICMP: Final = 2
SO_EE_ORIGIN_ICMP6: Final = 3

ECHO_REQUEST_V4: Final = 8
ECHO_REPLY_V4: Final = 0
DEST_UNREACH_V4: Final = 3
TIME_EXCEEDED_V4: Final = 11
ECHO_REQUEST_V6: Final = 128
ECHO_REPLY_V6: Final = 129
DEST_UNREACH_V6: Final = 1
TIME_EXCEEDED_V6: Final = 3

# Our echo payload starts with a 4-byte per-pinger cookie and the high 32 bits of the echo's
# 48-bit serial number (the low 16 bits are the ICMP sequence). The cookie rejects replies to
# another process that happens to use the same identifier, and to datagram sockets, whose
# identifier the kernel rewrites; the serial lets any number of rounds and targets share one
# 16-bit sequence space without ambiguity, and tells a late reply from a foreign one.
MARK_SIZE: Final = 8
MIN_PAYLOAD_SIZE: Final = MARK_SIZE
MAX_PAYLOAD_SIZE: Final = 65_000

# type, code, checksum, identifier, sequence, cookie, serial_high: one pack/unpack per packet.
ECHO_HEADER: Final = struct.Struct("!BBHHHII")
# The 8 bytes of our echo that every ICMP error quotes (RFC 792).
ECHO_SHORT: Final = struct.Struct("!BBHHH")
# checksum .. serial_high, written into the template at offset 2 before each send.
ECHO_FIELDS: Final = struct.Struct("!HHHII")
TIMESPEC: Final = struct.Struct("@qq")
# struct sock_extended_err (linux/errqueue.h)
SOCK_EXTENDED_ERR: Final = struct.Struct("@IBBBBII")

# Room for one timespec control message; replies are small, errors quote at most 576 bytes
# (IPv4) or the minimum MTU (IPv6), and a bigger payload_size just gets truncated past what
# we read.
ANC_TIMESTAMP_SIZE: Final = socket.CMSG_SPACE(TIMESPEC.size)
ANC_ERRQUEUE_SIZE: Final = socket.CMSG_SPACE(SOCK_EXTENDED_ERR.size + 28) + ANC_TIMESTAMP_SIZE
RECV_SIZE: Final = 2048

# Errors that mean "the socket's send queue is full, try again later", not "this echo failed".
TRANSIENT_SEND_ERRNOS: Final = frozenset({errno.EAGAIN, errno.ENOBUFS})


def ones_complement_sum(data: bytes | bytearray) -> int:
    """The folded 16-bit one's complement sum of `data` (RFC 1071), not yet inverted."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def echo_template(
    icmp_type: int, identifier: int, cookie: int, payload_size: int
) -> tuple[bytearray, int]:
    """An echo request with checksum, sequence and serial zeroed, and the partial sum of the rest.

    Per packet only the sequence and serial change, so the checksum is this partial sum plus
    three 16-bit words (RFC 1624 incremental update) instead of a pass over the whole packet.
    """
    if not MIN_PAYLOAD_SIZE <= payload_size <= MAX_PAYLOAD_SIZE:
        msg = (
            f"payload_size must be {MIN_PAYLOAD_SIZE}..{MAX_PAYLOAD_SIZE} bytes, got {payload_size}"
        )
        raise ValueError(msg)
    packet = bytearray(8 + payload_size)
    ECHO_HEADER.pack_into(packet, 0, icmp_type, 0, 0, identifier, 0, cookie, 0)
    # A recognisable filler, like ping(8)'s incrementing bytes: no information, easy in tcpdump.
    for i in range(8 + MARK_SIZE, len(packet)):
        packet[i] = i & 0xFF
    return packet, ones_complement_sum(packet)


def set_receive_filter(sock: socket.socket, family: int, allowed_types: tuple[int, ...]) -> None:
    """Let the kernel drop ICMP types we never read (raw sockets see every ICMP message)."""
    if family == socket.AF_INET:
        # ICMP_FILTER: a set bit blocks that type; only types 0..31 can be filtered.
        mask = 0xFFFFFFFF
        for icmp_type in allowed_types:
            mask &= ~(1 << icmp_type)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", mask))
    else:
        # ICMP6_FILTER (RFC 3542 semantics on Linux: a set bit blocks the type).
        words = [0xFFFFFFFF] * 8
        for icmp_type in allowed_types:
            words[icmp_type >> 5] &= ~(1 << (icmp_type & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words))


def set_buffer(sock: socket.socket, option: int, size: int, *, force: int | None) -> None:
    """Size a socket buffer, beyond net.core.[rw]mem_max when we hold CAP_NET_ADMIN."""
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except PermissionError:
            pass
        else:
            return
    sock.setsockopt(socket.SOL_SOCKET, option, size)
