"""SNMPv3 through pysnmp's engine: USM keys, auth and privacy, engine-id discovery.

Everything of NetWatch that needs pysnmp lives here, and this module is imported only on the
first v3 request (SnmpPoller._v3_client): pysnmp, pyasn1 and their MIB builder stay out of a
process that polls v2c only (every ICMP/HTTP worker, a v2c-only SNMP worker, the core, the web).
tests/test_imports.py checks it in fresh interpreters. v2c has its own codec (probes/ber.py,
probes/snmp_wire.py); probes/snmp.py has the measurements behind this split.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pysnmp.proto import errind
from pysnmp.proto.api import v2c

from probes import ber
from probes.ber import Kind, Oid, Value, VarBinds
from probes.snmp_types import SnmpFailure, SnmpV3
from probes.snmp_wire import (
    Outcome,
    Reply,
    Request,
    WireFailure,
    peer_of,
    random_request_id,
    settle,
    udp_socket,
)

__all__ = [
    "V3Client",
    "classify_indication",
    "convert_varbinds",
    "indexed_usm",
    "pysnmp_pdu",
    "response_outcome",
]

log = logging.getLogger(__name__)


# Which SMI kind each pysnmp value class is (looked up by BER tag set, one dict probe per value).
_KINDS: MappingProxyType[Any, Kind] = MappingProxyType(
    {
        v2c.Integer.tagSet: Kind.INTEGER,
        v2c.OctetString.tagSet: Kind.OCTETS,
        v2c.ObjectIdentifier.tagSet: Kind.OID,
        v2c.IpAddress.tagSet: Kind.IPADDRESS,
        v2c.Counter32.tagSet: Kind.COUNTER32,
        v2c.Gauge32.tagSet: Kind.GAUGE32,
        v2c.TimeTicks.tagSet: Kind.TIMETICKS,
        v2c.Opaque.tagSet: Kind.OPAQUE,
        v2c.Counter64.tagSet: Kind.COUNTER64,
        v2c.Null.tagSet: Kind.NULL,
        v2c.NoSuchObject.tagSet: Kind.NO_SUCH_OBJECT,
        v2c.NoSuchInstance.tagSet: Kind.NO_SUCH_INSTANCE,
        v2c.EndOfMibView.tagSet: Kind.END_OF_MIB_VIEW,
    }
)
_INT_KINDS = frozenset({Kind.INTEGER, Kind.COUNTER32, Kind.GAUGE32, Kind.TIMETICKS, Kind.COUNTER64})
_BYTES_KINDS = frozenset({Kind.OCTETS, Kind.IPADDRESS, Kind.OPAQUE})
_RESPONSE_TAGS = v2c.ResponsePDU.tagSet


def convert_varbinds(pdu: Any) -> VarBinds:
    """Turn a decoded pysnmp PDU's varbinds into plain (oid, Value) pairs (the v3 path)."""
    out: list[tuple[Oid, Value]] = []
    for name, val in v2c.apiPDU.get_varbinds(pdu):
        kind = _KINDS.get(val.tagSet)
        if kind is None:
            raise ValueError(f"unknown SMI type {val.__class__.__name__}")
        data: int | bytes | Oid | None
        if kind in _INT_KINDS:
            data = int(val)
        elif kind in _BYTES_KINDS:
            data = val.asOctets()
        elif kind is Kind.OID:
            data = tuple(val)
        else:
            data = None
        out.append((tuple(name), Value(kind, data)))
    return tuple(out)


def response_outcome(pdu: Any, request_id: int) -> Outcome:
    """Check that a pysnmp PDU answers request_id and convert it (never raises; the v3 path)."""
    try:
        if pdu.tagSet != _RESPONSE_TAGS:
            return WireFailure(SnmpFailure.GARBAGE, "answer is not a Response-PDU")
        if int(v2c.apiPDU.get_request_id(pdu)) != request_id:
            return WireFailure(SnmpFailure.GARBAGE, "response request-id mismatch")
        return Reply(
            int(v2c.apiPDU.get_error_status(pdu)),
            int(v2c.apiPDU.get_error_index(pdu, muteErrors=True)),
            convert_varbinds(pdu),
        )
    except Exception as exc:  # agent-supplied data must never crash the poller
        return WireFailure(SnmpFailure.GARBAGE, f"undecodable varbinds: {type(exc).__name__}")


def pysnmp_pdu(request: Request) -> Any:
    """The request as a pysnmp PDU, for pysnmp's v3 engine."""
    varbinds = [(oid, v2c.null) for oid in request.oids]
    if request.pdu_tag == ber.GET_BULK_REQUEST:
        pdu = v2c.GetBulkRequestPDU()
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_non_repeaters(pdu, 0)
        v2c.apiBulkPDU.set_max_repetitions(pdu, request.max_repetitions)
        v2c.apiBulkPDU.set_varbinds(pdu, varbinds)
        return pdu
    pdu = v2c.GetRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    return pdu


# pysnmp error indications that mean "the agent refused our credentials" (RFC 3414 3.2 reports).
_AUTH_INDICATIONS = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.DecryptionError,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.NotInTimeWindow,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
)
_GARBAGE_INDICATIONS = (errind.DeserializationError, errind.InvalidMsg, errind.DataMismatch)
_DISCOVERY_INDICATIONS = (errind.UnknownEngineID, errind.NotInTimeWindow)
# RFC 3414 4: engine-id discovery, then time synchronisation, both answered by Report-PDUs.
_DISCOVERY_STEPS = 4


def classify_indication(indication: object) -> SnmpFailure:
    """Map a pysnmp error indication to a failure reason."""
    if isinstance(indication, errind.RequestTimedOut):
        return SnmpFailure.TIMEOUT
    if isinstance(indication, _AUTH_INDICATIONS):
        return SnmpFailure.AUTH_FAILURE
    if isinstance(indication, _GARBAGE_INDICATIONS):
        return SnmpFailure.GARBAGE
    return SnmpFailure.TRANSPORT_ERROR


def indexed_usm() -> Any:
    """pysnmp's USM with a securityName lookup that reads the user's row by index.

    Stock pysnmp 7.1 maps securityName to userName through a dict rebuilt by walking the whole
    usmUserTable whenever a row was added, and it adds a row (a clone with localized keys) for
    every new authoritative engine it discovers. With one engine-id per router that is a walk of
    N rows per router: quadratic (measured on pysnmp's own clone path: 0.10 s for 100 engines,
    5.0 s for 1,000, 61 s for 3,321). V3Client registers each user with securityName == userName,
    and USM clones rows under the same name, so the row is found directly by its index
    (engine-id, userName). The override is tied to pysnmp's internals (pyproject pins the minor
    version it was tested against); if they are not what we know, the stock model is returned and
    a WARNING says so, because SNMPv3 then still works but the first national round takes a
    minute. `indexed_lookups` counts the lookups it served: tests assert pysnmp really calls it.
    """
    from pysnmp.proto.secmod.rfc3414.service import SnmpUSMSecurityModel
    from pysnmp.smi.error import NoSuchInstanceError

    if not callable(getattr(SnmpUSMSecurityModel, "_SnmpUSMSecurityModel__sec2usr", None)):
        log.warning(
            "snmp usm index not installed: pysnmp has no _SnmpUSMSecurityModel__sec2usr; "
            "v3 user lookups take the stock quadratic path pysnmp_version=%s",
            _pysnmp_version(),
        )
        return SnmpUSMSecurityModel()

    class IndexedUsm(SnmpUSMSecurityModel):  # type: ignore[misc]
        indexed_lookups = 0

        def _SnmpUSMSecurityModel__sec2usr(  # noqa: N802 - overrides pysnmp's private name
            self, snmp_engine: Any, security_name: Any, security_engine_id: Any = None
        ) -> Any:
            self.indexed_lookups += 1
            mib = snmp_engine.get_mib_builder()
            if security_engine_id is None:
                (local_id,) = mib.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID")
                security_engine_id = local_id.syntax
            (entry,) = mib.import_symbols("SNMP-USER-BASED-SM-MIB", "usmUserEntry")
            try:
                index = entry.getInstIdFromIndices(security_engine_id, security_name)
                row_security_name = entry.getNode((*entry.name, 3, *index)).syntax
                user_name = entry.getNode((*entry.name, 2, *index)).syntax
            except (NoSuchInstanceError, KeyError) as exc:
                raise NoSuchInstanceError() from exc
            if row_security_name != security_name:
                raise NoSuchInstanceError()
            return user_name

    return IndexedUsm()


def _pysnmp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pysnmp")
    except PackageNotFoundError:
        return "unknown"


@dataclass(slots=True, eq=False)
class _V3Pending:
    """An SNMPv3 request awaiting its answer through pysnmp's message dispatcher."""

    future: asyncio.Future[Outcome]
    address: tuple[str, int]
    domain: Oid
    security_name: Any  # SnmpAdminString: USM's lookup maps are keyed by pyasn1 values
    security_level: int
    pdu: Any
    request_id: int
    timeout_ticks: float
    retries_left: int
    discovery_left: int = _DISCOVERY_STEPS


class V3Client:
    """SNMPv3 (USM) through one pysnmp SnmpEngine, below its target tables.

    pysnmp's command generator resolves every request through snmpTargetAddrTable rows (one per
    target in hlapi), which is where the quadratic cost lives. Here each credential set is one
    USM user registered once, and each request goes straight to the message dispatcher with the
    transport address given per call (RFC 3412 sendPdu), so no table grows with the router count.
    """

    def __init__(self) -> None:
        """Create the engine, its USM and one UDP transport per address family (lazily)."""
        from pysnmp.carrier.asyncio.dgram import udp, udp6
        from pysnmp.entity import config, engine

        self._config = config
        self._udp = udp
        self._udp6 = udp6
        self._engine = engine.SnmpEngine()
        usm = indexed_usm()
        self._engine.security_models[usm.SECURITY_MODEL_ID] = usm
        self.usm: Any = usm  # public so tests can prove the indexed lookup is the one in use
        (admin_string,) = self._engine.get_mib_builder().import_symbols(
            "SNMP-FRAMEWORK-MIB", "SnmpAdminString"
        )
        self._admin_string = admin_string
        self._context_name = admin_string("")
        self._domains: set[Oid] = set()
        # user name -> (its credentials, its securityName as the SnmpAdminString USM expects)
        self._users: dict[str, tuple[SnmpV3, Any]] = {}
        self._pending: set[_V3Pending] = set()
        self._auth = MappingProxyType(
            {
                "md5": config.USM_AUTH_HMAC96_MD5,
                "sha": config.USM_AUTH_HMAC96_SHA,
                "sha224": config.USM_AUTH_HMAC128_SHA224,
                "sha256": config.USM_AUTH_HMAC192_SHA256,
                "sha384": config.USM_AUTH_HMAC256_SHA384,
                "sha512": config.USM_AUTH_HMAC384_SHA512,
            }
        )
        self._priv = MappingProxyType(
            {
                "des": config.USM_PRIV_CBC56_DES,
                "3des": config.USM_PRIV_CBC168_3DES,
                "aes": config.USM_PRIV_CFB128_AES,
                "aes192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
                "aes256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
                "aes192c": config.USM_PRIV_CFB192_AES,
                "aes256c": config.USM_PRIV_CFB256_AES,
            }
        )

    def close(self) -> None:
        """Close the engine's transports and fail whatever is still in flight."""
        if self._engine.transport_dispatcher is not None:
            self._engine.close_dispatcher()
        # pysnmp's timeouts run on the dispatcher just closed: nothing else would end these.
        for pending in list(self._pending):
            settle(pending.future, WireFailure(SnmpFailure.TRANSPORT_ERROR, "poller closed"))
        self._pending.clear()

    def _domain(self, family: int) -> Oid:
        if family == socket.AF_INET6:
            domain, transport = self._udp6.DOMAIN_NAME, self._udp6.Udp6AsyncioTransport
        else:
            domain, transport = self._udp.DOMAIN_NAME, self._udp.UdpAsyncioTransport
        if domain not in self._domains:
            # Server mode only because it is the way to hand pysnmp our own socket (bound to an
            # ephemeral port, large receive buffer); it listens on nothing but that port.
            carrier = transport().open_server_mode(sock=udp_socket(family))
            self._config.add_transport(self._engine, domain, carrier)
            self._domains.add(domain)
        return tuple(domain)

    def _register(self, creds: SnmpV3) -> Any:
        """The user's securityName, registering the user on first use; a failure on conflict."""
        known = self._users.get(creds.user)
        if known is not None and known[0] == creds:
            return known[1]
        if known is not None:
            # pysnmp's USM keys users by (engine-id, user name): one process cannot hold two key
            # sets for the same user name.
            return WireFailure(
                SnmpFailure.TRANSPORT_ERROR,
                f"user {creds.user!r} is already registered with other keys",
            )
        self._config.add_v3_user(
            self._engine,
            creds.user,
            self._auth[creds.auth_protocol],
            creds.auth_key,
            self._priv[creds.priv_protocol] if creds.priv_protocol else self._config.USM_PRIV_NONE,
            creds.priv_key,
        )
        security_name = self._admin_string(creds.user)
        self._users[creds.user] = (creds, security_name)
        return security_name

    async def exchange(
        self,
        address: str,
        port: int,
        creds: SnmpV3,
        pdu: Any,
        timeout_s: float,
        retries: int,
    ) -> Outcome:
        """Send one request (discovery and retries included) and return its answer."""
        security_name = self._register(creds)
        if isinstance(security_name, WireFailure):
            return security_name
        family, peer = peer_of(address, port)
        domain = self._domain(family)
        resolution = self._engine.transport_dispatcher.get_timer_resolution()
        request_id = random_request_id()
        pending = _V3Pending(
            future=asyncio.get_running_loop().create_future(),
            address=peer,
            domain=domain,
            security_name=security_name,
            security_level=3 if creds.priv_protocol else 2,
            pdu=pdu,
            request_id=request_id,
            timeout_ticks=timeout_s / resolution,
            retries_left=retries,
        )
        self._pending.add(pending)
        try:
            self._send(pending)
            return await pending.future
        finally:
            self._pending.discard(pending)

    def _send(self, pending: _V3Pending) -> None:
        from pysnmp.error import PySnmpError
        from pysnmp.proto.error import StatusInformation

        # The PDU object is shared by a router's polls; the id is set right before the
        # synchronous encode inside send_pdu, so concurrent users cannot interleave.
        v2c.apiPDU.set_request_id(pending.pdu, pending.request_id)
        try:
            self._engine.message_dispatcher.send_pdu(
                self._engine,
                pending.domain,
                pending.address,
                3,  # messageProcessingModel: SNMPv3
                3,  # securityModel: USM
                pending.security_name,
                pending.security_level,
                None,  # contextEngineId: the authoritative engine's (learned by discovery)
                self._context_name,
                1,  # pduVersion: SNMPv2 PDUs
                pending.pdu,
                True,
                pending.timeout_ticks,
                self._on_answer,
                pending,
            )
        except StatusInformation as info:
            self._finish(pending, info["errorIndication"])
            return
        except PySnmpError as exc:
            settle(pending.future, WireFailure(SnmpFailure.TRANSPORT_ERROR, type(exc).__name__))
            return

    def _finish(self, pending: _V3Pending, indication: object) -> None:
        settle(pending.future, WireFailure(classify_indication(indication), str(indication)))

    def _on_answer(
        self,
        _engine: Any,
        _mp_model: Any,
        _sec_model: Any,
        _sec_name: Any,
        _sec_level: Any,
        _ctx_engine_id: Any,
        _ctx_name: Any,
        _pdu_version: Any,
        pdu: Any,
        status_information: Any,
        _handle: int,
        cb_ctx: Any,
    ) -> None:
        pending: _V3Pending = cb_ctx
        if pending.future.done():
            return
        if status_information:
            indication = status_information["errorIndication"]
            if isinstance(indication, _DISCOVERY_INDICATIONS) and pending.discovery_left > 0:
                pending.discovery_left -= 1
                self._send(pending)
                return
            if isinstance(indication, errind.RequestTimedOut):
                if pending.retries_left > 0:
                    pending.retries_left -= 1
                    self._send(pending)
                    return
                if pending.discovery_left < _DISCOVERY_STEPS:
                    # The agent answered discovery, then went silent: net-snmp drops requests it
                    # cannot decrypt without a Report (RFC 3414 3.2 step 8), so this is the
                    # footprint of a wrong priv key; on the wire it is still only a timeout.
                    pending.future.set_result(
                        WireFailure(
                            SnmpFailure.TIMEOUT,
                            "no response after engine discovery (wrong priv key?)",
                        )
                    )
                    return
            self._finish(pending, indication)
            return
        pending.future.set_result(response_outcome(pdu, pending.request_id))
