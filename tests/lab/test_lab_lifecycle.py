"""Building and removing labs: nothing is left behind, even after a killed run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netwatch.lab import Lab

from .fixtures import lab_skip_reason
from .tools import ping

# Its own lab index (not tests/lab's 1), so it can run beside the other lab modules.
LAB_INDEX = int(os.environ.get("NETWATCH_TEST_LAB_INDEX_LIFECYCLE", "8"))  # 10.96.0.0/16


@pytest.mark.privileged
@pytest.mark.lab
def test_down_leaves_nothing_even_after_a_killed_run(tmp_path: Path) -> None:
    reason = lab_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    first = Lab(LAB_INDEX, tmp_path / "first")
    second = Lab(LAB_INDEX, tmp_path / "second")
    try:
        first.up(communes=2)
        assert first.commune_congest(first.plan.communes[0].code).ok  # a load process too
        # A killed run: no down(), and its state file is gone too.
        first.paths.state_file.unlink()
        assert not first.leftovers().clean

        built = second.up(communes=2)  # cleans the leftovers of the same index first
        addresses = [c.address for c in built.plan.communes]
        assert all(r.loss_ratio == 0 for r in ping(addresses, count=3).values())
        assert second.down().leftovers.clean

        # down() without any state file still finds everything by name and marker.
        first.up(communes=2)
        first.paths.state_file.unlink()
        result = Lab(LAB_INDEX, tmp_path / "elsewhere").down()
        # 2 communes (router, agent box, devices), core, portal, 3 upstream nodes
        assert result.removed_namespaces == 2 * 3 + 5
        assert result.leftovers.clean, result.leftovers
    finally:
        first.down()
        second.down()
    leftovers = first.leftovers()
    assert leftovers.clean, leftovers
    assert (
        f"nwl{LAB_INDEX}-"
        not in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
    )


def test_cli_without_privileges_says_so(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "netwatch.lab.cli", "status", "--state-dir", str(tmp_path)]
    if lab_skip_reason() is None:
        # Root here: run the same command without the two capabilities the lab needs. Still
        # root, not another user: the checkout may sit under a directory only root can read
        # (a clone in /root, mode 0700), where `nobody` could not even import the code.
        argv = ["setpriv", "--inh-caps=-all", "--bounding-set=-net_admin,-sys_admin", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "needs root" in proc.stderr
