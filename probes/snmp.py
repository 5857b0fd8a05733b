"""SNMP poller for commune routers: sysUpTime and IF-MIB counters of the WAN interfaces.

Per router, interface names are resolved once (GETBULK walk of ifName, then ifDescr); then every
round is ONE GET: sysUpTime.0 and, per WAN interface, ifOperStatus, ifHCIn/OutOctets (32-bit
ifIn/OutOctets when the agent has no ifXTable, learned on its first poll), ifIn/OutErrors,
ifIn/OutDiscards and ifCounterDiscontinuityTime: 9 OIDs for one interface, 17 for two. Rates,
wraps, resets and reboots: probes/snmp_rates.py. No MIB is loaded: OIDs are numeric tuples.

Why requests travel the way they do (benchmarks/bench_snmp.py: AnyIP lab, one snmpd answering
for 4,096 addresses, 2 cores, medians of 3 interleaved runs, CPU of the round, 17 OIDs/GET;
2026-12-05, a shared and noisy machine: compare ratios, not absolute times):

    path                                   routers   CPU per router
    NetWatch v2c (this module)             100       0.06 ms
    NetWatch v2c (this module)             3,321     0.08 ms   (NetWatch / exporter = 0.22)
    NetWatch v2c through pyasn1 (before)   3,321     1.0-1.1 ms (NetWatch / exporter = 3.2-3.6)
    snmp_exporter 0.21, exporter CPU       3,321     0.29-0.36 ms
    pysnmp hlapi v1arch                    3,321     1.89 ms   (91 timeouts: 208 KiB rcvbuf)
    snmpget spawned per router             100       3.1-3.5 ms
    NetWatch v3 authPriv SHA/AES, steady   100/1,000 1.8-2.0 / 1.9-2.3 ms
    NetWatch v3, first round (discovery)   100/1,000 3.6-4.1 / 2.7-3.2 ms
    pysnmp hlapi v3arch v3, target/router  1,000     7.7 ms    (its tables grow per target)

- v2c speaks BER through probes/ber.py, a narrow strict codec for the message shapes a manager
  sends and receives (pyasn1's generic decoder was 65 % of the national run's CPU: ~1 ms per
  17-varbind answer, against 27 us now). The GET is encoded once per (credentials, interface
  set) and only its four request-id octets change per send; one non-blocking UDP socket serves
  every router, answers are matched by request-id AND source address (decoding stops after the
  request-id when nobody waits for it); timeouts are loop timers; the receive buffer is 4 MiB
  (the default overflowed at 256 in flight). A malformed answer fails its own request as GARBAGE
  with the codec's reason, and is counted (SnmpPoller.stats()). The codec is tested against
  pyasn1 in both directions on generated messages and malformed input (tests/probes/
  test_ber.py), and the path against pysnmp's hlapi on snmpd and on the router recordings.
- v3 goes through pysnmp's engine (USM auth/priv, engine-id discovery, timeliness; about 25x
  the CPU of a v2c poll, which is why v2c has its own codec: the national inventory is all
  v2c, config/examples/lam-dong.yaml has 2 of 8 routers on v3) but below its target tables:
  each credential set is one USM user registered once, and each request is handed to the
  message dispatcher with its transport address (RFC 3412 sendPdu), so nothing grows per
  router. pysnmp's USM rebuilds its securityName map by walking every user row after each row
  added, and it adds one per discovered engine-id: quadratic with one engine-id per router
  (4.6 ms per engine at 1,000, 18 ms at 3,321: 61 s in the first national round). indexed_usm
  (probes/snmp_v3.py) reads the row by index instead: 0.85 ms at 100, 0.93 ms at 1,000. The
  lab's single snmpd has a single engine-id, so that part is measured on USM's own clone path.
- One SnmpEngine per SnmpPoller, built on the first v3 request; a process holds one poller.
  At most max_in_flight (default 256) requests are outstanding.

Failures are values (SnmpFailure), never exceptions. What the wire allows to tell apart: a wrong
v2c community is a TIMEOUT (agents drop it silently); a wrong v3 auth key or unknown user is
AUTH_FAILURE (Report-PDU); a wrong v3 priv key is a TIMEOUT too, because net-snmp drops what it
cannot decrypt without a Report (the detail says "wrong priv key?" when discovery had worked);
junk answers are GARBAGE over v2c, but pysnmp's v3 engine drops them, so TIMEOUT over v3.
Credentials never appear in repr, details or logs (the modules log nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from probes.snmp_rates import InterfaceRates, RateGap, compute_rates, reboot_between
from probes.snmp_types import (
    InterfaceInfo,
    InterfaceSample,
    Reading,
    RouterSample,
    SnmpFailure,
    SnmpTarget,
    SnmpV2c,
    SnmpV3,
    SystemSummary,
)
from probes.snmp_wire import (
    Kind,
    Oid,
    Outcome,
    Reply,
    Request,
    V2cClient,
    V2cTemplate,
    Value,
    WireFailure,
    WireStats,
    bulk_request,
    get_request,
    v2c_template,
)

if TYPE_CHECKING:
    from probes.snmp_v3 import V3Client

__all__ = [
    "InterfaceInfo",
    "InterfaceRates",
    "InterfaceSample",
    "RateGap",
    "Reading",
    "RouterSample",
    "SnmpFailure",
    "SnmpPoller",
    "SnmpTarget",
    "SnmpV2c",
    "SnmpV3",
    "SystemSummary",
    "WireStats",
    "compute_rates",
    "format_snmp_summary",
    "reboot_between",
]

# Numeric OIDs only: no MIB is loaded or resolved anywhere in this module (RFC 1213, RFC 2863).
SYS_DESCR: Oid = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME: Oid = (1, 3, 6, 1, 2, 1, 1, 5, 0)
IF_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_DESCR = (*IF_ENTRY, 2)
IF_SPEED = (*IF_ENTRY, 5)
IF_OPER_STATUS = (*IF_ENTRY, 8)
IF_IN_OCTETS = (*IF_ENTRY, 10)
IF_IN_DISCARDS = (*IF_ENTRY, 13)
IF_IN_ERRORS = (*IF_ENTRY, 14)
IF_OUT_OCTETS = (*IF_ENTRY, 16)
IF_OUT_DISCARDS = (*IF_ENTRY, 19)
IF_OUT_ERRORS = (*IF_ENTRY, 20)
IF_NAME = (*IFX_ENTRY, 1)
IF_HC_IN_OCTETS = (*IFX_ENTRY, 6)
IF_HC_OUT_OCTETS = (*IFX_ENTRY, 10)
IF_HIGH_SPEED = (*IFX_ENTRY, 15)
IF_COUNTER_DISCONTINUITY_TIME = (*IFX_ENTRY, 19)

# GETBULK max-repetitions for walks of one column: a commune router's interface table fits in one
# or two answers, small enough that agents do not answer tooBig.
BULK_MAX_REPETITIONS = 25
# A walk never returns more rows than this (a broken agent could loop forever).
WALK_MAX_ROWS = 10_000
# Plans (pre-encoded requests) kept per poller: one per credential set and interface set.
PLAN_CACHE_MAX = 100_000

_ERROR_STATUS = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess", "wrongType",
    "wrongLength", "wrongEncoding", "wrongValue", "noCreation", "inconsistentValue",
    "resourceUnavailable", "commitFailed", "undoFailed", "authorizationError", "notWritable",
    "inconsistentName",
)  # fmt: skip
_PER_OID_FAILURE = {
    Kind.NO_SUCH_OBJECT: SnmpFailure.NO_SUCH_OBJECT,
    Kind.NO_SUCH_INSTANCE: SnmpFailure.NO_SUCH_INSTANCE,
    Kind.END_OF_MIB_VIEW: SnmpFailure.END_OF_MIB_VIEW,
}
_MISSING = frozenset({SnmpFailure.NO_SUCH_OBJECT, SnmpFailure.NO_SUCH_INSTANCE})


def _reading(value: Value, kind: Kind) -> Reading:
    """The integer of a value of the expected SMI kind, else why there is none."""
    if value.kind is kind and isinstance(value.data, int):
        return value.data
    return _PER_OID_FAILURE.get(value.kind, SnmpFailure.GARBAGE)


def _text(value: Value) -> str:
    if isinstance(value.data, bytes):
        return value.data.rstrip(b"\x00").decode("utf-8", errors="replace")
    return ""


def _poll_oids(if_indexes: Sequence[int], bits: int) -> tuple[Oid, ...]:
    """sysUpTime.0, then per interface: status, octets, errors, discards (, discontinuity)."""
    oids: list[Oid] = [SYS_UPTIME]
    in_col, out_col = (
        (IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS) if bits == 64 else (IF_IN_OCTETS, IF_OUT_OCTETS)
    )
    for i in if_indexes:
        oids += [
            (*IF_OPER_STATUS, i), (*in_col, i), (*out_col, i), (*IF_IN_ERRORS, i),
            (*IF_OUT_ERRORS, i), (*IF_IN_DISCARDS, i), (*IF_OUT_DISCARDS, i),
        ]  # fmt: skip
        if bits == 64:
            # ifCounterDiscontinuityTime lives in ifXTable: asked only where ifHC* exist.
            oids.append((*IF_COUNTER_DISCONTINUITY_TIME, i))
    return tuple(oids)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A poll request built once: the request and its encoded (v2c) or pysnmp PDU (v3) form.

    It depends on the credentials and the interface set, not on the address, so routers of one
    model and configuration (WAN at the same ifIndex) share one plan.
    """

    request: Request
    if_indexes: tuple[int, ...]
    bits: int
    template: V2cTemplate | None
    pdu: Any


def _interfaces(plan: _Plan, reply: Reply) -> tuple[InterfaceSample, ...]:
    """The interface readings of an answer laid out as _poll_oids asked for them."""
    counter = Kind.COUNTER64 if plan.bits == 64 else Kind.COUNTER32
    per_if = 8 if plan.bits == 64 else 7
    out: list[InterfaceSample] = []
    for n, if_index in enumerate(plan.if_indexes):
        v = [value for _, value in reply.varbinds[1 + n * per_if : 1 + (n + 1) * per_if]]
        out.append(
            InterfaceSample(
                if_index=if_index,
                oper_status=_reading(v[0], Kind.INTEGER),
                in_octets=_reading(v[1], counter),
                out_octets=_reading(v[2], counter),
                counter_bits=plan.bits,
                in_errors=_reading(v[3], Kind.COUNTER32),
                out_errors=_reading(v[4], Kind.COUNTER32),
                in_discards=_reading(v[5], Kind.COUNTER32),
                out_discards=_reading(v[6], Kind.COUNTER32),
                discontinuity_ticks=(
                    _reading(v[7], Kind.TIMETICKS)
                    if plan.bits == 64
                    else SnmpFailure.NO_SUCH_OBJECT
                ),
            )
        )
    return tuple(out)


def _lacks_hc_counters(interfaces: tuple[InterfaceSample, ...]) -> bool:
    """True when every ifHC octet counter asked for is noSuchObject/noSuchInstance."""
    return bool(interfaces) and all(
        i.counter_bits == 64 and i.in_octets in _MISSING and i.out_octets in _MISSING
        for i in interfaces
    )


def _agent_error(reply: Reply) -> WireFailure:
    status = reply.error_status
    name = _ERROR_STATUS[status] if 0 <= status < len(_ERROR_STATUS) else str(status)
    return WireFailure(SnmpFailure.AGENT_ERROR, f"error-status {name} at index {reply.error_index}")


def _pysnmp_pdu(request: Request) -> Any:
    """The request as pysnmp's PDU, for the v3 engine (imports pysnmp: v3 only)."""
    from probes.snmp_v3 import pysnmp_pdu

    return pysnmp_pdu(request)


class SnmpPoller:
    """Polls routers over SNMP v2c and v3; owns the process's one SNMP engine and its sockets."""

    def __init__(self, max_in_flight: int) -> None:
        """Use SnmpPoller.open() (needs a running event loop)."""
        self._v2c = V2cClient()
        self._v3: V3Client | None = None
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._plans: dict[tuple[object, ...], _Plan] = {}
        # Agents whose ifHC* counters are missing (no ifXTable): polled with 32-bit counters.
        self._no_hc: set[tuple[str, int]] = set()
        self._closed = False

    @classmethod
    async def open(cls, *, max_in_flight: int = 256) -> SnmpPoller:
        """Create a poller bound to the running loop; at most max_in_flight requests at once."""
        return cls(max_in_flight)

    async def close(self) -> None:
        """Release the sockets and the engine; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._v2c.close()
        if self._v3 is not None:
            self._v3.close()

    async def __aenter__(self) -> SnmpPoller:
        """Enter: the poller itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Exit: close."""
        await self.close()

    def _v3_client(self) -> V3Client:
        # Built on first use: a v2c-only process never imports pysnmp (probes/snmp_v3.py).
        if self._v3 is None:
            from probes.snmp_v3 import V3Client

            self._v3 = V3Client()
        return self._v3

    def stats(self) -> WireStats:
        """Counters of the v2c path: undecodable answers and answers nobody waited for."""
        return self._v2c.stats()

    async def _exchange(
        self,
        target: SnmpTarget,
        request: Request,
        template: V2cTemplate | None = None,
        pdu: Any = None,
    ) -> Outcome:
        """One request; a Reply here always has error-status noError.

        template (v2c) or pdu (v3) are the request already encoded, when the caller has it.
        """
        creds = target.credentials
        async with self._in_flight:
            # Checked after the wait: requests queued behind max_in_flight may outlive close().
            if self._closed:
                return WireFailure(SnmpFailure.TRANSPORT_ERROR, "poller closed")
            if isinstance(creds, SnmpV2c):
                if template is None:
                    template = v2c_template(creds.community, request)
                outcome = await self._v2c.exchange(
                    target.address, target.port, template, target.timeout_s, target.retries
                )
            else:
                outcome = await self._v3_client().exchange(
                    target.address,
                    target.port,
                    creds,
                    _pysnmp_pdu(request) if pdu is None else pdu,
                    target.timeout_s,
                    target.retries,
                )
        if isinstance(outcome, Reply) and outcome.error_status:
            return _agent_error(outcome)
        return outcome

    def _plan(self, target: SnmpTarget, if_indexes: tuple[int, ...], bits: int) -> _Plan:
        key = (target.credentials, if_indexes, bits)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE_MAX:
                self._plans.clear()
            request = get_request(_poll_oids(if_indexes, bits))
            creds = target.credentials
            if isinstance(creds, SnmpV2c):
                template = v2c_template(creds.community, request)
                plan = _Plan(request, if_indexes, bits, template, None)
            else:
                plan = _Plan(request, if_indexes, bits, None, _pysnmp_pdu(request))
            self._plans[key] = plan
        return plan

    async def _get(
        self,
        target: SnmpTarget,
        request: Request,
        template: V2cTemplate | None = None,
        pdu: Any = None,
    ) -> Outcome:
        outcome = await self._exchange(target, request, template, pdu)
        if isinstance(outcome, Reply) and tuple([oid for oid, _ in outcome.varbinds]) != (
            request.oids
        ):
            return WireFailure(SnmpFailure.GARBAGE, "response varbinds do not match the request")
        return outcome

    async def poll(self, target: SnmpTarget, if_indexes: Sequence[int]) -> RouterSample:
        """One GET of sysUpTime and the counters of the given interfaces (ifIndex values)."""
        indexes = tuple(if_indexes)
        agent = (target.address, target.port)
        plan = self._plan(target, indexes, 32 if agent in self._no_hc else 64)
        reply = await self._get(target, plan.request, plan.template, plan.pdu)
        interfaces = _interfaces(plan, reply) if isinstance(reply, Reply) else ()
        if _lacks_hc_counters(interfaces):
            # No ifXTable (RFC 2863 allows it below 20 Mbit/s): fall back to 32-bit ifTable
            # counters and remember it, so later rounds are one GET again.
            self._no_hc.add(agent)
            plan = self._plan(target, indexes, 32)
            reply = await self._get(target, plan.request, plan.template, plan.pdu)
            interfaces = _interfaces(plan, reply) if isinstance(reply, Reply) else ()
        taken_at = datetime.now(UTC)
        monotonic_s = time.monotonic()
        if isinstance(reply, WireFailure):
            return RouterSample(
                target.address, taken_at, monotonic_s, None, (), reply.reason, reply.detail
            )
        uptime = _reading(reply.varbinds[0][1], Kind.TIMETICKS)
        detail = "" if isinstance(uptime, int) else f"sysUpTime: {uptime.value}"
        return RouterSample(
            address=target.address,
            taken_at=taken_at,
            monotonic_s=monotonic_s,
            uptime_s=uptime / 100 if isinstance(uptime, int) else None,
            interfaces=interfaces,
            failure=None,
            detail=detail,
        )

    async def walk(self, target: SnmpTarget, column: Oid) -> list[tuple[Oid, Value]] | WireFailure:
        """GETBULK walk of one table column: (index suffix, value) rows in OID order."""
        rows: list[tuple[Oid, Value]] = []
        last = column
        while len(rows) < WALK_MAX_ROWS:
            outcome = await self._exchange(target, bulk_request([last], BULK_MAX_REPETITIONS))
            if isinstance(outcome, WireFailure):
                return outcome
            if not outcome.varbinds:
                return rows
            for oid, value in outcome.varbinds:
                if value.kind is Kind.END_OF_MIB_VIEW or oid[: len(column)] != column:
                    return rows
                if oid <= last:
                    return WireFailure(SnmpFailure.GARBAGE, "walk: OID not increasing")
                rows.append((oid[len(column) :], value))
                last = oid
        return rows

    async def _names(self, target: SnmpTarget, column: Oid) -> dict[str, int] | WireFailure:
        rows = await self.walk(target, column)
        if isinstance(rows, WireFailure):
            return rows
        names: dict[str, int] = {}
        for suffix, value in rows:
            # First (lowest) ifIndex wins when a device repeats a name.
            if len(suffix) == 1 and value.kind is Kind.OCTETS:
                names.setdefault(_text(value), suffix[0])
        return names

    async def resolve_interfaces(
        self, target: SnmpTarget, names: Sequence[str]
    ) -> dict[str, int] | SnmpFailure:
        """Map interface names to ifIndex by walking ifName, then ifDescr for names not found.

        Done once per router (at start or config reload), not per round. Names found in
        neither column are absent from the result.
        """
        wanted = set(names)
        found: dict[str, int] = {}
        for column in (IF_NAME, IF_DESCR):
            table = await self._names(target, column)
            if isinstance(table, WireFailure):
                return table.reason
            found.update({n: table[n] for n in wanted - found.keys() if n in table})
            if wanted <= found.keys():
                break
        return found

    async def system_summary(self, target: SnmpTarget) -> SystemSummary:
        """sysDescr, sysName, sysUpTime and the interface table, for the CLI diagnostic."""
        system = (SYS_DESCR, SYS_NAME, SYS_UPTIME)
        reply = await self._get(target, get_request(system))
        if isinstance(reply, WireFailure):
            return SystemSummary(target.address, "", "", None, (), reply.reason, reply.detail)
        (_, descr_value), (_, name_value), (_, uptime_value) = reply.varbinds
        sys_descr, sys_name = _text(descr_value), _text(name_value)
        uptime = _reading(uptime_value, Kind.TIMETICKS)
        uptime_s = uptime / 100 if isinstance(uptime, int) else None
        columns = (IF_DESCR, IF_NAME, IF_OPER_STATUS, IF_SPEED, IF_HIGH_SPEED, IF_HC_IN_OCTETS)
        tables: list[dict[int, Value]] = []
        for column in columns:
            rows = await self.walk(target, column)
            if isinstance(rows, WireFailure):
                detail = f"walk {'.'.join(map(str, column))}: {rows.detail}"
                return SystemSummary(
                    target.address, sys_descr, sys_name, uptime_s, (), rows.reason, detail
                )
            tables.append({s[0]: v for s, v in rows if len(s) == 1})
        descr, name, oper, speed, high_speed, hc_in = tables
        interfaces = []
        for if_index in sorted(descr.keys() | name.keys()):
            high = high_speed.get(if_index)
            low = speed.get(if_index)
            speed_bps = None
            if high is not None and isinstance(high.data, int) and high.data > 0:
                speed_bps = high.data * 1_000_000
            elif low is not None and isinstance(low.data, int):
                speed_bps = low.data
            status = oper.get(if_index)
            interfaces.append(
                InterfaceInfo(
                    if_index=if_index,
                    name=_text(name[if_index]) if if_index in name else "",
                    descr=_text(descr[if_index]) if if_index in descr else "",
                    oper_status=(
                        status.data if status is not None and isinstance(status.data, int) else None
                    ),
                    speed_bps=speed_bps,
                    has_hc_counters=if_index in hc_in and hc_in[if_index].kind is Kind.COUNTER64,
                )
            )
        return SystemSummary(
            address=target.address,
            sys_descr=sys_descr,
            sys_name=sys_name,
            uptime_s=uptime_s,
            interfaces=tuple(interfaces),
            failure=None,
        )


_OPER = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}"


def _speed(bps: int | None) -> str:
    if bps is None:
        return "-"
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g} {unit}"
    return f"{bps} bit/s"


def format_snmp_summary(summary: SystemSummary) -> str:
    """A readable text table of a router's system group and interfaces (for `netwatch probe`)."""
    if summary.failure is not None:
        return f"SNMP {summary.address}: {summary.failure.name} ({summary.detail})"
    uptime = _duration(summary.uptime_s) if summary.uptime_s is not None else "unknown"
    lines = [
        f"SNMP {summary.address}  sysName: {summary.sys_name or '-'}  uptime: {uptime}",
        f"sysDescr: {' '.join(summary.sys_descr.split()) or '-'}",
    ]
    rows = [("ifIndex", "ifName", "ifDescr", "oper", "speed", "counters")]
    for i in summary.interfaces:
        oper = _OPER.get(i.oper_status, str(i.oper_status)) if i.oper_status is not None else "-"
        counters = "64-bit" if i.has_hc_counters else "no ifHC"
        rows.append(
            (str(i.if_index), i.name or "-", i.descr or "-", oper, _speed(i.speed_bps), counters)
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not summary.interfaces:
        lines.append("(no interfaces in IF-MIB)")
    return "\n".join(lines)
