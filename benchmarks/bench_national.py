"""The whole national load in one NetWatch process: can one process carry the country?

Builds a national inventory from vietnam-provinces (3,321 communes, each with two WAN links and a
front-office device: ~10,000 ICMP targets; 3,321 routers polled by SNMP v2c; 34 upstream POPs;
two portals) on AnyIP addresses of a lab namespace (nwn-b, 10.93.0.0/16, no default route; root
holds a blackhole for the prefix), one Debian snmpd answering for every router address, and an
HTTPS portal stand-in on loopback. Then it runs NetWatch's engine (the same code `netwatch run`
runs, with the metrics collector scraped every 15 s) for --duration seconds at the national
schedule (ICMP 5 echoes every 30 s, SNMP every 60 s, portals every 60 s) in a fresh process and
measures that process: CPU seconds over wall seconds, peak RSS, the worst round lag and the time
to load and validate the configuration.

Run as root: .venv/bin/python benchmarks/bench_national.py [--duration 150]
Ends with: RESULT national core_fraction=<CPU s / wall s> rss_mb=<n> lag_s=<n> config_load_s=<n> ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

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


class _Recorder:
    """An observation sink that keeps the figures the benchmark reports."""

    def __init__(self) -> None:
        self.rounds: dict[str, int] = {}
        self.worst_lag_s: dict[str, float] = {}
        self.worst_duration_s: dict[str, float] = {}
        self.skipped: dict[str, int] = {}
        self.sent = self.received = self.snmp_ok = self.snmp_failed = self.http_ok = 0

    def observe(self, batch: Sequence[object]) -> None:
        from netwatch.observations import IcmpObservation, SnmpObservation

        for obs in batch:
            if isinstance(obs, IcmpObservation):
                self.sent += obs.result.sent
                self.received += obs.result.received
            elif isinstance(obs, SnmpObservation):
                if obs.sample.failure is None:
                    self.snmp_ok += 1
                else:
                    self.snmp_failed += 1
            elif getattr(obs, "http", None) is not None and obs.http.failure is None:  # type: ignore[attr-defined]
                self.http_ok += 1

    def round_done(self, report: object) -> None:
        kind = report.kind  # type: ignore[attr-defined]
        self.rounds[kind] = self.rounds.get(kind, 0) + 1
        self.worst_lag_s[kind] = max(self.worst_lag_s.get(kind, 0.0), report.lag_s)  # type: ignore[attr-defined]
        self.worst_duration_s[kind] = max(
            self.worst_duration_s.get(kind, 0.0),
            report.duration_s,  # type: ignore[attr-defined]
        )
        self.skipped[kind] = self.skipped.get(kind, 0) + report.skipped_rounds  # type: ignore[attr-defined]


def worker(config: str, duration_s: float) -> None:
    """The measured process: load the config, run the engine, print figures as JSON."""

    async def main() -> dict[str, object]:
        from prometheus_client import CollectorRegistry

        from netwatch.engine import Engine
        from netwatch.health import HealthMonitor
        from netwatch.inventory import load_inventory
        from netwatch.metrics import MetricsCollector
        from netwatch.plan import compile_plan
        from netwatch.state import LatestState
        from probes.http import HttpProber
        from probes.icmp import IcmpPinger
        from probes.snmp import SnmpPoller

        started = time.perf_counter()
        inventory = load_inventory(config)
        plan = compile_plan(inventory)
        config_load_s = time.perf_counter() - started
        registry = CollectorRegistry()
        collector = MetricsCollector(plan)
        collector.register(registry)
        recorder = _Recorder()
        async with (
            await IcmpPinger.open() as pinger,
            await SnmpPoller.open() as snmp,
            HttpProber() as http,
        ):
            http.prepare([job.check for job in plan.portals])
            # As `netwatch run` wires it: the health monitor judges every round and drives fast
            # confirmation (which watches every sweep of the national round).
            latest, health = LatestState(), HealthMonitor(inventory)
            engine = Engine(
                plan,
                pinger,
                snmp,
                http,
                [collector, latest, health, recorder],
                judge=health,
                fast_sinks=[latest, health],
            )
            cpu0 = time.process_time()
            wall0 = time.monotonic()
            engine.start()
            scrape_bytes = 0
            while time.monotonic() - wall0 < duration_s:
                await asyncio.sleep(SCRAPE_EVERY_S)
                scrape_bytes = len(collector.exposition(registry))
            await engine.stop()
            steady_cpu_s = time.process_time() - cpu0
            steady_wall_s = time.monotonic() - wall0
        return {
            "config_load_s": config_load_s,
            "targets": plan.counts(),
            "steady_core_fraction": steady_cpu_s / steady_wall_s,
            "rounds": recorder.rounds,
            "worst_lag_s": recorder.worst_lag_s,
            "worst_round_s": recorder.worst_duration_s,
            "skipped": recorder.skipped,
            "echoes_sent": recorder.sent,
            "echoes_received": recorder.received,
            "snmp_ok": recorder.snmp_ok,
            "snmp_failed": recorder.snmp_failed,
            "http_ok": recorder.http_ok,
            "scrape_bytes": scrape_bytes,
            "fast_admitted": engine.confirmer.stats().admitted if engine.confirmer else 0,
        }

    figures = asyncio.run(main())
    figures["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures), flush=True)


def main() -> int:
    """Build the lab, run the measured worker, print the table and the RESULT line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=150.0, help="seconds of national load")
    ap.add_argument("--worker", nargs=2, metavar=("CONFIG", "DURATION"), help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=3, metavar=("CERT", "KEY", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], float(args.worker[1]))
        return 0
    if os.geteuid() != 0:
        print("bench_national needs root (a network namespace and raw ICMP)", file=sys.stderr)
        return 2
    import trustme

    from benchmarks.bench_https import _wait_port

    work = Path(tempfile.mkdtemp(prefix="netwatch-bench-national-"))
    server: subprocess.Popen[bytes] | None = None
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
        with national_lab(work):
            env = dict(os.environ, NWN_BENCH_COMMUNITY=COMMUNITY)
            wall0 = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, str(HERE), "--worker", str(config), str(args.duration)],
                stdout=subprocess.PIPE, env=env,
            )  # fmt: skip
            assert proc.stdout is not None
            output = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            wall_s = time.monotonic() - wall0
            proc.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it
        if proc.returncode != 0:
            print(f"worker failed with {proc.returncode}", file=sys.stderr)
            return 1
        figures = json.loads(output.decode().strip().splitlines()[-1])
        cpu_s = usage.ru_utime + usage.ru_stime
        lost = figures["echoes_sent"] - figures["echoes_received"]
        lag_s = max(figures["worst_lag_s"].values(), default=0.0)
        print(f"{'whole process CPU s':<28} {cpu_s:8.2f}   wall s {wall_s:8.2f}")
        print(f"{'config load + validate s':<28} {figures['config_load_s']:8.2f}")
        print(f"{'steady core fraction':<28} {figures['steady_core_fraction']:8.3f}")
        print(f"{'peak RSS MB':<28} {figures['rss_mb']:8.1f}")
        for kind in sorted(figures["rounds"]):
            print(
                f"  {kind:<5} rounds {figures['rounds'][kind]:>3}  worst round "
                f"{figures['worst_round_s'][kind]:6.2f} s  worst lag "
                f"{figures['worst_lag_s'][kind]:6.3f} s  skipped {figures['skipped'][kind]}"
            )
        print(
            f"  echoes {figures['echoes_sent']} sent, {lost} lost; SNMP polls "
            f"{figures['snmp_ok']} ok, {figures['snmp_failed']} failed; portal probes ok "
            f"{figures['http_ok']}; /metrics {figures['scrape_bytes'] / 1e6:.1f} MB"
        )
        print(
            f"RESULT national core_fraction={cpu_s / wall_s:.3f} "
            f"steady_core_fraction={figures['steady_core_fraction']:.3f} "
            f"rss_mb={figures['rss_mb']:.0f} lag_s={lag_s:.3f} "
            f"config_load_s={figures['config_load_s']:.2f} lost={lost} "
            f"snmp_failed={figures['snmp_failed']} targets={targets} routers={routers}"
        )
        return 0
    finally:
        if server is not None:
            server.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
