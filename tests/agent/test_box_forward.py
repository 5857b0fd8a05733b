"""The forwarder's token bucket on a fake clock, and the leaf server's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.agent.forward import TokenBucket
from netwatch.agent.leaf import render_leaf_config
from netwatch.agent.settings import AgentSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_bucket_lets_a_burst_through_then_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(10):
        await bucket.take(500)  # 5000 bytes: 1000 of burst, then 4000 at 1000 B/s
    assert clock.now - start == pytest.approx(3.5)  # the last message goes once its turn came
    await bucket.take(500)
    assert clock.now - start == pytest.approx(4.0)


async def test_bucket_refills_while_idle_but_never_beyond_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, burst=2000, clock=clock, sleep=clock.sleep)
    clock.now += 3600  # an hour idle: still only 2000 bytes of credit
    await bucket.take(2000)
    assert clock.slept == []
    await bucket.take(1000)
    await bucket.take(1)
    assert sum(clock.slept) == pytest.approx(1.0)


async def test_a_message_bigger_than_the_burst_still_goes_and_pays_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, clock=clock, sleep=clock.sleep)
    assert await bucket.take(1000) == 0.0
    assert await bucket.take(10) == pytest.approx(9.0)


def test_leaf_config_has_domain_bounded_store_and_escaped_credentials(tmp_path: Path) -> None:
    settings = AgentSettings(
        commune="24848",
        agent="24848-agent",
        secret="p@ss:w/rd",
        centre=("nats-leaf://10.0.0.1:7422", "tls://c.example.vn:7422"),
        data_dir=tmp_path,
        buffer_max_bytes=10_000_000,
    )
    text = render_leaf_config(settings, tmp_path / "nats", "tok")
    assert "domain: agent" in text
    assert "sync_interval: always" in text  # a power cut keeps what was buffered
    assert 'listen: "127.0.0.1:-1"' in text
    assert 'http: "127.0.0.1:-1"' in text
    assert f"max_file_store: {10_000_000 + 64 * 1024 * 1024}" in text
    assert '"nats-leaf://24848-agent:p%40ss%3Aw%2Frd@10.0.0.1:7422"' in text
    assert '"tls://24848-agent:p%40ss%3Aw%2Frd@c.example.vn:7422"' in text
    assert 'token: "tok"' in text


async def test_forwarder_counts_as_dropped_only_what_left_the_buffer_unsent(tmp_path: Path) -> None:
    import nats

    from netwatch.agent.buffer import BUFFER_STREAM, BUFFER_SUBJECT, BoxState, ensure_buffer
    from netwatch.agent.forward import Forwarder
    from netwatch.bus.server import NatsServerOptions, running_nats_server

    async with running_nats_server(NatsServerOptions(data_dir=tmp_path)) as server:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_buffer(js, 1_000_000)
            state = BoxState(tmp_path / "state.json")
            fwd = Forwarder(js, state, "nw.agent.v1.24848.obs", TokenBucket(1000))
            # A round buffered after the forwarder found nothing (the race at the first round):
            # no drop.
            await js.publish(BUFFER_SUBJECT, b"r1", headers={"Nats-Msg-Id": "a:1"})
            await fwd._nothing_after(1)
            assert (state.dropped_total, state.forwarded) == (0, 0)
            # Rounds 1-3 gone unsent (as by max_age): three drops, the mark moves past them.
            for i in (2, 3):
                await js.publish(BUFFER_SUBJECT, b"r", headers={"Nats-Msg-Id": f"a:{i}"})
            await js.purge_stream(BUFFER_STREAM)
            await fwd._nothing_after(1)
            assert (state.dropped_total, state.forwarded) == (3, 3)
            assert BoxState.load(tmp_path).dropped_total == 3
            await fwd._nothing_after(4)  # nothing new: nothing more counted
            assert state.dropped_total == 3
        finally:
            await nc.close()
