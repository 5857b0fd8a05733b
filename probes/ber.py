"""A narrow, strict BER codec for the SNMPv2c messages the poller sends and receives.

Exactly what RFC 3416 / RFC 3417 need for a v2c manager, nothing more: the Message
``SEQUENCE {version, community, PDU}``, the PDUs that share the request-id / error-status /
error-index / variable-bindings layout (GetRequest, GetNext, GetBulk, Response, Set, Inform,
Trap-v2, Report), and the SMI values INTEGER, OCTET STRING, NULL, OBJECT IDENTIFIER,
IpAddress, Counter32, Gauge32, TimeTicks, Opaque, Counter64 and the noSuchObject /
noSuchInstance / endOfMibView exceptions.

Why not pyasn1's generic codec: it builds a tree of schema-checked objects for every datagram;
under the national SNMP round that was 65 % of NetWatch's CPU (issue 10). This module decodes
straight into plain Python values (``int.from_bytes`` on slices of the datagram) and caches the
few OIDs a poll sees over and over.

Strict: definite lengths only (RFC 3417 section 8), one-octet tags, every length checked against
its container, no trailing octets anywhere (also not after the message), values checked against
their SMI range (Integer32, Unsigned32, Counter64, 4-octet IpAddress, empty NULL and exceptions),
OIDs of 2..128 arcs each below 2**32 with minimal base-128 arcs. What is not valid raises
:class:`BerError` with a readable reason and nothing else: callers count it as a decode error.
Non-minimal length and INTEGER encodings are accepted (BER allows the former; agents emit both).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

Oid = tuple[int, ...]

# Universal and SNMP application/context tags (X.690, RFC 2578, RFC 3416), as the first octet.
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
SEQUENCE: Final = 0x30
IP_ADDRESS: Final = 0x40
COUNTER32: Final = 0x41
GAUGE32: Final = 0x42
TIMETICKS: Final = 0x43
OPAQUE: Final = 0x44
COUNTER64: Final = 0x46
NO_SUCH_OBJECT: Final = 0x80
NO_SUCH_INSTANCE: Final = 0x81
END_OF_MIB_VIEW: Final = 0x82

GET_REQUEST: Final = 0xA0
GET_NEXT_REQUEST: Final = 0xA1
RESPONSE: Final = 0xA2
SET_REQUEST: Final = 0xA3
GET_BULK_REQUEST: Final = 0xA5
INFORM_REQUEST: Final = 0xA6
SNMPV2_TRAP: Final = 0xA7
REPORT: Final = 0xA8
# Trap-PDU of SNMPv1 (0xA4) has another layout and never answers a v2c request.
PDU_TAGS: Final = frozenset(
    {
        GET_REQUEST,
        GET_NEXT_REQUEST,
        RESPONSE,
        SET_REQUEST,
        GET_BULK_REQUEST,
        INFORM_REQUEST,
        SNMPV2_TRAP,
        REPORT,
    }
)

VERSION_2C: Final = 1
MAX_OID_ARCS: Final = 128  # RFC 2578 section 3.5
_INT32_MIN: Final = -(1 << 31)
_INT32_MAX: Final = (1 << 31) - 1
_UINT32_MAX: Final = (1 << 32) - 1
_UINT64_MAX: Final = (1 << 64) - 1
# A UDP datagram is at most 65,535 octets: a length of more than four octets is never honest.
_MAX_LENGTH_OCTETS: Final = 4
# Decoded OIDs by their content octets: a poll's answers name the same OIDs round after round.
_OID_CACHE_MAX: Final = 8192
_OID_CACHE_MAX_OCTETS: Final = 48
# 128 arcs of at most 5 octets each (2**32 - 1 takes 5 base-128 digits).
_MAX_OID_OCTETS: Final = MAX_OID_ARCS * 5


class Kind(enum.Enum):
    """SMI type of a value in a varbind (RFC 2578, RFC 3416)."""

    INTEGER = "Integer32"
    OCTETS = "OCTET STRING"
    OID = "OBJECT IDENTIFIER"
    IPADDRESS = "IpAddress"
    COUNTER32 = "Counter32"
    GAUGE32 = "Gauge32"
    TIMETICKS = "TimeTicks"
    OPAQUE = "Opaque"
    COUNTER64 = "Counter64"
    NULL = "NULL"
    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


@dataclass(frozen=True, slots=True)
class Value:
    """A varbind value: its SMI kind and a plain Python value (int, bytes, OID tuple or None)."""

    kind: Kind
    data: int | bytes | Oid | None


VarBinds = tuple[tuple[Oid, Value], ...]


class BerError(ValueError):
    """The octets are not a valid SNMPv2c message of the shapes this codec knows."""


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded v2c message. For GetBulk, error_status / error_index carry non-repeaters /
    max-repetitions (RFC 3416 section 3: same positions, same encoding)."""

    version: int
    community: bytes
    pdu_tag: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: VarBinds


@dataclass(frozen=True, slots=True)
class Header:
    """The part of a message before its varbinds: enough to find the request it answers."""

    version: int
    community: bytes
    pdu_tag: int
    request_id: int
    body: int  # offset of error-status
    end: int  # end of the PDU (= end of the datagram: no trailing octets allowed)


# --- encoding -------------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """Definite length octets: short form below 128, else the minimal long form."""
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """One tag-length-value with a one-octet tag."""
    return bytes((tag,)) + encode_length(len(content)) + content


def encode_integer(value: int) -> bytes:
    """Minimal two's complement content octets of an INTEGER (X.690 8.3)."""
    magnitude = value if value >= 0 else ~value
    return value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True)


def encode_unsigned(value: int, maximum: int) -> bytes:
    """Content octets of an unsigned application type (Counter32 ... Counter64)."""
    if not 0 <= value <= maximum:
        raise ValueError(f"{value} is outside 0..{maximum}")
    return encode_integer(value)


def encode_oid(oid: Sequence[int]) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (X.690 8.19); refuses what SNMP cannot carry."""
    if not 2 <= len(oid) <= MAX_OID_ARCS:
        raise ValueError(f"an OID has 2..{MAX_OID_ARCS} arcs, got {len(oid)}")
    first, second = oid[0], oid[1]
    if first not in (0, 1, 2) or second < 0 or (first < 2 and second >= 40):
        raise ValueError(f"invalid first arcs {first}.{second}")
    if not all(0 <= arc <= _UINT32_MAX for arc in oid[1:]):
        raise ValueError(f"an OID arc is outside 0..{_UINT32_MAX}")
    out = bytearray()
    for arc in (first * 40 + second, *oid[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def encode_value(value: Value) -> bytes:
    """The TLV of one varbind value."""
    kind, data = value.kind, value.data
    if kind in _EMPTY_TAGS:
        if data is not None:
            raise ValueError(f"{kind.value} carries no data")
        return bytes((_EMPTY_TAGS[kind], 0))
    if kind is Kind.OID:
        if not isinstance(data, tuple):
            raise TypeError("an OID value is a tuple of ints")
        return tlv(OBJECT_IDENTIFIER, encode_oid(data))
    if kind in _OCTET_TAGS:
        if not isinstance(data, bytes):
            raise TypeError(f"a {kind.value} value is bytes")
        if kind is Kind.IPADDRESS and len(data) != 4:
            raise ValueError("an IpAddress is 4 octets")
        return tlv(_OCTET_TAGS[kind], data)
    if not isinstance(data, int) or isinstance(data, bool):
        raise TypeError(f"a {kind.value} value is an int")
    if kind is Kind.INTEGER:
        if not _INT32_MIN <= data <= _INT32_MAX:
            raise ValueError(f"{data} is outside Integer32")
        return tlv(INTEGER, encode_integer(data))
    tag, maximum = _UNSIGNED_TAGS[kind]
    return tlv(tag, encode_unsigned(data, maximum))


def encode_message(
    community: bytes,
    pdu_tag: int,
    request_id: int,
    error_status: int,
    error_index: int,
    varbinds: Sequence[tuple[Oid, Value]],
    version: int = VERSION_2C,
) -> bytes:
    """A whole v2c message (for GetBulk, error_status/error_index are non-repeaters/max-reps)."""
    if pdu_tag not in PDU_TAGS:
        raise ValueError(f"unsupported PDU tag 0x{pdu_tag:02x}")
    for number in (request_id, error_status, error_index):
        if not _INT32_MIN <= number <= _INT32_MAX:
            raise ValueError(f"{number} is outside Integer32")
    bindings = b"".join(
        tlv(SEQUENCE, tlv(OBJECT_IDENTIFIER, encode_oid(oid)) + encode_value(value))
        for oid, value in varbinds
    )
    pdu = (
        tlv(INTEGER, encode_integer(request_id))
        + tlv(INTEGER, encode_integer(error_status))
        + tlv(INTEGER, encode_integer(error_index))
        + tlv(SEQUENCE, bindings)
    )
    return tlv(
        SEQUENCE,
        tlv(INTEGER, encode_integer(version)) + tlv(OCTET_STRING, community) + tlv(pdu_tag, pdu),
    )


# --- decoding -------------------------------------------------------------------------------


def _tl(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at pos, which must end by end."""
    if pos + 2 > end:
        raise BerError("truncated tag or length")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-octet tag")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise BerError("indefinite length")
        if count > _MAX_LENGTH_OCTETS:
            raise BerError(f"{count}-octet length")
        if pos + count > end:
            raise BerError("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    stop = pos + length
    if stop > end:
        raise BerError("length runs past its container")
    return tag, pos, stop


def _integer(data: bytes, pos: int, end: int, what: str, low: int = _INT32_MIN) -> tuple[int, int]:
    """An INTEGER TLV at pos in low..2**31-1: (value, position after it)."""
    tag, start, stop = _tl(data, pos, end)
    if tag != INTEGER:
        raise BerError(f"{what}: expected INTEGER, got tag 0x{tag:02x}")
    if start == stop:
        raise BerError(f"{what}: empty INTEGER")
    value = int.from_bytes(data[start:stop], "big", signed=True)
    if not low <= value <= _INT32_MAX:
        raise BerError(f"{what}: {value} is outside {low}..{_INT32_MAX}")
    return value, stop


def decode_oid(content: bytes) -> Oid:
    """The arcs of OBJECT IDENTIFIER content octets (strict: minimal arcs, SNMP's limits)."""
    if not content:
        raise BerError("empty OID")
    if len(content) > _MAX_OID_OCTETS:
        raise BerError(f"OID of {len(content)} octets")
    if content[-1] & 0x80:
        raise BerError("OID ends inside an arc")
    arcs: list[int] = []
    arc = 0
    fresh = True
    for octet in content:
        if fresh and octet == 0x80:
            raise BerError("OID arc with a leading 0x80 octet")
        arc = (arc << 7) | (octet & 0x7F)
        if octet & 0x80:
            fresh = False
            continue
        arcs.append(arc)
        arc = 0
        fresh = True
    first = arcs[0]
    arcs[0:1] = [first // 40, first % 40] if first < 80 else [2, first - 80]
    if len(arcs) > MAX_OID_ARCS:
        raise BerError(f"OID of {len(arcs)} arcs")
    if max(arcs[1:]) > _UINT32_MAX:
        raise BerError("OID arc above 2**32-1")
    return tuple(arcs)


_OID_CACHE: dict[bytes, Oid] = {}


def _cached_oid(content: bytes) -> Oid:
    oid = _OID_CACHE.get(content)
    if oid is None:
        oid = decode_oid(content)
        if len(content) > _OID_CACHE_MAX_OCTETS:
            return oid
        if len(_OID_CACHE) >= _OID_CACHE_MAX:
            _OID_CACHE.clear()
        _OID_CACHE[content] = oid
    return oid


_EMPTY_TAGS: Final = {
    Kind.NULL: NULL,
    Kind.NO_SUCH_OBJECT: NO_SUCH_OBJECT,
    Kind.NO_SUCH_INSTANCE: NO_SUCH_INSTANCE,
    Kind.END_OF_MIB_VIEW: END_OF_MIB_VIEW,
}
_OCTET_TAGS: Final = {Kind.OCTETS: OCTET_STRING, Kind.IPADDRESS: IP_ADDRESS, Kind.OPAQUE: OPAQUE}
_UNSIGNED_TAGS: Final = {
    Kind.COUNTER32: (COUNTER32, _UINT32_MAX),
    Kind.GAUGE32: (GAUGE32, _UINT32_MAX),
    Kind.TIMETICKS: (TIMETICKS, _UINT32_MAX),
    Kind.COUNTER64: (COUNTER64, _UINT64_MAX),
}
# Values without content are shared: no object per noSuchObject / NULL.
_EMPTY_VALUES: Final = {tag: Value(kind, None) for kind, tag in _EMPTY_TAGS.items()}
# tag -> (kind, upper bound) for the integer-valued types.
_INT_TAGS: Final = {
    INTEGER: (Kind.INTEGER, _INT32_MAX),
    **{tag: (kind, maximum) for kind, (tag, maximum) in _UNSIGNED_TAGS.items()},
}
_BYTES_TAGS: Final = {tag: kind for kind, tag in _OCTET_TAGS.items()}


def _value(tag: int, data: bytes, start: int, stop: int) -> Value:
    """The value of one varbind from its tag and content octets."""
    int_kind = _INT_TAGS.get(tag)
    if int_kind is not None:
        if start == stop:
            raise BerError(f"empty {int_kind[0].value}")
        kind, maximum = int_kind
        number = int.from_bytes(data[start:stop], "big", signed=True)
        minimum = _INT32_MIN if kind is Kind.INTEGER else 0
        if not minimum <= number <= maximum:
            raise BerError(f"{kind.value} {number} out of range")
        return Value(kind, number)
    empty = _EMPTY_VALUES.get(tag)
    if empty is not None:
        if start != stop:
            raise BerError(f"{empty.kind.value} with content")
        return empty
    bytes_kind = _BYTES_TAGS.get(tag)
    if bytes_kind is not None:
        if bytes_kind is Kind.IPADDRESS and stop - start != 4:
            raise BerError(f"IpAddress of {stop - start} octets")
        return Value(bytes_kind, data[start:stop])
    if tag == OBJECT_IDENTIFIER:
        return Value(Kind.OID, _cached_oid(data[start:stop]))
    raise BerError(f"unknown value tag 0x{tag:02x}")


def decode_header(data: bytes) -> Header:
    """Decode up to and including the request-id; BerError when that part is not valid."""
    try:
        tag, start, end = _tl(data, 0, len(data))
        if tag != SEQUENCE:
            raise BerError(f"message: expected SEQUENCE, got tag 0x{tag:02x}")
        if end != len(data):
            raise BerError(f"{len(data) - end} octets after the message")
        version, pos = _integer(data, start, end, "version")
        tag, c_start, pos = _tl(data, pos, end)
        if tag != OCTET_STRING:
            raise BerError(f"community: expected OCTET STRING, got tag 0x{tag:02x}")
        community = data[c_start:pos]
        pdu_tag, p_start, p_end = _tl(data, pos, end)
        if pdu_tag not in PDU_TAGS:
            raise BerError(f"unsupported PDU tag 0x{pdu_tag:02x}")
        if p_end != end:
            raise BerError("octets after the PDU")
        request_id, body = _integer(data, p_start, p_end, "request-id")
    except IndexError as exc:  # a guard missed: still a decode error, never a crash
        raise BerError("truncated message") from exc
    return Header(version, community, pdu_tag, request_id, body, p_end)


def decode_body(data: bytes, header: Header) -> tuple[int, int, VarBinds]:
    """error-status, error-index and the varbinds after a decoded header."""
    try:
        end = header.end
        # RFC 3416: error-status 0..18, error-index / non-repeaters / max-repetitions >= 0.
        error_status, pos = _integer(data, header.body, end, "error-status", 0)
        error_index, pos = _integer(data, pos, end, "error-index", 0)
        tag, pos, list_end = _tl(data, pos, end)
        if tag != SEQUENCE:
            raise BerError(f"variable-bindings: expected SEQUENCE, got tag 0x{tag:02x}")
        if list_end != end:
            raise BerError("octets after the variable-bindings")
        varbinds: list[tuple[Oid, Value]] = []
        append = varbinds.append
        while pos < list_end:
            tag, pos, vb_end = _tl(data, pos, list_end)
            if tag != SEQUENCE:
                raise BerError(f"varbind: expected SEQUENCE, got tag 0x{tag:02x}")
            tag, start, pos = _tl(data, pos, vb_end)
            if tag != OBJECT_IDENTIFIER:
                raise BerError(f"varbind name: expected OID, got tag 0x{tag:02x}")
            oid = _cached_oid(data[start:pos])
            tag, start, pos = _tl(data, pos, vb_end)
            if pos != vb_end:
                raise BerError("octets after a varbind value")
            append((oid, _value(tag, data, start, pos)))
    except IndexError as exc:
        raise BerError("truncated message") from exc
    return error_status, error_index, tuple(varbinds)


def decode_message(data: bytes) -> Message:
    """A whole v2c message; BerError (and only that) for anything this codec does not accept."""
    header = decode_header(data)
    error_status, error_index, varbinds = decode_body(data, header)
    return Message(
        header.version,
        header.community,
        header.pdu_tag,
        header.request_id,
        error_status,
        error_index,
        varbinds,
    )
