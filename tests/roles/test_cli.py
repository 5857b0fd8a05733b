"""`netwatch run --role ...`: bad role arguments are refused with a clear message, exit 2; the
supervisor's children as its arguments make them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netwatch.cli import build_parser
from netwatch.roles.probe import parse_kinds, parse_shard
from netwatch.roles.supervisor import child_specs

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


@pytest.mark.parametrize("role", ["core", "web"])
def test_the_core_and_web_roles_need_a_bus(role: str) -> None:
    done = _run("--role", role)
    assert done.returncode == 2
    assert f"--role {role}: --nats URL is required" in done.stderr


def _specs(*args: str) -> dict[str, list[str]]:
    parsed = build_parser().parse_args(
        ["run", "--config", "x.yaml", "--listen", "127.0.0.1:8080", "--probe-workers", "0",
         "--snmp-workers", "0", *args]
    )  # fmt: skip
    parsed.listen_host, parsed.listen_port = "127.0.0.1", 8080
    return {s.name: list(s.argv) for s in child_specs(parsed, "nats://127.0.0.1:4222")}


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_web_workers_share_the_public_port_and_the_core_has_its_own() -> None:
    specs = _specs("--web-workers", "2", "--core-listen", "127.0.0.1:9181")
    assert sorted(specs) == ["core", "web-0", "web-1"]
    core = specs["core"]
    assert _flag(core, "--listen") == "127.0.0.1:9181"
    assert _flag(core, "--name").endswith("-8080")  # its consumer as before: the public port
    for name in ("web-0", "web-1"):
        web = specs[name]
        assert (_flag(web, "--role"), _flag(web, "--listen")) == ("web", "127.0.0.1:8080")
        assert _flag(web, "--core-url") == "http://127.0.0.1:9181"
    assert _flag(specs["web-0"], "--name") != _flag(specs["web-1"], "--name")
    # No web workers: the core serves the web on the public port, as before.
    alone = _specs("--web-workers", "0")
    assert sorted(alone) == ["core"]
    assert _flag(alone["core"], "--listen") == "127.0.0.1:8080"


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
