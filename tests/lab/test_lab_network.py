"""The lab network, checked from outside with plain tools: every fault is real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netwatch.lab import FaultProblem, Lab
from netwatch.lab.faults import TBF_LATENCY_MS
from netwatch.lab.topology import CommunePlan
from tests.waiting import wait_until

from .tools import https_get, interface_rx_bytes, ip, ping, resolve, snmpget

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
PORTAL_TEXT = "Cổng Dịch vụ công quốc gia"


def _commune(lab: Lab, *, dual: bool) -> CommunePlan:
    return next(c for c in lab.plan.communes if (len(c.links) == 2) == dual)


def _ifindex(namespace: str, ifname: str) -> int:
    proc = ip("-n", namespace, "-o", "link", "show", "dev", ifname)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split(":", 1)[0])


def _qdisc_backlog_bytes(namespace: str, ifname: str) -> int:
    """Bytes queued in the root qdisc of an interface (tc -s: "backlog 113022b 91p")."""
    shown = subprocess.run(
        ["tc", "-n", namespace, "-s", "qdisc", "show", "dev", ifname, "root"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # tc scales large sizes: "backlog 57Kb" is 57 KiB (iproute2's sprint_size: b, Kb, Mb).
    found = re.search(r"\bbacklog (\d+(?:\.\d+)?)(K|M)?b\b", shown)
    assert found, shown
    scale = {None: 1, "K": 1024, "M": 1024 * 1024}[found.group(2)]
    return int(float(found.group(1)) * scale)


def _all_addresses(lab: Lab) -> list[str]:
    plan = lab.plan
    addresses = [plan.core_address, plan.portal.address, plan.portal.dns_address]
    addresses += [u.address for u in plan.upstreams]
    addresses += [link.router_address for c in plan.communes for link in c.links]
    for commune in plan.communes:  # the LAN behind each router: gateway, agent box, devices
        assert commune.box is not None
        addresses += [commune.box.lan_gateway, *commune.box.sources]
        addresses += [d.address for d in commune.box.devices]
    return addresses


def test_every_address_answers_from_the_monitor_side(clean_lab: Lab) -> None:
    results = ping(_all_addresses(clean_lab), count=3)
    assert {a: r.loss_ratio for a, r in results.items() if r.loss_ratio} == {}


def test_lab_namespaces_have_no_default_route(clean_lab: Lab) -> None:
    for namespace in clean_lab.plan.namespaces:
        routes = ip("-n", namespace, "route", "show", "table", "all").stdout
        assert "default" not in routes, (namespace, routes)
    root = ip("route", "show", clean_lab.plan.prefix, "table", "main").stdout
    assert "blackhole" in root
    assert "metric 4000" in root


def test_snmp_v2c_and_v3_answer_on_every_router_address(clean_lab: Lab) -> None:
    for commune in clean_lab.plan.communes:
        for link in commune.links:
            index = _ifindex(commune.namespace, link.router_ifname)
            for version in ("2c", "3"):
                name, ifname = snmpget(
                    clean_lab, link.router_address, SYS_NAME, f"{IF_NAME}.{index}", version=version
                )
                assert name.strip('"') == f"r{commune.code}.lab.netwatch.vn"
                assert ifname.strip('"') == link.router_ifname


def test_loss_fault_drops_about_that_share(clean_lab: Lab) -> None:
    commune = _commune(clean_lab, dual=False)
    address = commune.address
    assert clean_lab.commune_loss(commune.code, 30).ok
    assert clean_lab.commune_loss(commune.code, 30).ok  # idempotent
    lossy = ping([address], count=200, period_ms=5)[address]
    assert 0.15 <= lossy.loss_ratio <= 0.45
    assert clean_lab.commune_restore(commune.code).ok
    assert ping([address], count=50, period_ms=5)[address].loss_ratio == 0


def test_link_down_falls_into_the_blackhole(clean_lab: Lab) -> None:
    plan = clean_lab.plan
    commune = _commune(clean_lab, dual=True)
    link1, link2 = commune.links
    upstream = plan.upstream(link1.upstream)
    assert upstream is not None
    assert clean_lab.commune_down(commune.code, link1.id).ok
    assert clean_lab.commune_down(commune.code, link1.id).ok  # idempotent
    results = ping([link1.router_address, link2.router_address], count=5)
    assert results[link1.router_address].loss_ratio == 1
    assert results[link2.router_address].loss_ratio == 0
    # The upstream node has nothing but its blackhole for the address: `route get` refuses
    # (EINVAL is what the kernel answers for a blackhole) and only the blackhole matches.
    got = ip("-n", upstream.namespace, "route", "get", link1.router_address)
    assert got.returncode != 0
    assert "Invalid argument" in got.stderr
    matches = ip("-n", upstream.namespace, "route", "show", "match", link1.router_address).stdout
    assert matches.split() == ["blackhole", plan.prefix, "metric", "4000"]
    # The router still answers SNMP over its second link and sees wan1 without carrier.
    index = _ifindex(commune.namespace, link1.router_ifname)

    # snmpd caches interface data for a few seconds: poll until it tells.
    def oper_status() -> str:
        (oper,) = snmpget(clean_lab, link2.router_address, f"{IF_OPER_STATUS}.{index}")
        return oper

    assert wait_until(lambda: oper_status() == "2", 10, 0.5, "wan1 down over SNMP")  # down
    assert clean_lab.commune_restore(commune.code).ok
    assert ping([link1.router_address], count=5)[link1.router_address].loss_ratio == 0


def test_monitor_side_falls_to_blackhole_not_default_route(clean_lab: Lab) -> None:
    plan = clean_lab.plan
    target = plan.communes[0].address
    assert clean_lab.monitor_cut().ok  # NetWatch's own line (the root side's link) cut
    assert [f.kind.value for f in clean_lab.state.faults] == ["monitor-cut"]
    got = ip("route", "get", target)
    # Not "via <default gateway> dev eth0": the blackhole catches the lab prefix.
    assert got.returncode != 0, got.stdout
    assert "Invalid argument" in got.stderr
    assert ping([target, plan.core_address], count=3)[plan.core_address].loss_ratio == 1
    assert clean_lab.monitor_restore().ok
    assert clean_lab.state.faults == ()
    assert ping([target], count=3)[target].loss_ratio == 0
    # Cut by hand (as before the fault existed): the lab's restore repairs it too.
    assert ip("link", "set", plan.root_ifname, "down").returncode == 0
    assert ping([target], count=3)[target].loss_ratio == 1
    assert clean_lab.restore().ok
    assert ping([target], count=3)[target].loss_ratio == 0


def test_congestion_saturates_the_link(clean_lab: Lab) -> None:
    commune = _commune(clean_lab, dual=True)
    link1, link2 = commune.links
    address = link1.router_address
    idle = ping([address], count=20)[address]
    index = _ifindex(commune.namespace, link1.router_ifname)
    assert clean_lab.commune_congest(commune.code, link1.id).ok
    # Let the shaper's queue fill: the tbf queue toward the commune holds at least half of
    # its latency's worth of bytes (the load keeps it near full from then on).
    upstream = clean_lab.plan.upstream(link1.upstream)
    assert upstream is not None
    half_full = link1.bandwidth_mbps * 1_000_000 / 8 * TBF_LATENCY_MS / 1000 / 2
    wait_until(
        lambda: _qdisc_backlog_bytes(upstream.namespace, link1.upstream_ifname) >= half_full,
        10,
        0.1,
        "the shaper's queue filled",
    )

    def counters() -> tuple[float, int, int]:
        (snmp,) = snmpget(clean_lab, link2.router_address, f"{IF_HC_IN_OCTETS}.{index}")
        return (
            time.monotonic(),
            int(snmp),
            interface_rx_bytes(commune.namespace, link1.router_ifname),
        )

    t0, snmp0, rx0 = counters()
    busy = ping([address], count=20, period_ms=100)[address]
    # snmpd refreshes its interface counters every few seconds: the window must span a refresh
    # (two reads inside one cache period both say the same number, as a fresh clone showed).
    wait_until(lambda: counters()[1] > snmp0, 10, 0.2, "snmpd's counters refreshed")
    t1, snmp1, rx1 = counters()
    rate_bytes_s = link1.bandwidth_mbps * 1_000_000 / 8
    elapsed = t1 - t0
    assert 0.7 * rate_bytes_s <= (rx1 - rx0) / elapsed <= 1.15 * rate_bytes_s
    # snmpd caches interface counters for a few seconds: a wider band than the kernel's own.
    assert 0.4 * rate_bytes_s * elapsed <= snmp1 - snmp0 <= 1.6 * rate_bytes_s * elapsed
    assert busy.rtt_median_ms > 20
    assert busy.rtt_median_ms > 10 * idle.rtt_median_ms
    assert clean_lab.commune_restore(commune.code).ok
    after = ping([address], count=10)[address]
    assert after.loss_ratio == 0
    assert after.rtt_median_ms < 5


def test_reboot_resets_uptime_and_counters(clean_lab: Lab) -> None:
    commune = _commune(clean_lab, dual=False)
    address = commune.address
    index = _ifindex(commune.namespace, "wan1")
    ping([address], count=20, period_ms=5)
    uptime_before, octets_before = map(
        int, snmpget(clean_lab, address, SYS_UPTIME, f"{IF_HC_IN_OCTETS}.{index}")
    )
    if uptime_before < 200:  # centiseconds: make the reset unmistakable
        uptime_before = wait_until(
            lambda: (u := int(snmpget(clean_lab, address, SYS_UPTIME)[0])) >= 250 and u,
            10,
            0.25,
            "the router's uptime past 2.5 s",
        )
    assert octets_before > 0
    assert clean_lab.commune_reboot(commune.code, downtime_s=1.0).ok
    uptime_after, octets_after = map(
        int, snmpget(clean_lab, address, SYS_UPTIME, f"{IF_HC_IN_OCTETS}.{index}")
    )
    assert uptime_after < uptime_before
    assert octets_after < octets_before
    assert _ifindex(commune.namespace, "wan1") == index  # ifIndex persists, as configured
    assert ping([address], count=5)[address].loss_ratio == 0


def test_upstream_down_takes_its_communes_down(clean_lab: Lab) -> None:
    plan = clean_lab.plan
    upstream = plan.upstreams[0]
    behind = [link.router_address for _, link in plan.upstream_links(upstream.id)]
    others = [
        link.router_address
        for c in plan.communes
        for link in c.links
        if link.upstream != upstream.id
    ]
    assert behind
    assert others
    assert clean_lab.upstream_down(upstream.id).ok
    down = ping([upstream.address, *behind, *others], count=3)
    assert all(down[a].loss_ratio == 1 for a in [upstream.address, *behind])
    assert all(down[a].loss_ratio == 0 for a in others)
    assert clean_lab.upstream_restore(upstream.id).ok
    up = ping([upstream.address, *behind], count=3)
    assert all(r.loss_ratio == 0 for r in up.values())


def test_portal_over_tls_by_name_through_lab_dns(clean_lab: Lab) -> None:
    portal = clean_lab.plan.portal
    address = resolve(clean_lab, portal.hostname)
    assert address == portal.address
    status, body = https_get(address, portal.hostname, clean_lab.paths.ca_file)
    assert status == 200
    assert PORTAL_TEXT in body
    # The certificate also names the IP address.
    status, _ = https_get(address, portal.address, clean_lab.paths.ca_file)
    assert status == 200


def test_portal_slow_error_down(clean_lab: Lab) -> None:
    portal = clean_lab.plan.portal
    ca = clean_lab.paths.ca_file
    assert clean_lab.portal_slow(1.5).ok
    start = time.monotonic()
    assert https_get(portal.address, portal.hostname, ca)[0] == 200
    assert time.monotonic() - start >= 1.4
    assert clean_lab.portal_error().ok
    assert https_get(portal.address, portal.hostname, ca)[0] == 503
    assert clean_lab.portal_down().ok
    with pytest.raises(TimeoutError):
        https_get(portal.address, portal.hostname, ca, timeout_s=1.0)
    assert resolve(clean_lab, portal.hostname) == portal.address  # DNS stays up
    assert clean_lab.portal_restore().ok
    assert https_get(portal.address, portal.hostname, ca)[0] == 200


def test_fault_results_name_unknown_targets(clean_lab: Lab) -> None:
    code = clean_lab.plan.communes[0].code
    assert clean_lab.commune_down(99999).problem is FaultProblem.UNKNOWN_COMMUNE
    assert clean_lab.commune_down(code, "no-such-link").problem is FaultProblem.UNKNOWN_LINK
    assert clean_lab.upstream_down("pop-nowhere").problem is FaultProblem.UNKNOWN_UPSTREAM
    assert clean_lab.commune_loss(code, 150).problem is FaultProblem.BAD_VALUE
    assert clean_lab.state.faults == ()  # refused requests record nothing


def _cli(lab: Lab, *words: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "netwatch.lab.cli", *words]
    argv += ["--index", str(lab.index), "--state-dir", str(lab.paths.state_dir)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_cli_status_and_faults(clean_lab: Lab) -> None:
    commune = clean_lab.plan.communes[0]
    status = _cli(clean_lab, "status")
    assert status.returncode == 0, status.stderr
    assert commune.name in status.stdout
    assert str(clean_lab.paths.ca_file) in status.stdout
    loss = _cli(clean_lab, "fault", str(commune.code), "loss", "100")
    assert loss.returncode == 0, loss.stderr
    assert ping([commune.address], count=3)[commune.address].loss_ratio == 1
    assert "loss 100 %" in _cli(clean_lab, "status").stdout
    assert _cli(clean_lab, "fault", str(commune.code), "restore").returncode == 0
    assert ping([commune.address], count=3)[commune.address].loss_ratio == 0
    bad = _cli(clean_lab, "fault", "upstream", "pop-nowhere", "down")
    assert bad.returncode == 1
    assert "no such upstream node" in bad.stderr
    core = clean_lab.plan.core_address
    assert _cli(clean_lab, "fault", "monitor", "cut").returncode == 0
    assert "monitor: monitor-cut" in _cli(clean_lab, "status").stdout
    assert ping([core], count=3)[core].loss_ratio == 1
    assert _cli(clean_lab, "fault", "monitor", "restore").returncode == 0
    assert ping([core], count=3)[core].loss_ratio == 0
    assert _cli(clean_lab, "fault", "monitor", "down").returncode == 2  # unknown: the usage


def test_config_and_env_files(clean_lab: Lab) -> None:
    text = clean_lab.paths.config_file.read_text(encoding="utf-8")
    env = clean_lab.paths.env_file.read_text()
    assert f"NETWATCH_SNMP_COMMUNITY={clean_lab.secrets.community}" in env
    assert clean_lab.secrets.community not in text  # secrets only by env reference
    assert str(Path(clean_lab.paths.ca_file).resolve()) in text
    assert clean_lab.paths.env_file.stat().st_mode & 0o077 == 0


def test_restore_restarts_processes_that_died(clean_lab: Lab) -> None:
    commune = clean_lab.plan.communes[0]
    status = clean_lab.status()
    victims = [p.pid for p in status.processes if p.name in (f"snmpd {commune.code}", "portal")]
    assert len(victims) == 2
    for pid in victims:
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: not any(p.alive for p in clean_lab.status().processes if p.pid in victims),
        5,
        0.05,
        "the killed processes gone",
    )
    assert clean_lab.restore().ok
    assert all(p.alive for p in clean_lab.status().processes)
    assert snmpget(clean_lab, commune.address, SYS_NAME)
    portal = clean_lab.plan.portal
    assert https_get(portal.address, portal.hostname, clean_lab.paths.ca_file)[0] == 200
