"""Round reports from several probe workers' shards (netwatch/state.py ShardRounds): the health
monitor's incident figures and the latest state's round view change once a slot, not once per
shard's report, and a shard that stopped shows as the slot's oldest round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.model import IncidentKind
from netwatch.health import HealthMonitor
from netwatch.inventory import load_inventory
from netwatch.observations import IcmpObservation, Kind, RoundReport
from netwatch.plan import Plan, compile_plan
from netwatch.state import LatestState, ShardRounds, SlotReport
from probes.icmp import PingResult
from tests.roles.procs import write_config

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[HealthMonitor, Plan]:
    inventory = load_inventory(write_config(tmp_path / "netwatch.yaml"))  # one link, no router
    return HealthMonitor(inventory), compile_plan(inventory)


def _lossy(plan: Plan, at: datetime, received: int) -> IcmpObservation:
    rtt = 0.004
    result = PingResult(
        "127.0.0.2", 10, received, 1 - received / 10, rtt, rtt, rtt, 0.0, (rtt,) * received,
        None, at,
    )  # fmt: skip
    return IcmpObservation(plan.icmp[0], result)


def _report(shard: int, started: datetime, kind: Kind = "icmp") -> RoundReport:
    return RoundReport(kind, started, started, 0.1 * (shard + 1), 2.0 + shard, 10, 0, shard=shard)


def _loss(health: HealthMonitor) -> float | None:
    faults = [i for i in health.incidents if i.kind is IncidentKind.LINK_FAULT]
    assert len(faults) == 1, health.incidents
    measured = faults[0].measured
    assert measured is not None
    return measured.loss_ratio


def test_incident_figures_are_taken_once_a_slot_over_two_shards(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    """Two shards report every ICMP slot: the incidents tuple (the status pages rebuild when it
    is another one) is rebuilt once a slot, with the slot's figures, not twice."""
    health, plan = setup
    for i in range(3):  # lossy (60 % lost) for three rounds: a link fault
        health.observe([_lossy(plan, T0 + i * INTERVAL, received=4)])
    assert _loss(health) == pytest.approx(0.6)
    rebuilt = 0
    for slot in range(4):
        at = T0 + (3 + slot) * INTERVAL
        # The link's shard measures (loss moves on, the state stays lossy), both shards report.
        health.observe([_lossy(plan, at, received=5 - slot)])
        for shard in (0, 1):
            before = health.incidents
            health.round_done(_report(shard, at + timedelta(seconds=shard * 7)))
            rebuilt += health.incidents is not before
        assert _loss(health) == pytest.approx(1 - (5 - slot) / 10)  # the slot's figures
    assert rebuilt == 4  # once a slot (it was once per shard's report: 8)


def test_a_shard_that_stopped_delays_the_figures_by_one_round_at_most(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    health, plan = setup
    for i in range(3):
        health.observe([_lossy(plan, T0 + i * INTERVAL, received=4)])
    health.round_done(_report(0, T0))
    health.round_done(_report(1, T0))  # both shards known; shard 1 opened a turn
    rebuilt = []
    for slot in range(1, 5):  # shard 1 is gone: shard 0 alone reports
        at = T0 + slot * INTERVAL
        health.observe([_lossy(plan, at, received=5)])
        before = health.incidents
        health.round_done(_report(0, at))
        rebuilt.append(health.incidents is not before)
    # Shard 0 closes shard 1's turn, opens one that shard 1 never joins, and from then on each
    # of its reports closes the turn it opened.
    assert rebuilt == [True, False, True, True]
    assert _loss(health) == pytest.approx(0.5)


def test_shard_rounds_complete_a_slot_per_turn_of_every_shard() -> None:
    rounds = ShardRounds()
    # One shard: every report is a slot.
    assert [rounds.add(_report(0, T0 + i * INTERVAL)) for i in range(3)] == [True] * 3
    rounds = ShardRounds()
    order = [0, 1, 0, 1, 1, 0, 0, 1]  # shards drift within the interval
    done = [rounds.add(_report(s, T0 + i * INTERVAL)) for i, s in enumerate(order)]
    # [0] | [1 0] | [1 ... 1 again] | [1 0] | [0 ... 0 again, 1]
    assert done == [True, False, True, False, True, True, False, True]


def test_the_latest_state_keeps_every_shard_and_shows_the_slot() -> None:
    """The admin page's round health and the status page's "updated at" read the slot: the
    oldest shard's round start (a stopped shard shows as late), the worst lag and duration,
    every shard's targets; replaced once a slot."""
    state = LatestState()
    state.round_done(_report(0, T0))
    first = state.rounds["icmp"]
    state.round_done(_report(1, T0 + timedelta(seconds=7)))
    assert state.rounds["icmp"] is first  # the slot is not complete: the same view
    assert set(state.shard_rounds["icmp"].last) == {0, 1}
    state.round_done(_report(0, T0 + INTERVAL))
    slot = state.rounds["icmp"]
    assert slot is not first
    assert slot == SlotReport(
        kind="icmp",
        started_at=T0 + timedelta(seconds=7),
        newest_at=T0 + INTERVAL,
        lag_s=0.2,
        duration_s=3.0,
        targets=20,
        skipped_rounds=0,
        shards=2,
    )
    assert state.last_round_at("icmp") == T0 + timedelta(seconds=7)
    # Shard 1 stops: shard 0's rounds go on, the slot's start stays shard 1's last round.
    for i in range(2, 5):
        state.round_done(_report(0, T0 + i * INTERVAL))
    assert state.last_round_at("icmp") == T0 + timedelta(seconds=7)
    assert state.rounds["icmp"].newest_at == T0 + 4 * INTERVAL
    assert state.last_round_at("snmp") is None


def test_a_shard_silent_for_three_intervals_leaves_the_slot() -> None:
    """Three shards, then two: the third's last report stops counting as the slot's oldest
    round (and its shard in the count) once it is three intervals older than the newest."""
    latest = LatestState({"icmp": INTERVAL.total_seconds()})
    for slot in range(2):
        for shard in range(3):
            latest.round_done(_report(shard, T0 + slot * INTERVAL))
    assert latest.rounds["icmp"].shards == 3
    for slot in range(2, 6):
        for shard in range(2):
            latest.round_done(_report(shard, T0 + slot * INTERVAL))
    slot = latest.rounds["icmp"]
    assert slot.shards == 2
    assert slot.started_at >= T0 + 4 * INTERVAL  # not the silent shard's last round (T0 + 1)
    assert slot.lag_s == pytest.approx(0.2)  # shard 2's 0.3 gone
    # Without intervals (as before), a silent shard is kept.
    kept = ShardRounds()
    for shard in range(3):
        kept.add(_report(shard, T0))
    for slot_no in range(1, 5):
        kept.add(_report(0, T0 + slot_no * INTERVAL))
    assert sorted(kept.last) == [0, 1, 2]
