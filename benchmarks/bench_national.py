"""The whole national load under `netwatch run`: can NetWatch's processes carry the country?

Builds a national inventory from vietnam-provinces (3,321 communes, each with two WAN links and a
front-office device: ~10,000 ICMP targets; 3,321 routers polled by SNMP v2c; 34 upstream POPs;
two portals) on AnyIP addresses of a lab namespace (nwn-b, 10.93.0.0/16, no default route; root
holds a blackhole for the prefix), one Debian snmpd answering for every router address, and an
HTTPS portal stand-in on loopback. Then it starts the real CLI, `netwatch run --config X` (the
supervisor: a private nats-server, ICMP+HTTP probe workers, an SNMP worker, the alerting core
with the web), and, for comparison, `netwatch run --role all` (the single process of before),
each for --duration seconds after its first ICMP round at the national schedule (ICMP 5 echoes
every 30 s, SNMP every 60 s, portals every 60 s), /metrics scraped every 15 s as Prometheus would.

Measured (benchmarks/_netwatch_run.py, _proctree.py): CPU seconds of every process of the tree
(supervisor, nats-server, workers, core; sampled from /proc every 0.5 s, restarted children
counted) over wall seconds, the peak of their summed RSS, every probe worker's round reports read
off the bus (worst start lag and skipped slots per shard; --role all: its /metrics), and the time
to load and validate the configuration in a fresh process.

Run as root: .venv/bin/python benchmarks/bench_national.py [--duration 160] [--mode both]
Ends with: RESULT national skipped=<n> lag_s=<n> core_fraction=<CPU s / wall s> rss_mb=<n>
config_load_s=<n> ... and RESULT national_single ... (--role all)
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from benchmarks._netwatch_run import (  # noqa: E402
    Rounds,
    free_port,
    metric,
    netwatch_run,
    summarize,
    wait_for,
)

NAMESPACE = "nwn-b"
ROOT_IF, NS_IF = "nwn-bh", "nwn-bt"
PREFIX = "10.93.0.0/16"
ANYIP = ipaddress.ip_network("10.93.0.0/17")
LINK_ROOT, LINK_NS = "10.93.255.1/30", "10.93.255.2/30"
COMMUNITY = "nwn-bench-community"
PORTAL_PORT = 18490
SCRAPE_EVERY_S = 15.0


def _run(*args: str, check: bool = True) -> None:
    subprocess.run(list(args), check=check, capture_output=True)


def _down() -> None:
    _run("ip", "route", "del", "blackhole", PREFIX, "metric", "4000", check=False)
    _run("ip", "route", "del", PREFIX, check=False)
    _run("ip", "link", "del", ROOT_IF, check=False)
    for pid in subprocess.run(
        ["ip", "netns", "pids", NAMESPACE], capture_output=True, text=True, check=False
    ).stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    _run("ip", "netns", "del", NAMESPACE, check=False)


@contextlib.contextmanager
def national_lab(work: Path) -> Iterator[None]:
    """The AnyIP namespace with one snmpd; removed whatever happens."""
    _down()
    snmpd: subprocess.Popen[bytes] | None = None
    try:
        _run("ip", "netns", "add", NAMESPACE)
        _run("ip", "link", "add", ROOT_IF, "type", "veth", "peer", "name", NS_IF)
        _run("ip", "link", "set", NS_IF, "netns", NAMESPACE)
        _run("ip", "addr", "add", LINK_ROOT, "dev", ROOT_IF)
        _run("ip", "link", "set", ROOT_IF, "up")
        ns = ("ip", "-n", NAMESPACE)
        _run(*ns, "addr", "add", LINK_NS, "dev", NS_IF)
        _run(*ns, "link", "set", "lo", "up")
        _run(*ns, "link", "set", NS_IF, "up")
        _run(*ns, "route", "add", "local", str(ANYIP), "dev", "lo")
        _run("ip", "route", "add", PREFIX, "via", LINK_NS.split("/")[0], "dev", ROOT_IF)
        _run("ip", "route", "add", "blackhole", PREFIX, "metric", "4000")
        for knob in ("net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=1000000"):
            _run("ip", "netns", "exec", NAMESPACE, "sysctl", "-qw", knob, check=False)
        conf = work / "snmpd.conf"
        conf.write_text(
            "agentAddress udp:0.0.0.0:161\n"
            f"rocommunity {COMMUNITY} default\n"
            "sysName nwn-bench\n"
            # One agent answers for 3,321 routers: give bursts room (see bench_snmp).
            "[snmp] serverRecvBuf 4194304\n"
        )
        env = dict(os.environ, MIBS="", MIBDIRS="/nonexistent", SNMP_PERSISTENT_DIR=str(work))
        snmpd = subprocess.Popen(
            ["ip", "netns", "exec", NAMESPACE, "snmpd", "-f", "-C", "-c", str(conf), "-Lf",
             str(work / "snmpd.log"), "-p", str(work / "snmpd.pid")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        ask = ["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.3", "-r", "0"]
        ask += [str(next(ANYIP.hosts())), "1.3.6.1.2.1.1.3.0"]
        deadline = time.monotonic() + 20
        while subprocess.run(ask, capture_output=True, env=env, check=False).returncode:
            if time.monotonic() > deadline or snmpd.poll() is not None:
                raise RuntimeError("the lab snmpd did not answer")
            time.sleep(0.2)
        yield
    finally:
        if snmpd is not None:
            snmpd.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                snmpd.wait(timeout=5)
        _down()


def national_config(path: Path, ca_file: Path) -> tuple[int, int, int]:
    """Write the national inventory; return (communes, icmp targets, routers)."""
    from netwatch.inventory import Divisions

    divisions = Divisions()
    hosts = ANYIP.hosts()
    out = [
        "# Generated by benchmarks/bench_national.py: every commune of Vietnam.",
        "intervals: {icmp_s: 30, icmp_echoes: 5, snmp_s: 60, http_s: 60}",
        "isps:",
        "  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}",
        "  viettel: {name: Viettel, contacts: [{level: 1, name: NOC, email: noc@viettel.example}]}",
        "snmp_credentials:",
        '  national: {version: "2c", community: {env: NWN_BENCH_COMMUNITY}}',
        "portals:",
        f"  dvcqg: {{name: Cổng Dịch vụ công quốc gia, url: 'https://127.0.0.1:{PORTAL_PORT}/',"
        f" ca_file: '{ca_file}', expect_text: Dịch vụ công}}",
        f"  motcua: {{name: Hệ thống một cửa, url: 'https://127.0.0.1:{PORTAL_PORT}/motcua',"
        f" ca_file: '{ca_file}'}}",
        "upstreams:",
    ]
    for code in sorted(divisions.provinces):
        out.append(f"  pop-{code:02d}: {{name: POP {code:02d}, isp: vnpt, address: {next(hosts)}}}")
    out.append("communes:")
    targets = 34
    for commune in divisions.communes.values():
        wan1, wan2, kiosk = next(hosts), next(hosts), next(hosts)
        pop = f"pop-{commune.province_code:02d}"
        out += [
            f"  - code: {int(commune.code)}",
            f"    router: {{address: {wan1}, snmp: national}}",
            "    links:",
            f"      - {{id: vnpt-tslcd, isp: vnpt, circuit: T-{commune.code}, bandwidth_mbps: 100,"
            f" path: tslcd, address: {wan1}, upstream: {pop}, interface: lo}}",
            f"      - {{id: viettel-internet, isp: viettel, circuit: I-{commune.code},"
            f" bandwidth_mbps: 200, path: internet, address: {wan2}, interface: {NS_IF}}}",
            f"    devices: [{{name: Kiosk, kind: kiosk, address: {kiosk}}}]",
        ]
        targets += 3
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return len(divisions.communes), targets, len(divisions.communes)


def config_load(config: str) -> None:
    """The measured config load, in a fresh process: load and validate, compile the plan (what
    every NetWatch process does at start)."""
    from netwatch.inventory import load_inventory
    from netwatch.plan import compile_plan

    started = time.perf_counter()
    compile_plan(load_inventory(config))
    print(json.dumps({"config_load_s": time.perf_counter() - started}), flush=True)


@dataclass(slots=True)
class Run:
    """What one `netwatch run` under national load measured."""

    mode: str  # "split" (the supervisor) or "single" (--role all)
    wall_s: float = 0.0  # from the start of `netwatch run` to the stop request
    cpu_s: float = 0.0
    steady_wall_s: float = 0.0  # from the first ICMP round's report to the stop request
    steady_cpu_s: float = 0.0
    startup_s: float = 0.0  # start to the first ICMP round's report (every shard's)
    rss_mb: float = 0.0
    rounds: dict[str, Rounds] = field(default_factory=dict)  # split: from the bus, per shard
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # kind: family: value
    scraped_lag_s: float = 0.0  # the worst ICMP lag gauge seen by the 15 s scrapes
    scrape_bytes: int = 0
    restarts: int = 0
    processes: dict[str, tuple[float, float, int]] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        if self.rounds:
            return self.rounds["icmp"].skipped
        return int(self.metrics.get("icmp", {}).get("netwatch_rounds_skipped_total", 0))

    @property
    def lag_s(self) -> float:
        if self.rounds:
            return max(self.rounds["icmp"].worst_lag_s, self.scraped_lag_s)
        return self.scraped_lag_s

    @property
    def icmp_rounds(self) -> int:
        if self.rounds:
            return self.rounds["icmp"].slots
        return int(self.metrics.get("icmp", {}).get("netwatch_rounds_total", 0))


FAMILIES = (
    "netwatch_rounds_total",
    "netwatch_rounds_skipped_total",
    "netwatch_round_lag_seconds",
    "netwatch_round_duration_seconds",
)


def _families(text: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in ("icmp", "snmp", "http"):
        for name in FAMILIES:
            value = metric(text, name, kind)
            if value is not None:
                out.setdefault(kind, {})[name] = value
    return out


def measure(mode: str, config: Path, work: Path, duration_s: float, workers: int | None) -> Run:
    """Run `netwatch run` (mode "split": the supervisor; "single": --role all) for
    ``duration_s`` after its first ICMP round, scraping /metrics every 15 s as Prometheus
    would."""
    env = dict(os.environ, NWN_BENCH_COMMUNITY=COMMUNITY)
    extra = ("--probe-workers", str(workers)) if workers and mode == "split" else ()
    run = Run(mode)
    (work / mode).mkdir()
    port = free_port()
    role = None if mode == "split" else "all"
    with netwatch_run(config, work / mode, port, role=role, env=env, extra=extra) as nw:
        watch = nw.watch
        shards = workers or os.cpu_count() or 1

        def first_round() -> bool:
            if watch is not None:
                return len({r.shard for r in watch.of("icmp")}) >= shards
            return (metric(nw.scrape(), "netwatch_rounds_total") or 0) >= 1

        wait_for(nw, first_round, "a first national ICMP round")
        steady0, cpu0 = time.monotonic(), nw.tree.cpu_s()
        run.startup_s = steady0 - nw.started
        while time.monotonic() - steady0 < duration_s:
            time.sleep(min(SCRAPE_EVERY_S, max(0.0, duration_s - (time.monotonic() - steady0))))
            text = nw.scrape()
            run.scrape_bytes = len(text.encode())
            run.metrics = _families(text)
            lag = run.metrics.get("icmp", {}).get("netwatch_round_lag_seconds", 0.0)
            run.scraped_lag_s = max(run.scraped_lag_s, lag)
        nw.tree.sample()
        end = time.monotonic()
        run.wall_s, run.cpu_s = end - nw.started, nw.tree.cpu_s()
        run.steady_wall_s, run.steady_cpu_s = end - steady0, run.cpu_s - cpu0
        run.rss_mb = nw.tree.peak_rss_bytes / 2**20
        run.processes = nw.tree.by_name()
        if watch is not None:
            run.rounds = {k: summarize(watch.of(k)) for k in ("icmp", "snmp", "http")}
            run.restarts = nw.restarts()
        if nw.process.poll() is not None:  # type: ignore[attr-defined]
            raise RuntimeError(f"netwatch run ({mode}) died:\n{nw.log.read_text()[-3000:]}")
    return run


def report(run: Run, config_load_s: float, targets: int, routers: int) -> str:
    """Print one mode's table; return its RESULT line."""
    what = "the supervisor: every process" if run.mode == "split" else "--role all"
    print(f"== netwatch run ({what})")
    print(f"{'process tree CPU s':<28} {run.cpu_s:8.2f}   wall s {run.wall_s:8.2f}")
    print(f"{'steady CPU s':<28} {run.steady_cpu_s:8.2f}   wall s {run.steady_wall_s:8.2f}")
    print(f"{'start to first ICMP round s':<28} {run.startup_s:8.2f}")
    print(f"{'peak of summed RSS MB':<28} {run.rss_mb:8.1f}")
    for name, (cpu, rss, seen) in sorted(run.processes.items()):
        print(f"  {name:<14} CPU {cpu:7.2f} s  peak RSS {rss:6.1f} MB  processes {seen}")
    for kind, rounds in sorted(run.rounds.items()):
        if rounds.shards:
            print(f"  {kind:<5} bus reports: {rounds.describe()}")
    for kind, values in sorted(run.metrics.items()):
        shown = ", ".join(f"{k.removeprefix('netwatch_')} {v:g}" for k, v in values.items())
        print(f"  {kind:<5} /metrics at the end: {shown}")
    print(f"  worst ICMP lag gauge over 15 s scrapes {run.scraped_lag_s:.3f} s; "
          f"/metrics {run.scrape_bytes / 1e6:.1f} MB; child restarts {run.restarts}")  # fmt: skip
    counted = run.metrics.get("icmp", {}).get(FAMILIES[0], 0.0)
    if run.rounds and counted > run.rounds["icmp"].slots:
        # The core got one report per shard and slot: its round series must add them up per
        # kind (netwatch/metrics.py), not count each.
        slots = run.rounds["icmp"].slots
        print(
            f"  !! the core's netwatch_rounds_total{{kind=icmp}} is {counted:g} for {slots} "
            "slots on the bus: it counts shards, not rounds"
        )
    name = "national" if run.mode == "split" else "national_single"
    snmp = run.rounds.get("snmp")
    snmp_lag = snmp.worst_lag_s if snmp else run.metrics.get("snmp", {}).get(FAMILIES[2], 0.0)
    snmp_skipped = snmp.skipped if snmp else run.metrics.get("snmp", {}).get(FAMILIES[1], 0.0)
    shards = len(run.rounds["icmp"].shards) if run.rounds else 1
    return (
        f"RESULT {name} skipped={run.skipped} lag_s={run.lag_s:.3f} "
        f"core_fraction={run.cpu_s / run.wall_s:.3f} "
        f"steady_core_fraction={run.steady_cpu_s / run.steady_wall_s:.3f} "
        f"rss_mb={run.rss_mb:.0f} config_load_s={config_load_s:.2f} "
        f"icmp_rounds={run.icmp_rounds} shards={shards} startup_s={run.startup_s:.1f} "
        f"snmp_lag_s={snmp_lag:.3f} snmp_skipped={snmp_skipped:.0f} restarts={run.restarts} "
        f"targets={targets} routers={routers}"
    )


def main() -> int:
    """Build the lab, run `netwatch run` in each mode asked, print tables and RESULT lines."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--duration",
        type=float,
        default=160.0,
        help="seconds of national load after the first ICMP round (160: 5 more rounds)",
    )
    ap.add_argument(
        "--mode",
        choices=("split", "single", "both"),
        default="both",
        help="split: `netwatch run` (the supervisor); single: `--role all`; both (default)",
    )
    ap.add_argument("--probe-workers", type=int, help="the supervisor's (default: one per CPU)")
    ap.add_argument("--keep", type=Path, help="copy NetWatch's logs into this folder")
    ap.add_argument("--config-load", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=3, metavar=("CERT", "KEY", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.config_load:
        config_load(args.config_load)
        return 0
    if os.geteuid() != 0:
        print("bench_national needs root (a network namespace and raw ICMP)", file=sys.stderr)
        return 2
    import trustme

    from benchmarks.bench_https import _wait_port

    work = Path(tempfile.mkdtemp(prefix="netwatch-bench-national-"))
    server: subprocess.Popen[bytes] | None = None
    results: list[str] = []
    try:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        ca_file, cert, key = work / "ca.pem", work / "cert.pem", work / "key.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        server = subprocess.Popen(
            [sys.executable, str(HERE.parent / "bench_https.py"), "--serve", str(cert), str(key),
             str(PORTAL_PORT)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(PORTAL_PORT)
        config = work / "national.yaml"
        communes, targets, routers = national_config(config, ca_file)
        print(f"national inventory: {communes} communes, {targets} ICMP targets, {routers} routers")
        loaded = subprocess.run(
            [sys.executable, str(HERE), "--config-load", str(config)],
            capture_output=True, check=True, env=dict(os.environ, NWN_BENCH_COMMUNITY=COMMUNITY),
        )  # fmt: skip
        config_load_s = json.loads(loaded.stdout.decode().splitlines()[-1])["config_load_s"]
        print(f"{'config load + validate s':<28} {config_load_s:8.2f}")
        modes = ("split", "single") if args.mode == "both" else (args.mode,)
        with national_lab(work):
            for mode in modes:
                run = measure(mode, config, work, args.duration, args.probe_workers)
                results.append(report(run, config_load_s, targets, routers))
        for line in results:
            print(line)
        return 0
    finally:
        if server is not None:
            server.terminate()
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for log in work.glob("*/netwatch-*.log"):
                shutil.copyfile(log, args.keep / f"{log.parent.name}-{log.name}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
