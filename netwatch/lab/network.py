"""The iproute2 commands that turn a lab plan into namespaces, veth pairs and routes.

Every function returns `ip -batch` lines; `replace` verbs keep them idempotent so restoring a
fault can simply run them again.
"""

from __future__ import annotations

from .topology import LAN_PREFIXLEN, AgentBoxPlan, CommunePlan, LabPlan, LinkPlan, UpstreamPlan

BLACKHOLE_METRIC = 4000


def blackhole_line(plan: LabPlan, table: int | None = None) -> str:
    """The lab prefix into a blackhole behind every real route: nothing ever leaks out."""
    where = "" if table is None else f" table {table}"
    return f"route replace blackhole {plan.prefix} metric {BLACKHOLE_METRIC}{where}"


def sysctls(plan: LabPlan) -> dict[str, dict[str, str]]:
    """Per-namespace sysctls: forwarding in routers, no ICMP rate limit, no IPv6 chatter."""
    common = {
        # Honest loss figures: the kernel must never suppress an ICMP reply or error.
        "net/ipv4/icmp_ratelimit": "0",
        "net/ipv4/icmp_msgs_per_sec": "100000",
        "net/ipv4/icmp_msgs_burst": "100000",
        "net/ipv6/conf/all/disable_ipv6": "1",
        "net/ipv6/conf/default/disable_ipv6": "1",
        "net/ipv4/conf/all/rp_filter": "0",
        "net/ipv4/conf/default/rp_filter": "0",
        "net/ipv4/conf/all/send_redirects": "0",
        "net/ipv4/conf/default/send_redirects": "0",
    }
    routing = {**common, "net/ipv4/ip_forward": "1"}
    settings: dict[str, dict[str, str]] = {
        plan.core_namespace: routing,
        plan.portal.namespace: common,
    }
    for upstream in plan.upstreams:
        settings[upstream.namespace] = routing
    for commune in plan.communes:
        settings[commune.namespace] = routing
        if commune.box is not None:
            settings[commune.box.namespace] = common
            settings[commune.box.device_namespace] = common
    return settings


def create_lines(plan: LabPlan) -> list[str]:
    """Root `ip -batch` lines creating every veth pair, each end directly in its namespace."""
    lines = [
        f"link add {plan.root_ifname} type veth peer name {plan.core_root_ifname} "
        f"netns {plan.core_namespace}",
        f"link add {plan.portal.core_ifname} netns {plan.core_namespace} type veth "
        f"peer name {plan.portal.ifname} netns {plan.portal.namespace}",
    ]
    for upstream in plan.upstreams:
        lines.append(upstream_veth_line(plan, upstream))
    for commune in plan.communes:
        for link in commune.links:
            lines.append(link_veth_line(plan, commune, link))
        if commune.box is not None:
            lines += lan_create_lines(commune, commune.box)
    return lines


def lan_create_lines(commune: CommunePlan, box: AgentBoxPlan) -> list[str]:
    """Root batch lines: the router's LAN bridge, and veths to the agent box and the devices."""
    return [
        f"link add {box.bridge} netns {commune.namespace} type bridge",
        f"link add {box.router_ifname} netns {commune.namespace} type veth "
        f"peer name {box.ifname} netns {box.namespace}",
        f"link add {box.device_router_ifname} netns {commune.namespace} type veth "
        f"peer name {box.device_ifname} netns {box.device_namespace}",
    ]


def upstream_veth_line(plan: LabPlan, upstream: UpstreamPlan) -> str:
    """The root batch line creating the core ↔ upstream veth."""
    return (
        f"link add {upstream.core_ifname} netns {plan.core_namespace} type veth "
        f"peer name {upstream.ifname} netns {upstream.namespace}"
    )


def link_veth_line(
    plan: LabPlan, commune: CommunePlan, link: LinkPlan, router_ifindex: int | None = None
) -> str:
    """The root batch line creating a commune WAN veth (upstream end ↔ router end).

    `router_ifindex` recreates the router end with its old ifIndex, as routers that keep
    ifIndex persistent across reboots do.
    """
    upstream = plan.upstream(link.upstream)
    assert upstream is not None
    index = f" index {router_ifindex}" if router_ifindex else ""
    # The router end comes first: iproute2 honours `index` on the primary end only.
    return (
        f"link add {link.router_ifname} netns {commune.namespace}{index} type veth "
        f"peer name {link.upstream_ifname} netns {upstream.namespace}"
    )


def root_lines(plan: LabPlan) -> list[str]:
    """Root namespace: the monitor side. The lab prefix goes to the core, else to a blackhole."""
    return [
        f"addr replace {plan.root_address}/30 dev {plan.root_ifname}",
        f"link set {plan.root_ifname} up",
        f"route replace {plan.prefix} via {plan.core_address} dev {plan.root_ifname}",
        blackhole_line(plan),
    ]


def core_lines(plan: LabPlan) -> list[str]:
    """Core router: links to the monitor, the upstream nodes and the portal; commune routes."""
    lines = [
        "link set lo up",
        f"addr replace {plan.core_address}/30 dev {plan.core_root_ifname}",
        f"link set {plan.core_root_ifname} up",
        f"addr replace {plan.portal.core_address}/24 dev {plan.portal.core_ifname}",
        f"link set {plan.portal.core_ifname} up",
        blackhole_line(plan),
    ]
    for upstream in plan.upstreams:
        lines += core_upstream_lines(plan, upstream)
    return lines


def core_upstream_lines(plan: LabPlan, upstream: UpstreamPlan) -> list[str]:
    """Core side of one upstream node: the link and the routes to its communes."""
    lines = [
        f"addr replace {upstream.core_address}/30 dev {upstream.core_ifname}",
        f"link set {upstream.core_ifname} up",
    ]
    for commune, link in plan.upstream_links(upstream.id):
        lines.append(f"route replace {link.network} via {upstream.address}")
        if link.number == 1:
            lines.append(f"route replace {commune.lan} via {upstream.address}")
        path = commune.box.path(link.id) if commune.box is not None else None
        if path is not None:
            # The agent's source for this path comes back by the same link (more specific
            # than the LAN route): with link 1 cut, path 2 still reaches the centre.
            lines.append(f"route replace {path.source}/32 via {upstream.address}")
    return lines


def upstream_lines(plan: LabPlan, upstream: UpstreamPlan) -> list[str]:
    """An upstream node: its uplink, its commune links, and no route back into the lab.

    Only the monitor block and the portal are routed to the core; anything else falls into the
    blackhole, so a commune link taken down never loops back through the core.
    """
    lines = [
        "link set lo up",
        f"addr replace {upstream.address}/30 dev {upstream.ifname}",
        f"link set {upstream.ifname} up",
        f"route replace {plan.monitor_block} via {upstream.core_address}",
        f"route replace {plan.portal.network} via {upstream.core_address}",
        blackhole_line(plan),
    ]
    for commune, link in plan.upstream_links(upstream.id):
        lines += upstream_link_lines(commune, link)
    return lines


def upstream_link_lines(commune: CommunePlan, link: LinkPlan) -> list[str]:
    """Upstream end of one commune link (and the commune LAN behind it)."""
    return [
        f"addr replace {link.upstream_address}/30 dev {link.upstream_ifname}",
        f"link set {link.upstream_ifname} up",
        f"route replace {commune.lan} via {link.router_address} dev {link.upstream_ifname}",
    ]


def router_lines(plan: LabPlan, commune: CommunePlan, *, rules: bool = True) -> list[str]:
    """A commune router: WAN links, routes, and source policy so each link answers for itself."""
    lines = [
        "link set lo up",
        blackhole_line(plan),
        # The load generator's sink: counted on the WAN and dropped here, never on the LAN.
        f"route replace blackhole {commune.sink_address}/32",
    ]
    if commune.box is None:  # a plan saved before the LAN existed: the whole LAN is the sink
        lines.append(f"route replace blackhole {commune.lan}")
    for link in commune.links:
        lines += router_link_lines(plan, link, rules=rules)
    return lines


def router_link_lines(plan: LabPlan, link: LinkPlan, *, rules: bool = True) -> list[str]:
    """Router end of one WAN link; `rules=False` when the policy rule already exists."""
    lines = [
        f"addr replace {link.router_address}/30 dev {link.router_ifname}",
        f"link set {link.router_ifname} up",
        f"route replace {plan.prefix} via {link.upstream_address} dev {link.router_ifname} "
        f"table {link.route_table}",
        blackhole_line(plan, link.route_table),
    ]
    if link.number == 1:
        lines.append(
            f"route replace {plan.prefix} via {link.upstream_address} dev {link.router_ifname}"
        )
    if rules:
        lines.append(f"rule add from {link.router_address} lookup {link.route_table} pref 1000")
    return lines


def lan_lines(
    plan: LabPlan, commune: CommunePlan, box: AgentBoxPlan, *, rules: bool = True
) -> list[str]:
    """The router's LAN: bridge with the gateway address, ports up, and one policy rule per
    agent path so each box source leaves by its own link (`rules=False`: they exist)."""
    lines = [
        f"link set {box.router_ifname} master {box.bridge}",
        f"link set {box.device_router_ifname} master {box.bridge}",
        f"link set {box.router_ifname} up",
        f"link set {box.device_router_ifname} up",
        f"addr replace {box.lan_gateway}/{LAN_PREFIXLEN} dev {box.bridge}",
        f"link set {box.bridge} up",
    ]
    if rules:
        for path in box.paths:
            link = commune.link(path.link)
            assert link is not None
            lines.append(f"rule add from {path.source} lookup {link.route_table} pref 900")
    return lines


def box_lines(plan: LabPlan, box: AgentBoxPlan) -> list[str]:
    """The agent box: one address per path on its LAN interface, the lab via the router."""
    lines = ["link set lo up"]
    lines += [f"addr replace {p.source}/{LAN_PREFIXLEN} dev {box.ifname}" for p in box.paths]
    lines += [
        f"link set {box.ifname} up",
        f"route replace {plan.prefix} via {box.lan_gateway} dev {box.ifname}",
        blackhole_line(plan),
    ]
    return lines


def device_lines(plan: LabPlan, box: AgentBoxPlan) -> list[str]:
    """The front-office devices: their addresses on one LAN interface, the lab via the router."""
    lines = ["link set lo up"]
    lines += [
        f"addr replace {d.address}/{LAN_PREFIXLEN} dev {box.device_ifname}" for d in box.devices
    ]
    lines += [
        f"link set {box.device_ifname} up",
        f"route replace {plan.prefix} via {box.lan_gateway} dev {box.device_ifname}",
        blackhole_line(plan),
    ]
    return lines


def portal_lines(plan: LabPlan) -> list[str]:
    """Portal namespace: the HTTPS and DNS addresses, routed back through the core."""
    portal = plan.portal
    return [
        "link set lo up",
        f"addr replace {portal.address}/24 dev {portal.ifname}",
        f"addr replace {portal.dns_address}/24 dev {portal.ifname}",
        f"link set {portal.ifname} up",
        f"route replace {plan.prefix} via {portal.core_address}",
    ]


def namespace_batches(plan: LabPlan) -> dict[str, list[str]]:
    """Per-namespace batches for the whole lab."""
    batches: dict[str, list[str]] = {
        plan.core_namespace: core_lines(plan),
        plan.portal.namespace: portal_lines(plan),
    }
    for upstream in plan.upstreams:
        batches[upstream.namespace] = upstream_lines(plan, upstream)
    for commune in plan.communes:
        batches[commune.namespace] = router_lines(plan, commune)
        if commune.box is not None:
            batches[commune.namespace] += lan_lines(plan, commune, commune.box)
            batches[commune.box.namespace] = box_lines(plan, commune.box)
            batches[commune.box.device_namespace] = device_lines(plan, commune.box)
    return batches
