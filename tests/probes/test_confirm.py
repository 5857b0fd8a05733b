"""Fast confirmation against real echoes: the pinger's sweep reports, a cut line confirmed by fast
rounds long before its normal round ends, its recovery confirmed the same way, and a national
outage that stays within the fast rounds' seats and send rate.

The lab is ``confirm_lab`` (conftest.py): 10.91.9.0/24 answers, 10.91.10.0/23 never does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from alerts.subject import SubjectKey, SubjectKind
from netwatch.confirm import FastConfirmer, Thresholds
from netwatch.engine import Engine, EngineOptions, spread_spacing_s
from netwatch.health import HealthMonitor
from netwatch.inventory import load_inventory
from netwatch.observations import IcmpObservation, Observation, RoundReport
from netwatch.plan import ConfirmOptions, IcmpTarget, LinkRef, Plan, compile_plan
from probes.icmp import IcmpPinger
from tests.waiting import async_wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

ANSWERING = "10.91.9."
SILENT = "10.91.10."

CONFIG = """
intervals: {icmp_s: 30, icmp_echoes: 5}
confirmation: {interval_s: 0.5, echoes: 3}
reference_targets: [10.91.9.200]
isps:
  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}
upstreams:
  pop-1: {name: POP VNPT số 1, isp: vnpt, address: 10.91.9.100}
communes:
  - code: 24848
    links:
      - {id: a, isp: vnpt, circuit: A, bandwidth_mbps: 10, path: tslcd, address: 10.91.9.1,
         upstream: pop-1}
      - {id: b, isp: vnpt, circuit: B, bandwidth_mbps: 10, path: internet, address: 10.91.10.1,
         upstream: pop-1}
  - code: 28696
    links:
      - {id: a, isp: vnpt, circuit: C, bandwidth_mbps: 10, path: tslcd, address: 10.91.9.2,
         upstream: pop-1}
"""


class Recorder:
    """A sink that keeps the normal rounds' reports."""

    def __init__(self) -> None:
        self.reports: list[RoundReport] = []

    def observe(self, batch: Sequence[Observation]) -> None:
        """Nothing kept of the observations."""

    def round_done(self, report: RoundReport) -> None:
        self.reports.append(report)


async def _until(check: object, what: str, timeout_s: float = 60.0) -> None:
    assert callable(check)
    await async_wait_until(check, timeout_s, 0.05, what)


async def test_the_pinger_reports_each_sweep_once_in_order_while_the_round_runs(
    confirm_lab: object, pinger: IcmpPinger
) -> None:
    targets = [f"{ANSWERING}1", f"{ANSWERING}2", f"{SILENT}1", f"{ANSWERING}3"]
    seen: list[tuple[int, list[bool], bool]] = []
    task: asyncio.Task[object] | None = None

    def on_sweep(sweep: int, table: list[int]) -> None:
        assert task is not None
        seen.append((sweep, [v >= 0 for v in table], task.done()))

    task = asyncio.create_task(
        pinger.round(targets, echoes=3, spacing_s=0.3, timeout_s=0.4, on_sweep=on_sweep)
    )
    results = await task
    assert [s[0] for s in seen] == [0, 1, 2]
    assert all(s[1] == [True, True, False, True] for s in seen), seen
    # The first sweep was told while later sweeps were still to be sent.
    assert seen[0][2] is False
    assert [r.received for r in results] == [3, 3, 0, 3]


def test_spread_spacing_fills_the_interval_and_ends_before_the_next_round() -> None:
    assert spread_spacing_s(30, 5, 2) == 6.0  # one echo every 6 s at the production defaults
    assert spread_spacing_s(10, 5, 2) == pytest.approx(1.75)  # (10 - 2 - 1) / 4: no overrun
    assert spread_spacing_s(30, 1, 2) == 0.0


async def test_a_silent_line_is_confirmed_down_by_fast_rounds_before_its_round_ends(
    confirm_lab: Any, pinger: IcmpPinger, tmp_path: Path
) -> None:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory = load_inventory(path, environ={})
    plan = compile_plan(inventory)
    health = HealthMonitor(inventory)
    rounds = Recorder()
    engine = Engine(
        plan, pinger, None, None, [rounds, health], EngineOptions(start_jitter_s=0), judge=health
    )
    engine.start()
    try:
        await _until(
            lambda: health.is_bad(SubjectKey.parse("link:24848/b")), "link b confirmed down"
        )
        # Confirmed by fast rounds: the normal round (echoes 6 s apart over 30 s) is not over.
        assert rounds.reports == []
        status = health.link_status("24848", "b")
        assert status is not None
        assert status.state.value == "down"
        confirmer = engine.confirmer
        assert confirmer is not None
        assert confirmer.stats().rounds >= 3  # enter_rounds (3) bad fast rounds
        # What root cause needs was probed with it, and nothing else is bad.
        for key in ("link:24848/a", "link:28696/a", "upstream:pop-1", "reference:10.91.9.200"):
            assert not health.is_bad(SubjectKey.parse(key)), key
        assert not any(i.key.kind is SubjectKind.UPSTREAM for i in health.incidents)
        [incident] = health.incidents
        assert incident.key.encoded == "link:24848/b"

        # The line comes back: its next answered echo puts it in fast mode again, and fast
        # rounds confirm the recovery (exit_rounds good rounds) without waiting for rounds.
        confirm_lab.ns("ip", "route", "add", "local", f"{SILENT}1/32", "dev", "lo")
        await _until(
            lambda: not health.is_bad(SubjectKey.parse("link:24848/b")), "link b confirmed back"
        )
        assert health.incidents == ()
        stats = confirmer.stats()
        assert stats.confirmed >= 2  # down, then back
        assert stats.refused == 0
    finally:
        await engine.stop()


class _Everything:
    """A judge for the national outage: every subject good so far, default thresholds."""

    def is_bad(self, key: SubjectKey) -> bool:
        return False

    def thresholds(self, key: SubjectKey) -> Thresholds | None:
        rtt = math.inf if key.kind is not SubjectKind.LINK else 0.05
        return Thresholds(rtt, 0.02, 3, 5, 5)


def _national_plan(links: int, nodes: int, confirm: ConfirmOptions) -> Plan:
    targets: list[IcmpTarget] = []
    for i in range(links):
        ref = LinkRef("68", f"{i:05d}", f"Xã {i}", "a", "vnpt", "tslcd", f"C{i}", 1e7, f"p{i % 5}")
        address = f"10.91.{10 + i // 250}.{1 + i % 250}"
        targets.append(IcmpTarget(ref.key, "link", address, link=ref))
    for j in range(nodes):
        targets.append(
            IcmpTarget(SubjectKey.upstream(f"p{j}"), "upstream", f"10.91.11.{251 + j % 4}")
        )
    return Plan(tuple(targets), (), (), 30.0, 5, 60.0, 60.0, confirm)


async def test_a_national_outage_stays_within_the_seats_and_the_send_rate(
    confirm_lab: object, pinger: IcmpPinger
) -> None:
    confirm = ConfirmOptions(
        interval_s=0.5, echoes=5, timeout_s=0.5, max_subjects=1000, max_pps=400
    )
    assert confirm.capacity == 40  # 400 echoes/s * 0.5 s / 5 echoes: the rate, not max_subjects
    plan = _national_plan(links=480, nodes=5, confirm=confirm)
    fed: list[IcmpObservation] = []

    def feed(batch: Sequence[Observation]) -> None:
        fed.extend(o for o in batch if isinstance(o, IcmpObservation))

    confirmer = FastConfirmer(plan, _Everything(), confirm, feed=feed)
    before = pinger.stats()
    started = time.monotonic()
    fast = asyncio.create_task(confirmer.run(pinger))
    peak = 0
    nodes_seen: set[str] = set()
    try:
        # Every target silent at once: every normal sweep reports all of them lost.
        normal = await pinger.round(
            [t.address for t in plan.icmp],
            echoes=6,
            spacing_s=0.5,
            timeout_s=0.5,
            on_sweep=confirmer.on_sweep,
        )
        while time.monotonic() - started < 6.0:
            in_fast = confirmer.in_fast_mode()
            peak = max(peak, len(in_fast))
            nodes_seen |= {k.encoded for k in in_fast if k.kind is SubjectKind.UPSTREAM}
            await asyncio.sleep(0.02)
    finally:
        fast.cancel()
        await asyncio.gather(fast, return_exceptions=True)
    elapsed = time.monotonic() - started
    stats = confirmer.stats()
    sent = pinger.stats().sent - before.sent
    assert all(r.received == 0 for r in normal)
    assert peak <= confirm.capacity
    assert stats.refused > 0  # most suspects stay on their normal schedule
    assert nodes_seen == {f"upstream:p{j}" for j in range(5)}  # nodes keep their seats
    # The fast rounds' echoes stay within their budget: at most max_pps on average, plus the
    # round in flight.
    assert stats.echoes <= confirm.max_pps * elapsed + confirm.capacity * confirm.echoes
    # Nothing else was sent (a fast round cancelled at the end is not counted in stats yet).
    normal_echoes = len(plan.icmp) * 6
    assert normal_echoes + stats.echoes <= sent
    assert sent <= normal_echoes + stats.echoes + confirm.capacity * confirm.echoes
    assert all(o.result.received == 0 for o in fed)
    assert {o.target.key for o in fed} <= {t.key for t in plan.icmp}


async def test_a_round_started_while_another_waits_for_its_next_sweep_is_sent_at_once(
    confirm_lab: object, pinger: IcmpPinger
) -> None:
    # A normal round spread over its interval sleeps seconds between sweeps; a fast round
    # started meanwhile must not wait for that sleep (it once did: fast rounds every 6 s).
    sent = pinger.stats().sent
    slow = asyncio.create_task(
        pinger.round([f"{ANSWERING}1"], echoes=2, spacing_s=30.0, timeout_s=1.0)
    )
    # Its first sweep is out; the next one is 30 s away.
    await async_wait_until(lambda: pinger.stats().sent > sent, message="the first sweep sent")
    fast = await asyncio.wait_for(
        pinger.round([f"{ANSWERING}2"], echoes=3, spacing_s=0.05, timeout_s=1.0), 10
    )
    assert not slow.done()
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    assert [r.received for r in fast] == [3]
