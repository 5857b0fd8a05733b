"""An AnyIP lab namespace for benchmarks: every address of a prefix answers ping.

The namespace is reached over a veth pair from the root namespace. Inside it,
``ip route add local <upper half of the network> dev lo`` makes each address of that half a
local address, so one namespace stands in for thousands of hosts. The root namespace routes
the whole network into the veth and holds a blackhole for it (metric 4000), so a lab link that
goes down never sends probes out by the machine's default route. The namespace has no default
route.
"""

from __future__ import annotations

import ipaddress
import itertools
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AnyIpLab:
    """Where an AnyIP lab lives: its namespace, its veth and its addresses."""

    namespace: str
    root_if: str
    ns_if: str
    network: ipaddress.IPv4Network
    root_address: str
    ns_address: str
    anyip: ipaddress.IPv4Network

    def targets(self, count: int) -> list[str]:
        """``count`` distinct addresses that answer ping (from the AnyIP half)."""
        hosts = itertools.islice(self.anyip.hosts(), count)
        found = [str(a) for a in hosts]
        if len(found) < count:
            msg = f"{self.anyip} has fewer than {count} addresses"
            raise ValueError(msg)
        return found


def _run(*args: str, check: bool = True) -> None:
    """Run one iproute2/sysctl command, quietly."""
    subprocess.run(args, check=check, capture_output=True, text=True)


def _lab_for(namespace: str, network: str) -> AnyIpLab:
    """The addresses a lab on ``network`` uses (first /30 for the veth, upper half AnyIP)."""
    net = ipaddress.IPv4Network(network)
    if net.prefixlen > 22:
        msg = f"{network}: need at least a /22"
        raise ValueError(msg)
    link = next(net.subnets(new_prefix=30))
    root_address, ns_address = (str(a) for a in itertools.islice(link.hosts(), 2))
    return AnyIpLab(
        namespace=namespace,
        root_if=f"{namespace}-r"[:15],
        ns_if=f"{namespace}-n"[:15],
        network=net,
        root_address=root_address,
        ns_address=ns_address,
        anyip=list(net.subnets(prefixlen_diff=1))[1],
    )


def teardown(lab: AnyIpLab) -> None:
    """Remove everything ``build`` may have made; safe to call on a half-built lab."""
    _run("ip", "route", "del", str(lab.network), "via", lab.ns_address, check=False)
    _run("ip", "route", "del", "blackhole", str(lab.network), "metric", "4000", check=False)
    _run("ip", "link", "del", lab.root_if, check=False)
    _run("ip", "netns", "del", lab.namespace, check=False)


@contextmanager
def anyip_lab(namespace: str = "nwi-b", network: str = "10.91.0.0/16") -> Iterator[AnyIpLab]:
    """Build the lab, yield it, and always tear it down."""
    lab = _lab_for(namespace, network)
    teardown(lab)  # leftovers of a run that was killed
    try:
        ns = lab.namespace
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", lab.root_if, "type", "veth", "peer", "name", lab.ns_if)
        _run("ip", "link", "set", lab.ns_if, "netns", ns)
        _run("ip", "addr", "add", f"{lab.root_address}/30", "dev", lab.root_if)
        _run("ip", "link", "set", lab.root_if, "up")
        _run("ip", "-n", ns, "addr", "add", f"{lab.ns_address}/30", "dev", lab.ns_if)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "link", "set", lab.ns_if, "up")
        _run("ip", "-n", ns, "route", "add", "local", str(lab.anyip), "dev", "lo")
        _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=10000000")
        _run("ip", "route", "add", "blackhole", str(lab.network), "metric", "4000")
        _run("ip", "route", "add", str(lab.network), "via", lab.ns_address, "dev", lab.root_if)
        yield lab
    finally:
        teardown(lab)
