"""A benchmark's child processes: each in its own process group, stopped whatever happens.

Its own group means Ctrl-C on the benchmark reaches the benchmark, not the child, and stopping
the child stops whatever it started in turn (nginx workers, NetWatch's nats-server).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def process_group(
    argv: list[str],
    *,
    log: Path | None,
    env: dict[str, str] | None = None,
    stop_timeout_s: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` (output to `log`, or nowhere); SIGTERM its group on exit, SIGKILL if it
    has not ended `stop_timeout_s` later."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        child = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        try:
            yield child
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)
