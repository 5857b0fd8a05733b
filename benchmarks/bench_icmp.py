"""Benchmark NetWatch's ICMP pinger against fping: 10,000 targets x 3 echoes paced at 10,000/s.

Run as root: ``.venv/bin/python benchmarks/bench_icmp.py``. Builds an AnyIP lab namespace
(benchmarks/_anyip.py), then runs fping and NetWatch's pinger, interleaved, each in a fresh
process, and measures each process's CPU (user + sys from wait4), wall time and lost echoes.
Ends with one line: ``RESULT icmp ratio=... lost=... netwatch_cpu_s=... fping_cpu_s=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _anyip import anyip_lab


@dataclass(frozen=True, slots=True)
class Run:
    """One measured process."""

    tool: str
    wall_s: float
    user_s: float
    sys_s: float
    lost: int
    sent: int

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds."""
        return self.user_s + self.sys_s


def _measure(tool: str, cmd: list[str], workdir: Path) -> tuple[Run, str, str]:
    """Run ``cmd`` to completion; output goes to files so a full pipe never stalls it."""
    out_path = workdir / f"{tool}.out"
    err_path = workdir / f"{tool}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - start
    # Reaped by wait4 above: tell Popen, or it warns that the process is still running.
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    run = Run(tool, wall_s, usage.ru_utime, usage.ru_stime, lost=-1, sent=0)
    return run, stdout, stderr


def _run_fping(targets_file: Path, echoes: int, rate_pps: float, workdir: Path) -> Run:
    """fping as BASELINES.md ran it: -C count, quiet, -i = 1/rate in ms."""
    interval_ms = 1000.0 / rate_pps
    cmd = ["fping", "-C", str(echoes), "-q", "-i", f"{interval_ms:g}", "-f", str(targets_file)]
    run, _stdout, stderr = _measure("fping", cmd, workdir)
    lost = sent = 0
    for line in stderr.splitlines():
        if " : " not in line:
            continue
        values = line.split(" : ", 1)[1].split()
        sent += len(values)
        lost += sum(1 for v in values if v == "-")
    return replace(run, lost=lost, sent=sent)


def _run_netwatch(
    targets_file: Path, echoes: int, rate_pps: float, spacing_s: float, workdir: Path
) -> Run:
    """NetWatch's pinger in a fresh interpreter (startup and imports included in its CPU)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(targets_file),
        "--echoes",
        str(echoes),
        "--rate",
        str(rate_pps),
        "--spacing",
        str(spacing_s),
    ]
    run, stdout, stderr = _measure("netwatch", cmd, workdir)
    try:
        summary = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"netwatch child failed: {stderr[-2000:]}", file=sys.stderr)
        raise
    return replace(run, lost=summary["lost"], sent=summary["sent"])


async def _child(targets: list[str], echoes: int, rate_pps: float, spacing_s: float) -> None:
    """The measured NetWatch process: one round, then a JSON summary on stdout."""
    from probes.icmp import IcmpPinger

    async with await IcmpPinger.open(rate_pps=rate_pps) as pinger:
        results = await pinger.round(targets, echoes=echoes, spacing_s=spacing_s, timeout_s=1.0)
        stats = pinger.stats()
    sent = sum(r.sent for r in results)
    lost = sum(r.sent - r.received for r in results)
    print(
        json.dumps(
            {
                "sent": sent,
                "lost": lost,
                "foreign": stats.foreign,
                "late": stats.late,
                "duplicate": stats.duplicate,
            }
        )
    )


def main() -> int:
    """Parse arguments, build the lab, run the interleaved comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--echoes", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--spacing", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--namespace", default="nwi-b")
    parser.add_argument("--network", default="10.91.0.0/16")
    args = parser.parse_args()
    if args.child is not None:
        asyncio.run(_child(args.child.read_text().split(), args.echoes, args.rate, args.spacing))
        return 0

    runs: list[Run] = []
    with anyip_lab(args.namespace, args.network) as lab, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        targets_file = workdir / "targets.txt"
        targets_file.write_text("\n".join(lab.targets(args.targets)) + "\n")
        for _ in range(args.runs):
            runs.append(_run_fping(targets_file, args.echoes, args.rate, workdir))
            runs.append(_run_netwatch(targets_file, args.echoes, args.rate, args.spacing, workdir))

    print(
        f"{args.targets} targets x {args.echoes} echoes, paced {args.rate:g}/s, "
        f"{args.runs} interleaved runs each"
    )
    print(
        f"{'tool':<9} {'wall s':>7} {'user s':>7} {'sys s':>7} {'cpu s':>7} {'sent':>6} {'lost':>5}"
    )
    for r in runs:
        print(
            f"{r.tool:<9} {r.wall_s:>7.2f} {r.user_s:>7.3f} {r.sys_s:>7.3f} {r.cpu_s:>7.3f} "
            f"{r.sent:>6} {r.lost:>5}"
        )
    fping_cpu = statistics.median(r.cpu_s for r in runs if r.tool == "fping")
    netwatch_cpu = statistics.median(r.cpu_s for r in runs if r.tool == "netwatch")
    lost = sum(r.lost for r in runs if r.tool == "netwatch")
    print(
        f"RESULT icmp ratio={netwatch_cpu / fping_cpu:.2f} lost={lost} "
        f"netwatch_cpu_s={netwatch_cpu:.3f} fping_cpu_s={fping_cpu:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
