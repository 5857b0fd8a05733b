"""The wire format of observations between processes: one msgpack message per round, shard,
province and kind, decoded back into the dataclasses the sinks consume (netwatch.observations).

A message is a msgpack map (the envelope) whose ``obs`` holds one positional row per
observation; docs/bus.md lists every field. Rows are arrays, not maps: a national ICMP round is
10,000 rows, and names in each would double the bytes and the time (docs/bus.md has the
figures). The rules that keep old and new processes talking (docs/bus.md, "Versions"):

* ``v`` is the schema version. A change only ever *adds*: a new envelope key, or a new field at
  the end of a row. Renaming, removing or re-typing a field is a new subject version
  (``nw.obs.v2``), not a new schema version.
* The decoder accepts every version from ``MIN_VERSION`` to ``VERSION``: a row shorter than this
  version's takes the defaults of the fields it lacks, a longer one (a newer writer's) has its
  extra fields ignored. A version above ``VERSION`` is refused with a message saying to upgrade
  the readers (the core, the web) before the writers (the probe workers).
* tests/bus/fixtures holds a payload of every version ever written; each must keep decoding.

Subjects are sent as their stored form (``SubjectKey.encoded``) and resolved against the
reader's plan (:class:`PlanIndex`), so a batch carries results, never configuration: no
addresses of targets, no SNMP credentials. An observation of a subject the reader's plan does
not have (a worker started on a newer inventory) is dropped and counted in ``Batch.unknown``.

Times travel as integer microseconds since the Unix epoch (exact, unlike a float at this
magnitude) and come back timezone-aware in UTC. ``RouterSample.monotonic_s`` is the writer's
monotonic clock: meaningful only for comparisons with other samples of the same writer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import msgpack

from alerts.subject import SubjectKey
from netwatch.observations import (
    IcmpObservation,
    InterfaceReading,
    Kind,
    Observation,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)
from netwatch.plan import IcmpTarget, Plan, PortalJob, SnmpJob
from probes.dns import DnsFailure, DnsResult
from probes.http import HttpFailure, HttpPhase, HttpResult
from probes.icmp import PingFailure, PingResult
from probes.snmp_types import InterfaceSample, Reading, RouterSample, SnmpFailure

__all__ = [
    "MIN_VERSION",
    "NATION",
    "OBS_PREFIX",
    "VERSION",
    "Batch",
    "PlanIndex",
    "WireError",
    "decode",
    "encode_observations",
    "encode_report",
    "group_by_subject",
    "msg_id",
    "observation_subject",
    "report_subject",
]

VERSION: Final = 1
"""The schema version this module writes."""
MIN_VERSION: Final = 1
"""The oldest schema version this module still reads (the rule: at least ``VERSION - 1``)."""

OBS_PREFIX: Final = "nw.obs.v1"
"""Subjects of this wire format; a breaking change would publish under ``nw.obs.v2``."""
NATION: Final = "nation"
"""The province token of subjects that belong to no province: upstream nodes, reference
targets, portals (official province codes are two digits, so it never collides)."""
_ROUND_REPORTS: Final = "round"

_KINDS: Final[frozenset[str]] = frozenset(("icmp", "snmp", "http"))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)

E = TypeVar("E", bound=enum.Enum)


class WireError(ValueError):
    """A payload that is not a batch this decoder can read (garbage, a newer version, ...)."""


def observation_subject(province: str, kind: Kind, *, fast: bool = False) -> str:
    """The subject of one province's observations of one kind: ``nw.obs.v1.24.icmp``; fast
    confirmation rounds get a ``.fast`` suffix so per-round consumers can filter them out."""
    base = f"{OBS_PREFIX}.{province}.{kind}"
    return f"{base}.fast" if fast else base


def report_subject(kind: Kind) -> str:
    """The subject of a shard's round reports of one kind: ``nw.obs.v1.round.icmp``."""
    return f"{OBS_PREFIX}.{_ROUND_REPORTS}.{kind}"


def msg_id(round_id: int, shard: int, subject: str, first: int = 0) -> str:
    """The ``Nats-Msg-Id`` of one message: the same round, shard, subject and first row (of a
    batch split in parts) always give the same id, so a publish retried after a lost ack is
    deduplicated by the stream instead of being counted twice."""
    return f"{round_id}:{shard}:{subject}:{first}"


@dataclass(frozen=True, slots=True)
class PlanIndex:
    """The reader's plan by subject key, built once: what resolves the keys in a batch."""

    icmp: Mapping[str, IcmpTarget]
    snmp: Mapping[str, SnmpJob]
    portals: Mapping[str, PortalJob]
    links: Mapping[str, SubjectKey]  # every link key of the plan's routers
    provinces: Mapping[str, str]  # commune code -> province code (devices carry no province)

    @classmethod
    def from_plan(cls, plan: Plan) -> PlanIndex:
        """Index a compiled plan."""
        provinces: dict[str, str] = {}
        for t in plan.icmp:
            if t.link is not None:
                provinces[t.link.commune] = t.link.province
        links: dict[str, SubjectKey] = {}
        for job in plan.snmp:
            provinces[job.commune] = job.province
            for iface in job.interfaces:
                links[iface.link.key.encoded] = iface.link.key
        return cls(
            icmp={t.key.encoded: t for t in plan.icmp},
            snmp={j.key.encoded: j for j in plan.snmp},
            portals={p.key.encoded: p for p in plan.portals},
            links=links,
            provinces=provinces,
        )

    def province_of(self, obs: Observation) -> str:
        """The province token of an observation's subject (``NATION`` for national ones)."""
        if isinstance(obs, IcmpObservation):
            t = obs.target
            if t.link is not None:
                return t.link.province
            if t.commune:
                return self.provinces.get(t.commune, NATION)
            return NATION
        if isinstance(obs, SnmpObservation):
            return obs.job.province
        return NATION


@dataclass(frozen=True, slots=True)
class Batch:
    """One decoded message: a shard's observations of one round, province and kind, or the
    report of a shard's round."""

    version: int
    kind: Kind
    round_id: int  # the round's scheduled start in Unix milliseconds (the writer's choice)
    shard: int
    fast: bool  # a fast confirmation round: for the health monitor and the latest state only
    sent_at: datetime
    plan: str  # the writer's plan digest ("" when not given): a reader can spot a skew
    observations: tuple[Observation, ...]
    report: RoundReport | None
    unknown: int  # observations dropped: their subject is not in the reader's plan


# --- encoding -------------------------------------------------------------------------------


def _us(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"naive datetime on the wire: {t!r}")
    return (t - _EPOCH) // _US


def _opt_us(t: datetime | None) -> int | None:
    return None if t is None else _us(t)


def _reading(r: Reading) -> int | str:
    return r.value if isinstance(r, SnmpFailure) else r


def _enum(e: enum.Enum | None) -> str | None:
    return None if e is None else str(e.value)


def _icmp_row(o: IcmpObservation) -> list[Any]:
    r = o.result
    return [
        o.target.key.encoded,
        # The address pinged is the target's: sent only when it differs (half the row's bytes).
        None if r.address == o.target.address else r.address,
        r.sent,
        r.received,
        r.loss_ratio,
        r.rtt_min_s,
        r.rtt_median_s,
        r.rtt_max_s,
        r.jitter_s,
        r.rtts_s,
        None if r.failure is None else r.failure.value,
        _us(r.started_at),
    ]


def _iface_sample_row(s: InterfaceSample) -> list[Any]:
    return [
        s.if_index,
        _reading(s.oper_status),
        _reading(s.in_octets),
        _reading(s.out_octets),
        s.counter_bits,
        _reading(s.in_errors),
        _reading(s.out_errors),
        _reading(s.in_discards),
        _reading(s.out_discards),
        _reading(s.discontinuity_ticks),
    ]


def _reading_row(i: InterfaceReading) -> list[Any]:
    return [
        i.link_key.encoded,
        i.if_index,
        i.oper_up,
        i.in_bps,
        i.out_bps,
        i.in_utilization_ratio,
        i.out_utilization_ratio,
        i.in_octets,
        i.out_octets,
        i.in_errors,
        i.out_errors,
        i.in_discards,
        i.out_discards,
    ]


def _snmp_row(o: SnmpObservation) -> list[Any]:
    s = o.sample
    return [
        o.job.key.encoded,
        [
            s.address,
            _us(s.taken_at),
            s.monotonic_s,
            s.uptime_s,
            [_iface_sample_row(i) for i in s.interfaces],
            _enum(s.failure),
            s.detail,
        ],
        [_reading_row(i) for i in o.interfaces],
        o.rebooted,
        _opt_us(o.rates_since),
    ]


def _http_row(h: HttpResult) -> list[Any]:
    return [
        h.url,
        _us(h.started_at),
        h.dns_s,
        h.connect_s,
        h.tls_s,
        h.first_byte_s,
        h.transfer_s,
        h.total_s,
        h.status,
        h.redirects,
        h.body_bytes,
        h.content_ok,
        _opt_us(h.cert_not_after),
        h.cert_days_left,
        _enum(h.failure),
        _enum(h.failed_phase),
        h.detail,
    ]


def _dns_row(d: DnsResult) -> list[Any]:
    return [
        d.name,
        d.resolver,
        d.rtype,
        d.addresses,
        d.rtt_s,
        _enum(d.failure),
        d.detail,
        _us(d.started_at),
    ]


def _portal_row(o: PortalObservation) -> list[Any]:
    return [o.job.key.encoded, _http_row(o.http), None if o.dns is None else _dns_row(o.dns)]


def _row(o: Observation) -> list[Any]:
    if isinstance(o, IcmpObservation):
        return _icmp_row(o)
    if isinstance(o, SnmpObservation):
        return _snmp_row(o)
    return _portal_row(o)


def _envelope(
    kind: Kind, round_id: int, shard: int, fast: bool, sent_at: datetime, plan: str
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "kind": kind,
        "round": round_id,
        "shard": shard,
        "fast": fast,
        "at": _us(sent_at),
        "plan": plan,
    }


def encode_observations(
    kind: Kind,
    observations: Iterable[Observation],
    *,
    round_id: int,
    shard: int,
    sent_at: datetime,
    fast: bool = False,
    plan: str = "",
) -> bytes:
    """One message holding observations of one kind (the caller groups them by subject)."""
    env = _envelope(kind, round_id, shard, fast, sent_at, plan)
    env["obs"] = [_row(o) for o in observations]
    return bytes(msgpack.packb(env, use_bin_type=True))


def encode_report(
    report: RoundReport, *, round_id: int, shard: int, sent_at: datetime, plan: str = ""
) -> bytes:
    """One message holding the report of a shard's round."""
    env = _envelope(report.kind, round_id, shard, False, sent_at, plan)
    env["report"] = [
        _us(report.scheduled_at),
        _us(report.started_at),
        report.lag_s,
        report.duration_s,
        report.targets,
        report.skipped_rounds,
    ]
    return bytes(msgpack.packb(env, use_bin_type=True))


# --- decoding -------------------------------------------------------------------------------


class _Times:
    """Microseconds back to aware datetimes, reusing the last one: a round's results share a
    handful of start times, and building a datetime is most of a row's decoding cost."""

    __slots__ = ("_dt", "_us")

    def __init__(self) -> None:
        self._us = -1
        self._dt = _EPOCH

    def __call__(self, us: int) -> datetime:
        if us != self._us:
            if not isinstance(us, int):
                raise TypeError(f"a time must be integer microseconds, not {us!r}")
            self._dt = _EPOCH + timedelta(microseconds=us)
            self._us = us
        return self._dt

    def opt(self, us: int | None) -> datetime | None:
        return None if us is None else self(us)


def _by_value(cls: type[E]) -> Callable[[str | None], E | None]:
    table = {m.value: m for m in cls}

    def lookup(value: str | None) -> E | None:
        if value is None:
            return None
        try:
            return table[value]
        except KeyError:
            raise ValueError(f"unknown {cls.__name__} {value!r}") from None

    return lookup


_PING_FAILURE = _by_value(PingFailure)
_SNMP_FAILURE = _by_value(SnmpFailure)
_HTTP_FAILURE = _by_value(HttpFailure)
_HTTP_PHASE = _by_value(HttpPhase)
_DNS_FAILURE = _by_value(DnsFailure)


def _read(value: int | str) -> Reading:
    if isinstance(value, int):
        return value
    failure = _SNMP_FAILURE(value)
    assert failure is not None  # a str is never None
    return failure


def _fields(row: object, n: int, what: str) -> list[Any]:
    """A row with at least the ``n`` fields of version 1 (longer: a newer writer's)."""
    if not isinstance(row, list) or len(row) < n:
        raise ValueError(f"{what} row must be an array of at least {n} fields: {row!r:.80}")
    return row


def _decode_icmp(row: object, index: PlanIndex, times: _Times) -> IcmpObservation | None:
    f = _fields(row, 12, "icmp")
    target = index.icmp.get(f[0])
    if target is None:
        return None
    return IcmpObservation(
        target,
        PingResult(
            address=target.address if f[1] is None else str(f[1]),
            sent=f[2],
            received=f[3],
            loss_ratio=f[4],
            rtt_min_s=f[5],
            rtt_median_s=f[6],
            rtt_max_s=f[7],
            jitter_s=f[8],
            rtts_s=tuple(f[9]),
            failure=_PING_FAILURE(f[10]),
            started_at=times(f[11]),
        ),
    )


def _decode_iface_sample(row: object) -> InterfaceSample:
    f = _fields(row, 10, "interface sample")
    return InterfaceSample(
        if_index=f[0],
        oper_status=_read(f[1]),
        in_octets=_read(f[2]),
        out_octets=_read(f[3]),
        counter_bits=f[4],
        in_errors=_read(f[5]),
        out_errors=_read(f[6]),
        in_discards=_read(f[7]),
        out_discards=_read(f[8]),
        discontinuity_ticks=_read(f[9]),
    )


def _decode_reading(row: object, index: PlanIndex) -> InterfaceReading:
    f = _fields(row, 13, "interface reading")
    key = index.links.get(f[0])
    return InterfaceReading(
        link_key=key if key is not None else SubjectKey.parse(f[0]),
        if_index=f[1],
        oper_up=f[2],
        in_bps=f[3],
        out_bps=f[4],
        in_utilization_ratio=f[5],
        out_utilization_ratio=f[6],
        in_octets=f[7],
        out_octets=f[8],
        in_errors=f[9],
        out_errors=f[10],
        in_discards=f[11],
        out_discards=f[12],
    )


def _decode_snmp(row: object, index: PlanIndex, times: _Times) -> SnmpObservation | None:
    f = _fields(row, 5, "snmp")
    job = index.snmp.get(f[0])
    if job is None:
        return None
    s = _fields(f[1], 7, "router sample")
    sample = RouterSample(
        address=s[0],
        taken_at=times(s[1]),
        monotonic_s=s[2],
        uptime_s=s[3],
        interfaces=tuple(_decode_iface_sample(i) for i in s[4]),
        failure=_SNMP_FAILURE(s[5]),
        detail=s[6],
    )
    readings = tuple(_decode_reading(r, index) for r in f[2])
    return SnmpObservation(job, sample, readings, bool(f[3]), times.opt(f[4]))


def _decode_http(row: object, times: _Times) -> HttpResult:
    f = _fields(row, 17, "http")
    return HttpResult(
        url=f[0],
        started_at=times(f[1]),
        dns_s=f[2],
        connect_s=f[3],
        tls_s=f[4],
        first_byte_s=f[5],
        transfer_s=f[6],
        total_s=f[7],
        status=f[8],
        redirects=f[9],
        body_bytes=f[10],
        content_ok=f[11],
        cert_not_after=times.opt(f[12]),
        cert_days_left=f[13],
        failure=_HTTP_FAILURE(f[14]),
        failed_phase=_HTTP_PHASE(f[15]),
        detail=f[16],
    )


def _decode_dns(row: object, times: _Times) -> DnsResult:
    f = _fields(row, 8, "dns")
    return DnsResult(
        name=f[0],
        resolver=f[1],
        rtype=f[2],
        addresses=tuple(f[3]),
        rtt_s=f[4],
        failure=_DNS_FAILURE(f[5]),
        detail=f[6],
        started_at=times(f[7]),
    )


def _decode_portal(row: object, index: PlanIndex, times: _Times) -> PortalObservation | None:
    f = _fields(row, 3, "portal")
    job = index.portals.get(f[0])
    if job is None:
        return None
    dns = None if f[2] is None else _decode_dns(f[2], times)
    return PortalObservation(job, _decode_http(f[1], times), dns)


_ROW_DECODERS: Final[Mapping[str, Callable[[object, PlanIndex, _Times], Observation | None]]] = {
    "icmp": _decode_icmp,
    "snmp": _decode_snmp,
    "http": _decode_portal,
}


def _decode_report(kind: Kind, row: object, times: _Times, shard: int) -> RoundReport:
    f = _fields(row, 6, "round report")
    return RoundReport(
        kind=kind,
        scheduled_at=times(f[0]),
        started_at=times(f[1]),
        lag_s=f[2],
        duration_s=f[3],
        targets=f[4],
        skipped_rounds=f[5],
        shard=shard,
    )


def _envelope_field(env: Mapping[str, Any], key: str, kind: type) -> Any:
    value = env.get(key)
    # The exact type: msgpack gives plain int, str and bool, and a bool is no round number.
    if type(value) is not kind:
        raise WireError(f"envelope field {key!r} missing or of the wrong type: {value!r:.40}")
    return value


def decode(payload: bytes, index: PlanIndex) -> Batch:
    """Decode one message; :class:`WireError` says why a payload cannot be read."""
    try:
        env = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for garbage (ExtraData, ValueError)
        raise WireError(f"not a msgpack payload ({len(payload)} bytes): {exc}") from exc
    if not isinstance(env, dict):
        raise WireError(f"the payload is not a map but {type(env).__name__}")
    version = _envelope_field(env, "v", int)
    if version > VERSION:
        raise WireError(
            f"schema version {version} is newer than this reader's {VERSION}: "
            "upgrade the readers (core, web) before the writers (probe workers)"
        )
    if version < MIN_VERSION:
        raise WireError(f"schema version {version} is older than the oldest read ({MIN_VERSION})")
    kind: Kind = _envelope_field(env, "kind", str)
    if kind not in _KINDS:
        raise WireError(f"unknown observation kind {kind!r}")
    times = _Times()
    observations: list[Observation] = []
    unknown = 0
    report = None
    raw_report = env.get("report")
    try:
        if raw_report is not None:
            report = _decode_report(kind, raw_report, times, _envelope_field(env, "shard", int))
        rows = env.get("obs", [])
        if not isinstance(rows, list):
            raise ValueError("obs must be an array")
        decode_row = _ROW_DECODERS[kind]
        for row in rows:
            obs = decode_row(row, index, times)
            if obs is None:
                unknown += 1
            else:
                observations.append(obs)
        sent_at = times(_envelope_field(env, "at", int))
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        raise WireError(
            f"malformed {kind} batch (row {len(observations) + unknown}): {exc}"
        ) from exc
    return Batch(
        version=version,
        kind=kind,
        round_id=_envelope_field(env, "round", int),
        shard=_envelope_field(env, "shard", int),
        fast=_envelope_field(env, "fast", bool),
        sent_at=sent_at,
        plan=str(env.get("plan", "")),
        observations=tuple(observations),
        report=report,
        unknown=unknown,
    )


def group_by_subject(
    observations: Sequence[Observation], index: PlanIndex, kind: Kind, *, fast: bool = False
) -> dict[str, list[Observation]]:
    """Observations split by the subject they are published under (province and kind)."""
    groups: dict[str, list[Observation]] = {}
    for obs in observations:
        subject = observation_subject(index.province_of(obs), kind, fast=fast)
        groups.setdefault(subject, []).append(obs)
    return groups
