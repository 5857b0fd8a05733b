"""Batched ICMP socket I/O for the ICMP probe (internal): sendmmsg and recvmmsg through ctypes.

Python's socket module has neither call. Per echo, ``socket.sendto`` and ``recvmsg_into`` cost
the interpreter more than the work they ask of it: argument parsing, the address string turned
into a sockaddr on every send, and on every reply a result tuple, an ancillary-data list, a
bytes object and an address tuple, plus the GIL released and taken back around each system
call. One ``sendmmsg`` sends a run of echoes; one ``recvmmsg`` reads every queued reply with its
kernel timestamp into memory laid out once (docs/probes.md has the measurements).

The kernel structures live in ``array('Q')`` buffers: their addresses are stable and each column
(every message's name pointer, every iovec's length...) is filled with one slice assignment, with
no Python work per element. The layouts are those of 64-bit little-endian Linux (x86-64,
arm64), checked at import: ``struct mmsghdr`` is eight 64-bit words (name, namelen, iov,
iovlen, control, controllen, flags, msg_len), ``struct iovec`` two.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import operator
import socket
import struct
import sys
from array import array
from collections.abc import Callable, Iterable
from typing import Final

from probes import _icmp_packet as pkt

_MSG_WORDS: Final = 8
MSG_SIZE: Final = 8 * _MSG_WORDS  # sizeof(struct mmsghdr)
_IOV_SIZE: Final = 16
# One record per target, big enough for a sockaddr_in6 (28 bytes) and 8-byte aligned.
_NAME_SIZE: Final = 32
_SOCKADDR_IN: Final = struct.Struct("=HH4s24x")
_SOCKADDR_IN6: Final = struct.Struct("=HHI16sI4x")
SOCKADDR_IN_LEN: Final = 16
_SOCKADDR_IN6_LEN: Final = 28
_MSG_DONTWAIT: Final = 0x40
_NS_PER_S: Final = 1_000_000_000
# Control room per reply: one SO_TIMESTAMPNS message (cmsghdr + timespec = 32 bytes).
_CONTROL_SIZE: Final = pkt.ANC_TIMESTAMP_SIZE
# The cmsghdr's level and type as one 64-bit word (little-endian: level low, type high).
_TIMESTAMP_CMSG: Final = (pkt.SO_TIMESTAMPNS << 32) | socket.SOL_SOCKET
# Replies read per recvmmsg: a 2 ms pacing tick at 10,000/s brings back ~20.
INBOX_SLOTS: Final = 64


def _libc_calls() -> tuple[Callable[..., int], Callable[..., int]] | None:
    """sendmmsg and recvmmsg from the C library, or None where the layouts above do not hold."""
    if not sys.platform.startswith("linux") or sys.byteorder != "little":
        return None
    if struct.calcsize("P") != 8 or _CONTROL_SIZE != 32:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        sendmmsg = libc.sendmmsg
        recvmmsg = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    # (fd, msgvec, vlen, flags[, timeout]) -> messages done, or -1 and errno
    sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    sendmmsg.restype = ctypes.c_int
    recvmmsg.argtypes = (
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    )
    recvmmsg.restype = ctypes.c_int
    return sendmmsg, recvmmsg


_CALLS: Final = _libc_calls()
AVAILABLE: Final = _CALLS is not None
UNAVAILABLE_REASON: Final = (
    "batched ICMP I/O needs sendmmsg/recvmmsg on 64-bit little-endian Linux "
    f"(this is {sys.platform}, {sys.byteorder}-endian, {8 * struct.calcsize('P')}-bit)"
)
get_errno: Final = ctypes.get_errno


def sockaddr(family: int, address: str) -> tuple[bytes, int]:
    """The sockaddr record (``_NAME_SIZE`` bytes) and its length for an IP address literal.

    Raises OSError or ValueError when ``address`` is not one (no name lookup is ever made).
    """
    if family == socket.AF_INET:
        return _SOCKADDR_IN.pack(family, 0, socket.inet_pton(family, address)), SOCKADDR_IN_LEN
    host, _, scope = address.partition("%")
    packed = socket.inet_pton(family, host)
    scope_id = 0
    if scope:
        # A link-local scope by interface name or number, as sendto() would have resolved it.
        # An unknown interface leaves it 0: the kernel then refuses the echoes (a send error
        # per echo, as sendto() gave), the round goes on.
        try:
            info = socket.getaddrinfo(
                address, 0, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
            )
        except socket.gaierror:
            pass
        else:
            address_info = info[0][4]
            scope_id = address_info[3] if len(address_info) == 4 else 0
    return _SOCKADDR_IN6.pack(family, 0, 0, packed, scope_id), _SOCKADDR_IN6_LEN


def sockaddrs_v4(addresses: Iterable[str]) -> list[bytes]:
    """``sockaddr`` of many IPv4 literals, in C-level maps. Raises OSError on a non-literal."""
    packed = map(functools.partial(socket.inet_pton, socket.AF_INET), addresses)
    return list(
        map(_SOCKADDR_IN.pack, itertools.repeat(socket.AF_INET), itertools.repeat(0), packed)
    )


class Outbox:
    """One round's echoes as ``struct mmsghdr``s, one per target, ready for ``sendmmsg``.

    Target ``i`` always goes out from message ``i``: its sockaddr and its own packet buffer
    (``packet_size`` bytes at ``i * packet_size`` of ``packets``, a copy of its family's echo
    template) never move, so sending a run of targets is one call on ``address_of(first)``;
    only the checksum, sequence and serial of each packet are rewritten before each sweep.
    """

    __slots__ = ("_iovs", "_msgs", "_names", "msgs_address", "packet_size", "packets")

    def __init__(self, names: list[bytes], name_lengths: list[int], packets: bytes, n: int) -> None:
        """``names``, ``name_lengths``: per target; ``packets``: the n packets, end to end."""
        packet_size = self.packet_size = len(packets) // n
        self._names = array("B", b"".join(names))
        self.packets = array("B", packets)
        self._iovs = array("Q", bytes(_IOV_SIZE * n))
        self._msgs = array("Q", bytes(MSG_SIZE * n))
        names_at = self._names.buffer_info()[0]
        packets_at = self.packets.buffer_info()[0]
        iovs_at = self._iovs.buffer_info()[0]
        self._iovs[0::2] = array("Q", range(packets_at, packets_at + packet_size * n, packet_size))
        self._iovs[1::2] = array("Q", [packet_size]) * n
        msgs = self._msgs
        msgs[0::_MSG_WORDS] = array("Q", range(names_at, names_at + _NAME_SIZE * n, _NAME_SIZE))
        msgs[1::_MSG_WORDS] = array("Q", name_lengths)
        msgs[2::_MSG_WORDS] = array("Q", range(iovs_at, iovs_at + _IOV_SIZE * n, _IOV_SIZE))
        msgs[3::_MSG_WORDS] = array("Q", [1]) * n
        self.msgs_address = msgs.buffer_info()[0]


def send(fd: int, outbox: Outbox, first: int, count: int) -> int:
    """``sendmmsg`` of targets ``first .. first + count - 1``: how many left, or -errno."""
    assert _CALLS is not None
    sent: int = _CALLS[0](fd, outbox.msgs_address + MSG_SIZE * first, count, 0)
    return sent if sent >= 0 else -get_errno()


class Inbox:
    """Room for ``INBOX_SLOTS`` replies and their timestamps, read by one ``recvmmsg``.

    After ``receive()`` returned n > 0: ``sizes()`` and ``stamps()`` give each reply's length
    and kernel receive time (ns, 0 when the kernel attached none), and reply ``j`` starts at
    byte ``data_at + j * slot_size`` of ``view``.
    """

    __slots__ = (
        "_address",
        "_control_word",
        "_layouts",
        "_pristine",
        "_region",
        "_words",
        "data_at",
        "slot_size",
        "view",
    )

    def __init__(self, slot_size: int = pkt.RECV_SIZE) -> None:
        slots = INBOX_SLOTS
        msgs_bytes = MSG_SIZE * slots
        iovs_at = msgs_bytes
        control_at = iovs_at + _IOV_SIZE * slots
        self.data_at = control_at + _CONTROL_SIZE * slots
        self.slot_size = slot_size
        region = self._region = array("Q", bytes(self.data_at + slot_size * slots))
        base = self._address = region.buffer_info()[0]
        iovs_w = iovs_at // 8
        iov_words = array("Q", bytes(_IOV_SIZE * slots))
        data_base = base + self.data_at
        iov_words[0::2] = array("Q", range(data_base, data_base + slot_size * slots, slot_size))
        iov_words[1::2] = array("Q", [slot_size]) * slots
        region[iovs_w : iovs_w + 2 * slots] = iov_words
        msg_words = array("Q", bytes(msgs_bytes))
        msg_words[2::_MSG_WORDS] = array(
            "Q", range(base + iovs_at, base + iovs_at + _IOV_SIZE * slots, _IOV_SIZE)
        )
        msg_words[3::_MSG_WORDS] = array("Q", [1]) * slots
        control_base = base + control_at
        msg_words[4::_MSG_WORDS] = array(
            "Q", range(control_base, control_base + _CONTROL_SIZE * slots, _CONTROL_SIZE)
        )
        msg_words[5::_MSG_WORDS] = array("Q", [_CONTROL_SIZE]) * slots
        region[: _MSG_WORDS * slots] = msg_words
        self._control_word = control_at // 8
        self.view = memoryview(region).cast("B")
        self._words = memoryview(region)
        # The kernel rewrites each message's controllen, flags and length and the control
        # data: restored from this copy before every call (stale timestamps are never read).
        self._pristine = bytes(self.view[: self.data_at])
        self._layouts: dict[tuple[int, int], struct.Struct] = {}

    def receive(self, fd: int) -> int:
        """``recvmmsg`` without waiting: how many replies were read, or -errno (-EAGAIN: none)."""
        assert _CALLS is not None
        self.view[: self.data_at] = self._pristine
        got: int = _CALLS[1](fd, self._address, INBOX_SLOTS, _MSG_DONTWAIT, None)
        return got if got >= 0 else -get_errno()

    def sizes(self, count: int) -> list[int]:
        """The length of each of the first ``count`` replies."""
        result: list[int] = self._words[7 : _MSG_WORDS * count : _MSG_WORDS].tolist()
        return result

    def first_bytes(self, count: int) -> bytes:
        """The first byte of each of the first ``count`` replies."""
        start = self.data_at
        return bytes(self.view[start : start + self.slot_size * (count - 1) + 1 : self.slot_size])

    def echo_fields(self, count: int, offset: int) -> tuple[int, ...]:
        """Type, identifier, sequence, cookie and serial high bits of the first ``count``
        replies, five values each in reply order, for echo headers at ``offset`` in each."""
        key = (count, offset)
        layout = self._layouts.get(key)
        if layout is None:
            # Skip to the header, read it, skip to the next reply's slot.
            one = f"{offset}xBxxxHHII"
            gap = f"{self.slot_size - offset - 16}x"
            layout = self._layouts[key] = struct.Struct("!" + gap.join([one] * count))
        fields: tuple[int, ...] = layout.unpack_from(self.view, self.data_at)
        return fields

    def stamps(self, count: int) -> list[int]:
        """Each reply's kernel receive time in ns (CLOCK_REALTIME), 0 where none came with it."""
        words = self._words
        at = self._control_word
        end = at + 4 * count
        secs: list[int] = words[at + 2 : end : 4].tolist()
        nsecs: list[int] = words[at + 3 : end : 4].tolist()
        stamps = list(map(operator.add, map(_NS_PER_S.__mul__, secs), nsecs))
        kinds: list[int] = words[at + 1 : end : 4].tolist()
        if kinds.count(_TIMESTAMP_CMSG) != count:
            stamps = [s if k == _TIMESTAMP_CMSG else 0 for s, k in zip(stamps, kinds, strict=True)]
        return stamps
