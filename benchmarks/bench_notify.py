"""Time to notify: a commune's line is cut; how long until someone's webhook hears of it?

Builds lab 17 (netwatch/lab: namespaces nwl17-*, prefix 10.105.0.0/16, no default route, the
blackhole for the prefix kept) with one commune per trial, and watches it with two systems side
by side, both notifying a webhook receiver this benchmark runs on loopback:

- NetWatch as production runs it: `netwatch run` in its own process, its own SQLite data dir,
  the lab's inventory with the lab's short intervals removed, so every interval, threshold,
  confirmation and ticket setting is NetWatch's own default (netwatch/inventory/models.py). Each
  ISP's contact is a webhook signed with `notifications.webhook_secret`; the receiver verifies
  every signature (netwatch.notify.channels.verify_webhook) and ignores unsigned requests.
- The usual open-source stack with common settings (Debian packages): blackbox_exporter pinging
  every link address by ICMP (as root), Prometheus scraping it every 15 s and evaluating every
  15 s the rule `probe_success == 0` with `for: 1m`, Alertmanager routing by instance with
  group_wait 30 s (group_interval 5m, repeat_interval 4h: its defaults) to a webhook.

Each trial cuts one commune's line (link vnpt-tslcd, `Lab.commune_down(code, link)`) at a random
phase of the rounds: uniform over one common period of NetWatch's ICMP interval and the scrape
interval (stratified: the trials' phases are spread over the period, in random order). It then
waits for NetWatch's first "opened" webhook for that link and Alertmanager's first "firing" one
for that instance (or --alert-timeout), restores the line, and waits for NetWatch's "line_back"
webhook and Alertmanager's "resolved" one (or --clear-timeout). Trials run on different
communes and overlap in time (one starts every --stagger seconds): each cut is independent,
since a commune is cut once per run (no reopened tickets) and Alertmanager groups by instance
(every alert its own group, its own group_wait).

Run as root (about 17 minutes): .venv/bin/python benchmarks/bench_notify.py [--trials 12]
[--stagger 45] [--seed N] [--logs DIR]
Ends with: RESULT notify netwatch_median_s=<n> netwatch_p95_s=<n> am_median_s=<n> ratio=<n>
back_median_s=<n>   (issue 12's targets: NetWatch median <= 15 s, p95 <= 25 s; line back
median <= 30 s after the restore. Printed, not asserted.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._process import process_group  # noqa: E402

LAB_INDEX = 17  # 10.105.0.0/16, namespaces nwl17-*: no test or other benchmark uses it
LINK = "vnpt-tslcd"  # every lab commune has it (link 1)
SCRAPE_S = 15.0  # Prometheus scrape_interval and evaluation_interval
FOR = "1m"
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"  # Alertmanager's default: a resolved notice waits for the group's next flush
REPEAT_INTERVAL = "4h"
WEBHOOK_SECRET = "nwb17-webhook-secret-" + os.urandom(8).hex()
LINK_SECRET = "nwb17-link-secret-" + os.urandom(8).hex()
ENV_WEBHOOK, ENV_LINK = "NWB17_WEBHOOK_SECRET", "NWB17_LINK_SECRET"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- the webhook receiver -----------------------------------------------------------------
@dataclass(slots=True)
class Heard:
    """What the receiver got, each with the monotonic time it arrived."""

    netwatch: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    alertmanager: list[tuple[float, str, str]] = field(default_factory=list)  # t, status, inst
    rejected: int = 0  # NetWatch requests whose signature did not verify
    log: Path | None = None  # every verified NetWatch notice, one JSON document a line
    lock: threading.Lock = field(default_factory=threading.Lock)

    def netwatch_event(self, code: str, link: str, event: str, after: float) -> float | None:
        """When the first NetWatch notice `event` for the link arrived at or after `after`."""
        with self.lock:
            for t, doc in self.netwatch:
                commune = doc.get("commune") or {}
                link_doc = doc.get("link") or {}
                if (
                    t >= after
                    and doc.get("event") == event
                    and commune.get("code") == code
                    and link_doc.get("id") in (link, f"{code}/{link}")
                ):
                    return t
        return None

    def stray_openings(self, codes: set[str], link: str) -> list[str]:
        """Tickets NetWatch opened for anything but the cut links (false alarms); under lock."""
        out = set()
        for _, doc in self.netwatch:
            code = (doc.get("commune") or {}).get("code")
            link_id = (doc.get("link") or {}).get("id")
            if doc.get("event") == "opened" and not (
                code in codes and link_id in (link, f"{code}/{link}")
            ):
                out.add(f"{link_id or doc.get('subject_name')} ({doc['ticket']['kind']})")
        return sorted(out)

    def am_event(self, instance: str, status: str, after: float) -> float | None:
        """When Alertmanager first said `status` for the instance at or after `after`."""
        with self.lock:
            for t, st, inst in self.alertmanager:
                if t >= after and st == status and inst == instance:
                    return t
        return None


def _handler(heard: Heard) -> type[BaseHTTPRequestHandler]:
    from netwatch.notify.channels import (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        WebhookVerdict,
        verify_webhook,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.monotonic()
            status = 200
            if self.path.startswith("/netwatch"):
                verdict = verify_webhook(
                    WEBHOOK_SECRET,
                    raw,
                    self.headers.get(SIGNATURE_HEADER),
                    self.headers.get(TIMESTAMP_HEADER),
                    datetime.now(UTC),
                )
                with heard.lock:
                    if verdict is WebhookVerdict.VALID:
                        heard.netwatch.append((now, json.loads(raw)))
                        if heard.log is not None:
                            with heard.log.open("ab") as log:
                                log.write(raw + b"\n")
                    else:
                        heard.rejected += 1
                        status = 401
            elif self.path.startswith("/alertmanager"):
                doc = json.loads(raw)
                with heard.lock:
                    for alert in doc.get("alerts", []):
                        instance = alert.get("labels", {}).get("instance", "")
                        heard.alertmanager.append((now, alert.get("status", ""), instance))
            else:
                status = 404
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def receiver(port: int, log: Path) -> Iterator[Heard]:
    """The webhook receiver on 127.0.0.1:port, in a thread."""
    heard = Heard(log=log)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(heard))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield heard
    finally:
        server.shutdown()
        server.server_close()


# -- processes ------------------------------------------------------------------------------
@contextlib.contextmanager
def process(
    name: str, argv: list[str], work: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group (Ctrl-C reaches us, not it), logging to work/NAME.log,
    stopped whatever happens."""
    with process_group(argv, log=work / f"{name}.log", env=env) as child:
        yield child


def get(url: str, timeout: float = 5.0) -> bytes:
    """GET a loopback URL."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def wait_until(what: str, ready: Any, children: list[tuple[str, Any]], timeout: float) -> None:
    """Poll `ready()` until true; fail early when a child died, say which and show its log."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            if ready():
                return
        for name, (child, log) in children:
            if child.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"{name} exited ({child.returncode}) before {what}:\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


# -- configurations -------------------------------------------------------------------------
def netwatch_config(lab: Any, path: Path, hook: str, public_url: str) -> dict[str, str]:
    """The lab's inventory with production intervals and webhook contacts; returns the env."""
    from netwatch.inventory import load_inventory

    data = yaml.safe_load(lab.paths.config_file.read_text(encoding="utf-8"))
    # The lab sets short intervals for the demo and tests; production runs NetWatch's defaults.
    data.pop("intervals", None)
    for key in ("thresholds", "confirmation", "tickets"):
        assert key not in data, f"the lab config sets {key}: the benchmark must drop it too"
    for isp_id, isp in data["isps"].items():
        isp["contacts"] = [
            {"level": 1, "name": f"NOC {isp_id} (bench)", "webhook": f"{hook}/netwatch/{isp_id}"}
        ]
    data["provincial_it"] = {
        "contacts": [{"level": 1, "name": "Sở KH&CN (bench)", "webhook": f"{hook}/netwatch/it"}]
    }
    data["notifications"] = {
        "public_url": public_url,
        "link_secret": {"env": ENV_LINK},
        "webhook_secret": {"env": ENV_WEBHOOK},
    }
    path.write_text(
        "# Written by benchmarks/bench_notify.py: lab 17's inventory, NetWatch's defaults.\n"
        + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100),
        encoding="utf-8",
    )
    pairs = (line.split("=", 1) for line in lab.paths.env_file.read_text().splitlines())
    env = dict(os.environ) | {k.strip(): v.strip() for k, v in pairs}
    env |= {ENV_WEBHOOK: WEBHOOK_SECRET, ENV_LINK: LINK_SECRET}
    inventory = load_inventory(path, environ=env)  # fails here, with its reasons, if invalid
    from netwatch.inventory.models import Intervals

    assert inventory.intervals == Intervals(), "NetWatch must run its default intervals"
    return env


def stack_configs(work: Path, targets: list[str], ports: dict[str, int], hook: str) -> None:
    """blackbox.yml, prometheus.yml, rules.yml and alertmanager.yml in `work`."""
    (work / "blackbox.yml").write_text(
        # The icmp module of /work/shared/bench/blackbox.yml (the BASELINES measurements).
        "modules:\n  icmp:\n    prober: icmp\n    timeout: 2s\n    icmp:\n"
        "      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
    )
    rules = {
        "groups": [
            {
                "name": "bench-notify",
                "rules": [
                    {
                        "alert": "LinkDown",
                        "expr": 'probe_success{job="blackbox_icmp"} == 0',
                        "for": FOR,
                        "labels": {"severity": "critical"},
                    }
                ],
            }
        ]
    }
    (work / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    prometheus = {
        "global": {"scrape_interval": f"{SCRAPE_S:g}s", "evaluation_interval": f"{SCRAPE_S:g}s"},
        "rule_files": [str(work / "rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['am']}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "blackbox_icmp",
                "metrics_path": "/probe",
                "params": {"module": ["icmp"]},
                "static_configs": [{"targets": targets}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{ports['bb']}"},
                ],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(prometheus, sort_keys=False))
    alertmanager = {
        "route": {
            "receiver": "bench",
            "group_by": ["instance"],
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVAL,
        },
        "receivers": [
            {
                "name": "bench",
                "webhook_configs": [{"url": f"{hook}/alertmanager", "send_resolved": True}],
            }
        ],
    }
    (work / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager, sort_keys=False))


def prometheus_all_up(port: int, targets: int) -> bool:
    """Every blackbox target scraped and answering."""
    query = urllib.parse.quote('probe_success{job="blackbox_icmp"}')
    doc = json.loads(get(f"http://127.0.0.1:{port}/api/v1/query?query={query}"))
    values = [float(r["value"][1]) for r in doc["data"]["result"]]
    return len(values) == targets and all(v == 1 for v in values)


def netwatch_icmp_rounds(port: int) -> float:
    """netwatch_rounds_total{kind="icmp"} (0 before the first round)."""
    text = get(f"http://127.0.0.1:{port}/metrics").decode()
    match = re.search(r'^netwatch_rounds_total\{kind="icmp"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


# -- trials ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Trial:
    """One cut line and what each system said about it (seconds after the cut / restore)."""

    number: int
    code: str
    address: str
    phase_s: float
    cut_at: float  # planned, monotonic
    state: str = "planned"  # planned -> cut -> restored -> done
    cut: float = math.nan
    restored: float = math.nan
    netwatch_s: float | None = None
    am_s: float | None = None
    back_s: float | None = None
    am_back_s: float | None = None
    failed: str | None = None


def _say(trial: Trial, now: float, args: argparse.Namespace, text: str) -> None:
    """A progress line: wall clock (UTC, as NetWatch logs), seconds since the first slot."""
    clock = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"  {clock} +{now - args.t0:6.1f} s  trial {trial.number:2d}: {text}", flush=True)


def _fmt(value: float | None) -> str:
    return "  -   " if value is None else f"{value:6.1f}"


def step(trial: Trial, lab: Any, heard: Heard, now: float, args: argparse.Namespace) -> None:
    """Advance one trial as far as it can go now."""
    if trial.state == "planned" and now >= trial.cut_at:
        trial.cut = time.monotonic()  # just before the cut: a few ms conservative
        result = lab.commune_down(int(trial.code), LINK)
        if not result.ok:
            trial.failed = f"cut failed: {result}"
            trial.state = "done"
            return
        trial.state = "cut"
        _say(trial, now, args, f"cut {trial.code} {LINK}")
    if trial.state == "cut":
        if trial.netwatch_s is None:
            t = heard.netwatch_event(trial.code, LINK, "opened", trial.cut)
            if t is not None:
                trial.netwatch_s = t - trial.cut
                _say(trial, now, args, f"NetWatch opened after {trial.netwatch_s:.1f} s")
        if trial.am_s is None:
            t = heard.am_event(trial.address, "firing", trial.cut)
            if t is not None:
                trial.am_s = t - trial.cut
                _say(trial, now, args, f"Alertmanager firing after {trial.am_s:.1f} s")
        both = trial.netwatch_s is not None and trial.am_s is not None
        if both or now - trial.cut > args.alert_timeout:
            trial.restored = time.monotonic()
            result = lab.commune_restore(int(trial.code))
            if not result.ok:
                trial.failed = f"restore failed: {result}"
            trial.state = "restored"
            _say(
                trial,
                now,
                args,
                f"restore {trial.code} (NetWatch {_fmt(trial.netwatch_s)} s, "
                f"Alertmanager {_fmt(trial.am_s)} s)",
            )
    if trial.state == "restored":
        if trial.back_s is None:
            t = heard.netwatch_event(trial.code, LINK, "line_back", trial.restored)
            trial.back_s = None if t is None else t - trial.restored
        if trial.am_back_s is None:
            t = heard.am_event(trial.address, "resolved", trial.restored)
            trial.am_back_s = None if t is None else t - trial.restored
        both = trial.back_s is not None and trial.am_back_s is not None
        if both or now - trial.restored > args.clear_timeout:
            trial.state = "done"
            print(
                f"trial {trial.number:2d} commune {trial.code} {trial.address:<13} phase "
                f"{trial.phase_s:5.1f} s | cut -> NetWatch opened {_fmt(trial.netwatch_s)} s, "
                f"Alertmanager firing {_fmt(trial.am_s)} s | restore -> NetWatch line_back "
                f"{_fmt(trial.back_s)} s, Alertmanager resolved {_fmt(trial.am_back_s)} s"
                + (f" | {trial.failed}" if trial.failed else ""),
                flush=True,
            )


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (inclusive); a missing value counts as inf."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    if math.isinf(ordered[high]):
        return math.inf
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def common_period(a: float, b: float) -> float:
    """The least common multiple of two intervals (to 0.1 s), or the larger one if huge."""
    ta, tb = round(a * 10), round(b * 10)
    lcm = ta * tb // math.gcd(ta, tb) / 10
    return lcm if lcm <= 4 * max(a, b) else max(a, b)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Build, measure, report, clean up."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", type=int, default=12, help="cuts, one commune each (>= 10)")
    ap.add_argument("--stagger", type=float, default=45.0, help="seconds between trial starts")
    ap.add_argument("--alert-timeout", type=float, default=240.0, help="cut -> both alerts, s")
    ap.add_argument(
        "--clear-timeout",
        type=float,
        default=420.0,
        help="restore -> both clears, s (Alertmanager resolves at the group's next 5-min flush)",
    )
    ap.add_argument("--seed", type=int, help="random phases (default: a fresh seed, printed)")
    ap.add_argument("--logs", type=Path, help="copy the processes' logs and configs here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_notify needs root (network namespaces and raw ICMP)", file=sys.stderr)
        return 2
    binaries = ("prometheus", "prometheus-blackbox-exporter", "prometheus-alertmanager")
    for tool in binaries:
        if shutil.which(tool) is None:
            print(f"bench_notify needs {tool} (scripts/bench.sh installs it)", file=sys.stderr)
            return 2
    if not 1 <= args.trials <= 240:
        print("--trials is 1 to 240 (one lab commune each)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # a long run: progress

    from netwatch.inventory.models import Intervals
    from netwatch.lab import Lab

    icmp_s = Intervals().icmp_s
    period = common_period(icmp_s, SCRAPE_S)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    phases = [(k + rng.random()) * period / args.trials for k in range(args.trials)]
    rng.shuffle(phases)

    wall0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="nw-bench-notify-"))
    lab = Lab(LAB_INDEX, state_dir=work / "lab")
    trials: list[Trial] = []
    try:
        lab.up(communes=args.trials)
        plan = lab.plan
        targets = [link.router_address for c in plan.communes for link in c.links]
        ports = {name: free_port() for name in ("hook", "nw", "prom", "bb", "am")}
        hook = f"http://127.0.0.1:{ports['hook']}"
        env = netwatch_config(lab, work / "netwatch.yaml", hook, f"http://127.0.0.1:{ports['nw']}")
        stack_configs(work, targets, ports, hook)
        from netwatch.inventory import load_inventory

        inv = load_inventory(work / "netwatch.yaml", environ=env)
        print(
            f"lab {LAB_INDEX} ({plan.prefix}): {len(plan.communes)} communes, "
            f"{len(targets)} link addresses; seed {seed}"
        )
        print(f"NetWatch defaults: {inv.intervals!r}")
        for name in ("confirmation", "thresholds", "tickets"):
            if hasattr(inv, name):
                print(f"  {getattr(inv, name)!r}")
        print(
            f"Prometheus: scrape/evaluation {SCRAPE_S:g} s, probe_success == 0 for {FOR}; "
            f"Alertmanager: group_by instance, group_wait {GROUP_WAIT}, group_interval "
            f"{GROUP_INTERVAL}; phases uniform over {period:g} s"
        )
        with contextlib.ExitStack() as stack:
            heard = stack.enter_context(receiver(ports["hook"], work / "notices.jsonl"))
            children = {
                "blackbox": stack.enter_context(
                    process(
                        "blackbox",
                        ["prometheus-blackbox-exporter", f"--config.file={work}/blackbox.yml",
                         f"--web.listen-address=127.0.0.1:{ports['bb']}", "--log.level=warn"],
                        work,
                    )
                ),
                "alertmanager": stack.enter_context(
                    process(
                        "alertmanager",
                        ["prometheus-alertmanager", f"--config.file={work}/alertmanager.yml",
                         f"--storage.path={work}/alertmanager",
                         f"--web.listen-address=127.0.0.1:{ports['am']}",
                         "--cluster.listen-address=", "--log.level=warn"],
                        work,
                    )
                ),
                "prometheus": stack.enter_context(
                    process(
                        "prometheus",
                        ["prometheus", f"--config.file={work}/prometheus.yml",
                         f"--storage.tsdb.path={work}/tsdb",
                         f"--web.listen-address=127.0.0.1:{ports['prom']}",
                         "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                        work,
                    )
                ),
                "netwatch": stack.enter_context(
                    process(
                        "netwatch",
                        [str(ROOT / ".venv/bin/netwatch"), "run", "--config",
                         str(work / "netwatch.yaml"), "--listen", f"127.0.0.1:{ports['nw']}",
                         "--data-dir", str(work / "data"), "--log-level", "warning"],
                        work,
                        env,
                    )
                ),
            }  # fmt: skip
            watched = [(name, (child, work / f"{name}.log")) for name, child in children.items()]
            # Steady state first: NetWatch has judged two ICMP rounds, Prometheus sees every
            # target up (so the rule's `for` starts from a known state).
            started = time.monotonic()
            wait_until(
                "Prometheus sees every target up",
                lambda: prometheus_all_up(ports["prom"], len(targets)),
                watched,
                120,
            )
            wait_until(
                "NetWatch's second ICMP round",
                lambda: netwatch_icmp_rounds(ports["nw"]) >= 2,
                watched,
                3 * icmp_s + 60,
            )
            print(f"warm-up {time.monotonic() - started:.0f} s; trials start", flush=True)
            args.t0 = t0 = time.monotonic()
            for number, (commune, phase) in enumerate(zip(plan.communes, phases, strict=True)):
                link = commune.link(LINK)
                assert link is not None
                # Slot k starts at the first period boundary after k * stagger; the phase is
                # the offset into that period.
                slot = period * math.ceil(number * args.stagger / period)
                trials.append(
                    Trial(number + 1, f"{commune.code:05d}", link.router_address, phase,
                          t0 + slot + phase)
                )  # fmt: skip
            while not all(t.state == "done" for t in trials):
                now = time.monotonic()
                for trial in trials:
                    step(trial, lab, heard, now, args)
                for name, (child, log) in watched:
                    if child.poll() is not None:
                        tail = log.read_text(errors="replace")[-3000:]
                        raise RuntimeError(f"{name} exited ({child.returncode}):\n{tail}")
                time.sleep(0.2)
            cut_codes = {t.code for t in trials}
            with heard.lock:
                stray = heard.stray_openings(cut_codes, LINK)
                cut_addresses = {t.address for t in trials}
                am_stray = sorted(
                    {i for _, s, i in heard.alertmanager if s == "firing"} - cut_addresses
                )
                rejected = heard.rejected
                notices = len(heard.netwatch)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            for item in work.glob("*.*"):
                if item.is_file() and item.suffix in {".log", ".yml", ".yaml", ".jsonl"}:
                    shutil.copy(item, args.logs / item.name)
        down = lab.down()
        if not down.leftovers.clean:
            print(f"WARNING: lab {LAB_INDEX} left {down.leftovers}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    wall_s = time.monotonic() - wall0

    def figures(values: list[float | None]) -> tuple[list[float], int]:
        return [math.inf if v is None else v for v in values], sum(v is None for v in values)

    nw, nw_missed = figures([t.netwatch_s for t in trials])
    am, am_missed = figures([t.am_s for t in trials])
    back, back_missed = figures([t.back_s for t in trials])
    am_back, am_back_missed = figures([t.am_back_s for t in trials])
    nw_median, nw_p95, am_median = percentile(nw, 0.5), percentile(nw, 0.95), percentile(am, 0.5)
    # No line_back notice at all: NetWatch does not send them (yet): nan, not inf.
    back_median = math.nan if back_missed == len(back) else percentile(back, 0.5)
    print(
        f"{len(trials)} trials (one commune each, overlapping: one starts every "
        f"{args.stagger:g} s), wall {wall_s:.0f} s; {notices} signed NetWatch notices, "
        f"{rejected} rejected"
    )
    print(
        f"  NetWatch opened: median {nw_median:.1f} s, p95 {nw_p95:.1f} s, "
        f"min {min(nw):.1f} s, max {max(nw):.1f} s, missed {nw_missed}"
    )
    print(
        f"  Alertmanager firing: median {am_median:.1f} s, p95 {percentile(am, 0.95):.1f} s, "
        f"min {min(am):.1f} s, max {max(am):.1f} s, missed {am_missed}"
    )
    print(
        f"  after restore: NetWatch line_back median {back_median:.1f} s (missed "
        f"{back_missed}); Alertmanager resolved median {percentile(am_back, 0.5):.1f} s "
        f"(missed {am_back_missed})"
    )
    if back_missed == len(back):
        print("  note: no line_back notice arrived: back_median_s is nan")
    print(
        f"  notices for lines not cut: NetWatch {stray or 'none'}; "
        f"Alertmanager {am_stray or 'none'}"
    )
    print("  targets (issue 12): NetWatch median <= 15 s, p95 <= 25 s; line back median <= 30 s")
    print(
        f"RESULT notify netwatch_median_s={nw_median:.1f} netwatch_p95_s={nw_p95:.1f} "
        f"am_median_s={am_median:.1f} ratio={nw_median / am_median:.2f} "
        f"back_median_s={back_median:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
