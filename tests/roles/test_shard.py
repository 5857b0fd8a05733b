"""shard_plan: every target on exactly one shard, a commune whole, the same in every process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from netwatch.plan import Plan, shard_plan
from tests.bus import national


@pytest.fixture(scope="module")
def plan() -> Plan:
    return national.national_plan(600)


def _keys(plan: Plan) -> list[str]:
    return [t.key.encoded for t in plan.icmp] + [k.key.encoded for k in (*plan.snmp, *plan.portals)]


@pytest.mark.parametrize("count", [2, 3, 7])
def test_every_target_is_in_exactly_one_shard(plan: Plan, count: int) -> None:
    shards = [shard_plan(plan, i, count) for i in range(count)]
    seen = Counter(key for shard in shards for key in _keys(shard))
    assert set(seen) == set(_keys(plan))
    assert set(seen.values()) == {1}
    assert all(shard.icmp for shard in shards)  # 600 communes: none empty
    # Intervals and options travel unchanged.
    assert {(s.icmp_interval_s, s.snmp_interval_s, s.confirm) for s in shards} == {
        (plan.icmp_interval_s, plan.snmp_interval_s, plan.confirm)
    }


def test_a_commune_and_national_targets_stay_together(plan: Plan) -> None:
    count = 4
    for i in range(count):
        shard = shard_plan(plan, i, count)
        communes = {t.link.commune for t in shard.icmp if t.link is not None}
        devices = {t.commune for t in shard.icmp if t.role == "device"}
        routers = {j.commune for j in shard.snmp}
        assert devices <= communes
        assert routers == communes  # every synthetic commune has a router
        nodes = [t for t in shard.icmp if t.role in ("upstream", "reference")]
        assert bool(nodes) == (i == 0)
        assert bool(shard.portals) == (i == 0)


def test_count_one_is_the_identity(plan: Plan) -> None:
    assert shard_plan(plan, 0, 1) is plan


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 0)])
def test_bad_shards_are_refused(plan: Plan, index: int, count: int) -> None:
    with pytest.raises(ValueError, match="want 0 <= index < count"):
        shard_plan(plan, index, count)


def test_same_shards_in_another_process(plan: Plan) -> None:
    """Another interpreter (another str-hash salt) cuts the plan the same way."""
    code = (
        "import json; from netwatch.plan import shard_plan; from tests.bus import national; "
        "p = national.national_plan(600); "
        "print(json.dumps([[t.key.encoded for t in shard_plan(p, i, 3).icmp] for i in range(3)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "random"},
    ).stdout
    here = [[t.key.encoded for t in shard_plan(plan, i, 3).icmp] for i in range(3)]
    assert json.loads(out) == here
