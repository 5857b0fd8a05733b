"""The Prometheus proof again, with NetWatch in process mode (issue 10, item 5).

The real `netwatch run` supervisor (its own nats-server, two ICMP+HTTP probe workers, one SNMP
worker, the alerting core serving the web) on lab 33 with the faults of the single-process proof
(tests/prometheus/test_on_lab.py, whose tests run here again on this run: every alert fires for
its fault, every rule, panel and variable returns data, the faults show in the panels). A real
Prometheus scrapes the documented targets (docs/dashboards.md, "Scrape targets"): the core's
/metrics and each probe worker's own, all in job `netwatch`. Then:

- every sample name `netwatch run --role all` exports on the same lab is exported by one of the
  process-mode targets and stored by Prometheus (the list of what only process mode adds is
  printed);
- the per-worker series do not add up wrongly where the dashboards sum over instances (targets
  per kind over every instance), the round counters count slots and not shards' reports, and a
  skipped slot on one shard reaches the core's series and the lag alert.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netwatch.inventory import Inventory
from netwatch.lab import Lab
from netwatch.plan import compile_plan
from tests.integration.test_run_on_lab import Client
from tests.lab.fixtures import built_lab
from tests.prometheus import agents
from tests.prometheus.prometheus_server import finite_values
from tests.prometheus.test_on_lab import (  # the single-process proof's tests, on this run
    AGENTS,
    Run,
    Served,
    _by,
    _evaluate,
    _panel,
    _token,
    _wait,
    exported_names,
    proving,
    test_a_live_scrape_passes_promtool_check_metrics,
    test_every_alerting_rule_fires_for_its_fault,
    test_every_panel_query_returns_data,
    test_every_rule_expression_returns_data,
    test_every_variable_query_returns_values,
    test_faults_show_in_isp_accountability,
    test_faults_show_in_the_commune_detail,
    test_faults_show_in_the_overview,
    test_netwatch_itself_shows_its_troubles,
    test_the_inside_view_shows_beside_the_outside,
)
from tests.roles.procs import descendants, get, kill_all, netwatch, spawned
from tests.servers import reserved_port, reserved_ports
from tests.waiting import WaitTimeoutError

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(900)]

LAB_INDEX = 33  # 10.121.0.0/16, namespaces nwl33-*
COMMUNES = 5
PROBE_WORKERS, SNMP_WORKERS = 2, 1
# The probe workers' default ICMP timeout (2 s) with a 3 s interval: rounds fit their slots.
ICMP_S = 3

__all__ = [
    "test_a_live_scrape_passes_promtool_check_metrics",
    "test_every_alerting_rule_fires_for_its_fault",
    "test_every_panel_query_returns_data",
    "test_every_rule_expression_returns_data",
    "test_every_variable_query_returns_values",
    "test_faults_show_in_isp_accountability",
    "test_faults_show_in_the_commune_detail",
    "test_faults_show_in_the_overview",
    "test_netwatch_itself_shows_its_troubles",
    "test_the_inside_view_shows_beside_the_outside",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, COMMUNES, tmp_path_factory.mktemp("process-mode-lab"))


@contextmanager
def _stopped_with_its_tree(proc: subprocess.Popen[bytes], log: Path) -> Iterator[set[int]]:
    """Yields the pids seen below `proc` (filled by the caller); after: nothing left of them."""
    seen: set[int] = set()
    try:
        yield seen
    finally:
        seen |= descendants(proc.pid)
        proc.terminate()
        try:
            proc.wait(30)
        finally:
            kill_all(seen)  # a failed stop's leftovers
            print(log.read_text(errors="replace")[-4000:])  # shown when a test fails


@contextmanager
def supervised(
    config: Path, env: dict[str, str], inventory: Inventory, data_dir: Path
) -> Iterator[Served]:
    """`netwatch run` (the supervisor) with 2 ICMP+HTTP workers and 1 SNMP worker, their
    /metrics on consecutive ports from --metrics-port-base; SQLite in `data_dir`."""
    port, agents_port = reserved_port(), reserved_port()
    ports = reserved_ports(PROBE_WORKERS + SNMP_WORKERS)
    argv = netwatch(
        "run", "--config", str(config), "--listen", f"127.0.0.1:{port}",
        "--data-dir", str(data_dir), "--probe-workers", str(PROBE_WORKERS),
        "--snmp-workers", str(SNMP_WORKERS), "--metrics-port-base", str(ports.start),
        "--agent-listen", f"127.0.0.1:{agents_port}",
    )  # fmt: skip
    log = data_dir.parent / "supervisor.log"
    with (
        spawned(argv, log, {**env, "NETWATCH_DATABASE_URL": ""}) as proc,
        _stopped_with_its_tree(proc, log) as seen,
    ):
        base = f"http://127.0.0.1:{port}"
        workers = tuple(f"127.0.0.1:{p}" for p in ports)

        def serving() -> bool:
            assert proc.poll() is None, "the supervisor exited"
            seen.update(descendants(proc.pid))
            answers = [get(base, "/healthz")[0], *(get(f"http://{w}", "/")[0] for w in workers)]
            return answers == [200] * (1 + len(workers))

        _wait("the core and every probe worker serving", serving, 90)
        # The first communes' agents report as boxes do: over leafnode logins into the hub.
        codes = [c.code for c in inventory.communes[:AGENTS]]
        with agents.bus_reporting(
            config, {**env, "NETWATCH_DATABASE_URL": ""}, data_dir,
            f"nats-leaf://127.0.0.1:{agents_port}", inventory, codes, data_dir.parent / "boxes",
        ):  # fmt: skip
            yield Served(Client(base, _token(data_dir)), workers, inside_fed=True)
        seen.update(descendants(proc.pid))


@pytest.fixture(scope="module")
def run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with proving(lab, tmp_path_factory.mktemp("process-mode-proof"), supervised, ICMP_S) as r:
        yield r


def _values(run: Run, query: str, label: str) -> dict[str, float]:
    return {k[0]: v for k, v in _by(run.prom.query(query), label).items()}


def test_the_shards_add_up_where_dashboards_and_rules_aggregate(run: Run) -> None:
    """Two ICMP+HTTP shards and one SNMP shard, each its own target next to the core."""
    d = "netwatch-self.json"
    every = run.values(instance=".*")  # the dashboard's "All"
    # Targets per kind, summed over every instance: the plan's, not the plan's twice (the
    # workers count their shard's targets under another name, netwatch_shard_targets).
    plan = compile_plan(run.inventory)
    targets = _by(_evaluate(run, _panel(d, "Mục tiêu"), every), "kind")
    assert targets == {(kind,): float(n) for kind, n in plan.counts().items()}
    shard_targets = _values(run, 'sum by (kind) (netwatch_shard_targets{job="netwatch"})', "kind")
    assert shard_targets == {kind: float(n) for kind, n in plan.counts().items() if n}
    # Round counters: the core counts slots (every shard reports each one), not reports.
    rounds = _values(run, 'netwatch_rounds_total{job="netwatch", kind="icmp"}', "instance")
    shards = [rounds[w] for w in run.workers[:PROBE_WORKERS]]
    assert abs(rounds[run.netwatch] - max(shards)) <= 1, rounds
    assert rounds[run.netwatch] < sum(shards) - 1, rounds
    # HTTP rounds (shard 0 has the portals) overrun: their skipped slots reach the core's
    # series, and the lag alert fires for the core as in the single process.
    skipped = _values(run, 'netwatch_rounds_skipped_total{job="netwatch", kind="http"}', "instance")
    assert skipped[run.netwatch] > 0
    assert abs(skipped[run.netwatch] - skipped[run.workers[0]]) <= 1, skipped
    lagging = {
        a["labels"]["instance"]
        for a in run.prom.alerts()
        if a["state"] == "firing" and a["labels"]["alertname"] == "NetWatchLagging"
    }
    assert run.netwatch in lagging
    # The round and lag panels show the core's series per kind and every shard's beside it.
    durations = _evaluate(run, _panel(d, "Thời gian một vòng đo", "A"), every)
    icmp = [s["metric"] for s in durations if s["metric"]["kind"] == "icmp"]
    assert sorted(m["instance"] for m in icmp) == sorted(
        [run.netwatch, *run.workers[:PROBE_WORKERS]]
    )
    assert all(finite_values([s]) for s in durations)  # every series has values
    # CPU and memory of every process: the core and each worker.
    cpu = _by(_evaluate(run, _panel(d, "CPU và bộ nhớ", "A"), every), "instance")
    assert {k[0] for k in cpu} == {run.netwatch, *run.workers}


def test_every_series_of_the_single_process_reaches_prometheus(run: Run, tmp_path: Path) -> None:
    """`netwatch run --role all` on the same config and lab: every sample name it exports is
    exported by a process-mode target and is in Prometheus."""
    port = reserved_port()
    argv = netwatch(
        "run", "--role", "all", "--config", str(run.config), "--listen", f"127.0.0.1:{port}",
        "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    log = tmp_path / "all.log"
    with spawned(argv, log, {**run.env, "NETWATCH_DATABASE_URL": ""}) as proc:
        base = f"http://127.0.0.1:{port}"

        def measured() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            names = exported_names(base) if get(base, "/healthz")[0] == 200 else set()
            # A round of every kind, a measured link and router, a ticket counted.
            return {
                "netwatch_link_up",
                "netwatch_router_up",
                "netwatch_portal_up",
                "netwatch_interface_octets_total",
            } <= names

        _wait("the single process measured every kind", measured, 90)
        single_text = get(base, "/metrics")[1]
        single = exported_names(base)
    process = exported_names(run.client.base)
    for worker in run.workers:
        process |= exported_names(f"http://{worker}", "/")
    missing = single - process
    assert not missing, f"process mode lost {sorted(missing)}"
    stored = {
        s["metric"]["__name__"] for s in run.prom.query('count by (__name__) ({job="netwatch"})')
    }
    assert single <= stored, sorted(single - stored)
    print("only in process mode:", sorted(process - single))
    # Series, not only names: every link, router, interface, portal, commune ... of the single
    # process is a series of the core (states and failure reasons aside: they follow events).
    # The core may be a poll behind the single process (interface counters appear with a
    # router's second poll): wait for it, then any series still lost is a failure.
    # What a probe's own sockets read and ignored is counted where the sockets are: on the
    # workers' targets (their names are checked above), not the core's.
    expected = {
        (name, labels)
        for name, labels in _series(single_text)
        if not name.startswith("netwatch_probe_ignored_packets")
    }
    lost: set[tuple[str, frozenset[tuple[str, str]]]] = set()

    def caught_up() -> bool:
        nonlocal lost
        lost = expected - _series(get(run.client.base, "/metrics")[1])
        return not lost

    with contextlib.suppress(WaitTimeoutError):  # then the assertion names what is lost
        _wait("the core exports every series of the single process", caught_up, 60)
    assert not lost, sorted(lost)[:20]


# Labels whose values follow what happened lately (a state, a failure's reason).
_EVENT_LABELS = frozenset({"state", "reason"})
# Families whose series come and go with events (which notifications went out, and how; which
# kinds of probe failed lately).
_EVENT_FAMILIES = ("netwatch_outbox_", "netwatch_probe_failures")


def _series(text: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """Every sample's name and labels (event labels dropped) in a /metrics body."""
    return {
        (s.name, frozenset((k, v) for k, v in s.labels.items() if k not in _EVENT_LABELS))
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.startswith(_EVENT_FAMILIES)
    }
