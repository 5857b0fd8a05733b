"""NetWatch as a whole against the lab: faults set in the lab show in /metrics, API and status."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from netwatch.inventory import load_inventory
from netwatch.inventory.models import Intervals
from netwatch.lab import Lab
from netwatch.store import open_store
from netwatch.web.app import create_app
from tests.lab.fixtures import built_lab, restored
from tests.lab_netwatch import QUICK_ROUNDS
from tests.servers import uvicorn_thread
from tests.waiting import wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

LAB_INDEX = 2  # 10.90.0.0/16, namespaces nwl2-*


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, 3, tmp_path_factory.mktemp("run-lab"))


def _env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip().strip("'\"") for k, v in pairs}


class Client:
    """A real HTTP client against a real uvicorn server (with a read token for /api/v1)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.token = token

    def get(self, path: str) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


@contextmanager
def serving(app: FastAPI) -> Iterator[Client]:
    """Run the app under uvicorn in a thread (its lifespan starts the engine); the client
    reads the API with a national read token made in the app's store."""
    with uvicorn_thread(app) as base:
        yield Client(base, reader_token(app))


def reader_token(app: FastAPI) -> str:
    """A national read token in the running app's database (as `netwatch token create`)."""
    url = app.state.runtime.store.engine.url.render_as_string(hide_password=False)

    async def make() -> str:
        store = await open_store(url, migrate=False)
        try:
            return (await store.create_token("tests-reader", ["read"], datetime.now(UTC))).token
        finally:
            await store.close()

    return asyncio.run(make())


def _samples(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = client.get("/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    for (sample_name, sample_labels), value in samples.items():
        if sample_name == name and set(labels.items()) <= sample_labels:
            return value
    return None


def _wait(predicate: Callable[[], bool], timeout_s: float = 40.0) -> None:
    wait_until(predicate, timeout_s, 0.5, "condition")


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The module's lab with every fault undone after the test."""
    yield from restored(lab)


def _app(lab: Lab, data_dir: Path) -> tuple[FastAPI, list[str]]:
    """NetWatch on the lab's own config, with short rounds; and the commune codes."""
    paths = lab.paths
    inventory = load_inventory(paths.config_file, environ=_env(paths.env_file))
    inventory = inventory.model_copy(
        update={"intervals": Intervals(icmp_s=3, icmp_echoes=20, snmp_s=2, http_s=3)}
    )
    app = create_app(
        paths.config_file, inventory=inventory, options=QUICK_ROUNDS, data_dir=data_dir
    )
    return app, [c.code for c in inventory.communes]


def test_faults_show_in_metrics_api_and_status(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    app, codes = _app(lab, tmp_path)
    healthy, lossy, down = codes[0], codes[1], codes[2]
    lab.commune_loss(int(lossy), 40)
    lab.commune_down(int(down))
    with serving(app) as client:

        def measured() -> bool:
            s = _samples(client)
            return (
                _value(s, "netwatch_rounds_total", kind="icmp") is not None
                and (_value(s, "netwatch_rounds_total", kind="snmp") or 0) >= 2
                and _value(s, "netwatch_portal_up") is not None
            )

        _wait(measured)
        s = _samples(client)
        assert _value(s, "netwatch_link_up", commune=healthy) == 1
        assert _value(s, "netwatch_link_loss_ratio", commune=healthy) == 0
        assert _value(s, "netwatch_link_up", commune=down) == 0
        assert _value(s, "netwatch_link_loss_ratio", commune=down) == 1
        loss = _value(s, "netwatch_link_loss_ratio", commune=lossy)
        assert loss is not None
        assert 0.1 <= loss <= 0.8  # 40 % drop each way: wide band, 20 echoes
        assert _value(s, "netwatch_router_up", commune=healthy) == 1
        assert _value(s, "netwatch_router_up", commune=down) == 0
        assert _value(s, "netwatch_router_uptime_seconds", commune=healthy) is not None
        assert _value(s, "netwatch_interface_oper_up", commune=healthy) == 1
        assert (
            _value(s, "netwatch_link_utilization_ratio", commune=healthy, direction="in")
            is not None
        )
        assert _value(s, "netwatch_portal_up") == 1
        assert (_value(s, "netwatch_portal_tls_cert_expiry_seconds") or 0) > 86400
        assert _value(s, "netwatch_dns_up") == 1

        status, body = client.get(f"/api/v1/communes/{down}")
        api = json.loads(body)
        assert status == 200
        assert api["code"] == down
        assert all(link["reachable"] is False for link in api["links"])
        assert client.get("/api/v1/communes/99999")[0] == 404

        # The judged state needs enter_rounds (3) bad rounds: wait for it, then read the page.
        def judged_down() -> bool:
            links = json.loads(client.get(f"/api/v1/communes/{down}")[1])["links"]
            return all(link["state"] == "down" for link in links)

        _wait(judged_down)

        # Availability: a link fine since NetWatch started is 100 % available, not "no data"
        # (its first judged state goes into the history too); the down one is not.
        def availability(code: str) -> list[dict[str, float]]:
            links = json.loads(client.get(f"/api/v1/communes/{code}")[1])["links"]
            return [
                json.loads(client.get(f"/api/v1/links/{code}/{link['link']}/availability")[1])
                for link in links
            ]

        _wait(lambda: all(a["ok_s"] > 0 for a in availability(healthy)))
        assert all(a["availability_ratio"] == 1.0 for a in availability(healthy))
        _wait(lambda: all(a["down_s"] > 0 for a in availability(down)))
        assert all(a["availability_ratio"] < 1 for a in availability(down))
        page = client.get("/status")[1]
        assert "Mất kết nối" in page
        assert "Bình thường" in page
        incidents = json.loads(client.get("/api/v1/incidents")[1])
        down_links = {f"link:{down}/{link['link']}" for link in api["links"]}
        assert down_links <= {i["key"] for i in incidents if i["kind"] == "link_fault"}
        assert all(i["route"] == "isp" for i in incidents if i["key"] in down_links)

        lab.portal_down()
        _wait(lambda: _value(_samples(client), "netwatch_portal_up") == 0)

        def portal_incident() -> bool:
            kinds = [i["kind"] for i in json.loads(client.get("/api/v1/incidents")[1])]
            return "portal_outage" in kinds

        _wait(portal_incident)
        page = client.get("/status")[1]
        assert "Đang gián đoạn" in page
        assert "không phải lỗi đường truyền của xã" in page

    # A clean shutdown ends every state: the time NetWatch is stopped counts as unknown.
    async def stored() -> tuple[set[str], datetime | None]:
        store = await open_store(None, data_dir=tmp_path, migrate=False)
        try:
            states = {s.state for s in await store.current_states()}
            return states, await store.last_heartbeat()
        finally:
            await store.close()

    states, alive = asyncio.run(stored())
    assert states == {"unknown"}
    assert alive is not None


def test_congestion_reboot_and_slow_portal_show_in_metrics(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    app, codes = _app(lab, tmp_path)
    calm, rebooting, congested = codes[0], codes[1], codes[2]
    with serving(app) as client:
        # A baseline first: RTT on an idle veth is tens of microseconds, uptime is counting.
        _wait(lambda: (_value(_samples(client), "netwatch_rounds_total", kind="snmp") or 0) >= 2)
        idle = _value(
            _samples(client), "netwatch_link_round_rtt_seconds", commune=congested, stat="median"
        )
        assert idle is not None
        assert idle < 0.005
        # The lab's routers alternate SNMP v2c and v3 authPriv: both kinds answer NetWatch.
        assert lab.plan.communes[0].snmp_credential == "lab-v2c"
        assert lab.plan.communes[1].snmp_credential == "lab-v3"
        baseline = _samples(client)
        assert [_value(baseline, "netwatch_router_up", commune=c) for c in codes] == [1, 1, 1]

        lab.commune_congest(int(congested), "vnpt-tslcd")
        lab.commune_reboot(int(rebooting), downtime_s=2.0)
        lab.portal_slow(2.0)

        def degraded() -> bool:
            s = _samples(client)
            rtt = _value(s, "netwatch_link_round_rtt_seconds", commune=congested, stat="median")
            utilization = _value(
                s, "netwatch_link_utilization_ratio", commune=congested, link="vnpt-tslcd",
                direction="in",
            )  # fmt: skip
            first_byte = _value(s, "netwatch_portal_phase_seconds", phase="first_byte")
            return (
                rtt is not None and rtt > 0.02
                and utilization is not None and utilization > 0.7
                and (_value(s, "netwatch_router_reboots_total", commune=rebooting) or 0) >= 1
                and first_byte is not None and first_byte >= 1.9
            )  # fmt: skip

        _wait(degraded, timeout_s=60.0)
        s = _samples(client)
        # Congestion is capacity, not a fault: the line answers, every echo comes back slow.
        assert _value(s, "netwatch_link_up", commune=congested, link="vnpt-tslcd") == 1
        # (No upper bound on utilization here: net-snmp caches interface counters for a few
        # seconds, so rates over this test's 2 s polls alias; at real intervals it averages out.)
        # The calm commune is untouched by its neighbours' trouble.
        assert _value(s, "netwatch_router_reboots_total", commune=calm) == 0
        assert _value(s, "netwatch_link_loss_ratio", commune=calm, link="vnpt-tslcd") == 0
        # A slow portal is still up: slow is not down.
        assert _value(s, "netwatch_portal_up") == 1
