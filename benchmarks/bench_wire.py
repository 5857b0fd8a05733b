"""The observation wire format (netwatch/bus/wire.py) on a national round: encode + decode time.

Builds the synthetic national plan of tests/bus/national.py (3,321 communes: 9,997 ICMP
targets, 3,321 routers), one round of each kind, and times the codec the way the processes use
it: grouped into one message per province and kind, encoded, then decoded against the plan.
For comparison, the same ICMP round as one message per target. Then the whole path through a
real nats-server (the venv's, in a temporary directory): publish the national round with
message ids and PubAcks, consume it with the ordered durable consumer. Prints RESULT lines.

    .venv/bin/python -m benchmarks.bench_wire [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/...`

import nats

from netwatch.bus import wire
from netwatch.bus.server import NatsServerOptions, nats_server_version, running_nats_server
from netwatch.bus.streams import ObservationConsumer, ObservationPublisher, ensure_stream
from netwatch.observations import Kind, Observation
from tests.bus import national


def _best_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def _grouped(
    kind: Kind, obs: Sequence[Observation], index: wire.PlanIndex, repeat: int
) -> tuple[float, float, int, int]:
    sent_at = datetime.now(UTC)

    def encode() -> list[bytes]:
        groups = wire.group_by_subject(obs, index, kind)
        return [
            wire.encode_observations(kind, g, round_id=1, shard=0, sent_at=sent_at)
            for g in groups.values()
        ]

    payloads = encode()

    def decode() -> None:
        for p in payloads:
            wire.decode(p, index)

    return (
        _best_ms(encode, repeat),
        _best_ms(decode, repeat),
        len(payloads),
        sum(map(len, payloads)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    plan = national.national_plan()
    index = wire.PlanIndex.from_plan(plan)
    rounds: dict[Kind, list[Observation]] = {
        "icmp": national.icmp_round(plan),
        "snmp": national.snmp_round(plan),
    }
    total_enc = total_dec = 0.0
    for kind, obs in rounds.items():
        enc, dec, msgs, size = _grouped(kind, obs, index, args.repeat)
        total_enc += enc
        total_dec += dec
        print(
            f"RESULT wire kind={kind} observations={len(obs)} messages={msgs} bytes={size}"
            f" encode_ms={enc:.1f} decode_ms={dec:.1f}"
        )
    print(f"RESULT wire kind=national encode_ms={total_enc:.1f} decode_ms={total_dec:.1f}")

    # The alternative: one message per ICMP target (10,000 messages every 30 s).
    icmp = rounds["icmp"]
    sent_at = datetime.now(UTC)
    singles = [
        wire.encode_observations("icmp", [o], round_id=1, shard=0, sent_at=sent_at) for o in icmp
    ]
    enc = _best_ms(
        lambda: [
            wire.encode_observations("icmp", [o], round_id=1, shard=0, sent_at=sent_at)
            for o in icmp
        ],
        args.repeat,
    )
    dec = _best_ms(lambda: [wire.decode(p, index) for p in singles], args.repeat)
    sizes = [len(p) for p in singles]
    print(
        f"RESULT wire kind=icmp-per-target messages={len(singles)} bytes={sum(sizes)}"
        f" mean_bytes={statistics.mean(sizes):.0f} encode_ms={enc:.1f} decode_ms={dec:.1f}"
    )
    asyncio.run(through_nats(rounds, index))


async def through_nats(rounds: dict[Kind, list[Observation]], index: wire.PlanIndex) -> None:
    """Publish one national round to a real server and consume it back, timed."""
    with tempfile.TemporaryDirectory(prefix="nw-bench-bus-") as tmp:
        async with running_nats_server(NatsServerOptions(data_dir=Path(tmp))) as server:
            nc = await nats.connect(server.url)
            try:
                js = nc.jetstream()
                await ensure_stream(js)
                pub = ObservationPublisher(js, index, shard=0)
                t0 = time.perf_counter()
                messages = 0
                for kind, obs in rounds.items():
                    messages += (await pub.publish_round(kind, obs, round_id=1)).messages
                published = time.perf_counter() - t0
                consumer = ObservationConsumer(js, index, durable="bench")
                t0 = time.perf_counter()
                seen = got = 0
                async for d in consumer.deliveries():
                    seen += len(d.batch.observations)
                    await d.ack()
                    got += 1
                    if got == messages:
                        break
                consumed = time.perf_counter() - t0
                await consumer.close()
            finally:
                await nc.close()
    print(
        f"RESULT bus nats_server={nats_server_version()} messages={messages}"
        f" observations={seen} publish_ms={published * 1000:.0f} consume_ms={consumed * 1000:.0f}"
    )


if __name__ == "__main__":
    main()
