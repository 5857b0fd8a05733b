"""probes/ber.py against pyasn1 (pysnmp's own message spec) and against malformed input.

Differential in both directions on generated messages: what our encoder writes, pyasn1 decodes
to the same values, and what pyasn1 encodes, we decode to the same values. Malformed input
(random octets, mutations and truncations of valid messages) must give a BerError and nothing
else; when a mutation still decodes, pyasn1 must read the same message from it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v2c

from probes import ber
from probes.ber import BerError, Kind, Value
from probes.snmp_v3 import convert_varbinds
from probes.snmp_wire import bulk_request, community_octets, get_request, v2c_template

# No example database in the tree, no deadline: a slow CI box is not a failure.
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

UINT32 = (1 << 32) - 1
NULL = Value(Kind.NULL, None)

# --- strategies -------------------------------------------------------------------------------

oids = st.one_of(
    st.tuples(st.integers(0, 1), st.integers(0, 39)),
    st.tuples(st.just(2), st.integers(0, UINT32 - 80)),
).flatmap(
    lambda head: st.lists(st.integers(0, UINT32), max_size=126).map(lambda rest: (*head, *rest))
)
# Mostly the short OIDs of real MIBs, so that messages stay small and many fit in a run.
small_oids = st.lists(st.integers(0, 300), min_size=0, max_size=12).map(
    lambda rest: (1, 3, 6, 1, *rest)
)
any_oid = st.one_of(small_oids, small_oids, oids)

values = st.one_of(
    st.integers(-(1 << 31), (1 << 31) - 1).map(lambda v: Value(Kind.INTEGER, v)),
    st.binary(max_size=300).map(lambda v: Value(Kind.OCTETS, v)),
    any_oid.map(lambda v: Value(Kind.OID, v)),
    st.binary(min_size=4, max_size=4).map(lambda v: Value(Kind.IPADDRESS, v)),
    st.integers(0, UINT32).map(lambda v: Value(Kind.COUNTER32, v)),
    st.integers(0, UINT32).map(lambda v: Value(Kind.GAUGE32, v)),
    st.integers(0, UINT32).map(lambda v: Value(Kind.TIMETICKS, v)),
    st.binary(max_size=40).map(lambda v: Value(Kind.OPAQUE, v)),
    st.integers(0, (1 << 64) - 1).map(lambda v: Value(Kind.COUNTER64, v)),
    st.sampled_from(
        [Kind.NULL, Kind.NO_SUCH_OBJECT, Kind.NO_SUCH_INSTANCE, Kind.END_OF_MIB_VIEW]
    ).map(lambda k: Value(k, None)),
)
varbind_lists = st.lists(st.tuples(any_oid, values), max_size=30)


@st.composite
def messages(draw: st.DrawFn) -> ber.Message:
    """A v2c message of any PDU type this codec knows, with any values."""
    return ber.Message(
        version=1,
        community=draw(st.binary(max_size=40)),
        pdu_tag=draw(st.sampled_from(sorted(ber.PDU_TAGS))),
        request_id=draw(st.integers(-(1 << 31), (1 << 31) - 1)),
        error_status=draw(st.integers(0, 18)),
        error_index=draw(st.integers(0, (1 << 31) - 1)),
        varbinds=tuple(draw(varbind_lists)),
    )


def ours(msg: ber.Message) -> bytes:
    return ber.encode_message(
        msg.community, msg.pdu_tag, msg.request_id, msg.error_status, msg.error_index,
        msg.varbinds, msg.version,
    )  # fmt: skip


# --- pyasn1 as the reference ------------------------------------------------------------------

_PDU_CLASSES: dict[int, Any] = {
    ber.GET_REQUEST: v2c.GetRequestPDU,
    ber.GET_NEXT_REQUEST: v2c.GetNextRequestPDU,
    ber.RESPONSE: v2c.ResponsePDU,
    ber.SET_REQUEST: v2c.SetRequestPDU,
    ber.GET_BULK_REQUEST: v2c.GetBulkRequestPDU,
    ber.INFORM_REQUEST: v2c.InformRequestPDU,
    ber.SNMPV2_TRAP: v2c.SNMPv2TrapPDU,
    ber.REPORT: v2c.ReportPDU,
}
_PYSNMP_VALUES: dict[Kind, Any] = {
    Kind.INTEGER: v2c.Integer,
    Kind.OCTETS: v2c.OctetString,
    Kind.OID: v2c.ObjectIdentifier,
    Kind.IPADDRESS: v2c.IpAddress,
    Kind.COUNTER32: v2c.Counter32,
    Kind.GAUGE32: v2c.Gauge32,
    Kind.TIMETICKS: v2c.TimeTicks,
    Kind.OPAQUE: v2c.Opaque,
    Kind.COUNTER64: v2c.Counter64,
}
_PYSNMP_EMPTY: dict[Kind, Any] = {
    Kind.NULL: v2c.null,
    Kind.NO_SUCH_OBJECT: v2c.NoSuchObject(""),
    Kind.NO_SUCH_INSTANCE: v2c.NoSuchInstance(""),
    Kind.END_OF_MIB_VIEW: v2c.EndOfMibView(""),
}


def pyasn1_encode(msg: ber.Message) -> bytes:
    pdu = _PDU_CLASSES[msg.pdu_tag]()
    pdu.setComponentByPosition(0, msg.request_id)
    pdu.setComponentByPosition(1, msg.error_status)
    pdu.setComponentByPosition(2, msg.error_index)
    v2c.apiPDU.set_varbinds(
        pdu,
        [
            (oid, _PYSNMP_EMPTY[v.kind] if v.data is None else _PYSNMP_VALUES[v.kind](v.data))
            for oid, v in msg.varbinds
        ],
    )
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    message.setComponentByPosition(0, msg.version)
    v2c.apiMessage.set_community(message, msg.community)
    v2c.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def pyasn1_decode(data: bytes) -> ber.Message:
    message, rest = decoder.decode(data, asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(message)
    (tag,) = [t for t, cls in _PDU_CLASSES.items() if cls.tagSet == pdu.tagSet]
    return ber.Message(
        version=int(message[0]),
        community=bytes(message[1]),
        pdu_tag=tag,
        request_id=int(pdu[0]),
        error_status=int(pdu[1]),
        error_index=int(pdu[2]),
        varbinds=convert_varbinds(pdu),
    )


# --- differential -----------------------------------------------------------------------------


@SETTINGS
@given(messages())
def test_our_encoding_reads_back_the_same_in_pyasn1_and_in_ours(msg: ber.Message) -> None:
    data = ours(msg)
    assert ber.decode_message(data) == msg
    assert pyasn1_decode(data) == msg


@SETTINGS
@given(messages())
def test_pyasn1_encoding_reads_the_same_in_ours(msg: ber.Message) -> None:
    data = pyasn1_encode(msg)
    assert ber.decode_message(data) == msg
    # The octets agree too, except where pyasn1 is not minimal (it writes -128 as ff 80).
    if not any(v.kind is Kind.INTEGER and v.data < 0 for _, v in msg.varbinds):  # type: ignore[operator]
        assert data == ours(msg) or msg.request_id < 0


@SETTINGS
@given(st.lists(any_oid, min_size=1, max_size=40), st.integers(0, 100), st.text(max_size=20))
def test_request_templates_are_what_pyasn1_reads(
    request_oids: list[tuple[int, ...]], max_repetitions: int, community: str
) -> None:
    for request in (get_request(request_oids), bulk_request(request_oids, max_repetitions)):
        template = v2c_template(community, request)
        rid = 0x5E6F7071
        off = template.rid_offset
        data = template.payload[:off] + rid.to_bytes(4, "big") + template.payload[off + 4 :]
        decoded = pyasn1_decode(data)
        assert decoded.pdu_tag == request.pdu_tag
        assert decoded.request_id == rid
        assert decoded.error_index == request.max_repetitions
        assert decoded.error_status == 0
        assert decoded.community == community_octets(community)
        assert [oid for oid, _ in decoded.varbinds] == list(request.oids)
        assert {v for _, v in decoded.varbinds} <= {NULL}


def test_a_latin1_community_goes_out_as_pysnmp_sent_it() -> None:
    template = v2c_template("cộng-đồng", get_request([(1, 3, 6, 1, 2, 1, 1, 3, 0)]))
    assert "cộng-đồng".encode() in template.payload
    template = v2c_template("publicé", get_request([(1, 3, 6, 1, 2, 1, 1, 3, 0)]))
    assert "publicé".encode("latin-1") in template.payload


# --- malformed input --------------------------------------------------------------------------


def decode_or_error(data: bytes) -> ber.Message | BerError:
    """Decode; a BerError is returned, any other exception fails the test."""
    try:
        return ber.decode_message(data)
    except BerError as exc:
        error = exc
    assert str(error)  # a reason a person can read
    return error


@SETTINGS
@given(st.binary(max_size=400))
def test_random_octets_give_a_ber_error_or_a_message(data: bytes) -> None:
    decode_or_error(data)
    decode_or_error(b"\x30" + data)
    decode_or_error(b"\x30" + bytes([len(data) & 0x7F]) + data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid message with a few octets changed, inserted, deleted, or cut short."""
    data = bytearray(ours(draw(messages())))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete" and data:
            del data[pos]
        else:
            del data[pos:]
    return bytes(data)


@settings(SETTINGS, max_examples=1000)
@given(mutated())
def test_mutated_messages_are_rejected_or_read_as_pyasn1_reads_them(data: bytes) -> None:
    result = decode_or_error(data)
    if isinstance(result, ber.Message):
        # We are the stricter of the two: what we accept, pyasn1 reads the same way.
        assert pyasn1_decode(data) == result


def _response(varbind_octets: bytes, rid: int = 0x12345678) -> bytes:
    pdu = (
        ber.tlv(ber.INTEGER, ber.encode_integer(rid))
        + b"\x02\x01\x00\x02\x01\x00"
        + ber.tlv(ber.SEQUENCE, varbind_octets)
    )
    return ber.tlv(ber.SEQUENCE, b"\x02\x01\x01\x04\x01c" + ber.tlv(ber.RESPONSE, pdu))


def _varbind(value_octets: bytes) -> bytes:
    return ber.tlv(ber.SEQUENCE, b"\x06\x03\x2b\x06\x01" + value_octets)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x30\x80\x02\x01\x01\x00\x00", "indefinite length"),
        (b"\x30\x85\x00\x00\x00\x00\x01", "5-octet length"),
        (b"\x30\x82\xff\xffthis is not SNMP", "past its container"),
        (b"\x1f\x01\x00", "multi-octet tag"),
        (_response(b"") + b"\x00", "after the message"),
        (_response(_varbind(b"\x41\x05\xff\xff\xff\xff\xff")), "Counter32 -1 out of range"),
        (_response(_varbind(b"\x41\x01\xff")), "Counter32 -1 out of range"),
        (_response(_varbind(b"\x46\x09\x01" + b"\x00" * 8)), "Counter64"),
        (_response(_varbind(b"\x02\x05\x00\x80\x00\x00\x00")), "Integer32 2147483648 out of range"),
        (_response(_varbind(b"\x02\x00")), "empty Integer32"),
        (_response(_varbind(b"\x40\x05\x0a\x00\x00\x01\x02")), "IpAddress of 5 octets"),
        (_response(_varbind(b"\x80\x01\x00")), "noSuchObject with content"),
        (_response(_varbind(b"\x05\x01\x00")), "NULL with content"),
        (_response(_varbind(b"\x47\x01\x00")), "unknown value tag 0x47"),
        (_response(_varbind(b"\x24\x03\x04\x01a")), "unknown value tag 0x24"),
        (_response(ber.tlv(ber.SEQUENCE, b"\x06\x00\x05\x00")), "empty OID"),
        (_response(ber.tlv(ber.SEQUENCE, b"\x06\x03\x2b\x80\x01\x05\x00")), "leading 0x80"),
        (_response(ber.tlv(ber.SEQUENCE, b"\x06\x02\x2b\x86\x05\x00")), "ends inside an arc"),
        (_response(ber.tlv(ber.SEQUENCE, b"\x06\x06\x2b\x90\x80\x80\x80\x00\x05\x00")),
         "above 2**32-1"),
        (_response(_varbind(b"\x05\x00\x05\x00")), "octets after a varbind value"),
        (_response(b"\x04\x00"), "varbind: expected SEQUENCE"),
        (ber.tlv(ber.SEQUENCE, b"\x02\x01\x01\x04\x01c" + ber.tlv(0xA4, b"\x02\x01\x01")),
         "unsupported PDU tag 0xa4"),
    ],
)  # fmt: skip
def test_malformed_messages_name_what_is_wrong(data: bytes, reason: str) -> None:
    with pytest.raises(BerError, match=re.escape(reason)):
        ber.decode_message(data)


def test_the_request_id_is_read_even_when_the_varbinds_are_broken() -> None:
    # The client fails exactly the request the broken answer names, not everything in flight.
    data = _response(_varbind(b"\x41\x01\xff"), rid=0x0BADCAFE)
    header = ber.decode_header(data)
    assert header.request_id == 0x0BADCAFE
    with pytest.raises(BerError, match="Counter32"):
        ber.decode_body(data, header)


def test_a_datagram_full_of_varbinds_and_one_full_of_empty_ones() -> None:
    # Near the largest UDP payload: every TLV read advances, so the work is linear, no hang.
    data = _response(_varbind(b"\x05\x00") * 7_000)
    assert len(ber.decode_message(data).varbinds) == 7_000
    with pytest.raises(BerError, match="truncated"):
        ber.decode_message(_response(b"\x30\x00" * 32_000))


def test_encoder_refuses_what_snmp_cannot_carry() -> None:
    for bad in [(1,), (3, 1), (1, 40), (1, 3, -1), (1, 3, 1 << 32), tuple(range(129))]:
        with pytest.raises(ValueError, match=r"OID|arc"):
            ber.encode_oid(bad)
    with pytest.raises(ValueError, match="outside"):
        ber.encode_value(Value(Kind.COUNTER32, -1))
    with pytest.raises(ValueError, match="Integer32"):
        ber.encode_value(Value(Kind.INTEGER, 1 << 31))
    with pytest.raises(ValueError, match="4 octets"):
        ber.encode_value(Value(Kind.IPADDRESS, b"\x01\x02\x03"))
