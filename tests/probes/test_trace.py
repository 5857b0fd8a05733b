"""The path trace on loopback (one hop, both families) and its argument checks.

Broken paths are traced on the lab: tests/integration/test_path_trace_on_lab.py.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from probes.trace import TraceStop, format_trace, trace_path, trace_paths


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")


@pytest.mark.privileged
@needs_root
async def test_loopback_is_reached_at_the_first_hop() -> None:
    result = await trace_path("127.0.0.1")
    assert result.reached
    assert result.stop is TraceStop.REACHED
    assert len(result.hops) == 1
    hop = result.hops[0]
    assert (hop.ttl, hop.address, hop.sent, hop.received) == (1, "127.0.0.1", 3, 3)
    assert hop.rtt_median_s is not None
    assert 0 <= hop.rtt_median_s < 0.05
    assert result.last_hop() == hop
    # A healthy path ends as soon as the last sweep is answered, not after the timeout.
    assert result.duration_s < 0.5 + 0.5
    assert "127.0.0.1" in format_trace(result)


@pytest.mark.privileged
@needs_root
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
async def test_both_families_in_one_call_keep_their_order() -> None:
    results = await trace_paths(["::1", "127.0.0.1"], probes_per_hop=2)
    assert [r.target for r in results] == ["::1", "127.0.0.1"]
    assert all(r.reached and r.hops[0].received == 2 for r in results)


@pytest.mark.privileged
@needs_root
async def test_concurrent_traces_never_take_each_others_answers() -> None:
    results = await asyncio.gather(*(trace_path("127.0.0.1") for _ in range(5)))
    for result in results:
        assert result.hops[0].received == 3  # each its own three, not a share of fifteen


async def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        await trace_path("dichvucong.gov.vn")
    with pytest.raises(ValueError, match="max_hops"):
        await trace_path("127.0.0.1", max_hops=0)
    with pytest.raises(ValueError, match="probes_per_hop"):
        await trace_path("127.0.0.1", probes_per_hop=0)
    with pytest.raises(ValueError, match="timeout_s"):
        await trace_path("127.0.0.1", timeout_s=0)
