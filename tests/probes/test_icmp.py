"""The ICMP probe against real echoes in lab namespaces (see conftest.py for the lab)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import textwrap
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest

from probes import _icmp_batch as icmp_batch
from probes.icmp import (
    IcmpPinger,
    IcmpUnavailableError,
    PingerStats,
    PingFailure,
    PingResult,
    format_ping_table,
    ping_once,
)
from tests.waiting import async_wait_until


class IcmpLab(Protocol):
    """What the tests use of conftest.py's lab fixtures (conftest is not importable)."""

    namespace: str
    root_if: str
    ns_v4: str
    ns_v6: str | None

    def targets_v4(self, count: int, *, skip: int = 0) -> list[str]: ...
    def targets_v6(self, count: int, *, skip: int = 0) -> list[str]: ...
    def ns(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...
    def nft(self, table: str, ruleset: str) -> AbstractContextManager[None]: ...
    def set_link(self, *, up: bool) -> None: ...


def _delta(after: PingerStats, before: PingerStats) -> dict[str, int]:
    """Counter increments between two snapshots."""
    return {name: getattr(after, name) - getattr(before, name) for name in PingerStats.__slots__}


def _assert_all_answered(results: list[PingResult], targets: list[str], echoes: int) -> None:
    """Every target answered every echo, with consistent statistics."""
    assert [r.address for r in results] == targets
    for r in results:
        assert (r.sent, r.received, r.loss_ratio, r.failure) == (echoes, echoes, 0.0, None), r
        assert r.rtt_min_s is not None
        assert r.rtt_median_s is not None
        assert r.rtt_max_s is not None
        assert 0 <= r.rtt_min_s <= r.rtt_median_s <= r.rtt_max_s < 1.0
        assert len(r.rtts_s) == echoes
        assert r.jitter_s is not None
        assert r.jitter_s >= 0
        assert r.started_at.tzinfo is not None


@pytest.mark.privileged
@pytest.mark.lab
async def test_round_over_many_targets_all_answered(icmp_lab: IcmpLab, pinger: IcmpPinger) -> None:
    targets = icmp_lab.targets_v4(500)
    before = pinger.stats()
    results = await pinger.round(targets, echoes=3, spacing_s=0.05, timeout_s=2.0)
    _assert_all_answered(results, targets, 3)
    delta = _delta(pinger.stats(), before)
    # `foreign` is not asserted: a raw socket also sees other programs' echo replies.
    assert {k: delta[k] for k in ("sent", "received", "late", "duplicate", "send_errors")} == {
        "sent": 1500,
        "received": 1500,
        "late": 0,
        "duplicate": 0,
        "send_errors": 0,
    }


@pytest.mark.privileged
@pytest.mark.lab
async def test_random_drop_shows_as_loss(icmp_lab: IcmpLab, pinger: IcmpPinger) -> None:
    # 30 % of the echo requests to 10.91.131.0/24 are dropped inside the lab.
    ruleset = """
    table ip nwi_loss {
      chain input {
        type filter hook input priority 0;
        ip daddr 10.91.131.0/24 icmp type echo-request numgen random mod 100 < 30 drop
      }
    }
    """
    targets = [f"10.91.131.{i}" for i in range(1, 201)]
    with icmp_lab.nft("ip nwi_loss", ruleset):
        results = await pinger.round(targets, echoes=5, spacing_s=0.02, timeout_s=1.0)
    sent = sum(r.sent for r in results)
    received = sum(r.received for r in results)
    assert sent == 1000
    assert 0.18 <= 1 - received / sent <= 0.42
    for r in results:
        assert r.loss_ratio == pytest.approx((r.sent - r.received) / r.sent)
        assert (r.failure is PingFailure.NO_REPLY) == (r.received == 0)


@pytest.mark.privileged
@pytest.mark.lab
async def test_unanswered_addresses_give_a_reason(icmp_lab: IcmpLab, pinger: IcmpPinger) -> None:
    answering = icmp_lab.targets_v4(3, skip=2000)
    blackholed = "10.91.64.1"  # root blackhole: sendto fails
    blackholed_too = "10.91.64.2"
    unrouted = "10.91.65.1"  # routed into the lab, owned by nobody there
    rejected = "10.91.250.1"  # the lab answers ICMP host unreachable
    rejected_v6 = "fd91::100:ff01"  # ... and ICMPv6 address unreachable
    # Refused echoes first and in the middle of a run of IPv4 targets (one sendmmsg each): the
    # targets after them are still sent to.
    targets = [blackholed, answering[0], blackholed_too, *answering[1:], unrouted, rejected]
    targets.append(rejected_v6)
    before = pinger.stats()
    results = await pinger.round(targets, echoes=2, spacing_s=0.05, timeout_s=0.5)
    by_address = {r.address: r for r in results}
    assert by_address[blackholed].failure is PingFailure.SEND_ERROR
    assert by_address[blackholed].sent == 2
    assert by_address[blackholed].loss_ratio == 1.0
    assert by_address[unrouted].failure in {PingFailure.NO_REPLY, PingFailure.UNREACHABLE}
    assert by_address[rejected].failure is PingFailure.UNREACHABLE
    assert by_address[rejected_v6].failure is PingFailure.UNREACHABLE
    assert by_address[blackholed_too].failure is PingFailure.SEND_ERROR
    for address in (blackholed, blackholed_too, unrouted, rejected, rejected_v6):
        r = by_address[address]
        assert (r.received, r.rtt_median_s, r.jitter_s, r.rtts_s) == (0, None, None, ())
    for address in answering:
        assert by_address[address].received == 2
    delta = _delta(pinger.stats(), before)
    assert delta["send_errors"] == 4
    assert delta["icmp_errors"] >= 4


@pytest.mark.privileged
@pytest.mark.lab
async def test_link_down_mid_round(link_lab: IcmpLab, pinger: IcmpPinger) -> None:
    targets = link_lab.targets_v4(20)
    before = pinger.stats()
    task = asyncio.create_task(pinger.round(targets, echoes=10, spacing_s=0.1, timeout_s=0.5))
    # Three sweeps answered (of ten), then the link goes down under the round.
    await async_wait_until(
        lambda: _delta(pinger.stats(), before)["received"] >= 3 * len(targets),
        message="three sweeps answered",
    )
    await asyncio.to_thread(link_lab.set_link, up=False)
    results = await task
    assert [r.address for r in results] == targets
    for r in results:
        assert r.sent == 10
        assert 0 < r.received < 10
        assert r.loss_ratio == pytest.approx(1 - r.received / 10)
        assert r.failure is None
    # Once the link is down its route is gone and the blackhole refuses the echoes.
    after = await pinger.round(targets[:3], echoes=2, spacing_s=0.05, timeout_s=0.5)
    assert [r.failure for r in after] == [PingFailure.SEND_ERROR] * 3


@pytest.mark.privileged
@pytest.mark.lab
async def test_duplicate_replies_are_ignored_and_counted(
    icmp_lab: IcmpLab, pinger: IcmpPinger
) -> None:
    # nft `dup` in the lab sends every echo reply from 10.91.132.0/24 twice.
    ruleset = """
    table ip nwi_dup {
      chain output {
        type filter hook output priority 0;
        ip saddr 10.91.132.0/24 icmp type echo-reply dup to 10.91.0.1
      }
    }
    """
    targets = [f"10.91.132.{i}" for i in range(1, 21)]
    before = pinger.stats()
    with icmp_lab.nft("ip nwi_dup", ruleset):
        results = await pinger.round(targets, echoes=3, spacing_s=0.05, timeout_s=1.0)
        # The duplicates of the last echoes arrive after the round: wait until they are read.
        await async_wait_until(
            lambda: _delta(pinger.stats(), before)["duplicate"] >= 60, message="duplicates read"
        )
    _assert_all_answered(results, targets, 3)
    delta = _delta(pinger.stats(), before)
    assert delta["received"] == 60
    assert delta["duplicate"] == 60
    assert delta["late"] == 0


@pytest.mark.privileged
@pytest.mark.lab
async def test_foreign_replies_cause_no_crosstalk(icmp_lab: IcmpLab, pinger: IcmpPinger) -> None:
    targets = icmp_lab.targets_v4(30, skip=3000)
    before = pinger.stats()
    async with await IcmpPinger.open() as other:
        assert other.stats().foreign == 0
        # Another pinger in this process (another identifier) and fping (another process)
        # ping the same targets while our round runs.
        fping = await asyncio.create_subprocess_exec(
            "fping", "-C", "10", "-q", "-p", "30", "-i", "1", *targets,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        ours, theirs = await asyncio.gather(
            pinger.round(targets, echoes=5, spacing_s=0.05, timeout_s=1.0),
            other.round(targets, echoes=4, spacing_s=0.06, timeout_s=1.0),
        )
        _, fping_err = await fping.communicate()
        fping_replies = sum(
            1
            for line in fping_err.decode().splitlines()
            for value in line.partition(" : ")[2].split()
            if value != "-"
        )
        # The last foreign replies arrive after the rounds: wait until both pingers read them.
        await async_wait_until(
            lambda: (
                _delta(pinger.stats(), before)["foreign"] >= 120 + fping_replies
                and other.stats().foreign >= 150
            ),
            message="the last foreign replies read",
        )
        other_delta = other.stats()
    _assert_all_answered(ours, targets, 5)
    _assert_all_answered(theirs, targets, 4)
    assert fping_replies > 0
    delta = _delta(pinger.stats(), before)
    assert (delta["received"], delta["duplicate"], delta["late"]) == (150, 0, 0)
    assert delta["foreign"] >= 120 + fping_replies
    assert (other_delta.received, other_delta.duplicate, other_delta.late) == (120, 0, 0)
    assert other_delta.foreign >= 150


@pytest.mark.privileged
@pytest.mark.lab
async def test_ipv6_and_mixed_round(icmp_lab: IcmpLab, pinger: IcmpPinger) -> None:
    assert icmp_lab.ns_v6 is not None
    targets_v6 = [icmp_lab.ns_v6, *icmp_lab.targets_v6(50)]
    results = await pinger.round(targets_v6, echoes=3, spacing_s=0.05, timeout_s=1.0)
    _assert_all_answered(results, targets_v6, 3)
    mixed = [*icmp_lab.targets_v4(5, skip=4000), *icmp_lab.targets_v6(5, skip=100)]
    mixed = [mixed[i // 2 + (i % 2) * 5] for i in range(10)]  # interleave the families
    results = await pinger.round(mixed, echoes=2, spacing_s=0.05, timeout_s=1.0)
    _assert_all_answered(results, mixed, 2)


@pytest.mark.privileged
@pytest.mark.lab
async def test_concurrent_rounds_on_one_pinger(icmp_lab: IcmpLab, pinger: IcmpPinger) -> None:
    first = icmp_lab.targets_v4(300, skip=5000)
    second = icmp_lab.targets_v4(200, skip=6000)
    third = icmp_lab.targets_v6(20, skip=200)
    before = pinger.stats()
    a, b, c = await asyncio.gather(
        pinger.round(first, echoes=3, spacing_s=0.05, timeout_s=1.0),
        pinger.round(second, echoes=4, spacing_s=0.03, timeout_s=1.0, payload_size=200),
        pinger.round(third, echoes=2, spacing_s=0.1, timeout_s=1.0, payload_size=8),
    )
    _assert_all_answered(a, first, 3)
    _assert_all_answered(b, second, 4)
    _assert_all_answered(c, third, 2)
    delta = _delta(pinger.stats(), before)
    assert (delta["received"], delta["late"], delta["duplicate"]) == (900 + 800 + 40, 0, 0)


@pytest.mark.privileged
@pytest.mark.lab
async def test_a_reply_queued_while_another_round_sends_counts_when_its_round_ends(
    icmp_lab: IcmpLab,
) -> None:
    # While echoes leave on every tick the pinger reads replies on its ticks, not on arrival.
    # At 20 echoes/s a tick is 50 ms: a round with a 20 ms timeout ends between two ticks, and
    # the reply waiting in the socket must still be counted, for the round and for its sweep.
    async with await IcmpPinger.open(rate_pps=20) as slow:
        sending = asyncio.create_task(
            slow.round(icmp_lab.targets_v4(40, skip=9000), echoes=1, timeout_s=1.0)
        )
        await async_wait_until(lambda: slow.stats().sent >= 2, message="the slow round sends")
        sweeps: list[list[int]] = []
        (result,) = await slow.round(
            icmp_lab.targets_v4(1, skip=9500),
            echoes=1,
            timeout_s=0.02,
            on_sweep=lambda _sweep, states: sweeps.append(list(states)),
        )
        assert not slow._readers_on  # the other round is still sending: replies wait for ticks
        assert (result.sent, result.received, result.failure) == (1, 1, None)
        assert len(sweeps) == 1
        assert sweeps[0][0] >= 0
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)


@pytest.mark.privileged
@pytest.mark.lab
async def test_replies_after_the_timeout_are_late(icmp_lab: IcmpLab, pinger: IcmpPinger) -> None:
    # A veth round trip takes microseconds: with a 1 us timeout every reply is late.
    targets = icmp_lab.targets_v4(10, skip=8000)
    before = pinger.stats()
    results = await pinger.round(targets, echoes=2, spacing_s=0.01, timeout_s=1e-6)
    # Replies to the ended round arrive after it: wait until they are read (as late).
    await async_wait_until(
        lambda: _delta(pinger.stats(), before)["late"] >= 20, message="late replies read"
    )
    assert [(r.sent, r.received, r.failure) for r in results] == [(2, 0, PingFailure.NO_REPLY)] * 10
    delta = _delta(pinger.stats(), before)
    assert (delta["sent"], delta["received"], delta["late"], delta["duplicate"]) == (20, 0, 20, 0)


@pytest.mark.privileged
@pytest.mark.lab
async def test_a_preempted_send_call_never_dates_an_echo_after_its_reply(
    icmp_lab: IcmpLab, pinger: IcmpPinger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sendmmsg call that takes long (the process preempted inside it, as on a loaded
    machine): its echoes left at its start and veth answers in microseconds, so every RTT is
    still above zero. Stamps spread over the call's span gave later echoes send times after
    their replies: RTT 0, and a reply past a short timeout taken as in time."""
    real_send = icmp_batch.send

    def slow_send(*args: Any) -> int:
        sent = real_send(*args)
        time.sleep(0.002)  # our own wrapper: the call returns 2 ms after the echoes left
        return sent

    monkeypatch.setattr(icmp_batch, "send", slow_send)
    targets = icmp_lab.targets_v4(8, skip=7000)
    results = await pinger.round(targets, echoes=2, spacing_s=0.05, timeout_s=1.0)
    _assert_all_answered(results, targets, 2)
    assert all(r.rtt_min_s is not None and r.rtt_min_s > 0 for r in results), results


@pytest.mark.privileged
@pytest.mark.lab
async def test_cancelled_round_leaves_the_pinger_usable(
    icmp_lab: IcmpLab, pinger: IcmpPinger
) -> None:
    targets = icmp_lab.targets_v4(20, skip=9000)
    task = asyncio.create_task(pinger.round(targets, echoes=10, spacing_s=0.1))
    await async_wait_until(lambda: pinger.stats().sent >= 20, message="the first sweep sent")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sent_after_cancel = pinger.stats().sent
    assert 0 < sent_after_cancel < 200
    results = await pinger.round(targets, echoes=2, spacing_s=0.02, timeout_s=1.0)
    _assert_all_answered(results, targets, 2)
    # Nothing more of the cancelled round was sent.
    assert pinger.stats().sent == sent_after_cancel + 40


async def _fping_median_s(address: str) -> float:
    """The median of 20 fping RTTs on the same link: the accuracy reference."""
    proc = await asyncio.create_subprocess_exec(
        "fping", "-C", "20", "-q", "-p", "20", address,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    values = err.decode().partition(" : ")[2].split()
    rtts_ms = [float(v) for v in values if v != "-"]
    assert len(rtts_ms) >= 15, err
    return statistics.median(rtts_ms) / 1000


async def _hog(stop: asyncio.Event) -> None:
    """Keep the event loop busy: 5 ms of blocking work between each yield."""
    while not stop.is_set():
        time.sleep(0.005)  # noqa: ASYNC251 - blocking on purpose: this is the busy loop
        await asyncio.sleep(0)


@pytest.mark.privileged
@pytest.mark.lab
async def test_rtt_matches_fping_also_with_a_busy_loop(
    icmp_lab: IcmpLab, pinger: IcmpPinger
) -> None:
    address = icmp_lab.ns_v4
    reference_s = await _fping_median_s(address)
    (idle,) = await pinger.round([address], echoes=20, spacing_s=0.02, timeout_s=1.0)
    stop = asyncio.Event()
    hog = asyncio.create_task(_hog(stop))
    try:
        (busy,) = await pinger.round([address], echoes=20, spacing_s=0.02, timeout_s=1.0)
    finally:
        stop.set()
        await hog
    for result in (idle, busy):
        assert result.received >= 15
        assert result.rtt_median_s is not None
        assert abs(result.rtt_median_s - reference_s) < 0.0002, (result, reference_s)


@pytest.mark.privileged
async def test_close_releases_the_sockets() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for raw ICMP sockets")
    fds_before = set(os.listdir("/proc/self/fd"))
    pinger = await IcmpPinger.open()
    assert pinger.privileged
    assert len(set(os.listdir("/proc/self/fd")) - fds_before) >= 1
    await pinger.close()
    await pinger.close()  # idempotent
    assert set(os.listdir("/proc/self/fd")) == fds_before
    with pytest.raises(RuntimeError, match="closed"):
        await pinger.round(["127.0.0.1"])


@pytest.mark.privileged
async def test_close_ends_running_rounds_with_what_they_have() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for raw ICMP sockets")
    pinger = await IcmpPinger.open()
    task = asyncio.create_task(pinger.round(["127.0.0.1"], echoes=10, spacing_s=0.1))
    await async_wait_until(lambda: pinger.stats().sent >= 2, message="two echoes sent")
    await pinger.close()
    (result,) = await task
    assert 1 <= result.sent < 10
    assert result.received <= result.sent


@pytest.mark.privileged
async def test_ping_once_on_loopback_by_name() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for raw ICMP sockets")
    result = await ping_once("localhost", count=3, interval_s=0.05, timeout_s=1.0)
    assert result.address in {"127.0.0.1", "::1"}
    assert (result.sent, result.received, result.failure) == (3, 3, None)


_DGRAM_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from probes.icmp import IcmpPinger

    async def main():
        async with await IcmpPinger.open(privileged=False) as pinger:
            results = await pinger.round(sys.argv[1:], echoes=3, spacing_s=0.05, timeout_s=1.0)
            stats = pinger.stats()
            print(json.dumps({
                "privileged": pinger.privileged,
                "results": [[r.address, r.received, r.failure and r.failure.value]
                            for r in results],
                "icmp_errors": stats.icmp_errors,
            }))

    asyncio.run(main())
    """
)


@pytest.mark.privileged
@pytest.mark.lab
def test_unprivileged_datagram_sockets_where_allowed(icmp_lab: IcmpLab) -> None:
    # ping_group_range is per network namespace: allow our group inside the lab only, and run
    # a pinger there on datagram sockets (the kernel rewrites their identifier).
    previous = icmp_lab.ns("sysctl", "-n", "net.ipv4.ping_group_range").stdout.split()
    icmp_lab.ns("sysctl", "-qw", f"net.ipv4.ping_group_range={os.getegid()} {os.getegid()}")
    try:
        answering = [*icmp_lab.targets_v4(5, skip=7000), str(icmp_lab.ns_v6)]
        rejected = ["10.91.250.7", "fd91::100:ff07"]
        proc = icmp_lab.ns(sys.executable, "-c", _DGRAM_SCRIPT, *answering, *rejected)
    finally:
        icmp_lab.ns("sysctl", "-qw", f"net.ipv4.ping_group_range={' '.join(previous)}")
    report = json.loads(proc.stdout)
    assert report["privileged"] is False
    expected = [[a, 3, None] for a in answering] + [[a, 0, "unreachable"] for a in rejected]
    assert report["results"] == expected
    assert report["icmp_errors"] == 6


def test_unprivileged_request_fails_with_an_actionable_message() -> None:
    with open("/proc/sys/net/ipv4/ping_group_range", encoding="ascii") as handle:
        low, high = (int(v) for v in handle.read().split())
    if low <= os.getegid() <= high:
        pytest.skip("this host allows unprivileged ICMP for our group")

    async def attempt() -> None:
        await IcmpPinger.open(privileged=False)

    with pytest.raises(IcmpUnavailableError, match=r"ping_group_range"):
        asyncio.run(attempt())


@pytest.mark.privileged
async def test_round_refuses_names_and_bad_arguments() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for raw ICMP sockets")
    async with await IcmpPinger.open() as pinger:
        with pytest.raises(ValueError, match="not an IP address"):
            await pinger.round(["example.invalid"])
        with pytest.raises(ValueError, match="payload_size"):
            await pinger.round(["127.0.0.1"], payload_size=4)
        with pytest.raises(ValueError, match="echoes"):
            await pinger.round(["127.0.0.1"], echoes=0)
        assert await pinger.round([]) == []


def _hand_made_round(targets: list[str], *, echoes: int) -> Any:
    """A probes.icmp._Round to fill by hand (nothing is sent: its outbox is never used)."""
    from probes import _icmp_batch, icmp

    loop = asyncio.get_running_loop()
    n = len(targets)
    outbox = _icmp_batch.Outbox([bytes(32)] * n, [16] * n, bytes(16 * n), n)
    return icmp._Round(
        targets=targets, outbox=outbox, lanes=[None] * n, run_end=[n] * n, base=0,
        echoes=echoes, spacing_s=1.0, timeout_s=1.0, t0=0.0, future=loop.create_future(),
    )  # fmt: skip


async def test_all_answered_rounds_summarised_column_wise_as_target_by_target() -> None:
    # The usual round (every echo answered) is summarised by C-level passes over all targets;
    # the figures must be exactly those of the target-by-target path, for odd and even counts.
    from probes import icmp

    started = datetime(2025, 7, 1, tzinfo=UTC)
    rng = random.Random(7)
    for echoes in (1, 2, 3, 4, 5):
        rnd = _hand_made_round([f"10.0.0.{i}" for i in range(50)], echoes=echoes)
        rnd.cursor = rnd.total
        rnd.send_ns = [1] * rnd.total
        rnd.rtt_ns = [rng.randrange(0, 300_000_000) for _ in range(rnd.total)]
        column_wise = icmp._results(rnd, started)
        assert column_wise == icmp._results_by_target(rnd, started)
        assert all(r.received == echoes and r.failure is None for r in column_wise)
        one = column_wise[7]
        assert one.rtt_median_s == statistics.median(one.rtts_s)


async def test_summary_statistics_definitions() -> None:
    # The per-target arithmetic on a hand-made round (slot = echo_index * n + target_index):
    # median of an even count is the mean of the middle two; jitter is the mean absolute
    # difference of consecutive RTTs in send order, lost echoes skipped.
    from probes import icmp

    rnd = _hand_made_round(["a", "b", "c"], echoes=4)
    ms = 1_000_000
    rnd.cursor = rnd.total
    rnd.send_ns = [1] * rnd.total
    # a: 10, 30, lost, 20 ms; b: all lost, one unreachable; c: 5, 5, 5, 9 ms
    rnd.rtt_ns = [
        10 * ms, icmp._PENDING, 5 * ms,
        30 * ms, icmp._UNREACHABLE, 5 * ms,
        icmp._PENDING, icmp._PENDING, 5 * ms,
        20 * ms, icmp._PENDING, 9 * ms,
    ]  # fmt: skip
    started = datetime(2025, 7, 1, tzinfo=UTC)
    a, b, c = icmp._results(rnd, started)
    assert (a.sent, a.received, a.loss_ratio) == (4, 3, 0.25)
    assert a.rtts_s == (0.010, 0.030, 0.020)
    assert (a.rtt_min_s, a.rtt_median_s, a.rtt_max_s) == (0.010, 0.020, 0.030)
    assert a.jitter_s == pytest.approx((0.020 + 0.010) / 2)
    assert (b.received, b.loss_ratio, b.failure, b.jitter_s) == (
        0,
        1.0,
        PingFailure.UNREACHABLE,
        None,
    )
    assert c.rtt_median_s == pytest.approx(0.005)
    assert c.jitter_s == pytest.approx(0.004 / 3)
    assert c.started_at == started


def test_format_ping_table() -> None:
    started = datetime(2025, 7, 1, tzinfo=UTC)
    answered = PingResult(
        address="10.91.128.1", sent=5, received=4, loss_ratio=0.2,
        rtt_min_s=0.001, rtt_median_s=0.0012, rtt_max_s=0.0031, jitter_s=0.0004,
        rtts_s=(0.001, 0.0012, 0.0031, 0.0011), failure=None, started_at=started,
    )  # fmt: skip
    silent = PingResult(
        address="fd91::100:ff01", sent=5, received=0, loss_ratio=1.0,
        rtt_min_s=None, rtt_median_s=None, rtt_max_s=None, jitter_s=None,
        rtts_s=(), failure=PingFailure.UNREACHABLE, started_at=started,
    )  # fmt: skip
    lines = format_ping_table([answered, silent]).splitlines()
    assert lines[0].split() == [
        "ADDRESS", "SENT", "RECV", "LOSS", "MIN", "ms", "MEDIAN", "ms", "MAX", "ms",
        "JITTER", "ms", "NOTE",
    ]  # fmt: skip
    assert lines[1].split() == [
        "10.91.128.1", "5", "4", "20.0%", "1.000", "1.200", "3.100", "0.400",
    ]  # fmt: skip
    assert lines[2].split() == [
        "fd91::100:ff01", "5", "0", "100.0%", "-", "-", "-", "-", "unreachable",
    ]  # fmt: skip


DROP_FROM_ROOT_NFT = """
table inet nwi_src {
  chain input {
    type filter hook input priority 0;
    ip saddr 10.91.4.1 icmp type echo-request drop
  }
}
"""


@pytest.mark.privileged
@pytest.mark.lab
async def test_source_bound_pinger_sends_from_that_address(link_lab: IcmpLab) -> None:
    # The root side gets a second address (a commune agent's per-path source); the namespace
    # routes it back and drops every echo from the root side's usual address.
    second = "10.91.6.1"
    await asyncio.to_thread(
        subprocess.run, ["ip", "addr", "add", f"{second}/32", "dev", link_lab.root_if], check=True
    )
    try:
        link_lab.ns("ip", "route", "add", f"{second}/32", "via", "10.91.4.1")
        targets = link_lab.targets_v4(3)
        with link_lab.nft("inet nwi_src", DROP_FROM_ROOT_NFT):
            async with await IcmpPinger.open(rate_pps=1000) as unbound:
                lost = await unbound.round(targets, echoes=2, spacing_s=0.05, timeout_s=0.5)
            async with await IcmpPinger.open(rate_pps=1000, source=second) as bound:
                answered = await bound.round(targets, echoes=2, spacing_s=0.05, timeout_s=1.0)
                # Bound to an IPv4 source: IPv6 targets cannot be pinged from it.
                (v6,) = await bound.round(["fd91::1"], echoes=1, timeout_s=0.2)
        assert [r.failure for r in lost] == [PingFailure.NO_REPLY] * 3
        _assert_all_answered(answered, targets, 2)
        assert v6.failure is PingFailure.SEND_ERROR
        with pytest.raises(OSError, match="assign requested address"):  # not ours
            await IcmpPinger.open(source="10.91.7.1")
        with pytest.raises(ValueError, match="IPv4"):
            await IcmpPinger.open(source="fd91::1")
    finally:
        await asyncio.to_thread(
            subprocess.run, ["ip", "addr", "del", f"{second}/32", "dev", link_lab.root_if]
        )


@pytest.mark.privileged
@pytest.mark.lab
async def test_interface_bound_pinger_leaves_by_that_interface(link_lab: IcmpLab) -> None:
    targets = link_lab.targets_v4(2)
    async with await IcmpPinger.open(rate_pps=1000, interface=link_lab.root_if) as bound:
        answered = await bound.round(targets, echoes=2, spacing_s=0.05, timeout_s=1.0)
    _assert_all_answered(answered, targets, 2)
    # Bound to loopback, the echoes cannot reach the lab: none answered.
    async with await IcmpPinger.open(rate_pps=1000, interface="lo") as wrong:
        lost = await wrong.round(targets, echoes=2, spacing_s=0.05, timeout_s=0.5)
    assert all(r.received == 0 and r.failure is not None for r in lost)
    with pytest.raises(OSError, match="No such device"):
        await IcmpPinger.open(interface="nwi-nosuch0")
