"""Where the path breaks, on the lab: a commune's line down stops after its POP, a POP down
stops after the core (NetWatch's reference target). Real namespaces, real ICMP, no mocks."""

from __future__ import annotations

import asyncio
import time

import pytest

from alerts.model import PathTrace
from alerts.subject import SubjectKey
from netwatch.inventory import Inventory, load_inventory
from netwatch.lab import Lab
from netwatch.pathtrace import REFERENCE_NAME, PathTracer
from probes.trace import TraceStop, trace_path
from tests.integration.test_run_on_lab import _env

pytestmark = [pytest.mark.privileged, pytest.mark.lab]
LAB_INDEX = (
    15  # 10.103.0.0/16, namespaces nwl15-* (each lab module has its own: they run in parallel)
)
CODE = 24848  # Xã Lạc Dương: vnpt-tslcd via pop-vnpt-1, viettel-internet via pop-viettel-1
WALL_LIMIT_S = 3.0  # the trace runs while the ticket is about to open


@pytest.fixture
def inventory(lab: Lab) -> Inventory:
    return load_inventory(lab.paths.config_file, environ=_env(lab.paths.env_file))


def _pop_address(lab: Lab, upstream_id: str) -> str:
    upstream = lab.plan.upstream(upstream_id)
    assert upstream is not None
    return upstream.address


def _traced(tracer: PathTracer, *keys: str) -> tuple[list[PathTrace | None], float]:
    async def run() -> list[PathTrace | None]:
        return list(await asyncio.gather(*(tracer.trace(SubjectKey.parse(k)) for k in keys)))

    started = time.monotonic()
    paths = asyncio.run(run())
    return paths, time.monotonic() - started


def test_a_healthy_line_is_reached_through_its_pop(lab: Lab, inventory: Inventory) -> None:
    plan = lab.plan
    (path,), wall_s = _traced(PathTracer(inventory), f"link:{CODE}/viettel-internet")
    assert path is not None
    assert path.reached
    assert [(h.address, h.name) for h in path.hops] == [
        (plan.core_address, REFERENCE_NAME),
        (_pop_address(lab, "pop-viettel-1"), "POP Viettel số 1"),
        (plan.communes[0].links[1].router_address, "Xã Lạc Dương — viettel-internet"),
    ]
    assert all(h.received == h.sent == 3 for h in path.hops)
    assert wall_s < 1.0  # a healthy path ends once every probe is answered


def test_a_commune_line_down_stops_after_its_pop(lab: Lab, inventory: Inventory) -> None:
    plan = lab.plan
    link = plan.communes[0].links[0]
    pop = _pop_address(lab, "pop-vnpt-1")
    assert lab.commune_down(CODE, "vnpt-tslcd").problem is None
    cpu_before = time.process_time()
    (path,), wall_s = _traced(PathTracer(inventory), f"link:{CODE}/vnpt-tslcd")
    cpu_s = time.process_time() - cpu_before
    assert path is not None
    assert path.target == link.router_address
    assert not path.reached
    last = path.last_hop()
    assert last is not None
    assert (last.address, last.name) == (pop, "POP VNPT số 1")
    assert [h.address for h in path.hops] == [plan.core_address, pop, None]
    assert wall_s < WALL_LIMIT_S
    assert cpu_s < 0.2
    # Why the known nodes are traced too: the POP drops the dead line's probes into its
    # blackhole before their TTL is looked at, so the bare trace goes silent after the core.
    bare = asyncio.run(trace_path(link.router_address))
    assert bare.stop is TraceStop.SILENT
    assert [h.address for h in bare.hops] == [plan.core_address, None]
    # The other line of the commune still gets through its own POP.
    (other,), _ = _traced(PathTracer(inventory), f"link:{CODE}/viettel-internet")
    assert other is not None
    assert other.reached


def test_an_upstream_down_stops_after_the_core(lab: Lab, inventory: Inventory) -> None:
    plan = lab.plan
    assert lab.upstream_down("pop-vnpt-1").problem is None
    tracer = PathTracer(inventory)
    # The POP itself, a line behind it, and a line behind another POP, all at once.
    (pop_path, behind, elsewhere), wall_s = _traced(
        tracer, "upstream:pop-vnpt-1", f"link:{CODE}/vnpt-tslcd", "link:28696/vnpt-tslcd"
    )
    assert wall_s < WALL_LIMIT_S
    for path in (pop_path, behind):
        assert path is not None
        assert not path.reached
        last = path.last_hop()
        assert last is not None
        assert (last.address, last.name) == (plan.core_address, REFERENCE_NAME)
    assert pop_path is not None
    assert pop_path.target == _pop_address(lab, "pop-vnpt-1")
    assert elsewhere is not None
    assert elsewhere.reached  # 28696 hangs off pop-vnpt-2, which is fine
    assert elsewhere.hops[1].name == "POP VNPT số 2"


def test_subjects_without_an_address_are_not_traced(lab: Lab, inventory: Inventory) -> None:
    paths, wall_s = _traced(PathTracer(inventory), "portal:dvcqg", "monitor", "link:99999/x")
    assert paths == [None, None, None]
    assert wall_s < 0.1
