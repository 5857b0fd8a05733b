"""What the judge of the view from inside costs the core at national scale (issue 11).

Every commune of Vietnam with two links and an agent; one round and one heartbeat per agent fed
through the judge (as the bus feed hands them), then: the cost of a round, of a tick with
nothing new, and of a full decision with the inside view (what a tick costs when something
changed). Prints `RESULT judge round_us=... tick_idle_ms=... push_ms=...`.

    .venv/bin/python benchmarks/bench_judge.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netwatch.agent.model import AgentHeartbeat, InsideRound, PathPing, Ping
from netwatch.health import HealthMonitor
from netwatch.inside.judge import InsideJudge
from netwatch.inventory import Divisions, load_inventory


def national(path: Path) -> None:
    communes = sorted(Divisions().communes.values(), key=lambda c: c.code)
    lines = [
        "isps:",
        "  vnpt: {name: VNPT}",
        "  viettel: {name: Viettel}",
        "communes:",
    ]
    for n, c in enumerate(communes):
        a, b = f"10.{n // 250}.{n % 250}.1", f"10.{n // 250}.{n % 250}.5"
        lines += [
            f"  - code: {int(c.code)}",
            "    links:",
            f"      - {{id: vnpt, isp: vnpt, circuit: T{c.code}, bandwidth_mbps: 100,"
            f" path: tslcd, address: {a}}}",
            f"      - {{id: vtl, isp: viettel, circuit: I{c.code}, bandwidth_mbps: 100,"
            f" path: internet, address: {b}}}",
            "    agent:",
            "      paths:",
            f"        - {{link: vnpt, source: 192.168.1.10, target: {a}}}",
            f"        - {{link: vtl, source: 192.168.1.11, target: {b}}}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "national.yaml"
        national(path)
        inventory = load_inventory(path)
    health = HealthMonitor(inventory)
    judge = InsideJudge(health)
    codes = [c.code for c in inventory.communes]
    t0 = datetime.now(UTC)
    up = Ping("x", 3, 3, 0.004, 0.005, None)

    def round_of(code: str, seq: int, at: datetime) -> InsideRound:
        return InsideRound(
            code, f"{code}-agent", seq, at, "r", up,
            (PathPing("vnpt", up), PathPing("vtl", up)), (), (),
        )  # fmt: skip

    start = time.perf_counter()
    for code in codes:
        judge.heartbeat(
            AgentHeartbeat(code, f"{code}-agent", "b", t0, "r", 1, 0, 0, None, 0, 1), t0
        )
    for seq in (1, 2):
        at = t0 + timedelta(seconds=30 * seq)
        for code in codes:
            judge.inside_round(round_of(code, seq, at), at)
    fed = time.perf_counter() - start
    messages = len(codes) * 3
    judge.tick(t0 + timedelta(seconds=61))  # the first push
    start = time.perf_counter()
    for i in range(10):
        judge.tick(t0 + timedelta(seconds=62 + i))
    idle_ms = (time.perf_counter() - start) / 10 * 1000
    start = time.perf_counter()
    for i in range(5):
        judge._dirty = True  # measure a push as a changed tick makes it
        judge.tick(t0 + timedelta(seconds=72 + i))
    push_ms = (time.perf_counter() - start) / 5 * 1000
    print(
        f"RESULT judge agents={len(codes)} round_us={fed / messages * 1e6:.1f} "
        f"tick_idle_ms={idle_ms:.2f} push_ms={push_ms:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
