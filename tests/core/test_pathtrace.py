"""netwatch.pathtrace without a network: the stored JSON, hop names, and the known-node fill."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.model import PathHop, PathTrace
from alerts.subject import SubjectKey
from netwatch.inventory import Inventory, load_inventory
from netwatch.pathtrace import (
    REFERENCE_NAME,
    PathTracer,
    fill_from_known,
    hop_names,
    name_hops,
)
from netwatch.store.codec import path_from_json, path_json
from probes.trace import TraceHop, TraceResult, TraceStop

AT = datetime(2026, 12, 4, 1, 30, 5, 123456, tzinfo=UTC)
PATH = PathTrace(
    target="10.94.10.1",
    at=AT,
    hops=(
        PathHop(1, "10.94.0.2", REFERENCE_NAME, 0.0004, 3, 3),
        PathHop(2, "10.94.1.1", "POP VNPT số 1", 0.0011, 3, 2),
        PathHop(3, None, "", None, 3, 0),
    ),
    reached=False,
)
CONFIG = """
reference_targets: [10.94.0.2]
isps:
  vnpt: {name: VNPT}
upstreams:
  pop-vnpt-1: {name: POP VNPT số 1, isp: vnpt, address: 10.94.1.1, parent: agg}
  agg: {name: Trạm tập trung VNPT, isp: vnpt, address: 10.94.9.1}
  dark: {name: POP không ping, isp: vnpt}
portals:
  dvcqg: {name: Cổng Dịch vụ công quốc gia, url: "https://10.94.250.10/"}
communes:
  - code: 24848
    router: {address: 10.94.10.1, snmp: v2}
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: C1, bandwidth_mbps: 10, path: tslcd,
         address: 10.94.10.1, upstream: pop-vnpt-1}
      - {id: vnpt-backup, isp: vnpt, circuit: C2, bandwidth_mbps: 10, path: internet,
         address: 10.94.10.5, upstream: dark}
    devices:
      - {name: Kiosk 1, kind: kiosk, address: 10.94.10.200}
snmp_credentials:
  v2: {version: "2c", community: {env: NW_COMMUNITY}}
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_inventory(path, environ={"NW_COMMUNITY": "public"})


def test_the_stored_json_has_the_agreed_shape_and_round_trips() -> None:
    data = path_json(PATH)
    assert data == {
        "target": "10.94.10.1",
        "at": "2026-12-04T01:30:05.123456+00:00",
        "reached": False,
        "hops": [
            {
                "ttl": 1,
                "address": "10.94.0.2",
                "name": REFERENCE_NAME,
                "rtt_s": 0.0004,
                "sent": 3,
                "received": 3,
            },
            {
                "ttl": 2,
                "address": "10.94.1.1",
                "name": "POP VNPT số 1",
                "rtt_s": 0.0011,
                "sent": 3,
                "received": 2,
            },
            {"ttl": 3, "address": None, "name": "", "rtt_s": None, "sent": 3, "received": 0},
        ],
    }
    # Through real JSON text, as the store keeps it.
    back = path_from_json(json.loads(json.dumps(data)))
    assert back == PATH
    assert back is not None
    assert back.last_hop() == PATH.hops[1]


def test_a_local_time_is_stored_as_utc() -> None:
    local = datetime.fromisoformat("2026-12-04T08:30:05+07:00")
    data = path_json(PathTrace("10.94.10.1", local, (), reached=True))
    assert data["at"] == "2026-12-04T01:30:05+00:00"


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "path",
        {},
        {**path_json(PATH), "at": "yesterday"},
        {**path_json(PATH), "at": "2026-12-04T01:30:05"},  # naive: not a moment
        {**path_json(PATH), "reached": "no"},
        {**path_json(PATH), "hops": {}},
        {**path_json(PATH), "hops": [{"ttl": "1", "sent": 3, "received": 3}]},
        {**path_json(PATH), "hops": [{"ttl": 1, "address": 7, "sent": 3, "received": 3}]},
        {**path_json(PATH), "hops": [{"ttl": True, "sent": 3, "received": 3}]},
    ],
)
def test_anything_else_reads_as_no_path(data: object) -> None:
    assert path_from_json(data) is None


def test_hops_are_named_from_the_inventory(inventory: Inventory) -> None:
    names = hop_names(inventory)
    assert names == {
        "10.94.250.10": "Cổng Dịch vụ công quốc gia",
        "10.94.0.2": REFERENCE_NAME,
        "10.94.1.1": "POP VNPT số 1",
        "10.94.9.1": "Trạm tập trung VNPT",
        "10.94.10.200": "Xã Lạc Dương — Kiosk 1",
        # The router's address is also its first link's: the link says more.
        "10.94.10.1": "Xã Lạc Dương — vnpt-tslcd",
        "10.94.10.5": "Xã Lạc Dương — vnpt-backup",
    }
    result = TraceResult(
        "10.94.10.1",
        AT,
        (_hop(1, "10.94.0.2"), _hop(2, "10.94.1.1"), _hop(3, "10.94.10.1")),
        TraceStop.REACHED,
        0.5,
    )
    path = name_hops(inventory, result)
    assert path.reached
    assert [h.name for h in path.hops] == [
        REFERENCE_NAME,
        "POP VNPT số 1",
        "Xã Lạc Dương — vnpt-tslcd",
    ]


def test_incident_keys_map_to_addresses(inventory: Inventory) -> None:
    tracer = PathTracer(inventory)
    assert tracer.address_of(SubjectKey.parse("link:24848/vnpt-tslcd")) == "10.94.10.1"
    assert tracer.address_of(SubjectKey.parse("link:24848/vnpt-backup")) == "10.94.10.5"
    assert tracer.address_of(SubjectKey.parse("upstream:pop-vnpt-1")) == "10.94.1.1"
    assert (
        tracer.address_of(SubjectKey.parse("upstream:dark")) is None
    )  # not pinged: no address to trace
    for key in ("portal:dvcqg", "monitor", "link:24848/nope", "upstream:nope"):
        assert tracer.address_of(SubjectKey.parse(key)) is None


def _hop(ttl: int, address: str | None) -> TraceHop:
    if address is None:
        return TraceHop(ttl, None, 3, 0, None, ())
    return TraceHop(ttl, address, 3, 3, 0.001, (0.001, 0.001, 0.001))


def _result(target: str, *addresses: str | None, stop: TraceStop) -> TraceResult:
    hops = tuple(_hop(ttl, a) for ttl, a in enumerate(addresses, start=1))
    return TraceResult(target, AT, hops, stop, 1.5)


CORE = _result("10.94.0.2", "10.94.0.2", stop=TraceStop.REACHED)
POP = _result("10.94.1.1", "10.94.0.2", "10.94.1.1", stop=TraceStop.REACHED)


def test_a_pop_that_drops_a_dead_line_silently_fills_the_hop_where_it_stops() -> None:
    # The lab's commune-down: the core says "time exceeded", the POP blackholes the probes.
    main = _result("10.94.10.1", "10.94.0.2", None, stop=TraceStop.SILENT)
    hops = fill_from_known(main, [CORE, POP])
    assert [(h.ttl, h.address) for h in hops] == [(1, "10.94.0.2"), (2, "10.94.1.1"), (3, None)]


def test_a_silent_core_is_filled_by_the_reference_target() -> None:
    # The lab's upstream-down: the core blackholes the POP's address; nothing answers at all.
    main = _result("10.94.1.1", None, stop=TraceStop.SILENT)
    hops = fill_from_known(main, [CORE])
    assert [(h.ttl, h.address) for h in hops] == [(1, "10.94.0.2"), (2, None)]


def test_only_the_hop_right_after_a_measured_one_is_filled() -> None:
    # Nothing answered toward the target, not even the core: the POP two hops out is not
    # named, as the path may break before it.
    main = _result("10.94.10.1", None, stop=TraceStop.SILENT)
    hops = fill_from_known(main, [POP])
    assert [(h.ttl, h.address) for h in hops] == [(1, None)]


def test_a_node_on_another_path_is_not_used() -> None:
    main = _result("10.94.10.1", "10.94.0.6", None, stop=TraceStop.SILENT)
    assert fill_from_known(main, [POP]) == main.hops  # POP's hop 1 is another router
    unreached = _result("10.94.1.1", "10.94.0.2", None, stop=TraceStop.SILENT)
    main = _result("10.94.10.1", "10.94.0.2", None, stop=TraceStop.SILENT)
    assert fill_from_known(main, [unreached]) == main.hops  # a dead node fills nothing


def test_a_reached_or_answered_end_is_kept() -> None:
    reached = _result("10.94.10.1", "10.94.0.2", "10.94.1.1", "10.94.10.1", stop=TraceStop.REACHED)
    assert fill_from_known(reached, [CORE, POP]) == reached.hops
    unreachable = _result("10.94.10.1", "10.94.0.2", "10.94.1.1", stop=TraceStop.UNREACHABLE)
    assert fill_from_known(unreachable, [CORE, POP]) == unreachable.hops
