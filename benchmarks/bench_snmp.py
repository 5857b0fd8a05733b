"""SNMP round benchmark: NetWatch's poller against snmp_exporter and snmpget on one AnyIP lab.

Run as root: `.venv/bin/python benchmarks/bench_snmp.py` (a few minutes). It builds namespace
nws-b (benchmarks/_snmp_lab.py) with one snmpd answering for 4,096 addresses, then runs three
interleaved repetitions of:

- NetWatch v2c round, fresh subprocess, 100 and 3,321 routers: one GET per router of the OIDs
  SnmpPoller.poll asks for two interfaces (sysUpTime + 8 per interface = 17 OIDs). Two rounds
  per process: the first builds each router's pre-encoded request, the second is the steady
  state every later round of a running NetWatch sees. CPU is the worker's process_time around
  each round (no interpreter start-up or imports); whole-process CPU is shown too.
- prometheus-snmp-exporter (Debian's 0.21) on the same 3,321 addresses, a module that GETs the
  same 17 OIDs, driven over keep-alive HTTP like shared/bench/drive_exporter.py; its CPU is read
  from /proc/PID/stat around the round.
- net-snmp snmpget spawned per router (100 routers), for reference.
- NetWatch SNMPv3 authPriv (SHA/AES) round at 100 and 1,000 routers: first round (engine-id
  discovery, two extra exchanges per router) and steady round.

`--compare` adds one run of pysnmp's own hlapi (v1arch v2c at 3,321; v3arch v3 at 1,000) for
the figures quoted in probes/snmp.py. Ends with one RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _snmp_lab as lab

EXPORTER_LISTEN = "127.0.0.1:16180"
EXPORTER_CONCURRENCY = 64
REPETITIONS = 3
HZ = os.sysconf("SC_CLK_TCK")


# --- worker: one fresh process per measured NetWatch round ------------------------------------


async def _worker(mode: str, count: int, if_indexes: tuple[int, ...]) -> dict[str, Any]:
    from probes.snmp import SnmpPoller, SnmpTarget, SnmpV2c, SnmpV3

    if mode == "v2c":
        creds: SnmpV2c | SnmpV3 = SnmpV2c(lab.COMMUNITY)
    else:
        user, _, auth_key, _, priv_key = lab.V3_USER
        creds = SnmpV3(user, "sha", auth_key, "aes", priv_key)
    targets = [SnmpTarget(a, creds, timeout_s=2.0, retries=1) for a in lab.router_addresses(count)]
    rounds = []
    async with await SnmpPoller.open(max_in_flight=256) as poller:
        for _ in range(2):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            samples = await asyncio.gather(*(poller.poll(t, if_indexes) for t in targets))
            cpu1, wall1 = time.process_time(), time.perf_counter()
            failed = [s for s in samples if s.failure is not None]
            rounds.append(
                {
                    "cpu_s": cpu1 - cpu0,
                    "wall_s": wall1 - wall0,
                    "failed": len(failed),
                    "why": failed[0].detail if failed else "",
                }
            )
    return {"rounds": rounds}


async def _hlapi_worker(mode: str, count: int, if_indexes: tuple[int, ...]) -> dict[str, Any]:
    """pysnmp's own hlapi on the same round (v1arch for v2c, v3arch for v3), for comparison."""
    from probes.snmp import _poll_oids

    oids = _poll_oids(if_indexes, 64)
    addresses = lab.router_addresses(count)
    limit = asyncio.Semaphore(256)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if mode == "v2c":
        from pysnmp.hlapi.v1arch.asyncio import (
            CommunityData,
            SnmpDispatcher,
            UdpTransportTarget,
            get_cmd,
        )

        dispatcher = SnmpDispatcher()

        async def one(address: str) -> bool:
            async with limit:
                transport = await UdpTransportTarget.create((address, 161), timeout=2, retries=1)
                err, status, _, _ = await get_cmd(
                    dispatcher, CommunityData(lab.COMMUNITY), transport,
                    *[(o, None) for o in oids], lookupMib=False,
                )  # fmt: skip
                return err is None and not status

        results = await asyncio.gather(*(one(a) for a in addresses))
        dispatcher.close()
    else:
        from pysnmp.hlapi.v3arch.asyncio import (
            ContextData,
            ObjectIdentity,
            ObjectType,
            SnmpEngine,
            UdpTransportTarget,
            UsmUserData,
            usmAesCfb128Protocol,
            usmHMACSHAAuthProtocol,
        )
        from pysnmp.hlapi.v3arch.asyncio import get_cmd as v3_get

        engine = SnmpEngine()
        user, _, auth_key, _, priv_key = lab.V3_USER
        auth = UsmUserData(user, auth_key, priv_key, usmHMACSHAAuthProtocol, usmAesCfb128Protocol)

        async def one(address: str) -> bool:
            async with limit:
                transport = await UdpTransportTarget.create((address, 161), timeout=2, retries=1)
                err, status, _, _ = await v3_get(
                    engine, auth, transport, ContextData(),
                    *[ObjectType(ObjectIdentity(o)) for o in oids], lookupMib=False,
                )  # fmt: skip
                return err is None and not status

        results = await asyncio.gather(*(one(a) for a in addresses))
        engine.close_dispatcher()
    cpu1, wall1 = time.process_time(), time.perf_counter()
    return {
        "rounds": [
            {
                "cpu_s": cpu1 - cpu0,
                "wall_s": wall1 - wall0,
                "failed": results.count(False),
                "why": "",
            }
        ]
    }


def run_worker(
    mode: str, count: int, if_indexes: tuple[int, ...], hlapi: bool = False
) -> dict[str, Any]:
    """Run one measured round in a fresh interpreter; returns its figures and whole-process CPU."""
    cmd = [sys.executable, __file__, "--worker", mode, str(count), *map(str, if_indexes)]
    if hlapi:
        cmd.append("--hlapi")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"worker {mode} {count} failed:\n{err.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(out)
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["maxrss_mb"] = usage.ru_maxrss / 1024
    return result


# --- snmp_exporter ------------------------------------------------------------------------------


def exporter_config(path: Path, if_indexes: tuple[int, ...]) -> None:
    """A snmp_exporter module GETting exactly the OIDs of SnmpPoller.poll for these interfaces."""
    from probes.snmp import _poll_oids

    oids = [".".join(map(str, o)) for o in _poll_oids(if_indexes, 64)]
    columns = sorted({o.rsplit(".", 1)[0] for o in oids[1:]})
    idx = [{"labelname": "ifIndex", "type": "gauge"}]
    metrics: list[dict[str, Any]] = [
        {"name": "sysUpTime", "oid": "1.3.6.1.2.1.1.3", "type": "gauge"}
    ]
    names = {
        "1.3.6.1.2.1.2.2.1.8": "ifOperStatus", "1.3.6.1.2.1.2.2.1.13": "ifInDiscards",
        "1.3.6.1.2.1.2.2.1.14": "ifInErrors", "1.3.6.1.2.1.2.2.1.19": "ifOutDiscards",
        "1.3.6.1.2.1.2.2.1.20": "ifOutErrors", "1.3.6.1.2.1.31.1.1.1.6": "ifHCInOctets",
        "1.3.6.1.2.1.31.1.1.1.10": "ifHCOutOctets",
        "1.3.6.1.2.1.31.1.1.1.19": "ifCounterDiscontinuityTime",
    }  # fmt: skip
    for col in columns:
        kind = (
            "gauge" if names[col] in ("ifOperStatus", "ifCounterDiscontinuityTime") else "counter"
        )
        metrics.append({"name": names[col], "oid": col, "type": kind, "indexes": idx})
    module = {
        "get": oids, "metrics": metrics, "version": 2, "max_repetitions": 25, "retries": 1,
        "timeout": "2s", "auth": {"community": lab.COMMUNITY},
    }  # fmt: skip
    path.write_text(yaml.safe_dump({"nws_poll": module}, sort_keys=False))


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


async def drive_exporter(targets: list[str]) -> dict[str, int]:
    """Probe each target once through the exporter, EXPORTER_CONCURRENCY at a time."""
    url = f"http://{EXPORTER_LISTEN}/snmp"
    counts = {"ok": 0, "fail": 0}
    queue = iter(targets)
    connector = aiohttp.TCPConnector(limit=EXPORTER_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for target in queue:
                params = {"module": "nws_poll", "target": target}
                try:
                    async with session.get(url, params=params) as rsp:
                        body = await rsp.text()
                        counts["ok" if "ifHCInOctets{" in body else "fail"] += 1
                except aiohttp.ClientError:
                    counts["fail"] += 1

        await asyncio.gather(*(worker() for _ in range(EXPORTER_CONCURRENCY)))
    return counts


def exporter_round(pid: int, targets: list[str]) -> dict[str, Any]:
    """One exporter round over targets; CPU of the exporter process only."""
    cpu0, wall0 = proc_cpu_s(pid), time.perf_counter()
    counts = asyncio.run(drive_exporter(targets))
    cpu1, wall1 = proc_cpu_s(pid), time.perf_counter()
    return {"cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0, "failed": counts["fail"]}


def start_exporter(workdir: Path, if_indexes: tuple[int, ...]) -> subprocess.Popen[bytes]:
    """Debian's prometheus-snmp-exporter with our module, on loopback; waits until it answers."""
    exe = "/usr/bin/prometheus-snmp-exporter"
    if not Path(exe).exists():
        raise SystemExit("missing: apt-get install -y prometheus-snmp-exporter")
    config = workdir / "snmp.yml"
    exporter_config(config, if_indexes)
    proc = subprocess.Popen(
        [exe, f"--config.file={config}", f"--web.listen-address={EXPORTER_LISTEN}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=(workdir / "exporter.log").open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "exporter.log").read_text())
        try:
            warm = exporter_round(proc.pid, lab.router_addresses(1))
        except OSError:
            time.sleep(0.2)
            continue
        if warm["failed"] == 0:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("snmp_exporter did not come up: " + (workdir / "exporter.log").read_text())


# --- snmpget --------------------------------------------------------------------------------


def snmpget_round(workdir: Path, targets: list[str], if_indexes: tuple[int, ...]) -> dict[str, Any]:
    """net-snmp's snmpget spawned once per router; CPU of the children."""
    from probes.snmp import _poll_oids

    oids = [".".join(map(str, o)) for o in _poll_oids(if_indexes, 64)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    failed = 0
    for target in targets:
        done = subprocess.run(
            ["snmpget", "-v2c", "-c", lab.COMMUNITY, "-t", "2", "-r", "1", "-On", target, *oids],
            capture_output=True, env=lab.netsnmp_env(workdir), check=False,
        )  # fmt: skip
        failed += done.returncode != 0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": time.perf_counter() - wall0, "failed": failed}


# --- USM with one engine-id per router (the lab's single snmpd has one) ----------------------


def usm_clone_round(count: int, indexed: bool) -> float:
    """CPU of what USM does on meeting count new engines: clone the user row, look it up."""
    from pyasn1.type import univ
    from pysnmp.entity import config, engine

    from probes.snmp_v3 import indexed_usm

    snmp_engine = engine.SnmpEngine()
    if indexed:
        snmp_engine.security_models[3] = indexed_usm()
    user, _, auth_key, _, priv_key = lab.V3_USER
    config.add_v3_user(
        snmp_engine, user, config.USM_AUTH_HMAC96_SHA, auth_key,
        config.USM_PRIV_CFB128_AES, priv_key,
    )  # fmt: skip
    usm = snmp_engine.security_models[3]
    (admin_string,) = snmp_engine.get_mib_builder().import_symbols(
        "SNMP-FRAMEWORK-MIB", "SnmpAdminString"
    )
    name = admin_string(user)
    sec2usr = usm._SnmpUSMSecurityModel__sec2usr
    clone = usm._SnmpUSMSecurityModel__clone_user_info
    cpu0 = time.process_time()
    for i in range(count):
        engine_id = univ.OctetString(b"\x80\x00\x1f\x88\x04" + i.to_bytes(4, "big"))
        clone(snmp_engine, engine_id, sec2usr(snmp_engine, name))
        if sec2usr(snmp_engine, name, engine_id) != name:
            raise RuntimeError("USM lookup after clone failed")
    return time.process_time() - cpu0


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    """Build the lab, run the interleaved repetitions, print the table and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also run pysnmp's hlapi once")
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    args = parser.parse_args()

    runs: dict[str, list[dict[str, Any]]] = {}

    def record(label: str, figures: dict[str, Any]) -> None:
        runs.setdefault(label, []).append(figures)

    exporter: subprocess.Popen[bytes] | None = None
    with lab.snmp_lab() as the_lab:
        try:
            idx = the_lab.if_indexes
            exporter = start_exporter(the_lab.workdir, idx)
            national = lab.router_addresses(3321)
            for rep in range(args.repetitions):
                print(f"repetition {rep + 1}/{args.repetitions} ...", flush=True)
                for count in (100, 3321):
                    result = run_worker("v2c", count, idx)
                    record(f"nw-v2c-{count}-first", result["rounds"][0] | result)
                    record(f"nw-v2c-{count}", result["rounds"][1] | result)
                record("exporter-3321", exporter_round(exporter.pid, national))
                record("snmpget-100", snmpget_round(the_lab.workdir, national[:100], idx))
                for count in (100, 1000):
                    result = run_worker("v3", count, idx)
                    record(f"nw-v3-{count}-first", result["rounds"][0] | result)
                    record(f"nw-v3-{count}", result["rounds"][1] | result)
                for count in (100, 1000):
                    for indexed in (True, False):
                        key = f"usm-{'indexed' if indexed else 'stock'}-{count}"
                        record(
                            key,
                            {"cpu_s": usm_clone_round(count, indexed), "wall_s": 0.0, "failed": 0},
                        )
            if args.compare:
                print("pysnmp hlapi comparison ...", flush=True)
                record(
                    "hlapi-v1arch-v2c-3321", run_worker("v2c", 3321, idx, hlapi=True)["rounds"][0]
                )
                record("hlapi-v3arch-v3-1000", run_worker("v3", 1000, idx, hlapi=True)["rounds"][0])
        finally:
            if exporter is not None:
                exporter.terminate()
                exporter.wait(timeout=10)

    rows = [
        ("nw-v2c-100", "NetWatch v2c, steady round", 100),
        ("nw-v2c-100-first", "NetWatch v2c, first round (builds requests)", 100),
        ("nw-v2c-3321", "NetWatch v2c, steady round", 3321),
        ("nw-v2c-3321-first", "NetWatch v2c, first round (builds requests)", 3321),
        ("exporter-3321", "snmp_exporter 0.21 (exporter CPU)", 3321),
        ("snmpget-100", "snmpget spawned per router", 100),
        ("nw-v3-100", "NetWatch v3 authPriv, steady round", 100),
        ("nw-v3-100-first", "NetWatch v3 authPriv, first round (discovery)", 100),
        ("nw-v3-1000", "NetWatch v3 authPriv, steady round", 1000),
        ("nw-v3-1000-first", "NetWatch v3 authPriv, first round (discovery)", 1000),
        ("usm-indexed-100", "USM clone+lookup, distinct engine-ids (ours)", 100),
        ("usm-indexed-1000", "USM clone+lookup, distinct engine-ids (ours)", 1000),
        ("usm-stock-100", "USM clone+lookup, distinct engine-ids (stock)", 100),
        ("usm-stock-1000", "USM clone+lookup, distinct engine-ids (stock)", 1000),
        ("hlapi-v1arch-v2c-3321", "pysnmp hlapi v1arch v2c (one run)", 3321),
        ("hlapi-v3arch-v3-1000", "pysnmp hlapi v3arch v3 (one run)", 1000),
    ]
    cpu = {k: statistics.median([r["cpu_s"] for r in v]) for k, v in runs.items()}
    print()
    print(f"SNMP round, one GET of 17 OIDs per router, medians of {args.repetitions} repetitions")
    header = (
        f"{'tool':<46} {'routers':>7} {'CPU s':>7} {'ms/router':>9} {'wall s':>7} "
        f"{'failed':>6} {'proc CPU s':>10}"
    )
    print(header)
    print("-" * len(header))
    for key, label, count in rows:
        if key not in runs:
            continue
        wall = statistics.median([r["wall_s"] for r in runs[key]])
        failed = max(r["failed"] for r in runs[key])
        proc = runs[key][0].get("process_cpu_s")
        proc_txt = (
            f"{statistics.median([r['process_cpu_s'] for r in runs[key]]):10.2f}"
            if proc
            else f"{'':>10}"
        )
        print(
            f"{label:<46} {count:>7} {cpu[key]:7.2f} {cpu[key] / count * 1e3:9.3f} "
            f"{wall:7.2f} {failed:>6} {proc_txt}"
        )
        why = next((r["why"] for r in runs[key] if r.get("why")), "")
        if why:
            print(f"    first failure: {why}")
    ratio = cpu["nw-v2c-3321"] / cpu["exporter-3321"]
    linearity = (cpu["nw-v2c-3321"] / 3321) / (cpu["nw-v2c-100"] / 100)
    v3_linearity = (cpu["nw-v3-1000"] / 1000) / (cpu["nw-v3-100"] / 100)
    print()
    print(
        f"first-round figures: ratio={cpu['nw-v2c-3321-first'] / cpu['exporter-3321']:.2f} "
        f"linearity={(cpu['nw-v2c-3321-first'] / 3321) / (cpu['nw-v2c-100-first'] / 100):.2f} "
        f"v3_linearity={(cpu['nw-v3-1000-first'] / 1000) / (cpu['nw-v3-100-first'] / 100):.2f}"
    )
    print(
        "USM per-engine CPU at 1,000 / at 100 distinct engine-ids: "
        f"ours {(cpu['usm-indexed-1000'] / 1000) / (cpu['usm-indexed-100'] / 100):.2f}, "
        f"stock pysnmp {(cpu['usm-stock-1000'] / 1000) / (cpu['usm-stock-100'] / 100):.2f}"
    )
    print(
        f"RESULT snmp ratio={ratio:.2f} linearity={linearity:.2f} v3_linearity={v3_linearity:.2f} "
        f"netwatch_cpu_s={cpu['nw-v2c-3321']:.2f} exporter_cpu_s={cpu['exporter-3321']:.2f}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, count = sys.argv[2], int(sys.argv[3])
        hlapi = sys.argv[-1] == "--hlapi"
        indexes = tuple(int(a) for a in sys.argv[4:] if a != "--hlapi")
        run = _hlapi_worker if hlapi else _worker
        print(json.dumps(asyncio.run(run(mode, count, indexes))))
    else:
        main()
