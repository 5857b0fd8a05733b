"""Should the probe rounds run on APScheduler 3 or on the engine's own loop? Measured here.

Both run the same jobs in one process for --duration seconds: three probe kinds on their
intervals (1 s, 2 s, 3 s), each round doing 30 ms of CPU work plus 100 ms of waiting, and one
kind that overruns (a 1 s interval whose round takes 2.5 s). For each scheduler: how late rounds
start against their slots (median and worst), whether an overrunning round ever runs twice at
once, how many rounds ran, and the scheduler's own CPU per round (total CPU minus the rounds'
work). Run: .venv/bin/python benchmarks/bench_scheduler.py [--duration 30]
Ends with: RESULT scheduler lag_ratio=<APScheduler median lag / engine's> ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

JOBS = {"icmp": 1.0, "snmp": 2.0, "http": 3.0}
OVERRUN = ("slow", 1.0, 2.5)  # name, interval, round duration
WORK_S = 0.03
WAIT_S = 0.1


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class Stats:
    """Start lags against the schedule, overlap, and the CPU the rounds themselves used."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.running: dict[str, int] = {}
        self.overlap = 0
        self.rounds = 0
        self.work_cpu_s = 0.0

    def round(
        self, name: str, scheduled: float, duration_s: float
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.lags.append(max(0.0, time.monotonic() - scheduled))
            self.running[name] = self.running.get(name, 0) + 1
            if self.running[name] > 1:
                self.overlap += 1
            cpu = time.process_time()
            _burn(WORK_S)
            self.work_cpu_s += time.process_time() - cpu
            await asyncio.sleep(duration_s - WORK_S)
            self.running[name] -= 1
            self.rounds += 1

        return run


async def run_engine(duration_s: float) -> Stats:
    """NetWatch's loop (netwatch.engine.Engine._loop) driving the jobs."""
    from netwatch.engine import Engine
    from netwatch.plan import Plan

    stats = Stats()
    plan = Plan((), (), (), 30, 5, 60, 60)

    class Sink:
        def observe(self, batch: object) -> None:
            pass

        def round_done(self, report: object) -> None:
            pass

    engine = Engine(plan, None, None, None, [Sink()])
    origin = time.monotonic()
    tasks = []
    for name, interval, duration in (
        *((n, i, WAIT_S + WORK_S) for n, i in JOBS.items()),
        OVERRUN,
    ):
        slot = {"k": 0}

        async def job(name: str = name, interval: float = interval, duration: float = duration,
                      slot: dict[str, int] = slot) -> list[object]:  # fmt: skip
            # the slot this round was meant for: the loop skips slots it overran
            now = time.monotonic()
            k = max(slot["k"], int((now - origin) / interval))
            slot["k"] = k + 1
            await stats.round(name, origin + k * interval, duration)()
            return []

        tasks.append(asyncio.create_task(engine._loop(name, interval, 0.0, job, 1)))  # type: ignore[arg-type]
    await asyncio.sleep(duration_s)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


async def run_apscheduler(duration_s: float) -> Stats:
    """APScheduler 3's AsyncIOScheduler with interval triggers, max_instances=1, coalesce."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    stats = Stats()
    scheduler = AsyncIOScheduler()
    origin = time.monotonic()
    for name, interval, duration in (
        *((n, i, WAIT_S + WORK_S) for n, i in JOBS.items()),
        OVERRUN,
    ):
        slot = {"k": 1}

        async def job(name: str = name, interval: float = interval, duration: float = duration,
                      slot: dict[str, int] = slot) -> None:  # fmt: skip
            now = time.monotonic()
            k = max(slot["k"], int((now - origin) / interval))
            slot["k"] = k + 1
            await stats.round(name, origin + k * interval, duration)()

        scheduler.add_job(
            job, "interval", seconds=interval, max_instances=1, coalesce=True,
            misfire_grace_time=None, id=name,
        )  # fmt: skip
    scheduler.start()
    await asyncio.sleep(duration_s)
    scheduler.shutdown(wait=False)
    return stats


def child(kind: str, duration_s: float) -> None:
    """One measured process: run one scheduler, print its figures as JSON."""
    import logging

    logging.basicConfig(level=logging.ERROR)  # APScheduler warns on every skipped overrun
    # Imports are not the scheduler's running cost: do them before the clock starts.
    import apscheduler.schedulers.asyncio  # noqa: F401

    import netwatch.engine  # noqa: F401

    cpu0 = time.process_time()
    runner = run_engine if kind == "engine" else run_apscheduler
    stats = asyncio.run(runner(duration_s))
    cpu = time.process_time() - cpu0
    lags = sorted(stats.lags)
    print(json.dumps({
        "rounds": stats.rounds,
        "overlap": stats.overlap,
        "lag_median_ms": statistics.median(lags) * 1e3 if lags else float("nan"),
        "lag_max_ms": lags[-1] * 1e3 if lags else float("nan"),
        "overhead_ms_per_round": (cpu - stats.work_cpu_s) / max(stats.rounds, 1) * 1e3,
    }))  # fmt: skip


def main() -> int:
    """Run both schedulers in fresh processes, interleaved, and compare."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.duration)
        return 0
    results: dict[str, list[dict[str, float]]] = {"engine": [], "apscheduler": []}
    for _ in range(args.reps):
        for kind in results:
            out = subprocess.run(
                [sys.executable, str(HERE), "--child", kind, "--duration", str(args.duration)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {
        kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for kind, runs in results.items()
    }
    print(f"{'scheduler':<12} {'rounds':>7} {'overlap':>8} {'lag med ms':>11} {'lag max ms':>11} "
          f"{'overhead ms/round':>18}")  # fmt: skip
    for kind, m in med.items():
        print(f"{kind:<12} {m['rounds']:7.0f} {m['overlap']:8.0f} {m['lag_median_ms']:11.2f} "
              f"{m['lag_max_ms']:11.2f} {m['overhead_ms_per_round']:18.3f}")  # fmt: skip
    e, a = med["engine"], med["apscheduler"]
    print(
        f"RESULT scheduler lag_ratio={a['lag_median_ms'] / max(e['lag_median_ms'], 1e-3):.2f} "
        f"overhead_ratio={a['overhead_ms_per_round'] / max(e['overhead_ms_per_round'], 1e-6):.2f} "
        f"engine_overlap={e['overlap']:.0f} apscheduler_overlap={a['overlap']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
