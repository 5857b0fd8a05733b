"""AnyIP lab for the SNMP benchmark: namespace nws-b, one snmpd answering for 10.92.0.0/20.

Root routes 10.92.0.0/16 into the namespace over the veth nws-bh/nws-bt and holds a blackhole for
it (metric 4000), so nothing meant for the lab can leave by the default route; the namespace has
no default route. Inside, `ip route add local 10.92.0.0/20 dev lo` makes all 4,096 addresses
local, and one Debian snmpd bound to 0.0.0.0:161 answers each from the address it was asked on.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NAMESPACE = "nws-b"
ROOT_IF = "nws-bh"
NS_IF = "nws-bt"
LAB_PREFIX = "10.92.0.0/16"
LINK_ROOT = "10.92.255.1/30"
LINK_NS = "10.92.255.2/30"
ANYIP = ipaddress.ip_network("10.92.0.0/20")
COMMUNITY = "nws-bench"
V3_USER = ("nwbench", "SHA", "nws-bench-auth", "AES", "nws-bench-priv")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _netns(*args: str) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACE, *args]


def netsnmp_env(workdir: Path) -> dict[str, str]:
    """Environment for net-snmp tools: no MIB loading, state in our own directory."""
    return dict(os.environ, MIBS="", MIBDIRS="/nonexistent", SNMP_PERSISTENT_DIR=str(workdir))


def router_addresses(count: int) -> list[str]:
    """count distinct router addresses, all answered by the lab's snmpd."""
    hosts = [str(a) for _, a in zip(range(count), ANYIP.hosts(), strict=False)]
    if len(hosts) < count:
        raise ValueError(f"{ANYIP} has fewer than {count} addresses")
    return hosts


@dataclass(frozen=True, slots=True)
class SnmpLab:
    """A running lab: where it keeps its files and which ifIndex values exist inside it."""

    workdir: Path
    if_indexes: tuple[int, int]  # lo and the namespace's veth, as the agent numbers them


def _down() -> None:
    _ip("route", "del", "blackhole", LAB_PREFIX, "metric", "4000", check=False)
    _ip("route", "del", LAB_PREFIX, check=False)
    _ip("link", "del", ROOT_IF, check=False)
    _ip("netns", "del", NAMESPACE, check=False)


def _snmpd_conf(workdir: Path) -> Path:
    user, auth, auth_key, priv, priv_key = V3_USER
    conf = workdir / "snmpd.conf"
    conf.write_text(
        "agentAddress udp:0.0.0.0:161\n"
        f"rocommunity {COMMUNITY} default\n"
        f'createUser {user} {auth} "{auth_key}" {priv} "{priv_key}"\n'
        f"rouser {user} authpriv\n"
        "sysName nws-bench-agent\n"
        # One agent stands in for 3,321 routers: a burst of 256 requests overflows the default
        # 208 KiB socket buffer and the drops would be charged to the poller as retries.
        "[snmp] serverRecvBuf 4194304\n"
    )
    return conf


def _wait_agent(workdir: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"snmpd exited with {proc.returncode}")
        done = subprocess.run(
            ["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.3", "-r", "0", "-On",
             str(next(ANYIP.hosts())), "1.3.6.1.2.1.1.3.0"],
            capture_output=True, env=netsnmp_env(workdir), check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("lab snmpd did not answer")


@contextlib.contextmanager
def snmp_lab() -> Iterator[SnmpLab]:
    """Build the lab and its snmpd; everything is removed on exit, also after an error."""
    if os.geteuid() != 0:
        raise SystemExit("the SNMP benchmark builds a network namespace: run it as root")
    _down()  # leftovers of an interrupted run
    workdir = Path(tempfile.mkdtemp(prefix="nws-bench-"))
    snmpd: subprocess.Popen[bytes] | None = None
    try:
        _ip("netns", "add", NAMESPACE)
        _ip("link", "add", ROOT_IF, "type", "veth", "peer", "name", NS_IF)
        _ip("link", "set", NS_IF, "netns", NAMESPACE)
        _ip("addr", "add", LINK_ROOT, "dev", ROOT_IF)
        _ip("link", "set", ROOT_IF, "up")
        _ip("-n", NAMESPACE, "addr", "add", LINK_NS, "dev", NS_IF)
        _ip("-n", NAMESPACE, "link", "set", "lo", "up")
        _ip("-n", NAMESPACE, "link", "set", NS_IF, "up")
        _ip("-n", NAMESPACE, "route", "add", "local", str(ANYIP), "dev", "lo")
        _ip("route", "add", LAB_PREFIX, "via", LINK_NS.split("/")[0], "dev", ROOT_IF)
        _ip("route", "add", "blackhole", LAB_PREFIX, "metric", "4000")
        veth_index = int(_ip("-n", NAMESPACE, "-o", "link", "show", NS_IF).stdout.split(":")[0])
        persistent = workdir / "snmpd-state"
        persistent.mkdir()
        snmpd = subprocess.Popen(
            _netns("snmpd", "-f", "-C", "-c", str(_snmpd_conf(workdir)), "-I", "-smux",
                   "-Lf", str(workdir / "snmpd.log"), f"--persistentDir={persistent}",
                   "-p", str(workdir / "snmpd.pid")),
            env=netsnmp_env(persistent), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_agent(workdir, snmpd)
        yield SnmpLab(workdir, (1, veth_index))
    finally:
        if snmpd is not None:
            snmpd.send_signal(signal.SIGTERM)
            try:
                snmpd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                snmpd.kill()
                snmpd.wait()
        _down()
        shutil.rmtree(workdir, ignore_errors=True)
