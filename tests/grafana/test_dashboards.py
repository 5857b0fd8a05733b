"""The shipped dashboards: what the generator makes, valid Grafana 11 JSON, stable uids, the
provisioned datasource only, a tidy grid. (Their queries are run in tests/prometheus/.)"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
SHIPPED = {p.name: p for p in sorted((GRAFANA / "dashboards").glob("*.json"))}
# Changing a uid breaks every bookmark and link to the dashboard: these are part of the API.
UIDS = {
    "province-overview.json": "netwatch-province-overview",
    "commune-detail.json": "netwatch-commune-detail",
    "isp-accountability.json": "netwatch-isp-accountability",
    "netwatch-self.json": "netwatch-self",
}
CORE_PANELS = {"geomap", "stat", "bargauge", "table", "timeseries", "heatmap", "state-timeline"}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "netwatch_grafana_generate", GRAFANA / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHIPPED[name].read_text("utf-8"))
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _datasources(node: Any) -> Iterator[dict[str, Any]]:
    """Every "datasource" reference anywhere in a dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                yield value
            else:
                yield from _datasources(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasources(item)


def _provisioned_uid() -> str:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = config["datasources"]
    assert source["type"] == "prometheus"
    uid: str = source["uid"]
    return uid


def test_the_shipped_json_is_what_the_generator_makes() -> None:
    rendered = _generator().render()
    assert set(rendered) == set(SHIPPED), "a dashboard file without a generator, or the reverse"
    for name, text in rendered.items():
        assert SHIPPED[name].read_text("utf-8") == text, f"{name}: run grafana/generate.py"


def test_the_generator_check_mode_agrees() -> None:
    assert _generator().main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(UIDS))
def test_uids_are_stable(name: str) -> None:
    assert _load(name)["uid"] == UIDS[name]
    assert len(set(UIDS.values())) == len(UIDS)


@pytest.mark.parametrize("name", sorted(UIDS))
def test_only_the_provisioned_datasource_is_used(name: str) -> None:
    uid = _provisioned_uid()
    model = _load(name)
    refs = list(_datasources(model))
    assert refs
    assert all(ref == {"type": "prometheus", "uid": uid} for ref in refs), refs
    for panel in _panels(model["panels"]):
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]


@pytest.mark.parametrize("name", sorted(UIDS))
def test_the_json_is_a_grafana_11_dashboard(name: str) -> None:
    plugins.register_default_plugins()
    model = _load(name)
    assert model["schemaVersion"] == 41  # Grafana 11.6's dashboard schema
    # Parsed by the SDK's schema models and written back, nothing is lost: every key is one the
    # schema knows, at the place it belongs.
    parsed = dm.Dashboard.from_json(model)
    back = json.loads(json.dumps(parsed, cls=JSONEncoder))
    assert list(_lost(model, back)) == []
    assert model["timezone"] == "Asia/Ho_Chi_Minh"
    assert "netwatch" in model["tags"]


def _lost(original: Any, back: Any, path: str = "") -> Iterator[str]:
    if isinstance(original, dict):
        if not isinstance(back, dict):
            yield path
            return
        for key, value in original.items():
            if key not in back:
                yield f"{path}/{key}"
            else:
                yield from _lost(value, back[key], f"{path}/{key}")
    elif isinstance(original, list):
        if not isinstance(back, list) or len(back) != len(original):
            yield path
            return
        for i, (a, b) in enumerate(zip(original, back, strict=True)):
            yield from _lost(a, b, f"{path}[{i}]")
    elif original != back:
        yield f"{path}: {original!r} != {back!r}"


@pytest.mark.parametrize("name", sorted(UIDS))
def test_panels_have_ids_titles_queries_and_do_not_overlap(name: str) -> None:
    panels = list(_panels(_load(name)["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        assert panel["type"] in CORE_PANELS, panel["type"]  # no plugin to install
        assert " / " in panel["title"], f"Vietnamese / English title: {panel['title']}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip()
        g = panel["gridPos"]
        assert g["x"] >= 0, panel["title"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_the_commune_map_reads_coordinates_and_colours_by_state() -> None:
    [geomap] = [p for p in _load("province-overview.json")["panels"] if p["type"] == "geomap"]
    [layer] = geomap["options"]["layers"]
    assert layer["location"] == {"mode": "coords", "latitude": "latitude", "longitude": "longitude"}
    assert layer["config"]["style"]["color"]["field"] == "Value"
    [convert] = [t for t in geomap["transformations"] if t["id"] == "convertFieldType"]
    converted = {c["targetField"] for c in convert["options"]["conversions"]}
    assert converted == {"latitude", "longitude"}  # Prometheus labels are strings
    texts = {
        m["text"]
        for mapping in geomap["fieldConfig"]["defaults"]["mappings"]
        for m in mapping["options"].values()
    }
    assert "Mất kết nối / down" in texts


def test_provisioning_loads_the_dashboards_folder() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/dashboards/netwatch.yml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "NetWatch"
    assert provider["options"]["path"].startswith("/")
    assert provider["allowUiUpdates"] is False  # the dashboards are code
