"""The agent box's deployment: the systemd unit (systemd-analyze verify, the command it runs is
one `netwatch agent` accepts, the hardening of NetWatch's other units) and the one-command
installer, run into a staging root with the wheel this checkout builds."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from netwatch.cli import parse_args
from tests.deploy.test_deploy import HARDENING, assert_systemd_verifies

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "netwatch-agent.service"


def test_agent_unit_verifies_runs_netwatch_agent_and_is_hardened(tmp_path: Path) -> None:
    unit = UNIT.read_text()
    [exec_start] = re.findall(r"^ExecStart=(.+)$", unit, flags=re.MULTILINE)
    binary, *argv = exec_start.split()
    assert binary == "/opt/netwatch-agent/bin/netwatch"
    args = parse_args(argv)
    assert args.command == "agent"
    assert args.config == Path("/etc/netwatch-agent/agent.toml")
    [check] = re.findall(r"^ExecStartPre=(.+)$", unit, flags=re.MULTILINE)
    assert parse_args(check.split()[1:]).check
    for line in HARDENING:
        if not line.startswith("UMask="):  # the agent's is stricter: 0077
            assert re.search(rf"^{re.escape(line)}$", unit, flags=re.MULTILINE), line
    for line in (
        "User=netwatch-agent",
        "UMask=0077",
        "KillMode=mixed",
        "Restart=always",
        "AmbientCapabilities=CAP_NET_RAW",
        "CapabilityBoundingSet=CAP_NET_RAW",
        "StateDirectory=netwatch-agent",
    ):
        assert re.search(rf"^{re.escape(line)}$", unit, flags=re.MULTILINE), line
    local = unit.replace(
        "/opt/netwatch-agent/bin/netwatch", str(Path(sys.executable).parent / "netwatch")
    )
    local = re.sub(r"^(User|Group)=netwatch-agent$", r"\1=root", local, flags=re.MULTILINE)
    copy = tmp_path / "netwatch-agent.service"
    copy.write_text(local)
    assert_systemd_verifies(copy)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work, ROOT],
        check=True,
        capture_output=True,
    )
    [built] = work.glob("netwatch-*.whl")
    return built


def install(root: Path, wheel: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    base_python = getattr(sys, "_base_executable", sys.executable)
    return subprocess.run(
        [
            "sh",
            str(DEPLOY / "install-agent.sh"),
            "--root",
            str(root),
            "--wheel",
            str(wheel),
            "--python",
            base_python,
            "--pip-args",
            "--no-deps",
            *extra,
        ],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_installer_lays_out_venv_settings_secret_and_unit(tmp_path: Path, wheel: Path) -> None:
    root = tmp_path / "root"
    key = tmp_path / "key.txt"
    key.write_text("s3cret\n")
    first = install(
        root,
        wheel,
        "--commune",
        "24848",
        "--agent",
        "24848-agent",
        "--centre",
        "nats-leaf://10.0.0.1:7422,tls://centre.example.vn:7422",
        "--secret-file",
        str(key),
    )
    assert first.returncode == 0, first.stdout + first.stderr
    # The installed netwatch itself checked the settings it was given (the script's last step).
    assert (
        "agent.toml: OK (commune 24848, agent 24848-agent, centre nats-leaf://10.0.0.1:7422, tls://centre.example.vn:7422"
        in first.stdout
    )
    etc = root / "etc" / "netwatch-agent"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert stat.S_IMODE((etc / "secret").stat().st_mode) == 0o640
    assert stat.S_IMODE((etc / "agent.toml").stat().st_mode) == 0o640
    assert (root / "etc/systemd/system/netwatch-agent.service").read_text() == UNIT.read_text()
    assert (root / "opt/netwatch-agent/bin/netwatch").exists()
    assert (root / "opt/netwatch-agent/share/doc/agent.md").exists()
    # Run again (an upgrade): the settings an operator may have edited are kept.
    toml = etc / "agent.toml"
    toml.write_text(toml.read_text().replace('log_level = "info"', 'log_level = "debug"'))
    again = install(root, wheel)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "keeping the settings" in again.stdout
    assert 'log_level = "debug"' in toml.read_text()


def test_installer_refuses_a_first_install_without_identity(tmp_path: Path, wheel: Path) -> None:
    result = install(tmp_path / "root", wheel)
    assert result.returncode == 1
    assert "first install needs --commune, --agent and --centre" in result.stderr
