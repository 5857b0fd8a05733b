"""The Lab: build, inspect, break, repair and remove a lab network (state kept as JSON)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import fcntl
import json
import os
import secrets as secrets_module
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query

import netwatch

from . import config, faults, network, pki, snmpd
from .faults import ActiveFault, FaultKind
from .files import Under
from .netns import (
    LAB_MARKER_ENV,
    LabError,
    capabilities_ok,
    ip_batch,
    ip_batches_parallel,
    kill_pids,
    list_namespaces,
    marked_pids,
    nft_tables,
    pid_alive,
    pids_in_namespaces,
    read_pidfile,
    root_links,
    root_routes,
    run,
    spawn_detached,
    write_sysctls,
)
from .portal import PortalControl, PortalMode, write_control
from .snmpd import SnmpSecrets
from .topology import (
    CommunePlan,
    LabPlan,
    LinkPlan,
    build_plan,
    lab_prefix,
    ns_prefix,
    plan_from_json,
)

STATE_VERSION = 1
DEFAULT_COMMUNES = 5
NOT_PRIVILEGED = (
    "The NetWatch lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to build network "
    "namespaces; run it as root, e.g. with sudo."
)


@dataclass(frozen=True, slots=True)
class LabPaths:
    """Files of a lab under its state dir."""

    state_dir: Path

    state_file = Under("state_dir", "state.json", "The JSON plan and state.")
    config_file = Under(
        "state_dir", "netwatch.yaml", "The NetWatch inventory written for this lab."
    )
    env_file = Under("state_dir", "lab.env", "The secrets as NAME=value lines.")
    portal_control = Under(
        "state_dir", "portal-control.json", "The control file the portal reads on each request."
    )
    logs = Under("state_dir", "logs", "Log files of the lab's processes.")
    run_dir = Under("state_dir", "run", "Pidfiles.")

    @property
    def tls(self) -> pki.TlsFiles:
        """The lab's test CA and the portal's certificate and key."""
        return pki.tls_files(self.state_dir)

    @property
    def ca_file(self) -> Path:
        """The lab's test CA certificate."""
        return self.tls.ca_cert


@dataclass(frozen=True, slots=True)
class LabState:
    """What a built lab is, as saved in state.json."""

    plan: LabPlan
    secrets: SnmpSecrets
    created_at: dt.datetime
    faults: tuple[ActiveFault, ...] = ()
    pids: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "version": STATE_VERSION,
            "created_at": self.created_at.isoformat(),
            "plan": self.plan.to_json(),
            "secrets": dataclasses.asdict(self.secrets),
            "faults": [
                {"kind": f.kind.value, "target": f.target, "link": f.link, "value": f.value}
                for f in self.faults
            ],
            "pids": dict(self.pids),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> LabState:
        """Inverse of `to_json`."""
        return LabState(
            plan=plan_from_json(data["plan"]),
            secrets=SnmpSecrets(**data["secrets"]),
            created_at=dt.datetime.fromisoformat(data["created_at"]),
            faults=tuple(
                ActiveFault(FaultKind(f["kind"]), f["target"], f["link"], f["value"])
                for f in data["faults"]
            ),
            pids={str(k): int(v) for k, v in data["pids"].items()},
        )


@dataclass(frozen=True, slots=True)
class UpResult:
    """What `up()` built and where its files are."""

    plan: LabPlan
    paths: LabPaths
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What of a lab still exists on the machine; all empty after a clean `down()`."""

    namespaces: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    nft_tables: tuple[str, ...] = ()
    pids: tuple[int, ...] = ()

    @property
    def clean(self) -> bool:
        """True when nothing is left."""
        return not (self.namespaces or self.links or self.routes or self.nft_tables or self.pids)


@dataclass(frozen=True, slots=True)
class DownResult:
    """Outcome of `down()`: what was removed, what (if anything) is left, how long it took."""

    removed_namespaces: int
    killed_processes: int
    leftovers: Leftovers
    elapsed_s: float


class FaultProblem(enum.Enum):
    """Why a fault request was not applied."""

    NOT_UP = "the lab is not up"
    UNKNOWN_COMMUNE = "no such commune in the lab"
    UNKNOWN_LINK = "no such link on this commune"
    UNKNOWN_UPSTREAM = "no such upstream node in the lab"
    BAD_VALUE = "value out of range"


@dataclass(frozen=True, slots=True)
class FaultResult:
    """Outcome of one fault or restore request."""

    action: str
    problem: FaultProblem | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the request was applied."""
        return self.problem is None


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """One process the lab runs."""

    name: str
    namespace: str
    pid: int | None
    alive: bool


@dataclass(frozen=True, slots=True)
class LabStatus:
    """What `status()` finds: the plan, live processes and active faults."""

    index: int
    up: bool
    state: LabState | None
    namespaces_present: tuple[str, ...]
    processes: tuple[ProcessStatus, ...]


class Lab:
    """A lab network of index `index` whose plan and state live in `state_dir`."""

    def __init__(self, index: int = 0, state_dir: Path | None = None) -> None:
        lab_prefix(index)  # validates the index
        self.index = index
        # Absolute: the lab's processes run with the state dir as their working directory.
        directory = state_dir if state_dir is not None else default_state_dir(index)
        self.paths = LabPaths(directory.resolve())

    # ------------------------------------------------------------------ state
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # One lock per index, not per state dir: two state dirs of one index share a network.
        lock_dir = Path("/run/lock")
        if not lock_dir.is_dir():
            lock_dir = Path("/tmp")  # noqa: S108 - fallback on systems without /run/lock
        with (lock_dir / f"netwatch-lab{self.index}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load_state(self) -> LabState | None:
        """The saved state, or None when the lab is not up (or the file is unreadable)."""
        try:
            data = json.loads(self.paths.state_file.read_text(encoding="utf-8"))
            return LabState.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_state(self, state: LabState) -> None:
        tmp = self.paths.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state.to_json(), handle, ensure_ascii=False, indent=1)
        os.replace(tmp, self.paths.state_file)

    @property
    def state(self) -> LabState:
        """The saved state; LabError when the lab is not up."""
        state = self.load_state()
        if state is None:
            raise LabError(f"lab {self.index} is not up (no state in {self.paths.state_dir})")
        return state

    @property
    def plan(self) -> LabPlan:
        """The plan of the running lab."""
        return self.state.plan

    @property
    def secrets(self) -> SnmpSecrets:
        """The SNMP credentials of the running lab."""
        return self.state.secrets

    @property
    def _marker(self) -> str:
        # The value of LAB_MARKER_ENV on this lab's processes; also its nftables name prefix.
        return f"nwl{self.index}"

    def child_env(self) -> dict[str, str]:
        """Environment for processes the lab starts: marked, and able to import netwatch."""
        env = dict(os.environ)
        env[LAB_MARKER_ENV] = self._marker
        source_root = str(Path(netwatch.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (source_root, env.get("PYTHONPATH", "")) if p
        )
        return env

    # ------------------------------------------------------------------ up / down
    def up(
        self, communes: int = DEFAULT_COMMUNES, mail: config.MailSetup | None = None
    ) -> UpResult:
        """Build the lab (removing leftovers of the same index first); LabError on failure.

        With `mail`, the lab's inventory also notifies: its contacts are mailed through that SMTP
        server (the demo's catcher) with ticket links signed by a new secret in `lab.env`.
        """
        if not capabilities_ok():
            raise LabError(NOT_PRIVILEGED)
        start = time.monotonic()
        plan = build_plan(self.index, communes)
        self.down()
        with self._lock():
            try:
                state = self._build(plan, mail)
                self._save_state(state)
            except BaseException:
                self._teardown()
                raise
        return UpResult(plan, self.paths, time.monotonic() - start)

    def _build(self, plan: LabPlan, mail: config.MailSetup | None) -> LabState:
        paths = self.paths
        # A new lab gets new secrets: persistent snmpd state (localized keys) must not survive.
        shutil.rmtree(paths.state_dir / "snmpd", ignore_errors=True)
        for directory in (paths.state_dir, paths.logs, paths.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        secrets = SnmpSecrets(
            community=f"nwlab-{secrets_module.token_hex(6)}",
            user="netwatch",
            auth_key=secrets_module.token_hex(12),
            priv_key=secrets_module.token_hex(12),
        )
        tls = pki.issue_lab_tls(paths.state_dir, plan.portal.hostname, plan.portal.address)
        write_control(paths.portal_control, PortalControl(PortalMode.OK, 0.0))
        snmpd_targets = [
            (c.namespace, snmpd.write_files(paths.state_dir, c, secrets)) for c in plan.communes
        ]
        env = self.child_env()

        ip_batch([f"netns add {ns}" for ns in plan.namespaces])
        write_sysctls(network.sysctls(plan))
        ip_batch(network.create_lines(plan) + network.root_lines(plan))
        ip_batches_parallel(network.namespace_batches(plan))
        snmpd.start_many(snmpd_targets, env)
        pids = self._start_portal(plan, tls, env)
        self._wait_portal(plan)

        config.write_inventory(paths.config_file, plan, secrets, tls.ca_cert, mail)
        link_secret = secrets_module.token_hex(16) if mail is not None else None
        config.write_env(paths.env_file, secrets, link_secret)
        return LabState(plan, secrets, dt.datetime.now(dt.UTC), (), pids)

    def _start_portal(
        self, plan: LabPlan, tls: pki.TlsFiles, env: Mapping[str, str]
    ) -> dict[str, int]:
        portal = plan.portal
        paths = self.paths
        portal_pid = spawn_detached(
            portal.namespace,
            [
                sys.executable, "-m", "netwatch.lab.portal",
                "--host", portal.address, "--port", str(portal.port),
                "--cert", str(tls.server_cert), "--key", str(tls.server_key),
                "--control", str(paths.portal_control),
            ],
            log_path=paths.logs / "portal.log",
            pid_path=paths.run_dir / "portal.pid",
            env=env,
            cwd=paths.state_dir,
        )  # fmt: skip
        dns_pid = spawn_detached(
            portal.namespace,
            [
                sys.executable, "-m", "netwatch.lab.dns",
                "--host", portal.dns_address, "--zone", portal.dns_zone,
                "--record", f"{portal.hostname}={portal.address}",
                "--record", f"ns.{portal.dns_zone}={portal.dns_address}",
            ],
            log_path=paths.logs / "dns.log",
            pid_path=paths.run_dir / "dns.pid",
            env=env,
            cwd=paths.state_dir,
        )  # fmt: skip
        return {"portal": portal_pid, "dns": dns_pid}

    def _wait_portal(self, plan: LabPlan, timeout_s: float = 20.0) -> None:
        portal = plan.portal
        deadline = time.monotonic() + timeout_s
        https_ok = dns_ok = False
        query = dns.message.make_query(portal.hostname, "A")
        while time.monotonic() < deadline and not (https_ok and dns_ok):
            if not https_ok:
                try:
                    with socket.create_connection((portal.address, portal.port), timeout=0.5):
                        https_ok = True
                except OSError:
                    pass
            if not dns_ok:
                try:
                    dns.query.udp(query, portal.dns_address, timeout=0.5)
                    dns_ok = True
                except (OSError, dns.exception.DNSException):
                    pass
            if not (https_ok and dns_ok):
                time.sleep(0.05)
        if not https_ok:
            raise LabError(f"the portal did not start (see {self.paths.logs / 'portal.log'})")
        if not dns_ok:
            raise LabError(f"the lab DNS did not start (see {self.paths.logs / 'dns.log'})")

    def down(self) -> DownResult:
        """Remove everything of this lab index, with or without a state file."""
        if not capabilities_ok():
            raise LabError(NOT_PRIVILEGED)
        with self._lock():
            return self._teardown()

    def _teardown(self) -> DownResult:
        start = time.monotonic()
        prefix = ns_prefix(self.index)
        namespaces = list_namespaces(prefix)
        pids = self._pids(namespaces)
        kill_pids(pids)
        if namespaces:
            ip_batch([f"netns del {ns}" for ns in namespaces], force=True)
        links = root_links(prefix)
        if links:
            ip_batch([f"link del {name}" for name in links], force=True)
        net = str(lab_prefix(self.index))
        for route in root_routes(net):
            run(["ip", "route", "del", *route.split()], check=False)
        for family, table in nft_tables(f"{self._marker}_"):
            run(["nft", "delete", "table", family, table], check=False)
        self.paths.state_file.unlink(missing_ok=True)
        return DownResult(len(namespaces), len(pids), self.leftovers(), time.monotonic() - start)

    def leftovers(self) -> Leftovers:
        """What of this lab index exists on the machine right now."""
        prefix = ns_prefix(self.index)
        namespaces = list_namespaces(prefix)
        return Leftovers(
            namespaces=tuple(namespaces),
            links=tuple(root_links(prefix)),
            routes=tuple(root_routes(str(lab_prefix(self.index)))),
            nft_tables=tuple(f"{f} {t}" for f, t in nft_tables(f"{self._marker}_")),
            pids=tuple(sorted(p for p in self._pids(namespaces) if pid_alive(p))),
        )

    def _pids(self, namespaces: list[str]) -> set[int]:
        # Inside the namespaces, or marked: a killed run may have left marked processes whose
        # namespace is already gone.
        return set(pids_in_namespaces(namespaces)) | set(marked_pids(self._marker))

    def status(self) -> LabStatus:
        """The saved state plus what is actually running."""
        state = self.load_state()
        present = tuple(list_namespaces(ns_prefix(self.index)))
        processes: list[ProcessStatus] = []
        if state is not None:
            for commune in state.plan.communes:
                pid = read_pidfile(snmpd.files_for(self.paths.state_dir, commune).pidfile)
                alive = pid is not None and pid_alive(pid)
                processes.append(
                    ProcessStatus(f"snmpd {commune.code}", commune.namespace, pid, alive)
                )
            for name, pid in sorted(state.pids.items()):
                processes.append(ProcessStatus(name, "", pid, pid_alive(pid)))
        return LabStatus(
            self.index, state is not None and bool(present), state, present, tuple(processes)
        )

    # ------------------------------------------------------------------ faults
    @contextlib.contextmanager
    def _faulting(self) -> Iterator[LabState | None]:
        with self._lock():
            yield self.load_state()

    def _resolve(
        self, state: LabState | None, code: int, link_id: str | None, action: str
    ) -> tuple[LabState, CommunePlan, tuple[LinkPlan, ...]] | FaultResult:
        if state is None:
            return FaultResult(action, FaultProblem.NOT_UP, str(self.paths.state_dir))
        commune = state.plan.commune(code)
        if commune is None:
            known = ", ".join(str(c.code) for c in state.plan.communes)
            return FaultResult(action, FaultProblem.UNKNOWN_COMMUNE, f"lab communes: {known}")
        if link_id is None:
            return state, commune, commune.links
        link = commune.link(link_id)
        if link is None:
            known = ", ".join(lk.id for lk in commune.links)
            return FaultResult(action, FaultProblem.UNKNOWN_LINK, f"links of {code}: {known}")
        return state, commune, (link,)

    def _on_links(
        self,
        code: int,
        link_id: str | None,
        action: str,
        apply: Callable[[LabState, CommunePlan, tuple[LinkPlan, ...]], object],
    ) -> FaultResult:
        """Under the lock, `apply` a fault to the commune's links (all, or only link_id)."""
        with self._faulting() as state:
            found = self._resolve(state, code, link_id, action)
            if isinstance(found, FaultResult):
                return found
            apply(*found)
            return FaultResult(action)

    def _record(
        self,
        state: LabState,
        add: tuple[ActiveFault, ...] = (),
        *,
        drop: Callable[[ActiveFault], bool] | None = None,
        pids: Mapping[str, int | None] | None = None,
    ) -> LabState:
        """Save the state with faults added/dropped and pids set/removed; return what was saved."""
        kept = tuple(f for f in state.faults if drop is None or not drop(f))
        new_keys = {(f.kind, f.target, f.link) for f in add}
        kept = tuple(f for f in kept if (f.kind, f.target, f.link) not in new_keys) + add
        new_pids = dict(state.pids)
        for key, value in (pids or {}).items():
            if value is None:
                new_pids.pop(key, None)
            else:
                new_pids[key] = value
        saved = dataclasses.replace(state, faults=kept, pids=new_pids)
        self._save_state(saved)
        return saved

    def commune_down(self, code: int, link_id: str | None = None) -> FaultResult:
        """Take the commune's WAN link(s) down."""
        action = f"commune {code} down" + (f" --link {link_id}" if link_id else "")

        def down(state: LabState, _: CommunePlan, links: tuple[LinkPlan, ...]) -> None:
            for link in links:
                faults.link_down(state.plan, link)
            self._record(
                state,
                tuple(ActiveFault(FaultKind.LINK_DOWN, str(code), lk.id) for lk in links),
            )

        return self._on_links(code, link_id, action, down)

    def commune_loss(self, code: int, percent: float, link_id: str | None = None) -> FaultResult:
        """Drop `percent` % of packets arriving at the commune router on its WAN link(s)."""
        action = f"commune {code} loss {percent:g} %" + (f" --link {link_id}" if link_id else "")
        if not 0 <= percent <= 100:
            return FaultResult(action, FaultProblem.BAD_VALUE, "loss is a percentage, 0 to 100")

        def loss(state: LabState, commune: CommunePlan, links: tuple[LinkPlan, ...]) -> None:
            for link in links:
                faults.link_loss(commune, link, percent)
            self._record(
                state,
                tuple(ActiveFault(FaultKind.LOSS, str(code), lk.id, percent) for lk in links),
            )

        return self._on_links(code, link_id, action, loss)

    def commune_congest(self, code: int, link_id: str | None = None) -> FaultResult:
        """Shape the WAN link(s) at their contracted rate and saturate them with load."""
        action = f"commune {code} congest" + (f" --link {link_id}" if link_id else "")

        def congest(state: LabState, commune: CommunePlan, links: tuple[LinkPlan, ...]) -> None:
            env = self.child_env()
            new_pids: dict[str, int | None] = {}
            for link in links:
                key = faults.load_key(commune, link)
                new_pids[key] = faults.link_congest(
                    state.plan,
                    commune,
                    link,
                    running_pid=state.pids.get(key),
                    env=env,
                    paths=self.paths,
                )
            self._record(
                state,
                tuple(ActiveFault(FaultKind.CONGEST, str(code), lk.id) for lk in links),
                pids=new_pids,
            )

        return self._on_links(code, link_id, action, congest)

    def commune_power_loss(self, code: int) -> FaultResult:
        """The commune centre loses power: WAN links dark, router, agent box and devices gone
        (interfaces down, their processes SIGSTOPped). `commune_restore`/`restore` undo it."""
        action = f"power-loss {code}"

        def power_off(state: LabState, commune: CommunePlan, _: tuple[LinkPlan, ...]) -> None:
            faults.power_loss(state.plan, commune)
            self._record(state, (ActiveFault(FaultKind.POWER_LOSS, str(code)),))

        return self._on_links(code, None, action, power_off)

    def commune_portal_slow(
        self, code: int, delay_s: float, link_id: str | None = None
    ) -> FaultResult:
        """The portal answers the commune's agent `delay_s` late over its path(s) (all, or the
        path of `link_id` only); every other client (the centre, other communes) is served as
        before. The global `portal_slow` is independent of it."""
        action = f"portal-slow {delay_s:g} --commune {code}" + (
            f" --link {link_id}" if link_id else ""
        )
        if not 0 <= delay_s <= 600:
            return FaultResult(action, FaultProblem.BAD_VALUE, "delay is 0 to 600 s")

        def slow(state: LabState, commune: CommunePlan, links: tuple[LinkPlan, ...]) -> None:
            box = commune.box
            if box is None:
                raise LabError(f"commune {code} has no agent box (a lab built before it existed)")
            paths = [p for lk in links if (p := box.path(lk.id)) is not None]
            faults.portal_source_delays(
                self.paths.portal_control, {p.source: delay_s for p in paths}
            )
            self._record(
                state,
                tuple(ActiveFault(FaultKind.PATH_SLOW, str(code), p.link, delay_s) for p in paths),
            )

        return self._on_links(code, link_id, action, slow)

    def commune_restore(self, code: int) -> FaultResult:
        """Undo every fault on a commune (all its links) and make sure its snmpd runs."""
        return self._restore_then(code, f"commune {code} restore")

    def _restore_then(
        self,
        code: int,
        action: str,
        then: Callable[[LabState, CommunePlan], object] | None = None,
    ) -> FaultResult:
        """Restore a commune fully, then (under the same lock) do `then` to it."""

        def restore(state: LabState, commune: CommunePlan, _: tuple[LinkPlan, ...]) -> None:
            self._restore_commune(state, commune)
            if then is not None:
                then(state, commune)

        return self._on_links(code, None, action, restore)

    def _restore_commune(self, state: LabState, commune: CommunePlan) -> LabState:
        cleared: dict[str, int | None] = {}
        for link in commune.links:
            key = faults.load_key(commune, link)
            faults.link_restore(state.plan, commune, link, state.pids.get(key))
            cleared[key] = None
        faults.power_restore(state.plan, commune)
        if commune.box is not None:
            faults.portal_source_delays(
                self.paths.portal_control, dict.fromkeys(commune.box.sources)
            )
        files = snmpd.files_for(self.paths.state_dir, commune)
        if not snmpd.running(files):
            snmpd.start_many([(commune.namespace, files)], self.child_env())
        return self._record(state, drop=lambda f: f.target == str(commune.code), pids=cleared)

    def commune_reboot(self, code: int, downtime_s: float = 5.0) -> FaultResult:
        """Reboot the commune router: links gone for `downtime_s`, counters and uptime reset."""
        action = f"commune {code} reboot"
        if not 0 <= downtime_s <= 600:
            return FaultResult(action, FaultProblem.BAD_VALUE, "downtime is 0 to 600 s")

        def reboot(state: LabState, commune: CommunePlan) -> None:
            faults.reboot(
                state.plan,
                commune,
                files=snmpd.files_for(self.paths.state_dir, commune),
                downtime_s=downtime_s,
                env=self.child_env(),
            )

        return self._restore_then(code, action, reboot)

    def monitor_cut(self) -> FaultResult:
        """Cut NetWatch's own line (the monitor side off the lab's core)."""
        return self._monitor(cut=True)

    def monitor_restore(self) -> FaultResult:
        """Reconnect the monitor side."""
        return self._monitor(cut=False)

    def _monitor(self, *, cut: bool) -> FaultResult:
        action = f"monitor {'cut' if cut else 'restore'}"
        with self._faulting() as state:
            if state is None:
                return FaultResult(action, FaultProblem.NOT_UP, str(self.paths.state_dir))
            if cut:
                faults.monitor_cut(state.plan)
                self._record(state, (ActiveFault(FaultKind.MONITOR_CUT, "monitor"),))
            else:
                faults.monitor_restore(state.plan)
                self._record(state, drop=lambda f: f.kind is FaultKind.MONITOR_CUT)
            return FaultResult(action)

    def upstream_down(self, upstream_id: str) -> FaultResult:
        """Cut an upstream node (and so every commune link behind it) off from the core."""
        return self._upstream(upstream_id, down=True)

    def upstream_restore(self, upstream_id: str) -> FaultResult:
        """Reconnect an upstream node."""
        return self._upstream(upstream_id, down=False)

    def _upstream(self, upstream_id: str, *, down: bool) -> FaultResult:
        action = f"upstream {upstream_id} {'down' if down else 'restore'}"
        with self._faulting() as state:
            if state is None:
                return FaultResult(action, FaultProblem.NOT_UP, str(self.paths.state_dir))
            upstream = state.plan.upstream(upstream_id)
            if upstream is None:
                known = ", ".join(u.id for u in state.plan.upstreams)
                return FaultResult(action, FaultProblem.UNKNOWN_UPSTREAM, f"nodes: {known}")
            if down:
                faults.upstream_down(state.plan, upstream)
                self._record(state, (ActiveFault(FaultKind.UPSTREAM_DOWN, upstream_id),))
            else:
                faults.upstream_restore(state.plan, upstream)
                self._record(
                    state,
                    drop=lambda f: f.kind is FaultKind.UPSTREAM_DOWN and f.target == upstream_id,
                )
            return FaultResult(action)

    def portal_slow(self, delay_s: float) -> FaultResult:
        """Make every portal response wait `delay_s` before the first byte."""
        action = f"portal slow {delay_s:g} s"
        if not 0 <= delay_s <= 600:
            return FaultResult(action, FaultProblem.BAD_VALUE, "delay is 0 to 600 s")
        return self._portal(
            action, PortalControl(PortalMode.SLOW, delay_s),
            ActiveFault(FaultKind.PORTAL_SLOW, "portal", None, delay_s),
        )  # fmt: skip

    def portal_error(self) -> FaultResult:
        """Make the portal answer HTTP 503."""
        return self._portal(
            "portal error", PortalControl(PortalMode.ERROR, 0.0),
            ActiveFault(FaultKind.PORTAL_ERROR, "portal"),
        )  # fmt: skip

    def portal_down(self) -> FaultResult:
        """Drop connections to the portal (clients time out)."""
        return self._portal("portal down", None, ActiveFault(FaultKind.PORTAL_DOWN, "portal"))

    def _portal(
        self, action: str, control: PortalControl | None, fault: ActiveFault
    ) -> FaultResult:
        with self._faulting() as state:
            if state is None:
                return FaultResult(action, FaultProblem.NOT_UP, str(self.paths.state_dir))
            drop: Callable[[ActiveFault], bool] | None = None
            if control is None:
                faults.portal_down(state.plan)
            else:
                faults.portal_control(self.paths.portal_control, control)
                # Slow and error replace each other; a dropped portal stays dropped.
                modes = {FaultKind.PORTAL_SLOW, FaultKind.PORTAL_ERROR}
                drop = lambda f: f.kind in modes  # noqa: E731
            self._record(state, (fault,), drop=drop)
            return FaultResult(action)

    def portal_restore(self) -> FaultResult:
        """Portal healthy again (and its processes restarted if they died)."""
        action = "portal restore"
        with self._faulting() as state:
            if state is None:
                return FaultResult(action, FaultProblem.NOT_UP, str(self.paths.state_dir))
            self._restore_portal(state)
            return FaultResult(action)

    def _restore_portal(self, state: LabState) -> LabState:
        faults.portal_up(state.plan, self.paths.portal_control)
        pids: dict[str, int | None] = {}
        if not all(pid_alive(state.pids.get(k, 0)) for k in ("portal", "dns")):
            kill_pids([state.pids.get(k, 0) for k in ("portal", "dns")])
            pids.update(self._start_portal(state.plan, self.paths.tls, self.child_env()))
            self._wait_portal(state.plan)
        # The portal healthy again also for every commune's path (per-source delays cleared).
        healthy = {FaultKind.PATH_SLOW}
        return self._record(
            state, drop=lambda f: f.target == "portal" or f.kind in healthy, pids=pids
        )

    def restore(self) -> FaultResult:
        """Undo every fault in the lab."""
        action = "restore"
        with self._faulting() as state:
            if state is None:
                return FaultResult(action, FaultProblem.NOT_UP, str(self.paths.state_dir))
            faulted = {f.target for f in state.faults}
            for commune in state.plan.communes:
                loads = (faults.load_key(commune, link) in state.pids for link in commune.links)
                if str(commune.code) in faulted or any(loads):
                    state = self._restore_commune(state, commune)
            # Re-applying the whole routed core is cheap and also repairs hand-made damage
            # (a root-side link set down in a test, a route deleted by someone).
            plan = state.plan
            ip_batch(network.root_lines(plan))
            core = {plan.core_namespace: network.core_lines(plan)}
            core |= {u.namespace: network.upstream_lines(plan, u) for u in plan.upstreams}
            ip_batches_parallel(core)
            stopped = [
                (c.namespace, files)
                for c in plan.communes
                if not snmpd.running(files := snmpd.files_for(self.paths.state_dir, c))
            ]
            if stopped:
                snmpd.start_many(stopped, self.child_env())
            state = self._restore_portal(state)
            self._save_state(dataclasses.replace(state, faults=()))
            return FaultResult(action)


def default_state_dir(index: int) -> Path:
    """data/lab{index} under the current directory."""
    return Path.cwd() / "data" / f"lab{index}"
