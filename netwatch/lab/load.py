"""Paced UDP load generator: fills a commune's WAN link for the `congest` fault.

It runs inside the upstream node's namespace and sends to an address of the commune's LAN,
which the router forwards into a blackhole: every byte crosses the shaped WAN link and is counted
by the router's interface (so SNMP octet counters climb), and nothing answers back.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time
from collections.abc import Sequence
from types import FrameType

PAYLOAD_BYTES = 1200
TICK_S = 0.002


def blast(dest: str, port: int, rate_mbps: float, duration_s: float, source: str | None) -> int:
    """Send UDP at `rate_mbps` (payload) for `duration_s` (0: until SIGTERM); return packets."""
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    payload = b"\x00" * PAYLOAD_BYTES
    rate_bytes_per_s = rate_mbps * 1_000_000 / 8
    sent_packets = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if source:
            sock.bind((source, 0))
        sock.setblocking(False)
        start = time.monotonic()
        while not stopping:
            now = time.monotonic()
            if duration_s > 0 and now - start >= duration_s:
                break
            # Token bucket against the ideal schedule: catches up after a late wake-up, so the
            # average rate holds even on a busy machine.
            due = int((now - start) * rate_bytes_per_s / PAYLOAD_BYTES) - sent_packets
            # A packet the full queue refuses still counts as sent, so a refusal never turns
            # into a catch-up burst above the asked rate.
            for _ in range(min(due, 64)):
                sent_packets += 1
                try:
                    sock.sendto(payload, (dest, port))
                except OSError:
                    break
            time.sleep(TICK_S)
    return sent_packets


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `python -m netwatch.lab.load --dest IP --rate-mbps 12`."""
    parser = argparse.ArgumentParser(description="NetWatch lab UDP load generator")
    parser.add_argument("--dest", required=True)
    parser.add_argument("--port", type=int, default=9)
    parser.add_argument("--source")
    parser.add_argument("--rate-mbps", type=float, required=True)
    parser.add_argument("--duration-s", type=float, default=0.0, help="0 means until stopped")
    args = parser.parse_args(argv)
    blast(args.dest, args.port, args.rate_mbps, args.duration_s, args.source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
