"""The documented scrape targets (docs/dashboards.md, "Scrape targets"): `netwatch run` gives
each probe worker its own /metrics port, the shipped Prometheus config scrapes every NetWatch
process of the compose stack, and a worker whose port is taken probes on without metrics."""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from netwatch.cli import build_parser
from netwatch.inventory import load_inventory
from netwatch.roles.probe import ProbeOptions, ProbeWorker, metrics_server
from netwatch.roles.supervisor import child_specs
from tests.roles.procs import write_config
from tests.servers import reserved_port

ROOT = Path(__file__).resolve().parents[2]


def _flag(argv: tuple[str, ...], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_every_probe_worker_gets_its_own_metrics_port(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["run", "--config", str(tmp_path / "nw.yaml"), "--listen", "0.0.0.0:8080",
         "--probe-workers", "2", "--snmp-workers", "2"]
    )  # fmt: skip
    specs = {s.name: s.argv for s in child_specs(args, "nats://127.0.0.1:4222")}
    listen = {name: _flag(argv, "--metrics-listen") for name, argv in specs.items()}
    assert listen == {
        "probe-0": "0.0.0.0:9101",
        "probe-1": "0.0.0.0:9102",
        "snmp-0": "0.0.0.0:9103",
        "snmp-1": "0.0.0.0:9104",
        "core": None,  # the core's /metrics is on its own web
        # Web workers answer /metrics with the core's (--core-url): no target of their own.
        **{f"web-{i}": None for i in range(args.web_workers)},
    }
    args.metrics_port_base = 0
    assert all("--metrics-listen" not in s.argv for s in child_specs(args, "nats://x:4222"))


def test_the_shipped_prometheus_scrapes_every_netwatch_process_of_the_compose_stack() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    prometheus = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "netwatch"]
    scraped = {t for static in job["static_configs"] for t in static["targets"]}
    expected = set()
    for name, service in compose["services"].items():
        command = service.get("command")
        if not (isinstance(command, list) and command[:1] == ["run"]):
            continue  # not NetWatch
        args = build_parser().parse_args(command)
        if args.role == "web":
            continue  # its /metrics is the core's (--core-url): scraping it would count twice
        listen = args.metrics_listen if args.role == "probe" else args.listen
        assert listen, f"{name}: no /metrics"
        expected.add(f"{name}:{listen.rpartition(':')[2]}")
    assert expected == {"netwatch:8080", "probe:9101"}
    assert expected <= scraped, sorted(expected - scraped)


@pytest.fixture
def worker(tmp_path: Path) -> ProbeWorker:
    inventory = load_inventory(write_config(tmp_path / "netwatch.yaml", links=2))
    return ProbeWorker(inventory, ProbeOptions(nats=("nats://127.0.0.1:1",), shard=0, shards=1))


def test_a_worker_serves_its_shard_under_its_own_names(worker: ProbeWorker) -> None:
    port = reserved_port()
    loop = asyncio.new_event_loop()
    server = metrics_server(worker, ("127.0.0.1", port), loop)
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        loop.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # Not netwatch_targets: dashboards sum that over every instance of the job, where the
    # core's already counts the whole plan.
    assert "netwatch_targets" not in families
    targets = {s.labels["kind"]: s.value for s in families["netwatch_shard_targets"].samples}
    assert targets == {"icmp": 2, "http": 0}  # its kinds (icmp,http), its shard's counts
    assert all(
        (s.labels["role"], s.labels["shard"]) == ("probe", "0")
        for s in families["netwatch_shard_targets"].samples
    )
    assert "process_cpu_seconds" in families
    assert "netwatch_asyncio_tasks" in families


def test_a_taken_metrics_port_costs_the_metrics_not_the_worker(
    worker: ProbeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, "netwatch.roles.probe"):
            loop = asyncio.new_event_loop()
            try:
                assert metrics_server(worker, ("127.0.0.1", port), loop) is None
            finally:
                loop.close()
    assert f"metrics not served on 127.0.0.1:{port}" in caplog.text
