"""Every benchmark starts as `make bench` starts it: `python benchmarks/bench_X.py`, from the
checkout's root, with nothing on PYTHONPATH (bench_agents once stopped at its first import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_imports_what_it_needs_by_itself(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--help"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_make_bench_runs_scripts_that_exist() -> None:
    text = (ROOT / "scripts" / "bench.sh").read_text()
    listed = text.split("for bench in ", 1)[1].split(";", 1)[0].split()
    assert listed
    assert {f"{name}.py" for name in listed} <= set(SCRIPTS)
