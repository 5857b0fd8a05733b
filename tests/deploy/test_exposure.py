"""Nothing NetWatch ships listens on every interface, and Prometheus cannot be stopped remotely.

Issue 15, finding 5: the compose stack published 8080, 9090 and 3000 on all interfaces and ran
Prometheus with `--web.enable-lifecycle` (no auth: anyone who reaches it can `POST /-/quit`).
These checks read the files as shipped (no docker-compose, no systemd needed): every published
port is bound to loopback, every `--listen`/`--metrics-listen` of a systemd unit is loopback,
and no file under deploy/ or config/ turns on Prometheus's lifecycle or admin API. The checkers
are also run on bad samples, so a checker that stopped seeing anything fails too.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONFIG = ROOT / "config"
# Prometheus flags that let anyone reaching its port stop it, reload it, or delete its data.
DANGEROUS_PROMETHEUS_FLAGS = ("--web.enable-lifecycle", "--web.enable-admin-api")


def _loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # empty (all interfaces), a name, a typo: not provably loopback


def _published_host(port: object) -> str | None:
    """The host address a compose `ports` entry binds, "" for all interfaces; None if unpublished."""
    if isinstance(port, dict):
        if "published" not in port and "host_ip" not in port:
            return ""  # long syntax with a target only: a random host port on all interfaces
        return str(port.get("host_ip", ""))
    text = str(port).split("/")[0]  # "127.0.0.1:8080:8080/tcp"
    if text.startswith("["):  # "[::1]:8080:8080"
        return text[: text.index("]") + 1]
    parts = text.split(":")
    return parts[0] if len(parts) == 3 else ""  # "8080" and "8080:8080": every interface


def compose_exposure(compose: dict[str, object]) -> list[str]:
    """What a compose file exposes beyond loopback, or turns on in Prometheus: one line each."""
    problems: list[str] = []
    services = compose.get("services") or {}
    assert isinstance(services, dict)
    for name, service in services.items():
        if service.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host (every listening port on every interface)")
        for port in service.get("ports") or []:
            host = _published_host(port)
            if host is not None and not _loopback(host):
                problems.append(f"{name}: port {port!r} published on all interfaces")
        command = service.get("command") or []
        words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
        for word in words:
            if word.split("=")[0] in DANGEROUS_PROMETHEUS_FLAGS:
                problems.append(f"{name}: {word}")
    return problems


def unit_exposure(unit: str) -> list[str]:
    """`--listen`/`--metrics-listen` addresses of a systemd unit's commands that are not loopback."""
    problems: list[str] = []
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if not key.strip().startswith("Exec"):
            continue
        words = shlex.split(value.lstrip("-@:+!"))
        for i, word in enumerate(words):
            flag, eq, inline = word.partition("=")
            if flag not in ("--listen", "--metrics-listen"):
                continue
            address = inline if eq else (words[i + 1] if i + 1 < len(words) else "")
            host = address.rpartition(":")[0]
            if not _loopback(host):
                problems.append(f"{flag} {address}")
    return problems


def flag_mentions(text: str) -> list[str]:
    """Dangerous Prometheus flags set in a file (comments ignored: the docs may name them)."""
    found = []
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        found += [flag for flag in DANGEROUS_PROMETHEUS_FLAGS if flag in code]
    return found


# -- the checkers see what they must ----------------------------------------------------------
@pytest.mark.parametrize(
    "port",
    ["8080:8080", "9090", "0.0.0.0:3000:3000", "[::]:3000:3000", {"target": 80, "published": 8}],
)
def test_checker_sees_a_port_on_all_interfaces(port: object) -> None:
    compose = {"services": {"prometheus": {"ports": [port]}}}
    assert compose_exposure(compose), port


@pytest.mark.parametrize(
    "port", ["127.0.0.1:9090:9090", "[::1]:9090:9090", {"target": 9090, "host_ip": "127.0.0.1"}]
)
def test_checker_accepts_loopback(port: object) -> None:
    assert compose_exposure({"services": {"prometheus": {"ports": [port]}}}) == []


def test_checker_sees_the_lifecycle_flag_and_host_networking() -> None:
    compose = {
        "services": {
            "prometheus": {"command": ["--config.file=x", "--web.enable-lifecycle"]},
            "grafana": {"network_mode": "host"},
            "other": {"command": "--web.enable-admin-api --x"},
        }
    }
    assert len(compose_exposure(compose)) == 3
    assert unit_exposure("ExecStart=/bin/netwatch run --listen 0.0.0.0:8080") != []
    assert unit_exposure("ExecStart=/bin/netwatch run --metrics-listen=:9101") != []
    assert unit_exposure("ExecStart=/bin/netwatch run --listen [::]:8080") != []
    assert unit_exposure("ExecStart=/bin/netwatch run --listen [::1]:8080") == []
    assert flag_mentions("# never --web.enable-lifecycle\n") == []
    assert flag_mentions("args: [--web.enable-lifecycle]\n") == ["--web.enable-lifecycle"]


# -- what the repository ships --------------------------------------------------------------
def test_compose_publishes_on_loopback_only_and_prometheus_has_no_lifecycle() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["services"]["prometheus"]["ports"], "Prometheus no longer published at all?"
    assert compose_exposure(compose) == []


@pytest.mark.parametrize("unit", sorted(p.name for p in DEPLOY.glob("*.service")))
def test_systemd_units_listen_on_loopback_only(unit: str) -> None:
    assert unit_exposure((DEPLOY / unit).read_text()) == []


def test_no_shipped_file_turns_on_prometheus_lifecycle_or_admin_api() -> None:
    files = [p for p in (*DEPLOY.rglob("*"), *CONFIG.rglob("*")) if p.is_file()]
    assert files
    offenders = {str(p.relative_to(ROOT)): flag_mentions(p.read_text()) for p in files}
    assert {path: flags for path, flags in offenders.items() if flags} == {}


def test_deployment_doc_says_how_to_expose_behind_a_tls_proxy() -> None:
    doc = (ROOT / "docs" / "deployment.md").read_text()
    assert re.search(r"reverse proxy with TLS", doc)
    assert "--web.enable-lifecycle" in doc  # why it is off, and how to reload without it
