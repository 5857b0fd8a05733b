"""`netwatch run --role probe`: bad role arguments are refused with a clear message, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netwatch.roles.probe import parse_kinds, parse_shard

NETWATCH = str(Path(sys.executable).with_name("netwatch"))  # the venv's console script


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETWATCH, "run", "--config", "not-read.yaml", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "2/2"], "want N >= 1 and 0 <= I < N"),
        (["--shard", "1"], "--shard wants I/N"),
        (["--shard", "a/b"], "--shard wants I/N"),
        (["--kinds", "icmp,smtp"], "unknown kind 'smtp'"),
        (["--kinds", ","], "at least one kind"),
        (["--metrics-listen", "9100"], "--metrics-listen wants ADDRESS:PORT"),
    ],
)
def test_bad_role_arguments_exit_2(args: list[str], message: str) -> None:
    done = _run("--role", "probe", "--nats", "nats://127.0.0.1:1", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_the_probe_role_needs_a_bus() -> None:
    done = _run("--role", "probe")
    assert done.returncode == 2
    assert "--role probe needs --nats URL" in done.stderr


def test_an_unknown_role_is_refused() -> None:
    done = _run("--role", "prober", "--nats", "nats://127.0.0.1:1")
    assert done.returncode == 2
    assert "invalid choice: 'prober'" in done.stderr


def test_kinds_and_shards_parse() -> None:
    assert parse_kinds("icmp,http") == {"icmp", "http"}
    assert parse_kinds(" snmp ") == {"snmp"}
    assert parse_kinds("all") == {"icmp", "snmp", "http"}
    assert parse_shard("1/3") == (1, 3)
    assert parse_shard("0/1") == (0, 1)
