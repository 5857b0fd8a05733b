"""The commune agent's side of the lab: the box's per-path routing, power loss, path-local
portal slowdown (the Measurer itself on the lab: tests/agent/test_measure_on_lab.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from netwatch.lab import Lab
from netwatch.lab.faults import FaultKind
from netwatch.lab.netns import read_pidfile
from netwatch.lab.portal import read_control
from netwatch.lab.snmpd import files_for
from netwatch.lab.topology import CommunePlan

from .tools import ping


def _cli(lab: Lab, *words: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "netwatch.lab.cli", *words]
    argv += ["--index", str(lab.index), "--state-dir", str(lab.paths.state_dir)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _dual(lab: Lab) -> CommunePlan:
    commune = lab.plan.communes[0]
    assert len(commune.links) == 2
    assert commune.box is not None
    return commune


def _answers_from_box(commune: CommunePlan, source: str | None, targets: list[str]) -> set[str]:
    """The targets that answer fping from inside the agent box (from `source`, if given)."""
    assert commune.box is not None
    bind = ["-S", source] if source is not None else []
    proc = subprocess.run(
        ["ip", "netns", "exec", commune.box.namespace, "fping", "-q", "-c", "2", "-p", "20",
         "-t", "300", *bind, *targets],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    answered = set()
    for line in proc.stderr.splitlines():
        address, _, stats = line.partition(" : ")
        if "xmt/rcv/%loss" in stats and "/0/" not in stats.split(",")[0]:
            answered.add(address.strip())
    return answered


def test_each_box_source_leaves_and_returns_by_its_own_link(clean_lab: Lab) -> None:
    commune = _dual(clean_lab)
    box = commune.box
    assert box is not None
    src1, src2 = box.sources
    far = [box.centre_address, clean_lab.plan.portal.address]
    assert box.centre_address == clean_lab.plan.root_address
    assert _answers_from_box(commune, src1, far) == set(far)
    assert _answers_from_box(commune, src2, far) == set(far)

    assert clean_lab.commune_down(commune.code, "vnpt-tslcd").ok
    assert _answers_from_box(commune, src1, far) == set()
    assert _answers_from_box(commune, src2, far) == set(far)
    local = [box.lan_gateway, *(d.address for d in box.devices)]
    assert _answers_from_box(commune, None, local) == set(local)
    # Seen from the centre: the box answers on path 2's address only.
    assert {a: r.loss_ratio for a, r in ping([src1, src2], count=2).items()} == {src1: 1, src2: 0}

    assert clean_lab.commune_restore(commune.code).ok
    assert clean_lab.commune_down(commune.code, "viettel-internet").ok
    assert _answers_from_box(commune, src1, far) == set(far)
    assert _answers_from_box(commune, src2, far) == set()


def test_power_loss_through_the_cli_and_restore(clean_lab: Lab) -> None:
    commune = _dual(clean_lab)
    box = commune.box
    assert box is not None
    addresses = [commune.address, box.lan_gateway, *box.sources, box.devices[0].address]
    snmpd_pid = read_pidfile(files_for(clean_lab.paths.state_dir, commune).pidfile)
    assert snmpd_pid is not None

    done = _cli(clean_lab, "fault", "power-loss", str(commune.code))
    assert done.returncode == 0, done.stderr
    assert all(r.loss_ratio == 1 for r in ping(addresses, count=2).values())
    assert _state(snmpd_pid) == "T"  # the router's processes are frozen, not killed
    kinds = [(f.kind, f.target) for f in clean_lab.state.faults]
    assert kinds == [(FaultKind.POWER_LOSS, str(commune.code))]
    assert "power-loss" in _cli(clean_lab, "status").stdout
    # The other commune has power.
    other = clean_lab.plan.communes[1]
    assert ping([other.address], count=2)[other.address].loss_ratio == 0

    assert _cli(clean_lab, "restore").returncode == 0
    assert _state(snmpd_pid) != "T"
    assert all(r.loss_ratio == 0 for r in ping(addresses, count=2).values())
    assert clean_lab.state.faults == ()


def test_portal_slow_for_one_commune_path(clean_lab: Lab) -> None:
    commune = _dual(clean_lab)
    box = commune.box
    assert box is not None
    src1, src2 = box.sources
    control = clean_lab.paths.portal_control

    one = _cli(clean_lab, "fault", "portal-slow", "2", "--commune", str(commune.code),
               "--link", "vnpt-tslcd")  # fmt: skip
    assert one.returncode == 0, one.stderr
    assert read_control(control).source_delays == ((src1, 2.0),)
    assert read_control(control).delay_for(src1) == 2.0
    assert read_control(control).delay_for(src2) == 0.0
    assert read_control(control).delay_for(clean_lab.plan.root_address) == 0.0
    # The global slowdown is independent: it keeps the commune's own delay.
    assert _cli(clean_lab, "fault", "portal", "slow", "1").returncode == 0
    assert read_control(control).delay_for(clean_lab.plan.root_address) == 1.0
    assert read_control(control).delay_for(src1) == 2.0
    # Without --link every path of the commune; restoring the commune clears its delays only.
    assert clean_lab.commune_portal_slow(commune.code, 3.0).ok
    assert read_control(control).source_delays == tuple(sorted({src1: 3.0, src2: 3.0}.items()))
    assert clean_lab.commune_restore(commune.code).ok
    assert read_control(control).source_delays == ()
    assert read_control(control).delay_s == 1.0

    assert clean_lab.commune_portal_slow(commune.code, 2.0, "vnpt-tslcd").ok
    assert _cli(clean_lab, "fault", "portal", "restore").returncode == 0
    assert read_control(control).source_delays == ()
    assert not [f for f in clean_lab.state.faults if f.kind is FaultKind.PATH_SLOW]
    bad = _cli(clean_lab, "fault", "portal-slow", "2", "--commune", "99999")
    assert bad.returncode == 1
    assert "no such commune" in bad.stderr


def _state(pid: int) -> str:
    """The process state letter of ``pid`` (T: stopped), from /proc."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
