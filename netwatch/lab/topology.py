"""The lab plan: every name, address and link of a lab network, derived from its index.

Addressing for lab index k (prefix 10.(88+k).0.0/16, written P below):

    P.0.1/30   root side (`nwl{k}-lab`)        P.0.2/30   core (`mon`) = reference target
    P.i.1/30   upstream node i (`core`)        P.i.2/30   core (`pop{i}`), i = 1..9
    P.250.1/24 core (`portal`)                 P.250.10 portal HTTPS, P.250.53 lab DNS
    P.B.0/30   commune link 1: router `wan1` .1, upstream `c{code}w1` .2     B = 10 + commune #
    P.B.4/30   commune link 2: router `wan2` .5, upstream `c{code}w2` .6
    P.B.128/25 the commune's LAN: bridge `lan` in the router, P.B.129 = the router (LAN gateway)
    P.B.130    agent box path 1 source, P.B.131 path 2 source (namespace `nwl{k}-a{code}`, `lan`)
               the router policy-routes each source out by its link; core and upstream nodes
               route each source back by the same link, so cutting link n cuts path n only
    P.B.140    front-office kiosk, P.B.141 printer (namespace `nwl{k}-d{code}`, `lan`)
    P.B.200    the load generator's sink: blackholed in the router (counted on the WAN, dropped)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vietnam_provinces import Province, ProvinceCode, Ward

# Demo communes, named after real ones; codes as in vietnam-provinces (2025 reform).
DEFAULT_COMMUNE_CODES: tuple[int, ...] = (24848, 28696, 28693, 5518)
MAX_INDEX = 167  # 88 + 167 = 255
MAX_COMMUNES = 240  # third octets 10..249
FIRST_COMMUNE_OCTET = 10
PORTAL_OCTET = 250
PORTAL_HOSTNAME = "dichvucong.lab.netwatch.vn"
DNS_ZONE = "lab.netwatch.vn"
LAN_SINK_HOST = 200  # P.B.200: an address in the commune LAN that the load generator targets
LAN_GATEWAY_HOST = 129  # P.B.129: the router on the commune LAN
BOX_FIRST_HOST = 130  # P.B.130 + (link number - 1): the agent box's source address per path
DEVICE_FIRST_HOST = 140  # P.B.140..: front-office devices
LAN_PREFIXLEN = 25
# (name, kind) of the front-office devices every lab commune has on its LAN.
LAB_DEVICES: tuple[tuple[str, str], ...] = (
    ("Ki-ốt tra cứu thủ tục", "kiosk"),
    ("Máy in bộ phận một cửa", "printer"),
)
LINK1_MBPS = 10
LINK2_MBPS = 20
# Stride through the ward list (sorted by code): coprime with 3321 and close to 3321 / golden
# ratio, so every size of lab is a prefix of the next and the communes spread over provinces.
_WARD_STRIDE = 2053


@dataclass(frozen=True, slots=True)
class IspPlan:
    """An ISP of the lab, with example contacts."""

    id: str
    name: str
    contact_domain: str


@dataclass(frozen=True, slots=True)
class UpstreamPlan:
    """An upstream node (district POP): its own namespace, behind the core."""

    id: str
    name: str
    isp: str
    namespace: str
    address: str  # pinged by NetWatch; on the node's `core` interface
    ifname: str  # the node's interface toward the core
    core_ifname: str  # the core's interface toward the node
    core_address: str


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """One WAN link of a commune: a veth between the router and its upstream node."""

    id: str
    number: int
    isp: str
    path: str
    upstream: str
    bandwidth_mbps: int
    circuit: str
    router_ifname: str
    router_address: str
    upstream_ifname: str
    upstream_address: str
    network: str  # the /30 of the link
    route_table: int  # policy table: replies from this link's address leave by this link


@dataclass(frozen=True, slots=True)
class AgentPathPlan:
    """One WAN path as the agent box measures it: from `source`, out by `link`, to `target`."""

    link: str
    source: str  # the box's address the router policy-routes by this link
    target: str  # the link's upstream address (the far end of the link)


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """A front-office device on the commune LAN (an address in the devices' namespace)."""

    name: str
    kind: str
    address: str


@dataclass(frozen=True, slots=True)
class AgentBoxPlan:
    """The commune's agent box and LAN: a bridge in the router, the box and the devices on it."""

    namespace: str  # the box: `netwatch agent` runs here (`ip netns exec`)
    ifname: str  # the box's LAN interface
    router_ifname: str  # the router's bridge port toward the box
    bridge: str  # the router's LAN bridge, holding the LAN gateway address
    lan_gateway: str
    paths: tuple[AgentPathPlan, ...]
    centre_address: str  # where the box reaches the centre (the lab's root side, P.0.1)
    device_namespace: str
    device_ifname: str
    device_router_ifname: str
    devices: tuple[DevicePlan, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        """The box's addresses, one per path."""
        return tuple(p.source for p in self.paths)

    def path(self, link_id: str) -> AgentPathPlan | None:
        """The path of this link, or None."""
        return next((p for p in self.paths if p.link == link_id), None)


@dataclass(frozen=True, slots=True)
class CommunePlan:
    """A commune: its router namespace, snmpd and WAN links."""

    code: int
    name: str
    province_code: int
    province_name: str
    namespace: str
    address: str  # router management address (link 1)
    lan: str  # the commune LAN prefix, routed to the router
    sink_address: str  # address in the LAN the load generator sends to
    snmp_credential: str
    links: tuple[LinkPlan, ...]
    box: AgentBoxPlan | None = None  # None only in plans saved before the agent box existed

    def link(self, link_id: str) -> LinkPlan | None:
        """The link with this id, or None."""
        return next((lk for lk in self.links if lk.id == link_id), None)


@dataclass(frozen=True, slots=True)
class PortalPlan:
    """The national-portal stand-in and the lab's DNS, in one namespace."""

    namespace: str
    hostname: str
    address: str
    port: int
    dns_address: str
    dns_zone: str
    ifname: str
    core_ifname: str
    core_address: str
    network: str

    @property
    def url(self) -> str:
        """The portal URL, by DNS name."""
        return f"https://{self.hostname}/"


@dataclass(frozen=True, slots=True)
class LabPlan:
    """Everything a lab consists of; pure data, built by `build_plan`."""

    index: int
    prefix: str
    ns_prefix: str  # every namespace and root-side interface name starts with it
    root_ifname: str
    root_address: str
    core_namespace: str
    core_address: str
    core_root_ifname: str
    monitor_block: str  # the root side's block, routed back by upstream nodes
    isps: tuple[IspPlan, ...]
    upstreams: tuple[UpstreamPlan, ...]
    communes: tuple[CommunePlan, ...]
    portal: PortalPlan

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of the lab, the core first."""
        names = [self.core_namespace, self.portal.namespace]
        names += [u.namespace for u in self.upstreams]
        names += [c.namespace for c in self.communes]
        for commune in self.communes:
            if commune.box is not None:
                names += [commune.box.namespace, commune.box.device_namespace]
        return names

    def commune(self, code: int) -> CommunePlan | None:
        """The commune with this official code, or None."""
        return next((c for c in self.communes if c.code == code), None)

    def upstream(self, upstream_id: str) -> UpstreamPlan | None:
        """The upstream node with this id, or None."""
        return next((u for u in self.upstreams if u.id == upstream_id), None)

    def upstream_links(self, upstream_id: str) -> Iterator[tuple[CommunePlan, LinkPlan]]:
        """Every commune link attached to this upstream node."""
        for commune in self.communes:
            for link in commune.links:
                if link.upstream == upstream_id:
                    yield commune, link

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the inverse of `plan_from_json`)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WardInfo:
    """A commune picked from vietnam-provinces."""

    code: int
    name: str
    province_code: int
    province_name: str


def lab_prefix(index: int) -> ipaddress.IPv4Network:
    """The /16 of lab `index`."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"lab index must be between 0 and {MAX_INDEX}, not {index}")
    return ipaddress.IPv4Network(f"10.{88 + index}.0.0/16")


def ns_prefix(index: int) -> str:
    """Prefix of every namespace and root-side interface name of lab `index`."""
    return f"nwl{index}-"


def select_communes(count: int) -> list[WardInfo]:
    """The first `count` lab communes: the four demo ones, then a deterministic spread."""
    if not 1 <= count <= MAX_COMMUNES:
        raise ValueError(f"a lab has 1 to {MAX_COMMUNES} communes, not {count}")
    wards = sorted(Ward.iter_all(), key=lambda w: int(w.code.value))
    by_code = {int(w.code.value): w for w in wards}
    order = [by_code[c] for c in DEFAULT_COMMUNE_CODES]
    chosen = set(DEFAULT_COMMUNE_CODES)
    position = 0
    while len(order) < count:
        position = (position + _WARD_STRIDE) % len(wards)
        ward = wards[position]
        if int(ward.code.value) not in chosen:
            chosen.add(int(ward.code.value))
            order.append(ward)
    result: list[WardInfo] = []
    for ward in order[:count]:
        province_code = int(ward.province_code.value)
        province = Province.from_code(ProvinceCode(province_code))
        result.append(WardInfo(int(ward.code.value), ward.name, province_code, province.name))
    return result


def build_plan(index: int, communes: int) -> LabPlan:
    """The plan of lab `index` with `communes` communes."""
    net = lab_prefix(index)
    base = str(net.network_address).rsplit(".", 2)[0]  # "10.89"
    prefix = ns_prefix(index)

    def addr(octet3: int, octet4: int) -> str:
        return f"{base}.{octet3}.{octet4}"

    isps = (
        IspPlan("vnpt", "VNPT (lab)", "vnpt.example.invalid"),
        IspPlan("viettel", "Viettel (lab)", "viettel.example.invalid"),
    )
    upstream_specs = (
        ("pop-vnpt-1", "POP VNPT số 1", "vnpt"),
        ("pop-vnpt-2", "POP VNPT số 2", "vnpt"),
        ("pop-viettel-1", "POP Viettel số 1", "viettel"),
    )
    upstreams = tuple(
        UpstreamPlan(
            id=uid,
            name=name,
            isp=isp,
            namespace=f"{prefix}{uid}",
            address=addr(i, 1),
            ifname="core",
            core_ifname=f"pop{i}",
            core_address=addr(i, 2),
        )
        for i, (uid, name, isp) in enumerate(upstream_specs, start=1)
    )
    vnpt_pops = [u for u in upstreams if u.isp == "vnpt"]
    viettel_pops = [u for u in upstreams if u.isp == "viettel"]

    def wan_link(
        ward: WardInfo,
        octet: int,
        number: int,
        upstream: UpstreamPlan,
        *,
        link_id: str,
        isp: str,
        path: str,
        circuit_prefix: str,
    ) -> LinkPlan:
        block = 4 * (number - 1)  # link n is the n-th /30 of the commune's third octet
        return LinkPlan(
            id=link_id,
            number=number,
            isp=isp,
            path=path,
            upstream=upstream.id,
            bandwidth_mbps=LINK1_MBPS if number == 1 else LINK2_MBPS,
            circuit=f"{circuit_prefix}-{ward.code:05d}",
            router_ifname=f"wan{number}",
            router_address=addr(octet, block + 1),
            upstream_ifname=f"c{ward.code}w{number}",
            upstream_address=addr(octet, block + 2),
            network=f"{addr(octet, block)}/30",
            route_table=100 + number,
        )

    commune_plans: list[CommunePlan] = []
    for j, ward in enumerate(select_communes(communes)):
        octet = FIRST_COMMUNE_OCTET + j
        links = [
            wan_link(
                ward, octet, 1, vnpt_pops[j % len(vnpt_pops)],
                link_id="vnpt-tslcd", isp="vnpt", path="tslcd", circuit_prefix="VNPT-TSLCD",
            )
        ]  # fmt: skip
        # Every other commune is dual-homed: a second link over another ISP's internet service.
        if j % 2 == 0:
            links.append(
                wan_link(
                    ward, octet, 2, viettel_pops[(j // 2) % len(viettel_pops)],
                    link_id="viettel-internet", isp="viettel", path="internet",
                    circuit_prefix="VTL-INET",
                )
            )  # fmt: skip
        box = AgentBoxPlan(
            namespace=f"{prefix}a{ward.code}",
            ifname="lan",
            router_ifname="lanbox",
            bridge="lan",
            lan_gateway=addr(octet, LAN_GATEWAY_HOST),
            paths=tuple(
                AgentPathPlan(
                    link=lk.id,
                    source=addr(octet, BOX_FIRST_HOST + lk.number - 1),
                    target=lk.upstream_address,
                )
                for lk in links
            ),
            centre_address=addr(0, 1),
            device_namespace=f"{prefix}d{ward.code}",
            device_ifname="lan",
            device_router_ifname="landev",
            devices=tuple(
                DevicePlan(name, kind, addr(octet, DEVICE_FIRST_HOST + n))
                for n, (name, kind) in enumerate(LAB_DEVICES)
            ),
        )
        commune_plans.append(
            CommunePlan(
                code=ward.code,
                name=ward.name,
                province_code=ward.province_code,
                province_name=ward.province_name,
                namespace=f"{prefix}r{ward.code}",
                address=links[0].router_address,
                lan=f"{addr(octet, 128)}/25",
                sink_address=addr(octet, LAN_SINK_HOST),
                snmp_credential="lab-v2c" if j % 2 == 0 else "lab-v3",
                links=tuple(links),
                box=box,
            )
        )

    portal = PortalPlan(
        namespace=f"{prefix}portal",
        hostname=PORTAL_HOSTNAME,
        address=addr(PORTAL_OCTET, 10),
        port=443,
        dns_address=addr(PORTAL_OCTET, 53),
        dns_zone=DNS_ZONE,
        ifname="core",
        core_ifname="portal",
        core_address=addr(PORTAL_OCTET, 1),
        network=f"{addr(PORTAL_OCTET, 0)}/24",
    )
    return LabPlan(
        index=index,
        prefix=str(net),
        ns_prefix=prefix,
        root_ifname=f"{prefix}lab",
        root_address=addr(0, 1),
        core_namespace=f"{prefix}core",
        core_address=addr(0, 2),
        core_root_ifname="mon",
        monitor_block=f"{addr(0, 0)}/24",
        isps=isps,
        upstreams=upstreams,
        communes=tuple(commune_plans),
        portal=portal,
    )


def plan_from_json(data: Mapping[str, Any]) -> LabPlan:
    """Rebuild a plan written by `LabPlan.to_json`."""
    fields = dict(data)
    fields["isps"] = tuple(IspPlan(**i) for i in data["isps"])
    fields["upstreams"] = tuple(UpstreamPlan(**u) for u in data["upstreams"])
    communes = []
    for c in data["communes"]:
        cf = dict(c)
        cf["links"] = tuple(LinkPlan(**lk) for lk in c["links"])
        if c.get("box") is not None:
            bf = dict(c["box"])
            bf["paths"] = tuple(AgentPathPlan(**p) for p in bf["paths"])
            bf["devices"] = tuple(DevicePlan(**d) for d in bf["devices"])
            cf["box"] = AgentBoxPlan(**bf)
        communes.append(CommunePlan(**cf))
    fields["communes"] = tuple(communes)
    fields["portal"] = PortalPlan(**data["portal"])
    return LabPlan(**fields)
