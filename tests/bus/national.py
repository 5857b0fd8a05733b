"""A synthetic national plan and one round of its observations, built in memory.

The shape of benchmarks/bench_national.py's inventory (every commune: two links on a router
with two WAN interfaces, one kiosk; an upstream node per province; two portals) without YAML or
a lab, so the wire tests and benchmarks/bench_wire.py can run a national round in milliseconds.
Values vary per target (failures, missing replies, counters) so every branch of the codec runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.subject import SubjectKey
from netwatch.observations import (
    IcmpObservation,
    InterfaceReading,
    Observation,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)
from netwatch.plan import IcmpTarget, LinkRef, Plan, PortalJob, SnmpInterface, SnmpJob
from probes.dns import DnsFailure, DnsResult
from probes.http import HttpCheck, HttpFailure, HttpPhase, HttpResult
from probes.icmp import PingFailure, PingResult
from probes.snmp_types import InterfaceSample, RouterSample, SnmpFailure, SnmpTarget, SnmpV2c

PROVINCES = 34
COMMUNES = 3321
ROUND_AT = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)


def _address(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def national_plan(communes: int = COMMUNES) -> Plan:
    """Every commune with a router, two links and a kiosk; an upstream per province."""
    creds = SnmpV2c("bench")
    icmp: list[IcmpTarget] = []
    snmp: list[SnmpJob] = []
    for n in range(communes):
        province = f"{n % PROVINCES + 1:02d}"
        code = f"{10000 + n:05d}"
        name = f"Xã Thử {n}"
        refs = [
            LinkRef(province, code, name, "vnpt-tslcd", "vnpt", "tslcd", f"T-{code}", 1e8, None),
            LinkRef(province, code, name, "viettel-internet", "viettel", "internet", "", 2e8, None),
        ]
        wan = [_address(3 * n + 1), _address(3 * n + 2)]
        icmp += [IcmpTarget(r.key, "link", a, link=r) for r, a in zip(refs, wan, strict=True)]
        kiosk = _address(3 * n + 3)
        icmp.append(
            IcmpTarget(SubjectKey.device(code, kiosk), "device", kiosk, name="Kiosk", commune=code)
        )
        interfaces = (SnmpInterface(refs[0], "eth0"), SnmpInterface(refs[1], "eth1"))
        snmp.append(
            SnmpJob(
                SubjectKey.router(code),
                code,
                name,
                province,
                SnmpTarget(wan[0], creds),
                interfaces,
            )
        )
    for p in range(1, PROVINCES + 1):
        icmp.append(
            IcmpTarget(SubjectKey.upstream(f"pop-{p:02d}"), "upstream", f"10.255.0.{p}", name="POP")
        )
    portals = tuple(
        PortalJob(
            SubjectKey.portal(pid),
            pid,
            f"Cổng {pid}",
            HttpCheck(url=f"https://{pid}.example.vn/"),
            f"{pid}.example.vn",
            "127.0.0.53",
        )
        for pid in ("dvcqg", "motcua", "ip-literal")
    )
    return Plan(
        icmp=tuple(icmp),
        snmp=tuple(snmp),
        portals=portals,
        icmp_interval_s=30.0,
        icmp_echoes=5,
        snmp_interval_s=60.0,
        http_interval_s=60.0,
    )


def icmp_round(plan: Plan, at: datetime = ROUND_AT) -> list[Observation]:
    """One ICMP round: most targets answer all five echoes, some lose some, a few none."""
    out: list[Observation] = []
    for i, t in enumerate(plan.icmp):
        if i % 97 == 0:
            result = PingResult(
                t.address, 5, 0, 1.0, None, None, None, None, (), PingFailure.NO_REPLY, at
            )
        else:
            rtts = tuple(0.010 + 0.001 * ((i + k) % 7) for k in range(5 - (i % 13 == 0)))
            s = sorted(rtts)
            result = PingResult(
                t.address,
                5,
                len(rtts),
                1 - len(rtts) / 5,
                s[0],
                s[len(s) // 2],
                s[-1],
                0.001,
                rtts,
                None,
                at,
            )
        out.append(IcmpObservation(t, result))
    return out


def snmp_round(plan: Plan, at: datetime = ROUND_AT) -> list[Observation]:
    """One SNMP round: rates on most routers, a timeout on a few, a reboot on one."""
    out: list[Observation] = []
    for i, job in enumerate(plan.snmp):
        taken = at + timedelta(milliseconds=i % 1000)
        if i % 101 == 0:
            sample = RouterSample(
                job.target.address, taken, 1000.0 + i, None, (), SnmpFailure.TIMEOUT, "no answer"
            )
            readings = tuple(
                InterfaceReading(iface.link.key, None, *([None] * 11)) for iface in job.interfaces
            )
            out.append(SnmpObservation(job, sample, readings, False, None))
            continue
        samples = tuple(
            InterfaceSample(
                if_index=k + 1,
                oper_status=1,
                in_octets=10**9 + i * 1000 + k,
                out_octets=2 * 10**9 + i,
                counter_bits=64,
                in_errors=0,
                out_errors=i % 3,
                in_discards=SnmpFailure.NO_SUCH_INSTANCE if k else 0,
                out_discards=0,
                discontinuity_ticks=0 if k else SnmpFailure.NO_SUCH_OBJECT,
            )
            for k in range(len(job.interfaces))
        )
        sample = RouterSample(job.target.address, taken, 1000.0 + i, 86400.0 + i, samples, None)
        readings = tuple(
            InterfaceReading(
                iface.link.key,
                k + 1,
                True,
                1.5e6 + i,
                2.5e5,
                0.015,
                0.0025,
                10**9 + i * 1000 + k,
                2 * 10**9 + i,
                0,
                i % 3,
                None if k else 0,
                0,
            )
            for k, iface in enumerate(job.interfaces)
        )
        out.append(SnmpObservation(job, sample, readings, i == 7, at - timedelta(seconds=60)))
    return out


def http_round(plan: Plan, at: datetime = ROUND_AT) -> list[Observation]:
    """One portal round: the first portal answers, the others time out in TLS."""
    out: list[Observation] = []
    for i, job in enumerate(plan.portals):
        ok = i == 0
        http = HttpResult(
            url=job.check.url,
            started_at=at,
            dns_s=0.002,
            connect_s=0.004,
            tls_s=0.02 if ok else None,
            first_byte_s=0.05 if ok else None,
            transfer_s=0.01 if ok else None,
            total_s=0.086 if ok else 10.0,
            status=200 if ok else None,
            redirects=0,
            body_bytes=5120 if ok else 0,
            content_ok=True if ok else None,
            cert_not_after=datetime(2027, 3, 1, tzinfo=UTC) if ok else None,
            cert_days_left=85.9 if ok else None,
            failure=None if ok else HttpFailure.TIMEOUT,
            failed_phase=None if ok else HttpPhase.TLS,
            detail="" if ok else "TLS handshake timed out",
        )
        dns = DnsResult(
            job.dns_name or "",
            "127.0.0.53",
            "A",
            ("203.0.113.10",) if ok else (),
            0.002 if ok else None,
            None if ok else DnsFailure.SERVFAIL,
            "",
            at,
        )
        out.append(PortalObservation(job, http, dns if i < 2 else None))  # 3rd: IP literal URL
    return out


def round_report(targets: int, at: datetime = ROUND_AT) -> RoundReport:
    """The report of an on-time ICMP round."""
    return RoundReport("icmp", at, at + timedelta(milliseconds=3), 0.003, 27.5, targets, 0)
