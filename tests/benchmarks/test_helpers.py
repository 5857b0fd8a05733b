"""The benchmarks' measuring helpers: the process tree from /proc, round reports off a real bus,
and the figures made of them (benchmarks/_proctree.py, benchmarks/_netwatch_run.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

from nats.aio.client import Client

from benchmarks._netwatch_run import REPORTS, Report, RoundWatch, metric, summarize
from benchmarks._proctree import ProcessTree, role_name
from netwatch.bus import wire
from netwatch.bus.server import NatsServer
from netwatch.observations import RoundReport

# A parent that runs two children one after the other, as a supervisor restarts a child.
PARENT = (
    "import subprocess, sys\n"
    "for _ in range(2):\n"
    "    subprocess.run([sys.executable, '-c', 'import time; time.sleep(0.4)'], check=True)\n"
)


def test_the_tree_counts_children_that_come_and_go() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    tree = ProcessTree(parent.pid, every_s=0.05)
    tree.start()
    try:
        parent.wait(timeout=30)
    finally:
        tree.stop()
    names = tree.by_name()
    assert sum(n for _cpu, _rss, n in names.values()) == 3  # the parent and both children
    assert tree.peak_rss_bytes > 0
    assert tree.cpu_s() == sum(cpu for cpu, _rss, _n in names.values())


def test_netwatch_processes_are_named_by_role() -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)", "run", "--role", "probe"]
    shapes = {
        "snmp-1": [*argv, "--shard", "1/2", "--kinds", "snmp"],
        "probe-0": [*argv, "--shard", "0/2", "--kinds", "icmp,http"],
        "core": [sys.executable, "-c", "import time; time.sleep(30)", "run", "--role", "core"],
        "supervisor": [sys.executable, "-c", "import time; time.sleep(30)", "run"],
    }
    procs = {name: subprocess.Popen(cmd) for name, cmd in shapes.items()}
    try:
        deadline = time.monotonic() + 10
        for name, proc in procs.items():
            while role_name(proc.pid) != name and time.monotonic() < deadline:
                time.sleep(0.05)  # until the command line is the child's, not the fork's
            assert role_name(proc.pid) == name
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def _report(shard: int, round_id: int, lag_s: float = 0.0, skipped: int = 0) -> Report:
    return Report("icmp", shard, round_id, lag_s, 20.0, 100, skipped, 0.0)


def test_rounds_are_summed_per_shard() -> None:
    rounds = summarize(
        [
            _report(0, 30_000, lag_s=0.1),
            _report(1, 30_000, lag_s=0.7),
            _report(0, 60_000, skipped=1),
            # shard 1's report of the second slot never came
        ]
    )
    assert rounds.slots == 2
    assert rounds.incomplete_slots == 1
    assert rounds.skipped == 1
    assert rounds.worst_lag_s == 0.7
    assert rounds.shards[0][0] == 2
    assert rounds.shards[1][0] == 1


def test_a_metric_is_found_whatever_its_other_labels() -> None:
    text = (
        'netwatch_round_lag_seconds{kind="snmp"} 2.0\n'
        'netwatch_round_lag_seconds{role="probe",kind="icmp",shard="1"} 0.25\n'
    )
    assert metric(text, "netwatch_round_lag_seconds") == 0.25
    assert metric(text, "netwatch_round_lag_seconds", "snmp") == 2.0
    assert metric(text, "netwatch_rounds_total") is None


async def test_round_reports_are_read_off_the_bus(nats_server: NatsServer, nc: Client) -> None:
    watch = RoundWatch(nats_server.url)
    await asyncio.to_thread(watch.start)
    routed = await nc.subscribe(REPORTS)  # the server's side: what it routed to a subscriber
    try:
        now = datetime.now(UTC)
        for shard in (0, 1):
            report = RoundReport("icmp", now, now, 0.01 * (shard + 1), 24.0, 5000, shard, shard)
            payload = wire.encode_report(report, round_id=60_000, shard=shard, sent_at=now)
            await nc.publish(wire.report_subject("icmp"), payload)
        await nc.flush()
        for _ in range(600):  # 30 s: a loaded CI machine once took longer than 5
            if len(watch.of("icmp")) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(watch.stop)
    got = [wire.decode((await routed.next_msg(5)).data, EMPTY).shard for _ in range(2)]
    assert sorted(got) == [0, 1]  # both reports went through the server
    rounds = summarize(watch.of("icmp"))
    assert rounds.slots == 1, (watch.reports, watch.events, _connections(nats_server))
    assert rounds.incomplete_slots == 0
    assert rounds.skipped == 1  # shard 1 skipped one slot
    assert rounds.worst_lag_s == 0.02


EMPTY = wire.PlanIndex({}, {}, {}, {}, {})


def _connections(server: NatsServer) -> str:
    """The server's view of its clients (messages in and out, subscriptions): for a failure."""
    try:
        with urllib.request.urlopen(f"{server.monitor_url}/connz?subs=1", timeout=5) as answer:
            return answer.read().decode()[:3000]
    except OSError as exc:
        return f"no /connz: {exc}"
