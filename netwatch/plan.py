"""The inventory compiled into a flat plan of checks, so the probe rounds do no lookups."""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Literal
from urllib.parse import urlsplit

from alerts.subject import LinkId, SubjectKey, link_id
from netwatch.inventory import Inventory
from netwatch.inventory.models import SnmpCredentials
from probes.http import HttpCheck
from probes.snmp_types import SnmpTarget, SnmpV2c, SnmpV3

Role = Literal["link", "upstream", "reference", "device"]


@dataclass(frozen=True, slots=True)
class LinkRef:
    """Who a measurement is about, as the metrics and the health evaluator name it."""

    province: str  # two-digit official province code
    commune: str  # five-digit official commune code
    commune_name: str
    link: str
    isp: str
    path: str
    circuit: str
    bandwidth_bps: float
    upstream: str | None
    # Built once here, carried by every observation of the link (never rebuilt per round).
    id: LinkId = field(init=False)  # "24848/vnpt-tslcd"
    key: SubjectKey = field(init=False)  # "link:24848/vnpt-tslcd"

    def __post_init__(self) -> None:
        ident = link_id(self.commune, self.link)
        object.__setattr__(self, "id", ident)
        object.__setattr__(self, "key", SubjectKey.link(ident))


@dataclass(frozen=True, slots=True)
class IcmpTarget:
    """One address pinged every ICMP round."""

    key: SubjectKey  # stable id: the link's, the upstream node's, the reference target's, ...
    role: Role
    address: str
    link: LinkRef | None = None
    name: str = ""  # upstream / device / reference display name
    commune: str = ""  # device: its commune's code


@dataclass(frozen=True, slots=True)
class SnmpInterface:
    """A router interface that carries one WAN link."""

    link: LinkRef
    interface: str  # ifName or ifDescr as configured


@dataclass(frozen=True, slots=True)
class SnmpJob:
    """One commune router polled every SNMP round."""

    key: SubjectKey  # the router's ("router:24848")
    commune: str
    commune_name: str
    province: str
    target: SnmpTarget
    interfaces: tuple[SnmpInterface, ...]


@dataclass(frozen=True, slots=True)
class PortalJob:
    """One portal timed every HTTP round (and its name resolved through its resolver)."""

    key: SubjectKey  # the portal's ("portal:dvcqg")
    portal: str
    name: str
    check: HttpCheck
    dns_name: str | None  # host name to resolve in the DNS probe (None for IP-literal URLs)
    dns_resolver: str | None


@dataclass(frozen=True, slots=True)
class ConfirmOptions:
    """How fast rounds run and how many subjects they may hold."""

    interval_s: float = 2.0  # one fast round every this often while anything is suspect
    echoes: int = 10  # two lost of ten: beyond chance at 2 %, most rounds of a 20 % line
    spacing_s: float = 0.05
    timeout_s: float = 1.0
    max_subjects: int = 200
    max_pps: float = 600.0  # the fast rounds' share of the send rate, at most
    snmp_after_s: float = 10.0  # the second router poll of a suspect link, after the first

    @property
    def capacity(self) -> int:
        """Subjects in fast mode at once: max_subjects, lowered to keep within max_pps."""
        by_rate = math.floor(self.max_pps * self.interval_s / self.echoes)
        return max(1, min(self.max_subjects, by_rate))


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one NetWatch process measures, and how often."""

    icmp: tuple[IcmpTarget, ...]
    snmp: tuple[SnmpJob, ...]
    portals: tuple[PortalJob, ...]
    icmp_interval_s: float
    icmp_echoes: int
    snmp_interval_s: float
    http_interval_s: float
    confirm: ConfirmOptions | None = None  # fast confirmation; None: off

    def counts(self) -> dict[str, int]:
        """Targets per kind, for NetWatch's own health metrics."""
        return {"icmp": len(self.icmp), "snmp": len(self.snmp), "http": len(self.portals)}

    def intervals(self) -> dict[str, float]:
        """Seconds between two rounds, per kind."""
        return {
            "icmp": self.icmp_interval_s,
            "snmp": self.snmp_interval_s,
            "http": self.http_interval_s,
        }


def _credentials(creds: SnmpCredentials) -> SnmpV2c | SnmpV3:
    if creds.version == "2c":
        assert creds.community is not None  # the model guarantees it
        return SnmpV2c(creds.community.reveal())
    assert creds.user is not None
    return SnmpV3(
        user=creds.user,
        auth_protocol=creds.auth_protocol or "sha",
        auth_key=creds.auth_key.reveal() if creds.auth_key else "",
        priv_protocol=creds.priv_protocol,
        priv_key=creds.priv_key.reveal() if creds.priv_key else None,
    )


def compile_plan(inventory: Inventory) -> Plan:
    """Flatten the inventory into the lists the probe rounds iterate over."""
    icmp: list[IcmpTarget] = []
    snmp: list[SnmpJob] = []
    creds = {name: _credentials(c) for name, c in inventory.snmp_credentials.items()}
    for commune in inventory.communes:
        province = f"{commune.province_code:02d}"
        interfaces: list[SnmpInterface] = []
        for link in commune.links:
            ref = LinkRef(
                province=province,
                commune=commune.code,
                commune_name=commune.name,
                link=link.id,
                isp=link.isp,
                path=link.path,
                circuit=link.circuit,
                bandwidth_bps=link.bandwidth_mbps * 1e6,
                upstream=link.upstream,
            )
            icmp.append(IcmpTarget(ref.key, "link", str(link.address), link=ref))
            if link.interface and commune.router is not None:
                interfaces.append(SnmpInterface(ref, link.interface))
        for device in commune.devices:
            icmp.append(
                IcmpTarget(
                    SubjectKey.device(commune.code, str(device.address)),
                    "device",
                    str(device.address),
                    name=device.name,
                    commune=commune.code,
                )
            )
        if commune.router is not None:
            target = SnmpTarget(
                address=str(commune.router.address),
                credentials=creds[commune.router.snmp],
                port=commune.router.port,
            )
            snmp.append(
                SnmpJob(
                    SubjectKey.router(commune.code),
                    commune.code,
                    commune.name,
                    province,
                    target,
                    tuple(interfaces),
                )
            )
    for upstream_id, upstream in inventory.upstreams.items():
        if upstream.address is not None:
            icmp.append(
                IcmpTarget(
                    SubjectKey.upstream(upstream_id),
                    "upstream",
                    str(upstream.address),
                    name=upstream.name,
                )
            )
    for address in inventory.reference_targets:
        icmp.append(
            IcmpTarget(
                SubjectKey.reference(str(address)), "reference", str(address), name=str(address)
            )
        )
    portals = []
    for portal_id, portal in inventory.portals.items():
        resolver = str(portal.dns_resolver) if portal.dns_resolver is not None else None
        check = HttpCheck(
            url=portal.url,
            timeout_s=portal.timeout_s,
            expect_status=portal.expect_status,
            expect_text=portal.expect_text,
            ca_file=portal.ca_file,
            dns_resolver=resolver,
        )
        host = urlsplit(portal.url).hostname
        dns_name = host if host and not _is_ip(host) else None
        portals.append(
            PortalJob(
                SubjectKey.portal(portal_id), portal_id, portal.name, check, dns_name, resolver
            )
        )
    return Plan(
        icmp=tuple(icmp),
        snmp=tuple(snmp),
        portals=tuple(portals),
        icmp_interval_s=inventory.intervals.icmp_s,
        icmp_echoes=inventory.intervals.icmp_echoes,
        snmp_interval_s=inventory.intervals.snmp_s,
        http_interval_s=inventory.intervals.http_s,
        confirm=_confirm(inventory),
    )


def shard_of(commune: str, count: int) -> int:
    """The shard of a commune among `count`: CRC-32 of its code, the same in every process and
    on every machine (Python's own str hash is salted per process)."""
    return zlib.crc32(commune.encode()) % count


def shard_plan(plan: Plan, index: int, count: int) -> Plan:
    """The part of a plan that shard `index` of `count` measures.

    A commune goes whole to one shard (its links, devices and router together, so a worker's
    fast confirmation has a link's companions and its router); upstream nodes, reference
    targets and portals go to shard 0. `count` 1 is the plan itself.
    """
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: want 0 <= index < count")
    if count == 1:
        return plan

    def mine(commune: str) -> bool:
        return shard_of(commune, count) == index

    def owns(t: IcmpTarget) -> bool:
        if t.link is not None:
            return mine(t.link.commune)
        if t.commune:  # a device in a commune
            return mine(t.commune)
        return index == 0  # upstream nodes, reference targets

    return dataclasses.replace(
        plan,
        icmp=tuple(t for t in plan.icmp if owns(t)),
        snmp=tuple(j for j in plan.snmp if mine(j.commune)),
        portals=plan.portals if index == 0 else (),
    )


def _confirm(inventory: Inventory) -> ConfirmOptions | None:
    c = inventory.confirmation
    if not c.enabled:
        return None
    return ConfirmOptions(
        interval_s=c.interval_s,
        echoes=c.echoes,
        max_subjects=c.max_subjects,
        max_pps=c.max_pps,
        snmp_after_s=c.snmp_after_s,
    )


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """What a configuration reload changes in what is measured, by subject key.

    `changed`: the subject stays but how it is measured changed (an address, a credential, a
    link's labels, a portal's check); its judged state and tickets stay."""

    added: frozenset[SubjectKey]
    removed: frozenset[SubjectKey]
    changed: frozenset[SubjectKey]

    @property
    def empty(self) -> bool:
        """True when nothing measured is added, removed or changed."""
        return not (self.added or self.removed or self.changed)


def plan_subjects(plan: Plan) -> dict[SubjectKey, object]:
    """Every subject a plan measures, with what it is measured as (to compare two plans).

    A link's router poll is its own subject ("router:CODE"); the link keys come from the ICMP
    targets (every link is pinged)."""
    out: dict[SubjectKey, object] = {}
    for target in plan.icmp:
        out[target.key] = target
    for job in plan.snmp:
        out[job.key] = job
    for portal in plan.portals:
        out[portal.key] = portal
    return out


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    """The subjects a reload adds, removes, or measures differently."""
    before, after = plan_subjects(old), plan_subjects(new)
    return PlanDiff(
        added=frozenset(after.keys() - before.keys()),
        removed=frozenset(before.keys() - after.keys()),
        changed=frozenset(k for k in before.keys() & after.keys() if before[k] != after[k]),
    )
