"""Distributed mode on loopback: a real three-node NATS cluster (JetStream, routes on 127.0.0.1),
a `--role probe` worker given all three URLs and two `--role core` processes, each on a node of
its own, with one PostgreSQL (docs/architecture.md, "Distributed mode").

The cores set the stream and buckets up with `--bus-replicas 3` (the probe, not told, creates
the stream with one copy if it comes first; the core raises it in place). Observations cross the
cluster to both cores; the probe's node is SIGKILLed and the probe goes on through another node;
that node comes back, then the leader core's node is SIGKILLed: exactly one core leads after,
never two at once, and observations keep arriving.

Raw ICMP to 127.0.0.x needs root here (no unprivileged ICMP sockets): privileged."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest

from netwatch.bus.server import find_nats_server
from netwatch.bus.streams import (
    LEADER_BUCKET,
    OBSERVATIONS,
    STATE_BUCKET,
    ensure_buckets,
    ensure_stream,
)
from tests.conftest import PgCluster
from tests.integration.conftest import pg_database
from tests.processes import stop
from tests.roles.procs import get, netwatch, samples, spawned, write_config
from tests.servers import reserved_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.timeout(300)]

INTERVALS = "intervals: {icmp_s: 1, icmp_echoes: 2}\n"
SETTLED_S = 12.0  # longer than the leader lease's TTL (StreamLimits.leader_ttl_s)
APPLIED = "netwatch_core_observations_applied_total{kind=icmp}"


@dataclass
class Node:
    """One nats-server of the cluster: its ports never change, so it can come back as itself."""

    name: str
    root: Path
    port: int = field(default_factory=reserved_port)
    monitor: int = field(default_factory=reserved_port)
    route: int = field(default_factory=reserved_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def configure(self, routes: list[int]) -> Path:
        """nats-server.conf as docs/architecture.md shows it, on loopback."""
        store = self.root / self.name
        store.mkdir(parents=True, exist_ok=True)
        conf = store / "nats-server.conf"
        conf.write_text(
            f"server_name: {self.name}\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor}\n"
            f'jetstream {{ store_dir: "{store}", max_file_store: 2GB, max_memory_store: 64MB }}\n'
            "cluster {\n"
            "  name: netwatch\n"
            f"  listen: 127.0.0.1:{self.route}\n"
            "  routes: [" + ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes) + "]\n"
            "}\n",
            encoding="utf-8",
        )
        return conf

    def start(self) -> None:
        conf = self.root / self.name / "nats-server.conf"
        with (self.root / f"{self.name}.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [str(find_nats_server()), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def healthy(self) -> bool:
        """JetStream up and in the cluster (the monitor's /healthz)."""
        return get(f"http://127.0.0.1:{self.monitor}", "/healthz")[0] == 200

    def clients(self) -> list[str]:
        status, body = get(f"http://127.0.0.1:{self.monitor}", "/connz")
        return [c.get("name", "") for c in json.loads(body)["connections"]] if status else []


@dataclass
class Core:
    name: str
    base: str
    node: Node

    def role(self) -> str:
        status, body = get(self.base, "/healthz/leader")
        return str(json.loads(body)["role"]) if status in (200, 503) and body else "down"

    def applied(self) -> float:
        return samples(self.base).get(APPLIED, 0.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Node]]:
    nodes = [Node(name, tmp_path / "nats") for name in ("n1", "n2", "n3")]
    routes = [n.route for n in nodes]
    try:
        for node in nodes:
            node.configure(routes)
            node.start()
        wait_until(
            lambda: all(n.healthy() for n in nodes),
            timeout_s=60,
            interval_s=0.2,
            message="three nats-servers with JetStream in one cluster",
        )
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def database(pg_cluster: PgCluster) -> Iterator[str]:
    with pg_database(pg_cluster, "nw_dist") as url:
        yield url


def _replicas(url: str) -> dict[str, tuple[int, int]]:
    """(configured replicas, copies in the cluster) of the stream and both buckets, after a
    process not told the replicas (a probe, an old core) set them up again: kept, not lowered."""

    async def ask() -> dict[str, tuple[int, int]]:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            js = nc.jetstream()
            await ensure_stream(js)
            await ensure_buckets(js)
            out = {}
            for stream in (OBSERVATIONS, f"KV_{STATE_BUCKET}", f"KV_{LEADER_BUCKET}"):
                info = await js.stream_info(stream)
                cluster = info.cluster
                copies = 1 + len(cluster.replicas or []) if cluster else 1
                out[stream] = (info.config.num_replicas or 1, copies)
            return out
        finally:
            await nc.close()

    return asyncio.run(ask())


def _start_core(
    stack: ExitStack, tmp_path: Path, name: str, config: Path, node: Node, database: str
) -> Core:
    port = reserved_port()
    data = tmp_path / name
    data.mkdir()
    argv = netwatch(
        "run", "--role", "core", "--config", str(config), "--nats", node.url,
        "--bus-replicas", "3", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
        "--name", name,
    )  # fmt: skip
    stack.enter_context(
        spawned(argv, tmp_path / f"{name}.log", {"NETWATCH_DATABASE_URL": database})
    )
    core = Core(name, f"http://127.0.0.1:{port}", node)
    wait_until(
        lambda: get(core.base, "/healthz")[0] == 200,
        timeout_s=60,
        interval_s=0.2,
        message=f"{name} serving",
    )
    return core


def _growing(cores: list[Core], by: float, what: str) -> None:
    """Every core applies `by` more ICMP observations than it had."""
    start = {c.name: c.applied() for c in cores}
    wait_until(
        lambda: all(c.applied() >= start[c.name] + by for c in cores),
        timeout_s=60,
        interval_s=0.3,
        message=f"{what}: observations arriving at {', '.join(c.name for c in cores)}",
    )


def _one_leader(cores: list[Core], double: list[list[str]]) -> str | None:
    roles = [c.role() for c in cores]
    if roles.count("leader") > 1:
        double.append(roles)
    if sorted(roles) != ["leader", "standby"]:
        return None
    return next(c.name for c, r in zip(cores, roles, strict=True) if r == "leader")


def _settled(cores: list[Core], double: list[list[str]], what: str) -> str:
    """The leader once one core has led alone for longer than the lease's TTL (10 s): a lease
    left by a core that stepped down has expired by then, whoever holds it now keeps it."""
    since: dict[str, float] = {}  # the current sole leader, and since when

    def steady() -> str | None:
        name = _one_leader(cores, double)
        if name not in since:
            since.clear()
        if name is None:
            return None
        start = since.setdefault(name, time.monotonic())
        return name if time.monotonic() - start >= SETTLED_S else None

    leader = wait_until(steady, timeout_s=90, interval_s=0.2, message=f"one leader {what}")
    assert leader is not None
    return leader


def test_probe_and_two_cores_on_a_three_node_cluster_survive_node_deaths(
    tmp_path: Path, cluster: list[Node], database: str
) -> None:
    config = write_config(tmp_path / "netwatch.yaml", links=2, extra=INTERVALS)
    urls = ",".join(n.url for n in cluster)
    probe_argv = netwatch(
        "run", "--role", "probe", "--config", str(config), "--nats", urls, "--kinds", "icmp",
    )  # fmt: skip
    with ExitStack() as stack:
        stack.enter_context(spawned(probe_argv, tmp_path / "probe.log"))
        # The probe picked one of the three URLs: that node is "A", the cores go on the others.
        a = wait_until(
            lambda: next((n for n in cluster if any("probe" in c for c in n.clients())), None),
            timeout_s=30,
            interval_s=0.2,
            message="the probe connected",
        )
        assert a is not None
        b, c = (n for n in cluster if n is not a)
        cores = [_start_core(stack, tmp_path, "core-b", config, b, database)]
        cores.append(_start_core(stack, tmp_path, "core-c", config, c, database))

        # The cores set the stream and buckets to three copies, one per node.
        assert _replicas(b.url) == {
            OBSERVATIONS: (3, 3),
            f"KV_{STATE_BUCKET}": (3, 3),
            f"KV_{LEADER_BUCKET}": (3, 3),
        }
        double: list[list[str]] = []
        leader = wait_until(
            lambda: _one_leader(cores, double), timeout_s=30, message="one core leading"
        )
        _growing(cores, 4, "the probe on A, the cores on B and C")  # two links, two rounds

        a.kill()  # the probe's node: it goes on through B or C
        _growing(cores, 4, "node A killed")
        assert not any("probe" in name for name in a.clients())  # A is gone, not back yet

        a.start()  # A back (same store, same ports), then the leader core's node dies
        wait_until(a.healthy, timeout_s=60, interval_s=0.2, message="node A back in the cluster")
        lead = next(core for core in cores if core.name == leader)
        lead.node.kill()
        # Its core loses the bus for a moment: it may keep the lease (renewed through another
        # node in time) or step down, and the other takes over once the lease expired.
        after = _settled(cores, double, f"after {lead.node.name} (under {leader}) was killed")
        print(f"leader before: {leader}; after the kill of {lead.node.name}: {after}")
        _growing(cores, 4, f"node {lead.node.name} killed")
        assert not double, f"two cores led at once: {double}"
        assert sorted(core.role() for core in cores) == ["leader", "standby"]
