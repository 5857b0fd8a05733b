"""Lab namespaces for the ICMP probe tests (names nwi-*, 10.91.0.0/16 and fd91::/64 only).

The main lab, ``icmp_lab``: namespace ``nwi-t`` reached from the root namespace over a veth
(10.91.0.1/30 and fd91::1/64 on the root side, 10.91.0.2 and fd91::2 inside). Inside it,
AnyIP routes make every address of 10.91.128.0/17 and fd91::100:0/112 local, so one namespace
answers for thousands of targets; an nftables table rejects echoes to 10.91.250.0/24 and
fd91::100:ff00/120 with ICMP unreachable. The root namespace routes the lab prefixes into the
veth, blackholes 10.91.64.0/24 (echoes there fail at sendto) and holds blackholes for the whole
lab range (metric 4000) so that nothing ever leaves by the default route. Everything is removed
in ``finally``, also when a test fails.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from probes.icmp import IcmpPinger

REJECT_NFT = """
table inet nwi_reject {
  chain input {
    type filter hook input priority 0;
    ip daddr 10.91.250.0/24 icmp type echo-request reject with icmp type host-unreachable
    ip6 daddr fd91::100:ff00/120 icmpv6 type echo-request reject with icmpv6 type addr-unreachable
  }
}
"""


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command quietly; on failure the error names the command and its stderr."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        msg = f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
        raise RuntimeError(msg)
    return proc


@dataclass
class IcmpLab:
    """A namespace reached over a veth, with AnyIP ranges that answer ping."""

    namespace: str
    root_if: str
    ns_if: str
    root_v4: str
    ns_v4: str
    anyip_v4: ipaddress.IPv4Network
    root_v6: str | None = None
    ns_v6: str | None = None
    anyip_v6: ipaddress.IPv6Network | None = None
    undo: list[tuple[str, ...]] = field(default_factory=list)

    def targets_v4(self, count: int, *, skip: int = 0) -> list[str]:
        """``count`` answering IPv4 addresses, after the first ``skip`` of the AnyIP range."""
        return [str(a) for a in itertools.islice(self.anyip_v4.hosts(), skip, skip + count)]

    def targets_v6(self, count: int, *, skip: int = 0) -> list[str]:
        """``count`` answering IPv6 addresses, after the first ``skip`` of the AnyIP range."""
        assert self.anyip_v6 is not None
        return [str(a) for a in itertools.islice(self.anyip_v6.hosts(), skip, skip + count)]

    def ns(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace."""
        return run("ip", "netns", "exec", self.namespace, *args, check=check)

    def root(self, *args: str, undo: tuple[str, ...] | None = None) -> None:
        """Run a command in the root namespace and remember how to undo it."""
        run(*args)
        if undo is not None:
            self.undo.append(undo)

    def set_link(self, *, up: bool) -> None:
        """Take the root side of the veth down or up (a link failure and its repair)."""
        run("ip", "link", "set", self.root_if, "up" if up else "down")

    @contextmanager
    def nft(self, table: str, ruleset: str) -> Iterator[None]:
        """Load an nftables ruleset into the namespace for the duration of a block."""
        family, name = table.split()
        proc = subprocess.run(
            ["ip", "netns", "exec", self.namespace, "nft", "-f", "-"],
            input=ruleset,
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            if proc.returncode != 0:
                msg = f"nft -f failed: {proc.stderr.strip()}"
                raise RuntimeError(msg)
            yield
        finally:
            self.ns("nft", "delete", "table", family, name, check=False)


def _teardown(lab: IcmpLab) -> None:
    """Undo the root-namespace routes, then drop the veth and the namespace (with its nft)."""
    for command in reversed(lab.undo):
        run(*command, check=False)
    lab.undo.clear()
    run("ip", "link", "del", lab.root_if, check=False)
    run("ip", "netns", "del", lab.namespace, check=False)


@contextmanager
def build_lab(
    namespace: str,
    *,
    link_v4: str,
    anyip_v4: str,
    routed_v4: str,
    blackholes_v4: tuple[str, ...] = (),
    link_v6: str | None = None,
    anyip_v6: str | None = None,
) -> Iterator[IcmpLab]:
    """Build a lab namespace and always remove it; ``link_v4`` is the veth's /30."""
    link = ipaddress.IPv4Network(link_v4)
    root_v4, ns_v4 = (str(a) for a in itertools.islice(link.hosts(), 2))
    lab = IcmpLab(
        namespace=namespace,
        root_if=f"{namespace}-r",
        ns_if=f"{namespace}-n",
        root_v4=root_v4,
        ns_v4=ns_v4,
        anyip_v4=ipaddress.IPv4Network(anyip_v4),
    )
    if link_v6 is not None:
        net6 = ipaddress.IPv6Network(link_v6)
        lab.root_v6, lab.ns_v6 = (str(a) for a in itertools.islice(net6.hosts(), 2))
        lab.anyip_v6 = ipaddress.IPv6Network(anyip_v6) if anyip_v6 else None
    _teardown(lab)  # leftovers of a run that was killed
    ns = namespace
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", lab.root_if, "type", "veth", "peer", "name", lab.ns_if)
        run("ip", "link", "set", lab.ns_if, "netns", ns)
        run("ip", "addr", "add", f"{root_v4}/{link.prefixlen}", "dev", lab.root_if)
        run("ip", "-n", ns, "addr", "add", f"{ns_v4}/{link.prefixlen}", "dev", lab.ns_if)
        if link_v6 is not None:
            plen = ipaddress.IPv6Network(link_v6).prefixlen
            run("ip", "-6", "addr", "add", f"{lab.root_v6}/{plen}", "dev", lab.root_if, "nodad")
            run(
                "ip",
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                f"{lab.ns_v6}/{plen}",
                "dev",
                lab.ns_if,
                "nodad",
            )
        run("ip", "link", "set", lab.root_if, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "link", "set", lab.ns_if, "up")
        run("ip", "-n", ns, "route", "add", "local", anyip_v4, "dev", "lo")
        lab.ns("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        lab.ns("sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=1000000")
        # The safety net first: with the veth route gone, the lab prefix hits this blackhole
        # instead of the machine's default route.
        lab.root(
            "ip", "route", "add", "blackhole", routed_v4, "metric", "4000",
            undo=("ip", "route", "del", "blackhole", routed_v4, "metric", "4000"),
        )  # fmt: skip
        for prefix in blackholes_v4:
            lab.root(
                "ip", "route", "add", "blackhole", prefix,
                undo=("ip", "route", "del", "blackhole", prefix),
            )  # fmt: skip
        lab.root(
            "ip", "route", "add", routed_v4, "via", ns_v4, "dev", lab.root_if,
            undo=("ip", "route", "del", routed_v4, "via", ns_v4),
        )  # fmt: skip
        if link_v6 is not None:
            lab.ns("sysctl", "-qw", "net.ipv6.icmp.ratelimit=0")
            lab.root(
                "ip", "-6", "route", "add", "blackhole", link_v6, "metric", "4000",
                undo=("ip", "-6", "route", "del", "blackhole", link_v6, "metric", "4000"),
            )  # fmt: skip
            if anyip_v6 is not None:
                run("ip", "-n", ns, "-6", "route", "add", "local", anyip_v6, "dev", "lo")
                lab.root(
                    "ip", "-6", "route", "add", anyip_v6, "via", str(lab.ns_v6),
                    "dev", lab.root_if,
                    undo=("ip", "-6", "route", "del", anyip_v6, "via", str(lab.ns_v6)),
                )  # fmt: skip
        yield lab
    finally:
        _teardown(lab)


def _require_root() -> None:
    """Skip (not fail) where the tests cannot build namespaces or open raw sockets."""
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and raw ICMP sockets")


@pytest.fixture(scope="session")
def icmp_lab() -> Iterator[IcmpLab]:
    """The main lab namespace ``nwi-t`` (see the module docstring)."""
    _require_root()
    with (
        build_lab(
            "nwi-t",
            link_v4="10.91.0.0/30",
            anyip_v4="10.91.128.0/17",
            routed_v4="10.91.0.0/16",
            blackholes_v4=("10.91.64.0/24",),
            link_v6="fd91::/64",
            anyip_v6="fd91::100:0/112",
        ) as lab,
        lab.nft("inet nwi_reject", REJECT_NFT),
    ):
        yield lab


@pytest.fixture
def link_lab() -> Iterator[IcmpLab]:
    """A second, throwaway lab ``nwi-d`` whose link a test may take down.

    Its AnyIP /24 has its own blackhole (metric 4000), so once the link is down the echoes
    fail at sendto instead of following the main lab's /16 route.
    """
    _require_root()
    with build_lab(
        "nwi-d",
        link_v4="10.91.4.0/30",
        anyip_v4="10.91.5.0/24",
        routed_v4="10.91.5.0/24",
    ) as lab:
        yield lab


@pytest.fixture
def confirm_lab() -> Iterator[IcmpLab]:
    """A throwaway lab ``nwi-c`` for fast confirmation: 10.91.9.0/24 answers, 10.91.10.0/23 is
    routed into it and answered by nobody (its echoes are silently lost there)."""
    _require_root()
    with build_lab(
        "nwi-c",
        link_v4="10.91.8.0/30",
        anyip_v4="10.91.9.0/24",
        routed_v4="10.91.8.0/22",
    ) as lab:
        yield lab


@pytest.fixture
async def pinger() -> AsyncIterator[IcmpPinger]:
    """A raw-socket pinger at the default rate, closed after the test."""
    _require_root()
    async with await IcmpPinger.open() as opened:
        yield opened
