"""The deployment NetWatch ships: the installed package, the compose stack, the systemd unit.

Docker cannot run here, so the image is proved through its parts: the Dockerfile installs the
project with `pip install .`, and the wheel that builds is installed on its own (no source tree
behind it) and must check a config, migrate a store and serve its pages. The compose file is
checked by docker-compose's own `config`, and every file it mounts must be one the repository
ships. The systemd unit is checked by `systemd-analyze verify`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from netwatch.bus.server import nats_server_version
from netwatch.cli import build_parser
from tests.roles.procs import alive, descendants, get, kill_all, netwatch, spawned, write_config
from tests.servers import reserved_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLE = ROOT / "config" / "examples" / "lam-dong.yaml"
SECRETS = {
    f"NETWATCH_{name}": f"secret-{name.lower()}-9e8f2c41d7a3b6e05f1c9d2a7b4e8f36"
    for name in (
        "SNMP_COMMUNITY",
        "SNMP_AUTH_KEY",
        "SNMP_PRIV_KEY",
        "LINK_SECRET",
        "SMTP_PASSWORD",
        "WEBHOOK_SECRET",
        "TELEGRAM_TOKEN",
    )
}


# -- the package the image installs ---------------------------------------------------------
@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel (as `pip install .` in the Dockerfile does) and unpacked."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work, ROOT],
        check=True,
        capture_output=True,
    )
    [wheel] = work.glob("netwatch-*.whl")
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    return target


def _run_installed(target: Path, cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Python code run against the installed wheel only: not the source tree of this checkout."""
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(target)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_wheel_ships_every_file_the_source_tree_needs(installed: Path) -> None:
    """Templates, styles, migrations: a file left out of the wheel breaks only the image."""
    for package in ("netwatch", "probes", "alerts"):
        source = ROOT / package
        for path in source.rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            shipped = installed / path.relative_to(ROOT)
            assert shipped.is_file(), f"{path.relative_to(ROOT)} is not in the wheel"


def test_the_installed_package_checks_config_migrates_and_serves(
    installed: Path, tmp_path: Path
) -> None:
    result = _run_installed(
        installed,
        tmp_path,
        f"""
        import netwatch, sys
        assert netwatch.__file__.startswith({str(installed)!r}), netwatch.__file__
        from netwatch.cli import main
        sys.exit(main(["check-config", {str(EXAMPLE)!r}]))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout

    served = _run_installed(
        installed,
        tmp_path,
        f"""
        from pathlib import Path
        from fastapi.testclient import TestClient
        from netwatch.web.app import create_app
        app = create_app({str(EXAMPLE)!r}, probing=False, data_dir=Path("data"))
        with TestClient(app) as client:
            for path in ("/healthz", "/status", "/openapi.json"):
                response = client.get(path, follow_redirects=True)
                assert response.status_code == 200, (path, response.status_code)
            print("served")
        """,
    )
    assert served.returncode == 0, served.stderr
    assert "served" in served.stdout
    # The store was created and migrated from the wheel's own migration scripts.
    with sqlite3.connect(tmp_path / "data" / "netwatch.sqlite3") as db:
        [(version,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
    newest = sorted((ROOT / "netwatch" / "store" / "migrations" / "versions").glob("0*.py"))[-1]
    assert newest.name.startswith(f"{version}_"), (version, newest.name)


# -- Dockerfile ------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_slim_non_root_with_only_net_raw() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(stages) >= 2, stages
    assert all("slim" in image for image in stages), stages
    assert "pip install --no-cache-dir ." in text  # the install step the wheel test proves
    [user] = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert user not in ("root", "0")
    assert "setcap cap_net_raw+ep" in text
    assert re.search(r"^HEALTHCHECK .*?/healthz", text, flags=re.MULTILINE)
    assert re.search(r"^VOLUME\s", text, flags=re.MULTILINE)
    # Pinned by digest, or (the digest cannot be learnt offline) the file says how to pin.
    if not all("@sha256:" in image for image in stages):
        assert "docker buildx imagetools inspect" in text
    # Everything the image copies exists in the repository.
    for source in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", text, flags=re.MULTILINE):
        for item in source.split():
            assert (ROOT / item).exists(), item


# -- compose -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """deploy/compose.yaml as docker-compose itself resolves it (with the example env file)."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose not found (Debian: docker-compose; scripts/bootstrap.sh)")
    # A copy of the repository's layout with the files a user creates from the examples.
    root = tmp_path_factory.mktemp("compose")
    for part in ("deploy", "config", "grafana"):
        shutil.copytree(ROOT / part, root / part)
    for env in ("netwatch", "postgres"):
        shutil.copy(root / "deploy" / f"{env}.env.example", root / "deploy" / f"{env}.env")
    (root / "deploy" / "grafana-admin-password.txt").write_text("change-me\n")
    shutil.copy(EXAMPLE, root / "config" / "netwatch.yaml")
    result = subprocess.run(
        ["docker-compose", "-f", root / "deploy" / "compose.yaml", "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert isinstance(resolved, dict)
    resolved["_root"] = str(root)
    return resolved


def _service(compose: dict[str, object], name: str) -> dict[str, object]:
    services = compose["services"]
    assert isinstance(services, dict)
    service = services[name]
    assert isinstance(service, dict)
    return service


def _mounts(service: dict[str, object]) -> list[tuple[str, str, str]]:
    """(type, source, target) of each volume, in either of compose's syntaxes."""
    found: list[tuple[str, str, str]] = []
    for volume in service.get("volumes", []):  # type: ignore[attr-defined]
        if isinstance(volume, dict):
            found.append((volume["type"], volume["source"], volume["target"]))
        else:
            source, target, *_ = str(volume).split(":")
            found.append(("bind" if source.startswith("/") else "volume", source, target))
    return found


def _command(service: dict[str, object]) -> argparse.Namespace:
    """The service's command as NetWatch's own parser reads it (it must accept it)."""
    command = service["command"]
    assert isinstance(command, list)
    return build_parser().parse_args(command)


def test_compose_lays_out_nats_postgres_core_probe_prometheus_and_grafana(
    compose: dict[str, object],
) -> None:
    services = compose["services"]
    assert isinstance(services, dict)
    assert set(services) == {
        "nats", "postgres", "netwatch", "web", "probe", "prometheus", "grafana",
    }  # fmt: skip
    core = _service(compose, "netwatch")  # the name Prometheus scrapes
    assert core["cap_drop"] == ["ALL"]
    assert "cap_add" not in core  # the core sends no ICMP
    assert "healthcheck" in core
    assert ("volume", "netwatch-data", "/var/lib/netwatch") in _mounts(core)
    args = _command(core)
    assert (args.role, args.nats, args.listen) == ("core", "nats://nats:4222", "0.0.0.0:8080")
    web = _service(compose, "web")  # a web worker: the reverse proxy's target
    assert web["cap_drop"] == ["ALL"]
    assert "cap_add" not in web
    args = _command(web)
    assert (args.role, args.core_url) == ("web", "http://netwatch:8080")
    probe = _service(compose, "probe")
    assert probe["cap_drop"] == ["ALL"]
    assert probe["cap_add"] == ["NET_RAW"]
    args = _command(probe)
    assert (args.role, args.nats, args.shard) == ("probe", "nats://nats:4222", "0/1")
    # The bus is the wheel's nats-server version (one version everywhere, docs/bus.md).
    nats = _service(compose, "nats")
    assert nats["image"] == f"nats:{nats_server_version()}-alpine"
    assert "--jetstream" in str(nats["command"])
    assert "ports" not in nats  # the bus and the database stay on the compose network
    assert "ports" not in _service(compose, "postgres")
    assert re.fullmatch(r"postgres:[\d.]+-alpine", str(_service(compose, "postgres")["image"]))


def test_compose_publishes_ports_on_loopback_only(compose: dict[str, object]) -> None:
    services = compose["services"]
    assert isinstance(services, dict)
    published = [
        (name, port) for name, service in services.items() for port in service.get("ports", [])
    ]
    assert published, "nothing reachable"
    for name, port in published:
        host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", (name, port)


def test_compose_mounts_only_files_the_repository_ships(compose: dict[str, object]) -> None:
    root = Path(str(compose["_root"]))
    user_files = {root / "config" / "netwatch.yaml"}  # written by the user from the example
    for name in ("netwatch", "web", "probe", "prometheus", "grafana"):
        for kind, where, _target in _mounts(_service(compose, name)):
            if kind != "bind":
                continue
            source = Path(where)
            assert source.exists(), (name, source)
            if source not in user_files:
                shipped = ROOT / source.relative_to(root)
                assert shipped.exists(), (name, shipped)


def test_compose_wires_prometheus_to_netwatch_and_grafana_to_both(
    compose: dict[str, object],
) -> None:
    # Prometheus scrapes the compose service by name, on the port NetWatch listens on.
    prometheus = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
    targets = [
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert "netwatch:8080" in targets
    for pattern in prometheus.get("rule_files", []):
        # Mounted at /etc/prometheus: rule files must resolve inside config/prometheus.
        relative = pattern.removeprefix("/etc/prometheus/")
        assert list((ROOT / "config" / "prometheus").glob(relative)), pattern
    # Grafana: the datasource points at the prometheus service; dashboards are where the
    # provider looks for them.
    provisioning = ROOT / "grafana" / "provisioning"
    datasources = [
        ds
        for f in (provisioning / "datasources").glob("*.y*ml")
        for ds in yaml.safe_load(f.read_text())["datasources"]
    ]
    assert any(ds["url"] == "http://prometheus:9090" for ds in datasources), datasources
    providers = [
        p
        for f in (provisioning / "dashboards").glob("*.y*ml")
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    grafana = _service(compose, "grafana")
    mounts = {target: source for kind, source, target in _mounts(grafana) if kind == "bind"}
    for provider in providers:
        folder = provider["options"]["path"]
        assert folder in mounts, (folder, mounts)
        assert list(Path(mounts[folder]).glob("*.json")), folder
    environment = grafana["environment"]
    assert isinstance(environment, dict)
    home = environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    folder, _, file = home.rpartition("/")
    assert (Path(mounts[folder]) / file).is_file(), home


# -- systemd -----------------------------------------------------------------------------------
HARDENING = (
    "NoNewPrivileges=true",
    "ProtectSystem=strict",
    "ProtectHome=true",
    "PrivateTmp=true",
    "PrivateDevices=true",
    "ProtectKernelTunables=true",
    "ProtectKernelModules=true",
    "ProtectControlGroups=true",
    "RestrictNamespaces=true",
    "SystemCallArchitectures=native",
    "UMask=0027",
    # Issue 15, finding 19.
    "ProtectKernelLogs=true",
    "ProtectProc=invisible",
    "RestrictSUIDSGID=true",
    "RestrictRealtime=true",
    "SystemCallFilter=@system-service",
    "SystemCallErrorNumber=EPERM",
)


def _verified_command(tmp_path: Path, unit_name: str, instance: str = "") -> argparse.Namespace:
    """`systemd-analyze verify` on the unit (install paths pointed at this checkout's NetWatch)
    and its ExecStart as NetWatch's parser reads it (systemd's %I and ${VAR} filled in)."""
    unit = (DEPLOY / unit_name).read_text()
    [exec_start] = re.findall(r"^ExecStart=(.+)$", unit, flags=re.MULTILINE)
    binary, *argv = exec_start.split()
    assert binary == "/opt/netwatch/bin/netwatch"
    filled = [
        a.replace("%I", instance.replace("-", "/"))
        .replace("%H", "host")
        .replace("${NETWATCH_NATS}", "nats://10.0.0.11:4222,nats://10.0.0.12:4222")
        for a in argv
    ]
    args = build_parser().parse_args(filled)
    for line in HARDENING:
        assert re.search(rf"^{re.escape(line)}$", unit, flags=re.MULTILINE), (unit_name, line)
    assert re.search(r"^User=netwatch$", unit, flags=re.MULTILINE)
    local = unit.replace(
        "/opt/netwatch/bin/netwatch", str(Path(sys.executable).parent / "netwatch")
    )
    local = re.sub(r"^(User|Group)=netwatch$", r"\1=root", local, flags=re.MULTILINE)
    local = local.replace("EnvironmentFile=/etc/netwatch/", "EnvironmentFile=-/etc/netwatch/")
    copy = tmp_path / (unit_name.replace("@.", f"@{instance}.") if instance else unit_name)
    copy.write_text(local)
    assert_systemd_verifies(copy)
    return args


def assert_systemd_verifies(unit: Path) -> None:
    """`systemd-analyze verify` finds nothing wrong with the unit file."""
    result = subprocess.run(
        ["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # Inside a container without systemd as init these are about the host, not the unit.
        if line.strip() and "Failed to connect" not in line and "System has not" not in line
    ]
    assert result.returncode == 0, problems
    assert not problems


def test_systemd_unit_verifies_and_runs_a_command_netwatch_accepts(tmp_path: Path) -> None:
    args = _verified_command(tmp_path, "netwatch.service")
    assert args.role is None  # the supervisor: the embedded default
    assert args.listen.startswith("127.0.0.1:")
    unit = (DEPLOY / "netwatch.service").read_text()
    assert "AmbientCapabilities=CAP_NET_RAW" in unit
    assert "CapabilityBoundingSet=CAP_NET_RAW" in unit


def test_systemd_role_units_verify_with_the_hardening_of_the_single_unit(
    tmp_path: Path,
) -> None:
    core = _verified_command(tmp_path, "netwatch-core.service")
    assert (core.role, core.name) == ("core", "host")
    assert core.listen.startswith("127.0.0.1:")
    assert core.nats.count("nats://") == 2
    core_unit = (DEPLOY / "netwatch-core.service").read_text()
    assert re.search(r"^CapabilityBoundingSet=$", core_unit, flags=re.MULTILINE)  # none
    probe = _verified_command(tmp_path, "netwatch-probe@.service", instance="1-3")
    assert (probe.role, probe.shard) == ("probe", "1/3")  # the instance name is the shard
    probe_unit = (DEPLOY / "netwatch-probe@.service").read_text()
    assert "CapabilityBoundingSet=CAP_NET_RAW" in probe_unit
    web = _verified_command(tmp_path, "netwatch-web@.service", instance="1")
    assert web.role == "web"
    assert web.listen.startswith("127.0.0.1:")
    web_unit = (DEPLOY / "netwatch-web@.service").read_text()
    assert re.search(r"^CapabilityBoundingSet=$", web_unit, flags=re.MULTILINE)  # none


def _syscall_group(group: str) -> set[str]:
    """The syscalls of a systemd group (`systemd-analyze syscall-filter`), nested groups expanded."""
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter", group],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    names: set[str] = set()
    for line in listing.splitlines()[1:]:  # the first line names the group itself
        item = line.strip()
        if item.startswith("@"):
            names |= _syscall_group(item)
        elif item and not item.startswith("#"):
            names.add(item)
    return names


@pytest.mark.timeout(240)
def test_netwatch_makes_only_the_syscalls_the_units_allow(tmp_path: Path) -> None:
    """SystemCallFilter=@system-service answers anything else with EPERM: the whole process
    tree (supervisor, nats-server, core, probe and SNMP workers) traced from start to a clean
    stop must stay inside the group, or a unit would break NetWatch where no test runs it."""
    if shutil.which("strace") is None:
        pytest.fail("strace not found (Debian: strace; scripts/bootstrap.sh)")
    port = reserved_port()
    config = write_config(tmp_path / "netwatch.yaml")
    trace = tmp_path / "trace.txt"
    argv = [
        "strace", "-f", "-qq", "-o", str(trace),
        *netwatch("run", "--config", str(config), "--listen", f"127.0.0.1:{port}",
                  "--data-dir", str(tmp_path / "data"), "--probe-workers", "1"),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with spawned(argv, tmp_path / "run.log", {"NETWATCH_DATABASE_URL": ""}) as strace:
        supervisor = wait_until(
            lambda: next(iter(descendants(strace.pid)), None),
            timeout_s=30,
            message="the traced supervisor",
        )
        seen: set[int] = set()

        def measured() -> bool:
            seen.update(descendants(strace.pid))
            status, text = get(base, "/metrics")
            return status == 200 and 'netwatch_rounds_total{kind="icmp"}' in text

        wait_until(measured, timeout_s=120, interval_s=0.5, message="a traced ICMP round")
        os.kill(supervisor, signal.SIGTERM)  # the stop path is traced too
        assert strace.wait(timeout=60) == 0, (tmp_path / "run.log").read_text()
        kill_all({p for p in seen if alive(p)})
    assert "supervisor stopped status=0" in (tmp_path / "run.log").read_text()
    used: set[str] = set()
    for line in trace.read_text(errors="replace").splitlines():
        call = re.match(r"^\d+\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()", line)
        if call:
            used.add(call.group(1) or call.group(2))
    assert {"socket", "execve", "clone3"} & used  # the trace is real
    assert used - _syscall_group("@system-service") == set()


@pytest.mark.parametrize(
    "unit",
    [
        "netwatch.service",
        "netwatch-core.service",
        "netwatch-probe@.service",
        "netwatch-web@.service",
    ],
)
def test_systemctl_reload_sends_sighup_which_reloads_the_inventory(unit: str) -> None:
    """`systemctl reload netwatch` is how an operator applies an edited inventory
    (docs/configuration.md, "Reloading the configuration"): SIGHUP to the main process."""
    text = (DEPLOY / unit).read_text()
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", text, flags=re.MULTILINE)
