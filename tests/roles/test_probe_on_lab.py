"""Probe workers against the lab and a real nats-server: what they publish, how they split the
work, how they live through a bus outage, how SNMP workers answer router-poll requests, and
that SIGTERM leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import yaml
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from netwatch.bus import commands, wire
from netwatch.bus.server import NatsServer, NatsServerOptions, running_nats_server
from netwatch.bus.streams import Delivery, ObservationConsumer, ensure_stream
from netwatch.engine import EngineOptions
from netwatch.inventory import Inventory, load_inventory
from netwatch.lab import Lab
from netwatch.observations import IcmpObservation, SnmpObservation
from netwatch.plan import Plan, compile_plan, shard_of
from netwatch.roles.probe import ProbeOptions, ProbeWorker
from tests.lab.fixtures import built_lab, restored
from tests.processes import stop
from tests.servers import reserved_port
from tests.waiting import async_wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

LAB_INDEX = 25  # 10.113.0.0/16, namespaces nwl25-*
NETWATCH = str(Path(sys.executable).with_name("netwatch"))
ICMP_S = 3.0
ENGINE = EngineOptions(icmp_timeout_s=1.0, start_jitter_s=0.2)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, 3, tmp_path_factory.mktemp("roles-lab"))


@pytest.fixture
def lab(built: Lab) -> Iterator[Lab]:
    yield from restored(built)


def _lab_env(lab: Lab) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in lab.paths.env_file.read_text().splitlines())
    return {k.strip(): v.strip().strip("'\"") for k, v in (p for p in pairs if len(p) == 2)}


@pytest.fixture
def config(lab: Lab, tmp_path: Path) -> Path:
    """The lab's inventory with short rounds."""
    data = yaml.safe_load(lab.paths.config_file.read_text(encoding="utf-8"))
    data["intervals"] = {"icmp_s": ICMP_S, "icmp_echoes": 5, "snmp_s": 3, "http_s": 5}
    path = tmp_path / "netwatch.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def inventory(lab: Lab, config: Path) -> Inventory:
    return load_inventory(config, environ=_lab_env(lab))


@pytest.fixture
def plan(inventory: Inventory) -> Plan:
    return compile_plan(inventory)


@contextmanager
def cli_worker(lab: Lab, config: Path, url: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`netwatch run --role probe ...` as a subprocess; stopped (and reaped) after."""
    log = config.parent / f"worker-{'-'.join(a.replace('/', '_') for a in args)}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [NETWATCH, "run", "--config", str(config), "--role", "probe", "--nats", url, *args],
            env={**os.environ, **_lab_env(lab)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield proc
        finally:
            stop(proc)
            print(log.read_text()[-3000:])  # shown when the test fails


@asynccontextmanager
async def worker(inventory: Inventory, url: str, **options: Any) -> AsyncIterator[ProbeWorker]:
    """An in-process probe worker, stopped after."""
    w = ProbeWorker(inventory, ProbeOptions(nats=(url,), engine=ENGINE, **options))
    stopping = asyncio.Event()
    task = asyncio.create_task(w.run(stopping))
    try:
        yield w
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


async def _collect(
    js: JetStreamContext,
    plan: Plan,
    done: Callable[[list[Delivery]], bool],
    *,
    durable: str = "test",
    filter_subject: str = f"{wire.OBS_PREFIX}.>",
    timeout_s: float = 60.0,
) -> list[Delivery]:
    """Deliveries from the start of the stream until `done(deliveries so far)`."""
    await ensure_stream(js)
    consumer = ObservationConsumer(
        js, wire.PlanIndex.from_plan(plan), durable, filter_subject=filter_subject
    )
    got: list[Delivery] = []
    try:
        async with asyncio.timeout(timeout_s):
            async for d in consumer.deliveries():
                await d.ack()
                got.append(d)
                if done(got):
                    break
    finally:
        await consumer.close()
    return got


def _icmp_rounds(got: list[Delivery]) -> dict[int, list[IcmpObservation]]:
    """Full ICMP rounds by round id."""
    rounds: dict[int, list[IcmpObservation]] = defaultdict(list)
    for d in got:
        if d.batch.kind == "icmp" and not d.batch.fast:
            rounds[d.batch.round_id] += [
                o for o in d.batch.observations if isinstance(o, IcmpObservation)
            ]
    return rounds


def _complete(plan: Plan, rounds: int = 2) -> Callable[[list[Delivery]], bool]:
    """`rounds` full ICMP rounds seen (each with every target of the plan)."""
    everyone = {t.key for t in plan.icmp}

    def done(got: list[Delivery]) -> bool:
        full = [r for r in _icmp_rounds(got).values() if {o.target.key for o in r} >= everyone]
        return len(full) >= rounds

    return done


def _metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _left(config: Path) -> list[int]:
    """Processes still running with this test's config on their command line."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(config).encode() in cmdline:
            found.append(int(pid))
    return found


async def test_cli_worker_publishes_lab_rounds_and_a_cut_link(
    lab: Lab, config: Path, plan: Plan, nats_server: NatsServer, js: JetStreamContext
) -> None:
    down = lab.plan.communes[2]
    lab.commune_down(down.code)
    port = reserved_port()
    with cli_worker(
        lab, config, nats_server.url, "--kinds", "icmp", "--metrics-listen", f"127.0.0.1:{port}"
    ) as proc:
        got = await _collect(js, plan, _complete(plan), filter_subject="nw.obs.v1.*.icmp")
        rounds = [r for r in _icmp_rounds(got).values() if len(r) == len(plan.icmp)]
        last = {o.target.key: o for o in rounds[-1]}
        assert sorted(k.encoded for k in last) == sorted(t.key.encoded for t in plan.icmp)
        for t in plan.icmp:
            obs = last[t.key]
            # The commune's links and its front-office devices (behind them) are cut.
            cut = t.key.name.startswith(f"{down.code:05d}/")
            assert obs.result.loss_ratio == (1.0 if cut else 0.0), t.key
        assert any(t.link is not None and t.link.commune == f"{down.code:05d}" for t in plan.icmp)
        # Its own /metrics, labelled with its role and shard.
        m = await asyncio.to_thread(_metrics, port)
        labels = frozenset({("role", "probe"), ("shard", "0"), ("kind", "icmp")})
        assert m[("netwatch_rounds_total", labels)] >= 2
        assert m[("netwatch_bus_published_rounds_total", labels | {("fast", "false")})] >= 2
        assert ("process_cpu_seconds_total", frozenset()) in m
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    assert _left(config) == []


async def test_two_shards_publish_every_target_once_per_round(
    lab: Lab, config: Path, plan: Plan, nats_server: NatsServer, js: JetStreamContext
) -> None:
    shards = {shard_of(f"{c.code:05d}", 2) for c in lab.plan.communes}
    assert shards == {0, 1}  # the lab's communes fall on both shards
    everyone = Counter(t.key for t in plan.icmp)

    def both(got: list[Delivery]) -> bool:
        reports = Counter(d.batch.round_id for d in got if d.batch.report is not None)
        return sum(1 for n in reports.values() if n == 2) >= 2

    with (
        cli_worker(lab, config, nats_server.url, "--kinds", "icmp", "--shard", "0/2"),
        cli_worker(lab, config, nats_server.url, "--kinds", "icmp", "--shard", "1/2"),
    ):
        # The filter takes the round reports too (nw.obs.v1.round.icmp); a shard publishes a
        # round's observations before its report, so both reports in means the round is in.
        got = await _collect(js, plan, both, filter_subject="nw.obs.v1.*.icmp")
    reports: dict[int, set[int]] = defaultdict(set)
    for d in got:
        if d.batch.report is not None:
            reports[d.batch.round_id].add(d.batch.shard)
    rounds = _icmp_rounds(got)
    whole = [rid for rid, s in reports.items() if s == {0, 1}]
    assert len(whole) >= 2
    for rid in whole:
        assert Counter(o.target.key for o in rounds[rid]) == everyone, rid


async def test_probing_goes_on_while_the_bus_is_down(
    lab: Lab, inventory: Inventory, plan: Plan, tmp_path: Path
) -> None:
    opts = NatsServerOptions(data_dir=tmp_path / "bus", port=reserved_port())
    url = f"nats://127.0.0.1:{opts.port}"
    async with worker(inventory, url, kinds=frozenset({"icmp"}), keep_rounds=1) as w:
        counters = w.sink.counters
        async with running_nats_server(opts):
            await async_wait_until(
                lambda: counters.published_rounds.get(("icmp", False), 0) >= 1, 30, 0.1
            )
        # A round done before the bus was ready counted an outage of its own (a loaded machine
        # starts the server slowly): only the stop below is the one this test makes.
        outages = counters.outages
        # The bus is gone: rounds go on, the newest one waits, older ones are dropped.
        before = w.stats.rounds["icmp"]
        await async_wait_until(lambda: w.stats.rounds["icmp"] >= before + 3, 30, 0.1)
        assert counters.dropped_rounds.get(("icmp", False), 0) >= 1
        assert counters.publish_errors >= 1
        published = counters.published_rounds[("icmp", False)]
        async with running_nats_server(opts) as server:
            await async_wait_until(
                lambda: counters.published_rounds[("icmp", False)] >= published + 2, 30, 0.1
            )
            nc = await nats.connect(server.url)
            try:
                got = await _collect(
                    nc.jetstream(), plan, _complete(plan, 3), filter_subject="nw.obs.v1.*.icmp"
                )
            finally:
                await nc.close()
    ids = sorted(_icmp_rounds(got))
    # Rounds from before the outage, the one kept through it, and new ones after.
    assert len(ids) >= 3
    assert counters.outages == outages + 1  # one outage, one warning, however long


async def test_a_worker_started_before_its_bus_buffers_and_flushes_at_stop(
    lab: Lab, inventory: Inventory, tmp_path: Path
) -> None:
    opts = NatsServerOptions(data_dir=tmp_path / "bus", port=reserved_port())
    url = f"nats://127.0.0.1:{opts.port}"
    w = ProbeWorker(
        inventory,
        ProbeOptions(nats=(url,), engine=ENGINE, kinds=frozenset({"icmp"}), keep_rounds=1),
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(w.run(stopping))
    counters = w.sink.counters
    try:
        await async_wait_until(lambda: w.stats.rounds["icmp"] >= 2, 30, 0.1)
        assert counters.dropped_rounds[("icmp", False)] >= 1  # no bus yet: the oldest went
        async with running_nats_server(opts):
            await async_wait_until(lambda: counters.published_rounds, 30, 0.1)
            rounds = w.stats.rounds["icmp"]
            await async_wait_until(lambda: w.stats.rounds["icmp"] > rounds, 30, 0.1)
            stopping.set()  # the bus still up: what the worker holds is flushed
            await asyncio.wait_for(task, 30)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)
    # Every round is either published or counted as dropped.
    published = counters.published_rounds[("icmp", False)]
    assert published + counters.dropped_rounds[("icmp", False)] == w.stats.rounds["icmp"]


async def test_snmp_workers_answer_poll_requests_for_their_own_routers(
    lab: Lab, inventory: Inventory, plan: Plan, nats_server: NatsServer, js: JetStreamContext
) -> None:
    await ensure_stream(js)
    nc = await nats.connect(nats_server.url)
    snmp = frozenset({"snmp"})
    answered: dict[str, int] = {}
    try:
        async with worker(inventory, nats_server.url, kinds=snmp, shard=0, shards=2) as w0:
            await async_wait_until(w0.connected, 20, 0.05)
            await asyncio.sleep(0.5)  # its subscription reaches the server
            for job in plan.snmp:
                request = commands.encode_poll_request(job.key.encoded)
                if shard_of(job.commune, 2) == 0:
                    msg = await nc.request(commands.SNMP_POLL, request, timeout=15)
                    reply = commands.decode_poll_reply(msg.data)
                    assert reply.router == job.key.encoded
                    assert reply.ok, reply.failure
                    batch = wire.decode(reply.batch, wire.PlanIndex.from_plan(plan))
                    obs = batch.observations[0]
                    assert isinstance(obs, SnmpObservation)
                    assert obs.sample.uptime_s is not None
                    answered[job.key.encoded] = reply.shard
                else:  # another shard's router: left to its owner, not answered here
                    with pytest.raises(nats.errors.TimeoutError):
                        await nc.request(commands.SNMP_POLL, request, timeout=2)
            assert set(answered.values()) == {0}
            with pytest.raises(nats.errors.TimeoutError):  # no such router anywhere
                await nc.request(
                    commands.SNMP_POLL, commands.encode_poll_request("router:99999"), timeout=2
                )
            with pytest.raises(nats.errors.TimeoutError):  # garbage: refused, not answered
                await nc.request(commands.SNMP_POLL, b"\xc1 not msgpack", timeout=0.5)
    finally:
        await nc.close()
    assert w0.poll_requests["polled"] == len(answered)
    assert w0.poll_requests["not_mine"] >= 2
    assert w0.poll_requests["bad_request"] == 1
    # Each poll also went to the core's side, on the fast SNMP subject of its province.
    fast = await _collect(
        js,
        plan,
        lambda got: len(got) >= len(answered),
        durable="fast-snmp",
        filter_subject="nw.obs.v1.*.snmp.fast",
    )
    assert sorted(o.job.key.encoded for d in fast for o in d.batch.observations) == sorted(  # type: ignore[union-attr]
        answered
    )


async def test_icmp_worker_asks_the_snmp_worker_for_a_suspect_links_router(
    lab: Lab, inventory: Inventory, plan: Plan, nats_server: NatsServer
) -> None:
    """Fast confirmation across processes: a cut link makes the ICMP worker ask for its router
    poll; the SNMP worker owning it polls and answers."""
    down = lab.plan.communes[0]
    async with (
        worker(inventory, nats_server.url, kinds=frozenset({"snmp"})) as snmp,
        worker(inventory, nats_server.url, kinds=frozenset({"icmp"})) as icmp,
    ):
        await async_wait_until(lambda: snmp.connected() and icmp.connected(), 20, 0.05)
        await async_wait_until(lambda: icmp.stats.rounds["icmp"] >= 1, 20, 0.1)
        lab.commune_down(down.code)
        await async_wait_until(lambda: icmp.poll_requests.get("answered", 0) >= 1, 60, 0.2)
        assert snmp.poll_requests["polled"] >= 1
