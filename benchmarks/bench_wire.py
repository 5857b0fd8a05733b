"""The observation wire format (netwatch/bus/wire.py) on a national round: encode + decode time.

Builds the synthetic national plan of tests/bus/national.py (3,321 communes: 9,997 ICMP
targets, 3,321 routers), one round of each kind, and times the codec the way the processes use
it: grouped into one message per province and kind, encoded, then decoded against the plan.
For comparison, the same ICMP round as one message per target. Prints RESULT lines.

    .venv/bin/python -m benchmarks.bench_wire [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from netwatch.bus import wire
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


if __name__ == "__main__":
    main()
