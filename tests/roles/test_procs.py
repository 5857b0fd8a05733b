"""The process helpers the role tests clean up with: kill_all() kills what descendants() saw,
never a process that took a seen pid since (pids wrap at 32,768 on these machines)."""

from __future__ import annotations

import subprocess
import sys

from tests.roles import procs
from tests.waiting import wait_until

PARENT = "import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\ntime.sleep(60)\n"


def test_kill_all_kills_what_was_seen_and_spares_a_reused_pid() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        [child] = wait_until(lambda: list(procs.descendants(parent.pid)), 10, 0.05, "a child")
        # `other` stands for a process that got a pid seen long ago: recorded, but not it.
        procs._STARTED[other.pid] = -1
        procs.kill_all({child, other.pid})
        wait_until(lambda: not procs.alive(child), 10, 0.05, "the child killed")
        assert procs.alive(other.pid)
    finally:
        for p in (parent, other):
            p.kill()
            p.wait()
