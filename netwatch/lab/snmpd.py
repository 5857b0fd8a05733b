"""One net-snmp `snmpd` per commune router, each with its own config, state and logs.

Nothing under /etc/snmp or /var/lib/snmp is read or written: `-C` skips the default config
files and `--persistentDir` keeps engineBoots and the localized v3 keys in the lab's state dir.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .files import Under
from .netns import LabError, kill_pids, pid_alive, read_pidfile
from .topology import CommunePlan


@dataclass(frozen=True, slots=True)
class SnmpSecrets:
    """The lab's SNMP credentials (v2c community and one v3 authPriv SHA/AES user)."""

    community: str
    user: str
    auth_key: str
    priv_key: str


@dataclass(frozen=True, slots=True)
class SnmpdFiles:
    """Where one router's snmpd keeps its files."""

    directory: Path

    config = Under("directory", "snmpd.conf", "The snmpd.conf given with -c.")
    persist_dir = Under("directory", "persist", "The persistent dir (engineBoots, usmUser).")
    pidfile = Under("directory", "snmpd.pid", "The pidfile written by snmpd.")
    log = Under("directory", "snmpd.log", "The log file.")


def files_for(state_dir: Path, commune: CommunePlan) -> SnmpdFiles:
    """The files of this commune's snmpd under the lab state dir."""
    return SnmpdFiles(state_dir / "snmpd" / str(commune.code))


def render_config(commune: CommunePlan, secrets: SnmpSecrets) -> str:
    """snmpd.conf for one commune router: bound to its own link addresses only."""
    agent = ",".join(f"udp:{link.router_address}:161" for link in commune.links)
    return "\n".join(
        [
            f"agentAddress {agent}",
            f"rocommunity {secrets.community} default",
            f'createUser {secrets.user} SHA "{secrets.auth_key}" AES "{secrets.priv_key}"',
            f"rouser {secrets.user} authpriv",
            f"sysName r{commune.code}.lab.netwatch.vn",
            f"sysLocation {commune.name}, {commune.province_name}",
            "sysContact noc@vnpt.example.invalid",
            "sysDescr NetWatch lab commune router (Linux netns, net-snmp)",
            "dontLogTCPWrappersConnects yes",
            "",
        ]
    )


def write_files(state_dir: Path, commune: CommunePlan, secrets: SnmpSecrets) -> SnmpdFiles:
    """Write this router's snmpd.conf and create its persistent dir."""
    files = files_for(state_dir, commune)
    files.persist_dir.mkdir(parents=True, exist_ok=True)
    files.config.write_text(render_config(commune, secrets), encoding="utf-8")
    files.config.chmod(0o600)
    return files


def _argv(files: SnmpdFiles) -> list[str]:
    configs = [str(files.config)]
    persistent = files.persist_dir / "snmpd.conf"
    # With -C snmpd skips its persistent file too; naming it keeps engineBoots counting reboots.
    if persistent.exists():
        configs.append(str(persistent))
    return [
        "snmpd",
        "-C",
        "-c",
        ",".join(configs),
        "-p",
        str(files.pidfile),
        "-Lf",
        str(files.log),
        f"--persistentDir={files.persist_dir}",
        # No MIB files: the agent needs none, and Debian's non-free MIBs are absent anyway.
        "-m",
        "",
        "-M",
        "/dev/null",
    ]


def start_many(
    targets: Sequence[tuple[str, SnmpdFiles]], env: Mapping[str, str], *, timeout_s: float = 20.0
) -> None:
    """Start snmpd in each (namespace, files) pair in parallel; snmpd daemonizes itself."""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    for namespace, files in targets:
        files.pidfile.unlink(missing_ok=True)
        argv = ["ip", "netns", "exec", namespace, *_argv(files)]
        log = files.directory / "snmpd.stderr"
        with log.open("ab") as err:
            procs.append(
                (
                    namespace,
                    subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=dict(env)
                    ),
                )
            )
    failed: list[str] = []
    for namespace, proc in procs:
        try:
            if proc.wait(timeout=timeout_s) != 0:
                failed.append(namespace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            failed.append(namespace)
    deadline = time.monotonic() + timeout_s
    for _, files in targets:
        while read_pidfile(files.pidfile) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if read_pidfile(files.pidfile) is None:
            failed.append(str(files.directory))
    if failed:
        raise LabError("snmpd did not start in: " + ", ".join(failed))


def stop(files: SnmpdFiles, *, grace_s: float = 3.0) -> None:
    """Stop one snmpd (SIGTERM lets it save engineBoots) and wait for it."""
    pid = read_pidfile(files.pidfile)
    if pid is not None and pid_alive(pid):
        kill_pids([pid], grace_s=grace_s)
    files.pidfile.unlink(missing_ok=True)


def running(files: SnmpdFiles) -> bool:
    """True when this snmpd's process is alive."""
    pid = read_pidfile(files.pidfile)
    return pid is not None and pid_alive(pid)
