"""Real faults on the lab network: links down, random loss, congestion, reboots, portal trouble.

Each function is idempotent and leaves the network as the matching restore expects it. They act
on the side of a link nearer the monitor, so the monitor-side router's route disappears and its
blackhole takes over: a probe to a broken commune is silently dropped inside the lab.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import network, snmpd
from .netns import (
    LabError,
    ip_batch,
    kill_pids,
    link_indexes,
    netns_exec,
    pid_alive,
    pids_in_namespaces,
    run,
    spawn_detached,
)
from .portal import PortalControl, PortalMode, read_control, write_control
from .topology import CommunePlan, LabPlan, LinkPlan, UpstreamPlan

if TYPE_CHECKING:
    from .lab import LabPaths  # lab imports this module: the type only, no import cycle

# Queue bound of the shaped link: under saturation a probe waits about this long.
TBF_LATENCY_MS = 100
TBF_BURST_BYTES = 16_000
# Offered load relative to the contracted bandwidth: enough to keep the queue full.
LOAD_FACTOR = 1.3
PORTAL_DOWN_TABLE = "nwl_portal_down"


class FaultKind(enum.StrEnum):
    """A fault that stays in place until restored."""

    LINK_DOWN = "link-down"
    LOSS = "loss"
    CONGEST = "congest"
    UPSTREAM_DOWN = "upstream-down"
    PORTAL_SLOW = "portal-slow"
    PORTAL_ERROR = "portal-error"
    PORTAL_DOWN = "portal-down"
    POWER_LOSS = "power-loss"
    PATH_SLOW = "path-slow"  # the portal slow for one commune's agent path(s) only
    MONITOR_CUT = "monitor-cut"  # NetWatch's own line: the monitor side cut off from the core


@dataclass(frozen=True, slots=True)
class ActiveFault:
    """A fault currently applied: kind, target (commune code, node id or 'portal'), link."""

    kind: FaultKind
    target: str
    link: str | None = None
    value: float | None = None

    def describe(self) -> str:
        """Plain text for people."""
        where = self.target if self.link is None else f"{self.target}/{self.link}"
        if self.kind is FaultKind.LOSS:
            return f"{where}: loss {self.value:g} %"
        if self.kind is FaultKind.PORTAL_SLOW:
            return f"{where}: slow {self.value:g} s"
        if self.kind is FaultKind.PATH_SLOW:
            return f"{where}: portal slow {self.value:g} s over this path"
        return f"{where}: {self.kind.value}"


def _loss_table(link: LinkPlan) -> str:
    return f"nwl_loss_{link.router_ifname}"


def load_key(commune: CommunePlan, link: LinkPlan) -> str:
    """Key of a link's load generator in the state's pid map."""
    return f"load:{commune.code}:{link.id}"


def link_down(plan: LabPlan, link: LinkPlan) -> None:
    """Take a commune's WAN link down at the upstream node (the router sees no carrier)."""
    upstream = _upstream(plan, link)
    run(["ip", "-n", upstream.namespace, "link", "set", link.upstream_ifname, "down"])


def _nft_table(namespace: str, family: str, table: str, body: str | None) -> None:
    """Replace an nftables table with `body` (chains), or remove it when `body` is None."""
    # Declaring then deleting the table first makes the whole file an atomic replace, and a
    # removal of a table that does not exist a no-op.
    ruleset = f"table {family} {table}\ndelete table {family} {table}\n"
    if body is not None:
        ruleset += f"table {family} {table} {{\n{body}}}\n"
    run(netns_exec(namespace, ["nft", "-f", "-"]), input_text=ruleset, check=body is not None)


def link_loss(commune: CommunePlan, link: LinkPlan, percent: float) -> None:
    """Drop `percent` % of the packets the router receives on this link (nftables numgen)."""
    # Per mille, so fractional percentages work; numgen's range excludes the modulus itself.
    per_mille = round(percent * 10)
    if per_mille >= 1000:
        rule = "drop"
    elif per_mille <= 0:
        rule = "counter"
    else:
        rule = f"numgen random mod 1000 < {per_mille} drop"
    body = (
        f"  chain ingress {{\n"
        f'    type filter hook ingress device "{link.router_ifname}" priority 0; policy accept;\n'
        f"    {rule}\n"
        f"  }}\n"
    )
    _nft_table(commune.namespace, "netdev", _loss_table(link), body)


def _shape(namespace: str, ifname: str, rate_mbps: int) -> None:
    run(
        [
            "tc", "-n", namespace, "qdisc", "replace", "dev", ifname, "root", "tbf",
            "rate", f"{rate_mbps}mbit", "burst", str(TBF_BURST_BYTES),
            "latency", f"{TBF_LATENCY_MS}ms",
        ]
    )  # fmt: skip


def link_congest(
    plan: LabPlan,
    commune: CommunePlan,
    link: LinkPlan,
    *,
    running_pid: int | None,
    env: Mapping[str, str],
    paths: LabPaths,
) -> int:
    """Shape the link at its contracted rate both ways and fill it downstream; return load pid."""
    upstream = _upstream(plan, link)
    _shape(upstream.namespace, link.upstream_ifname, link.bandwidth_mbps)
    _shape(commune.namespace, link.router_ifname, link.bandwidth_mbps)
    if running_pid is not None and pid_alive(running_pid):
        return running_pid
    name = f"load-{commune.code}-{link.number}"
    argv = [
        sys.executable, "-m", "netwatch.lab.load",
        "--dest", commune.sink_address,
        "--source", link.upstream_address,
        "--rate-mbps", f"{link.bandwidth_mbps * LOAD_FACTOR:g}",
    ]  # fmt: skip
    return spawn_detached(
        upstream.namespace,
        argv,
        log_path=paths.logs / f"{name}.log",
        pid_path=paths.run_dir / f"{name}.pid",
        env=env,
        cwd=paths.state_dir,
    )


def link_restore(plan: LabPlan, commune: CommunePlan, link: LinkPlan, load_pid: int | None) -> None:
    """Undo every fault on one link: load, shaping, loss, and bring it up with its routes."""
    if load_pid is not None:
        kill_pids([load_pid])
    upstream = _upstream(plan, link)
    _nft_table(commune.namespace, "netdev", _loss_table(link), None)
    for namespace, ifname in (
        (upstream.namespace, link.upstream_ifname),
        (commune.namespace, link.router_ifname),
    ):
        run(["tc", "-n", namespace, "qdisc", "del", "dev", ifname, "root"], check=False)
    if not _link_exists(commune.namespace, link.router_ifname):
        # An interrupted reboot left the link deleted: build it again.
        ip_batch([network.link_veth_line(plan, commune, link)])
        ip_batch(network.router_link_lines(plan, link, rules=False), commune.namespace)
    ip_batch(network.upstream_link_lines(commune, link), upstream.namespace)


def reboot(
    plan: LabPlan,
    commune: CommunePlan,
    *,
    files: snmpd.SnmpdFiles,
    downtime_s: float,
    env: Mapping[str, str],
) -> None:
    """Reboot a router: snmpd stops, its WAN links vanish for `downtime_s`, then all comes back.

    The veth pairs are recreated, so interface counters restart from zero and ifIndex changes,
    and snmpd restarts, so sysUpTime restarts and engineBoots goes up, as on a real reboot.
    """
    indexes = link_indexes(commune.namespace)
    snmpd.stop(files)
    ip_batch(
        [f"link del {link.router_ifname}" for link in commune.links], commune.namespace, force=True
    )
    time.sleep(max(0.0, downtime_s))
    ip_batch(
        [
            network.link_veth_line(plan, commune, link, indexes.get(link.router_ifname))
            for link in commune.links
        ]
    )
    ip_batch(network.router_lines(plan, commune, rules=False), commune.namespace)
    for link in commune.links:
        ip_batch(network.upstream_link_lines(commune, link), _upstream(plan, link).namespace)
    snmpd.start_many([(commune.namespace, files)], env)


def upstream_down(plan: LabPlan, upstream: UpstreamPlan) -> None:
    """Cut an upstream node off at the core: the node and every commune behind it go dark."""
    run(["ip", "-n", plan.core_namespace, "link", "set", upstream.core_ifname, "down"])


def monitor_cut(plan: LabPlan) -> None:
    """Cut NetWatch's own line: the root side's link to the core goes down, every lab address
    falls into the blackhole (references, nodes, lines and portal alike)."""
    run(["ip", "link", "set", plan.root_ifname, "down"])


def monitor_restore(plan: LabPlan) -> None:
    """The monitor side's link up again, with its route to the lab prefix."""
    ip_batch(network.root_lines(plan))


def upstream_restore(plan: LabPlan, upstream: UpstreamPlan) -> None:
    """Bring the node's core link back up and re-add the core's routes through it."""
    ip_batch(network.core_upstream_lines(plan, upstream), plan.core_namespace)


def portal_control(control_path: Path, control: PortalControl) -> None:
    """Set how the portal answers (healthy, slow, or HTTP 503); per-source delays are kept."""
    kept = read_control(control_path).source_delays
    write_control(control_path, dataclasses.replace(control, source_delays=kept))


def portal_source_delays(control_path: Path, delays: Mapping[str, float | None]) -> None:
    """Delay the portal's answers to these client addresses (None: no longer delayed)."""
    current = read_control(control_path)
    merged = dict(current.source_delays)
    for address, delay in delays.items():
        if delay is None:
            merged.pop(address, None)
        else:
            merged[address] = delay
    write_control(
        control_path, dataclasses.replace(current, source_delays=tuple(sorted(merged.items())))
    )


def _site_namespaces(commune: CommunePlan) -> list[str]:
    """The namespaces that lose power with the commune centre: router, agent box, devices."""
    names = [commune.namespace]
    if commune.box is not None:
        names += [commune.box.namespace, commune.box.device_namespace]
    return names


def power_loss(plan: LabPlan, commune: CommunePlan) -> None:
    """The commune centre loses power: links dark, router, box and devices down and frozen.

    Every WAN link goes down at the upstream node (no carrier, as when the router is off), every
    interface of the router, the box and the devices goes down, and every process in their
    namespaces (snmpd, the agent, its nats-server) is stopped with SIGSTOP: nothing answers,
    nothing measures, nothing is sent. `power_restore` brings it all back.
    """
    for link in commune.links:
        link_down(plan, link)
    interfaces = [lk.router_ifname for lk in commune.links]
    if commune.box is not None:
        box = commune.box
        interfaces += [box.router_ifname, box.device_router_ifname, box.bridge]
        ip_batch([f"link set {box.ifname} down"], box.namespace, force=True)
        ip_batch([f"link set {box.device_ifname} down"], box.device_namespace, force=True)
    ip_batch([f"link set {name} down" for name in interfaces], commune.namespace, force=True)
    _signal_all(pids_in_namespaces(_site_namespaces(commune)), signal.SIGSTOP)


def power_restore(plan: LabPlan, commune: CommunePlan) -> None:
    """Power back: processes continue, the router's, box's and devices' interfaces and routes
    come back (the WAN links' upstream ends are brought up by `link_restore`)."""
    _signal_all(pids_in_namespaces(_site_namespaces(commune)), signal.SIGCONT)
    lines = network.router_lines(plan, commune, rules=False)
    box = commune.box
    if box is not None:
        lines += network.lan_lines(plan, commune, box, rules=False)
        ip_batch(network.box_lines(plan, box), box.namespace)
        ip_batch(network.device_lines(plan, box), box.device_namespace)
    ip_batch(lines, commune.namespace)


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def portal_down(plan: LabPlan) -> None:
    """Drop every packet to the portal's HTTPS port: clients time out connecting."""
    portal = plan.portal
    body = (
        f"  chain input {{\n"
        f"    type filter hook input priority 0; policy accept;\n"
        f"    ip daddr {portal.address} tcp dport {portal.port} drop\n"
        f"  }}\n"
    )
    _nft_table(portal.namespace, "inet", PORTAL_DOWN_TABLE, body)


def portal_up(plan: LabPlan, control_path: Path) -> None:
    """Portal healthy again: accept connections and answer normally."""
    _nft_table(plan.portal.namespace, "inet", PORTAL_DOWN_TABLE, None)
    write_control(control_path, PortalControl(PortalMode.OK, 0.0))


def _upstream(plan: LabPlan, link: LinkPlan) -> UpstreamPlan:
    upstream = plan.upstream(link.upstream)
    if upstream is None:
        raise LabError(f"plan names an unknown upstream node {link.upstream}")
    return upstream


def _link_exists(namespace: str, ifname: str) -> bool:
    return run(["ip", "-n", namespace, "link", "show", "dev", ifname], check=False).ok
