"""The agent's Measurer inside a commune of the real lab: per path, through real faults.

Each round runs in the commune's agent box namespace (``ip netns exec nwl20-a<code> python -m
netwatch.agent.measure``) with the configuration the centre would send it (the lab inventory's
``agent:`` section through ``agent_config``), and hands back the round in the wire format.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwatch.agent import wire
from netwatch.agent.model import AgentConfig, InsideRound
from netwatch.inside.config import agent_config
from netwatch.inventory import load_inventory
from netwatch.lab import Lab
from netwatch.lab.topology import CommunePlan
from probes.http import HttpCheck, HttpProber
from tests.lab.fixtures import built_lab, restored
from tests.lab.tools import ping

# Lab index of this module: prefix 10.108.0.0/16, namespaces nwl20-*.
LAB_INDEX = int(os.environ.get("NETWATCH_TEST_LAB_INDEX_AGENT", "20"))
SLOW_S = 1.5

pytestmark = [pytest.mark.privileged, pytest.mark.lab]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, 2, tmp_path_factory.mktemp(f"lab{LAB_INDEX}"))


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    yield from restored(lab)


def dual(lab: Lab) -> CommunePlan:
    """The first commune: dual-homed (link 1 VNPT TSLCD, link 2 Viettel internet)."""
    commune = lab.plan.communes[0]
    assert len(commune.links) == 2
    return commune


def config_of(lab: Lab, commune: CommunePlan) -> AgentConfig:
    """What the centre sends this commune's agent, on a short rhythm (5 s rounds)."""
    env = lab.paths.env_file.read_text().splitlines()
    inventory = load_inventory(lab.paths.config_file, environ=dict(x.split("=", 1) for x in env))
    config = agent_config(inventory, f"{commune.code:05d}")
    return dataclasses.replace(config, interval_s=5.0, echoes=3)


def measure(lab: Lab, commune: CommunePlan) -> InsideRound:
    """One round measured inside the commune's agent box."""
    assert commune.box is not None
    proc = subprocess.run(
        ["ip", "netns", "exec", commune.box.namespace, sys.executable, "-m",
         "netwatch.agent.measure"],
        input=wire.encode_config(config_of(lab, commune)),
        capture_output=True,
        env=lab.child_env(),
        timeout=30,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    return wire.decode_round(proc.stdout)


def portals(round_: InsideRound) -> dict[str, tuple[bool, float | None]]:
    """Per link: (portal ok, first byte seconds)."""
    return {t.link: (t.ok, t.first_byte_s) for t in round_.portals}


def test_both_paths_measured_apart_from_inside(clean_lab: Lab) -> None:
    commune = dual(clean_lab)
    started = time.monotonic()
    result = measure(clean_lab, commune)

    assert time.monotonic() - started < 5.0 + 3  # the round fits its interval (+ start-up)
    assert result.commune == f"{commune.code:05d}"
    assert result.lan_up is True
    assert [(p.link, p.ping.received) for p in result.paths] == [
        ("vnpt-tslcd", 3),
        ("viettel-internet", 3),
    ]
    assert [d.ping.answered for d in result.devices] == [True, True]
    assert portals(result).keys() == {"vnpt-tslcd", "viettel-internet"}
    for timing in result.portals:
        assert timing.ok, timing
        assert timing.status == 200
        assert None not in (timing.dns_s, timing.connect_s, timing.tls_s, timing.first_byte_s)


def test_cut_link_1_fails_path_1_only(clean_lab: Lab) -> None:
    commune = dual(clean_lab)
    assert clean_lab.commune_down(commune.code, "vnpt-tslcd").ok
    result = measure(clean_lab, commune)

    path1, path2 = result.path("vnpt-tslcd"), result.path("viettel-internet")
    assert path1 is not None
    assert path2 is not None
    assert not path1.ping.answered
    assert path2.ping.received == 3
    assert result.lan_up is True  # the router still answers on the LAN
    by_link = {t.link: t for t in result.portals}
    assert not by_link["vnpt-tslcd"].ok
    assert by_link["vnpt-tslcd"].failed_phase == "dns"  # not even the resolver answers
    assert by_link["viettel-internet"].ok


def test_portal_slow_for_one_commune_path_only(clean_lab: Lab) -> None:
    commune, other = clean_lab.plan.communes[0], clean_lab.plan.communes[1]
    assert clean_lab.commune_portal_slow(commune.code, SLOW_S, "vnpt-tslcd").ok
    result = measure(clean_lab, commune)
    elsewhere = measure(clean_lab, other)

    slow_ok, slow_first = portals(result)["vnpt-tslcd"]
    fast_ok, fast_first = portals(result)["viettel-internet"]
    assert slow_ok  # slow, not failing: the portal answers within its timeout
    assert slow_first is not None
    assert slow_first >= SLOW_S
    assert fast_ok
    assert fast_first is not None
    assert fast_first < SLOW_S / 2
    # Another commune's agent and the centre are served as before.
    other_ok, other_first = portals(elsewhere)["vnpt-tslcd"]
    assert other_ok
    assert other_first is not None
    assert other_first < SLOW_S / 2
    centre = asyncio.run(_centre_probe(clean_lab))
    assert centre.ok, centre.detail
    assert centre.first_byte_s is not None
    assert centre.first_byte_s < SLOW_S / 2


async def _centre_probe(lab: Lab) -> object:
    portal = lab.plan.portal
    check = HttpCheck(
        portal.url, ca_file=str(lab.paths.ca_file), dns_resolver=portal.dns_address, timeout_s=5
    )
    async with HttpProber() as prober:
        return await prober.probe(check)


def test_a_portal_slower_than_the_round_is_cut_at_the_budget(clean_lab: Lab) -> None:
    commune = dual(clean_lab)
    assert clean_lab.commune_portal_slow(commune.code, 30.0, "vnpt-tslcd").ok
    started = time.monotonic()
    result = measure(clean_lab, commune)  # 5 s rounds: 4.5 s budget

    assert time.monotonic() - started < 5.0 + 3  # the round did not wait for the portal
    by_link = {t.link: t for t in result.portals}
    assert (by_link["vnpt-tslcd"].failure, by_link["vnpt-tslcd"].failed_phase) == (
        "timeout",
        "http",
    )
    assert by_link["vnpt-tslcd"].total_s < 5.0
    assert by_link["viettel-internet"].ok
    assert all(p.ping.answered for p in result.paths)


def test_power_loss_silences_the_commune_and_restore_brings_it_back(clean_lab: Lab) -> None:
    commune = dual(clean_lab)
    box = commune.box
    assert box is not None
    # A process of the box (the agent stands in): it must be frozen by the power loss.
    sleeper = subprocess.Popen(["ip", "netns", "exec", box.namespace, "sleep", "300"])
    try:
        time.sleep(0.2)
        addresses = [lk.router_address for lk in commune.links] + [box.lan_gateway, *box.sources]
        addresses += [d.address for d in box.devices]
        assert all(r.loss_ratio == 0 for r in ping(addresses, count=2).values())

        assert clean_lab.commune_power_loss(commune.code).ok
        assert all(r.loss_ratio == 1 for r in ping(addresses, count=2).values())
        assert _state(sleeper.pid) == "T"
        dark = measure(clean_lab, commune)  # a measurement inside sees nothing at all
        assert dark.lan_up is False
        assert not any(p.ping.answered for p in dark.paths)
        assert not any(t.ok for t in dark.portals)
        assert not any(d.ping.answered for d in dark.devices)

        assert clean_lab.commune_restore(commune.code).ok
        assert _state(sleeper.pid) != "T"
        assert all(r.loss_ratio == 0 for r in ping(addresses, count=2).values())
        back = measure(clean_lab, commune)
        assert back.lan_up is True
        assert all(p.ping.answered for p in back.paths)
        assert all(t.ok for t in back.portals)
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)
        sleeper.kill()
        sleeper.wait()


def _state(pid: int) -> str:
    """The process state letter of ``pid`` (T: stopped), from /proc."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
