"""Stopping the peer processes tests start (snmpd, snmpsim, Prometheus): politely, then firmly."""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any


def stop(proc: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it lingers `timeout_s`; reaped either way."""
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
