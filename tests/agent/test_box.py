"""The agent box end to end: a real hub nats-server (leafnode users as the centre writes them,
stream AGENTS), the box's own leaf nats-server, a fake measurement.

Each test proves one promise of docs/agent.md: rounds reach the centre once and in order, also
across an outage of the centre and a restart of the agent; the buffer's bound drops the oldest
and says so in the heartbeat; the config comes from the centre and the last good one survives
an unreachable centre or a bad answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from netwatch.agent.buffer import BoxState
from netwatch.agent.model import AgentConfig, InsideRound
from tests.agent.boxes import (
    AGENT,
    SECOND,
    USER,
    Centre,
    FakeMeasure,
    agent_config,
    now,
    recent,
    running_box,
    settings,
)
from tests.agent.hub import running_hub
from tests.waiting import async_wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def centre(tmp_path: Path) -> AsyncIterator[Centre]:
    with running_hub(tmp_path / "hub", [USER]) as hub:
        c = Centre(hub)
        await c.connect()
        try:
            yield c
        finally:
            await c.close()


async def restart_hub(centre: Centre) -> None:
    centre.hub.start()
    await centre.connect()


async def stop_hub(centre: Centre) -> None:
    await centre.close()
    centre.hub.stop()


def assert_once_in_order(stored: list[tuple[str, object, object]], seqs: list[int]) -> None:
    assert seqs == sorted(set(seqs)), f"not once and in order: {seqs}"
    assert [msg_id for msg_id, _, _ in stored] == [f"{AGENT}:{s}" for s in seqs]


async def test_rounds_reach_the_centre_once_and_in_order(tmp_path: Path, centre: Centre) -> None:
    centre.serve(agent_config("rev-a"))
    measure = FakeMeasure()
    async with running_box(settings(tmp_path, centre.hub), measure) as box:
        await async_wait_until(lambda: len(measure.calls) >= 10, timeout_s=30, message="10 rounds")
        await async_wait_until(
            lambda: recent(centre.last_beat(), now()) or centre.last_beat(), timeout_s=10
        )
        seqs = await async_wait_until(
            lambda: _seqs_if(centre, lambda s: len(s) >= 10), timeout_s=20, message="10 at hub"
        )
        assert box.config is not None
        assert box.config.revision == "rev-a"
    stored = await centre.stored()
    seqs = [r.seq for _, r, _ in stored]
    assert seqs == list(range(1, len(seqs) + 1))  # from 1, no gap, no copy
    assert_once_in_order(stored, seqs)
    assert all(r.config_revision == "rev-a" and r.agent == AGENT for _, r, _ in stored)
    beat = centre.last_beat()
    assert beat is not None
    assert beat.config_revision == "rev-a"
    assert beat.version
    assert beat.dropped_total == 0


async def _seqs_if(centre: Centre, cond: object) -> list[int] | None:
    seqs = await centre.seqs()
    return seqs if cond(seqs) else None  # type: ignore[operator]


async def test_centre_away_then_back_everything_once_in_order_at_the_bucket_rate(
    tmp_path: Path, centre: Centre
) -> None:
    centre.serve(agent_config("rev-a", interval_s=0.25, devices=12))
    measure = FakeMeasure()
    rate = 4000  # bytes/s; a round with 12 devices is ~600 bytes
    s = settings(tmp_path, centre.hub, forward_rate_bps=rate)
    async with running_box(s, measure) as box:
        await async_wait_until(lambda: _seqs_if(centre, bool), timeout_s=30, message="first round")
        await stop_hub(centre)
        outage_at = now()
        outage_from = len(measure.calls)
        await async_wait_until(
            lambda: len(measure.calls) >= outage_from + 20, timeout_s=60, message="20 rounds"
        )
        # What the heartbeat says meanwhile (it reaches the centre only when a line is up).
        beat = await box.heartbeat(box_js(box))
        assert beat.buffer_messages >= 19
        assert beat.buffer_bytes > 19 * 500
        assert beat.buffer_oldest_at is not None
        assert outage_at - SECOND <= beat.buffer_oldest_at <= now()
        assert beat.last_seq >= outage_from + 19
        assert beat.dropped_total == 0
        await restart_hub(centre)
        last = len(measure.calls)
        await async_wait_until(
            lambda: _seqs_if(centre, lambda q: q and q[-1] >= last), timeout_s=60, message="backlog"
        )
    stored = await centre.stored()
    seqs = [r.seq for _, r, _ in stored]
    assert seqs == list(range(1, seqs[-1] + 1))
    assert_once_in_order(stored, seqs)
    # The backlog went no faster than the bucket: from the first round sent after the outage
    # to the last of the backlog, the bytes beyond one second's burst took at least bytes/rate.
    backlog = [(r, t) for _, r, t in stored if outage_from < r.seq <= last]
    assert len(backlog) >= 20
    from netwatch.agent.wire import encode_round

    sizes = [len(encode_round(r)) for r, _ in backlog]
    span = (backlog[-1][1] - backlog[0][1]).total_seconds()
    floor = (sum(sizes[1:]) - rate) / rate
    assert floor > 1.0, "the test's backlog must exceed the burst to say anything"
    assert span >= 0.9 * floor, f"backlog of {sum(sizes)} B went in {span:.2f} s at {rate} B/s"


async def test_small_buffer_drops_the_oldest_and_counts_them(
    tmp_path: Path, centre: Centre
) -> None:
    centre.serve(agent_config("rev-a", interval_s=0.1, devices=4))
    measure = FakeMeasure()
    s = settings(tmp_path, centre.hub, buffer_max_bytes=4096)  # ~10 rounds of ~350 B
    async with running_box(s, measure) as box:
        await async_wait_until(lambda: _seqs_if(centre, bool), timeout_s=30, message="first round")
        await stop_hub(centre)
        outage_from = len(measure.calls)
        await async_wait_until(
            lambda: len(measure.calls) >= outage_from + 40, timeout_s=60, message="40 rounds"
        )
        await restart_hub(centre)

        def settled() -> object:
            beat = centre.last_beat()
            return beat if beat and beat.buffer_messages == 0 and beat.dropped_total else None

        await async_wait_until(settled, timeout_s=60, message="buffer empty, drops reported")
        last_measured = box.last_seq
        await async_wait_until(
            lambda: _seqs_if(centre, lambda q: q and q[-1] >= last_measured), timeout_s=30
        )
        beat = await box.heartbeat(box_js(box))
    seqs = await centre.seqs()
    assert seqs == sorted(set(seqs))
    missing = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))
    assert missing, "a 4 kB buffer cannot hold 40 rounds"
    # What went missing is the oldest of the outage, one stretch, and it was all counted.
    assert missing == list(range(missing[0], missing[-1] + 1))
    assert missing[0] > outage_from - 1
    assert beat.dropped_total == len(missing)
    assert BoxState.load(s.data_dir).dropped_total == len(missing)  # persisted


def box_js(box: object) -> object:
    return box._forwarder.js  # type: ignore[attr-defined]


async def test_restart_keeps_seq_buffer_and_last_good_config(
    tmp_path: Path, centre: Centre
) -> None:
    centre.serve(agent_config("rev-a", interval_s=0.1))
    s = settings(tmp_path, centre.hub)
    first = FakeMeasure()
    async with running_box(s, first):
        await async_wait_until(lambda: _seqs_if(centre, bool), timeout_s=30, message="first round")
        await stop_hub(centre)
        n = len(first.calls)
        await async_wait_until(lambda: len(first.calls) >= n + 10, timeout_s=30)
    # Restarted with the centre away: the config from disk, seq going on, the buffer kept.
    second = FakeMeasure()
    async with running_box(s, second) as box:
        await async_wait_until(lambda: len(second.calls) >= 5, timeout_s=30, message="rounds")
        assert box.config is not None
        assert box.config.revision == "rev-a"
        assert second.seqs[0] == first.seqs[-1] + 1
        assert {rev for _, rev in second.calls} == {"rev-a"}
        await restart_hub(centre)
        last = second.seqs[-1]
        await async_wait_until(
            lambda: _seqs_if(centre, lambda q: q and q[-1] >= last), timeout_s=60, message="all"
        )
    stored = await centre.stored()
    seqs = [r.seq for _, r, _ in stored]
    assert seqs == list(range(1, seqs[-1] + 1))
    assert_once_in_order(stored, seqs)


async def test_config_from_the_centre_bad_answers_keep_the_old_one(
    tmp_path: Path, centre: Centre
) -> None:
    from netwatch.agent.wire import encode_config

    measure = FakeMeasure()
    async with running_box(settings(tmp_path, centre.hub), measure) as box:
        # No config yet: nothing measured, heartbeats say so.
        await async_wait_until(lambda: centre.requests >= 2, timeout_s=30, message="asked twice")
        await async_wait_until(lambda: centre.last_beat(), timeout_s=10, message="heartbeat")
        assert measure.calls == []
        assert all(b.config_revision is None for b in centre.heartbeats)
        centre.serve(agent_config("rev-a"))
        await async_wait_until(lambda: measure.calls, timeout_s=30, message="measuring")
        since = now()
        await async_wait_until(
            lambda: (b := recent(centre.last_beat(), since)) and b.config_revision == "rev-a",
            timeout_s=10,
        )
        # Garbage, another commune's config, a newer wire version: all refused, rev-a runs on.
        other = agent_config("rev-x")
        other_commune = type(other)(**{**_fields(other), "commune": "99999"})
        for bad in (
            b"\x00garbage",
            encode_config(other_commune),
            b"\x83\xa1v\x63\xa1t\xa3cfg\xa1d\x80",  # version 99
            b"\x83\xa1v\x01\xa1t\xa3err\xa1d\x81\xa5error\xa2no",  # the centre's refusal
        ):
            centre.serve(bad)
            asked = centre.requests
            await async_wait_until(lambda a=asked: centre.requests >= a + 2, timeout_s=30)
            assert box.config is not None
            assert box.config.revision == "rev-a"
        centre.serve(agent_config("rev-b"))
        await async_wait_until(
            lambda: measure.calls[-1][1] == "rev-b", timeout_s=30, message="rev-b runs"
        )
        # The centre gone: rev-b stays.
        await stop_hub(centre)
        n = len(measure.calls)
        await async_wait_until(lambda: len(measure.calls) >= n + 10, timeout_s=30)
        assert {rev for _, rev in measure.calls[n:]} == {"rev-b"}
    from netwatch.agent.wire import decode_config

    on_disk = decode_config((tmp_path / "box" / "config.msgpack").read_bytes())
    assert on_disk.revision == "rev-b"


def _fields(obj: object) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


async def test_wrong_permission_direction_would_be_noticed(tmp_path: Path) -> None:
    # The hub's users as the centre writes them: publish = what the agent may publish. Swapped,
    # nothing of the agent's reaches the centre: the tests above would fail.
    with running_hub(tmp_path / "hub", [USER], swap_permissions=True) as hub:
        centre = Centre(hub)
        await centre.connect()
        try:
            centre.serve(agent_config("rev-a"))
            async with running_box(settings(tmp_path, hub), FakeMeasure()) as box:
                await async_wait_until(
                    lambda: "Leafnode connection created" in hub.log(), timeout_s=30
                )
                asked = box.config_requests
                await async_wait_until(lambda: box.config_requests >= asked + 3, timeout_s=30)
                assert centre.requests == 0
                assert box.config is None
        finally:
            await centre.close()


async def test_a_hanging_measurement_neither_stops_the_rounds_nor_the_agent(
    tmp_path: Path, centre: Centre
) -> None:
    centre.serve(agent_config("rev-a", interval_s=0.1))
    release = asyncio.Event()
    inner = FakeMeasure()

    async def measure(config: AgentConfig, seq: int, at: datetime) -> InsideRound:
        if seq == 3:  # hangs, and shrugs off cancellation until the test ends
            while not release.is_set():
                with contextlib.suppress(asyncio.CancelledError):
                    await release.wait()
        return await inner(config, seq, at)

    try:
        async with running_box(
            settings(tmp_path, centre.hub),
            measure,
            measure_timeout_min_s=0.5,  # type: ignore[arg-type]
        ):
            await async_wait_until(
                lambda: _seqs_if(centre, lambda q: len(q) >= 8), timeout_s=30, message="8 rounds"
            )
        # running_box returned: the agent and its nats-server stopped with seq 3 still hanging.
    finally:
        release.set()
    seqs = await centre.seqs()
    assert 3 not in seqs
    assert seqs[:2] == [1, 2]
    assert seqs[2:] == list(range(4, seqs[-1] + 1))


async def test_second_centre_url_when_the_first_is_dead(tmp_path: Path, centre: Centre) -> None:
    from tests.servers import reserved_port

    centre.serve(agent_config("rev-a"))
    dead = f"nats-leaf://127.0.0.1:{reserved_port()}"  # nothing listens there
    s = settings(tmp_path, centre.hub, centre=(dead, centre.hub.leaf_url))
    async with running_box(s, FakeMeasure()):
        await async_wait_until(
            lambda: _seqs_if(centre, lambda q: len(q) >= 3), timeout_s=60, message="3 rounds"
        )


def hub_certificate(tmp_path: Path) -> tuple[Path, Path, Path]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_pem, key_pem, ca_pem = tmp_path / "hub.pem", tmp_path / "hub.key", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    return cert_pem, key_pem, ca_pem


async def test_tls_to_the_centre_with_its_private_ca(tmp_path: Path) -> None:
    cert_pem, key_pem, ca_pem = hub_certificate(tmp_path)
    with running_hub(tmp_path / "hub", [USER], tls=(cert_pem, key_pem)) as hub:
        centre = Centre(hub)
        await centre.connect()
        try:
            centre.serve(agent_config("rev-a"))
            assert hub.leaf_url.startswith("tls://")
            # Without the centre's CA the box refuses the centre's certificate: nothing passes.
            untrusting = settings(tmp_path / "a", hub)
            leaf_log = untrusting.data_dir / "nats" / "nats-server.log"
            async with running_box(untrusting, FakeMeasure()) as box:
                await async_wait_until(
                    lambda: "x509" in (leaf_log.read_text() if leaf_log.exists() else ""),
                    timeout_s=30,
                    message="the leaf refused the certificate",
                )
                asked = box.config_requests
                await async_wait_until(lambda: box.config_requests >= asked + 3, timeout_s=30)
                assert centre.requests == 0
            trusting = settings(tmp_path / "b", hub, ca_file=ca_pem)
            async with running_box(trusting, FakeMeasure()):
                await async_wait_until(
                    lambda: _seqs_if(centre, lambda q: len(q) >= 3), timeout_s=60, message="tls"
                )
        finally:
            await centre.close()


async def test_a_second_agent_on_the_same_data_dir_is_refused(
    tmp_path: Path, centre: Centre
) -> None:
    from netwatch.agent.box import AgentBusyError, Box

    centre.serve(agent_config("rev-a"))
    s = settings(tmp_path, centre.hub)
    async with running_box(s, FakeMeasure()):
        with pytest.raises(AgentBusyError, match="another netwatch agent runs on"):
            await Box(s, FakeMeasure()).run(asyncio.Event())
    async with running_box(s, FakeMeasure()):  # the lock goes with the agent
        pass


async def test_tls_first_as_behind_a_tls_terminating_proxy(tmp_path: Path) -> None:
    cert_pem, key_pem, ca_pem = hub_certificate(tmp_path)
    with running_hub(tmp_path / "hub", [USER], tls=(cert_pem, key_pem), tls_first=True) as hub:
        centre = Centre(hub)
        await centre.connect()
        try:
            centre.serve(agent_config("rev-a"))
            s = settings(tmp_path, hub, ca_file=ca_pem, tls_handshake_first=True)
            async with running_box(s, FakeMeasure()):
                await async_wait_until(
                    lambda: _seqs_if(centre, lambda q: len(q) >= 3), timeout_s=60, message="tls"
                )
        finally:
            await centre.close()
