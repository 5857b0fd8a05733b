"""The commune page's "Nhìn từ trung tâm xã / Seen from the commune" section, against a real
NetWatch (probing off, real SQLite) in process.

The agents' rounds and heartbeats are fed through ``runtime.inside_sinks`` on the server's event
loop, every sink in order, as the bus feed of agent messages does; pages are read over HTTP
(httpx's ASGI transport), through FastAPI's routes and behind the web worker's fast path."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from prometheus_client.parser import text_string_to_metric_families

from netwatch.agent.model import AgentConfig, AgentHeartbeat, InsideRound
from netwatch.inside.config import agent_config
from netwatch.inventory import Inventory, load_inventory
from netwatch.runtime import Runtime
from netwatch.store import open_store
from netwatch.web.app import fast_pages
from netwatch.web.i18n import fmt_time
from netwatch.web.reload import enable_reload
from netwatch.web.status import StatusPages
from tests.inside.rounds import heartbeat, inside_round
from tests.servers import InProcess, in_process
from tests.waiting import wait_until
from tests.web.conftest import Client, netwatch_app

CONFIG = """
province: 82
isps:
  vnpt: {name: VNPT Đồng Tháp}
  viettel: {name: Viettel Đồng Tháp}
portals:
  dvcqg: {name: Cổng Dịch vụ công quốc gia, url: "https://dichvucong.example/"}
agents: {interval_s: 30, echoes: 3}
communes:
  - code: 28696
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: DTP-TSLCD-28696, bandwidth_mbps: 100, path: tslcd, address: 10.91.77.1}
      - {id: viettel-inet, isp: viettel, circuit: VTL-INET-28696, bandwidth_mbps: 50, path: internet, address: 10.91.77.5}
    devices:
      - {name: Kiosk tra cứu, kind: kiosk, address: 192.168.50.20}
      - {name: Máy in một cửa, kind: printer, address: 192.168.50.21}
    agent:
      lan_gateway: 192.168.50.1
      paths:
        - {link: vnpt-tslcd, source: 192.168.50.2, target: 10.91.77.2}
        - {link: viettel-inet, source: 192.168.50.3, target: 10.91.77.6}
  - code: 28468
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: DTP-TSLCD-28468, bandwidth_mbps: 100, path: tslcd, address: 10.91.78.1}
"""
AGENT, NO_AGENT = "28696", "28468"
HEADING_VI, HEADING_EN = "Nhìn từ trung tâm xã", "Seen from the commune"
INTERNALS = ("192.168.50", "10.91.77", "28696-agent", "0.20.0", "DTP-TSLCD")


@dataclass
class Running:
    client: Client
    app: FastAPI
    process: InProcess
    config: AgentConfig
    path: Path

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def pages(self) -> StatusPages:
        pages: StatusPages = self.app.state.status_pages
        return pages

    def feed(self, *messages: tuple[InsideRound | AgentHeartbeat, datetime]) -> None:
        """Hand each message to every sink, in order, on the server's loop (the bus feed)."""
        runtime = self.runtime

        async def work() -> None:
            for message, received_at in messages:
                for sink in runtime.inside_sinks:
                    if isinstance(message, InsideRound):
                        sink.inside_round(message, received_at)
                    else:
                        sink.heartbeat(message, received_at)

        self.process.call(work)

    def page(self, code: str = AGENT, lang: str = "") -> str:
        reply = self.client.get(f"/status/xa/{code}" + (f"?lang={lang}" if lang else ""))
        assert reply.status == 200, reply.text
        return reply.text


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@contextmanager
def serving(
    tmp_path: Path, *, fast: bool, min_interval_s: float = 0.0, cache_s: float | None = None
) -> Iterator[Running]:
    """NetWatch on CONFIG, its status pages showing agents' messages at most every
    `min_interval_s` (0: at once), re-reading everything else often, or every `cache_s`."""
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, "utf-8")
    inventory: Inventory = load_inventory(path, environ={})
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = netwatch_app(tmp_path, inventory, data_dir)
    enable_reload(app, path)

    async def pages(request: Request) -> dict[str, str]:
        runtime = request.app.state.runtime
        request.app.state.status_pages = StatusPages(
            runtime,
            max_age_s=cache_s or 1.0,
            store_ttl_s=cache_s or 0.2,
            inside_min_interval_s=min_interval_s,
        )
        return {}

    app.add_api_route("/_test/pages", pages)
    with in_process(app) as process:
        if fast:
            process = replace(process, asgi=fast_pages(app, inner=process.asgi))
        with process.client() as http:
            client = Client(str(http.base_url), http)
            assert client.get("/_test/pages").status == 200
            yield Running(client, app, process, agent_config(inventory, AGENT), path)


@pytest.fixture(params=[False, True], ids=["routes", "fast-path"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    with serving(tmp_path, fast=request.param) as r:
        yield r


def test_a_commune_without_agent_shows_no_such_section(running: Running) -> None:
    running.feed((inside_round(running.config, 1, datetime.now(UTC)), datetime.now(UTC)))
    page = running.page(NO_AGENT)
    assert HEADING_VI not in page
    assert "thiết bị đo" not in _text(page)
    assert HEADING_EN not in running.page(NO_AGENT, "en")


def test_before_the_agent_is_heard(running: Running) -> None:
    text = _text(running.page())
    assert HEADING_VI in text
    assert "Chưa nhận được số liệu nào từ thiết bị đo tại xã." in text
    assert "Chưa liên lạc được với thiết bị đo." in text


def test_the_portal_per_path_devices_and_the_agents_health(running: Running) -> None:
    c = running.config
    now = datetime.now(UTC)
    measured = now - timedelta(seconds=4)
    running.feed(
        (
            inside_round(
                c, 41, measured, paths={"vnpt-tslcd": 0.0123, "viettel-inet": 0.03},
                portals={"vnpt-tslcd": 0.8, "viettel-inet": 6.5}, devices_down=("Máy in một cửa",),
            ),
            now - timedelta(seconds=3),
        ),
        (heartbeat(c, now, last_seq=41), now),
    )  # fmt: skip
    html = running.page()
    text = _text(html)
    section = text.split(HEADING_VI, 1)[1]
    at = fmt_time(measured, "vi")  # Vietnam time: UTC+7
    assert f"gửi về, đo lúc {at} (cách đây " in section
    assert (
        "Cổng Dịch vụ công quốc gia qua VNPT Đồng Tháp (Truyền số liệu chuyên dùng): "
        "Hoạt động bình thường mở trang mất 0,80 giây" in section
    )
    assert (
        "Cổng Dịch vụ công quốc gia qua Viettel Đồng Tháp (Internet): Phản hồi chậm "
        "mở trang mất 6,5 giây" in section
    )
    assert "Mạng nội bộ của xã: bộ định tuyến phản hồi bình thường." in section
    assert (
        "VNPT Đồng Tháp (Truyền số liệu chuyên dùng): thông, độ trễ 12,3 ms, mất gói 0 %" in section
    )
    assert "1/2 thiết bị hoạt động." in section
    assert "Kiosk tra cứu (Máy tra cứu tự phục vụ): hoạt động" in section
    assert "Máy in một cửa (Máy in): không phản hồi" in section
    assert f"Liên lạc lần cuối lúc {fmt_time(now, 'vi')} (cách đây" in section
    assert "Không có số liệu chờ gửi." in section
    assert "Số liệu này đã cũ" not in section
    for internal in INTERNALS:
        assert internal not in html, f"the public page shows {internal!r}"
    english = _text(running.page(lang="en")).split(HEADING_EN, 1)[1]
    assert (
        "Cổng Dịch vụ công quốc gia over VNPT Đồng Tháp (Government data network): "
        "Working normally page loaded in 0.80 s" in english
    )
    assert "Responding slowly page loaded in 6.5 s" in english
    assert "1 of 2 devices working." in english
    assert "Máy in một cửa (Printer): not answering" in english


def test_a_failing_path_a_backlog_and_drops(running: Running) -> None:
    c = running.config
    now = datetime.now(UTC)
    oldest = now - timedelta(hours=3)
    running.feed(
        (inside_round(c, 9, now, paths={"vnpt-tslcd": 0.01, "viettel-inet": None},
                      portals={"vnpt-tslcd": 0.9, "viettel-inet": None}, lan_up=False), now),
        (heartbeat(c, now, last_seq=9, buffered=360, oldest_age_s=3 * 3600, dropped=7), now),
    )  # fmt: skip
    section = _text(running.page()).split(HEADING_VI, 1)[1]
    assert (
        "qua Viettel Đồng Tháp (Internet): Đang gián đoạn không mở được trang, lỗi ở bước "
        "kết nối (sau 10,0 giây)" in section
    )
    assert "Viettel Đồng Tháp (Internet): không thông" in section
    assert "Mạng nội bộ của xã: bộ định tuyến không phản hồi." in section
    assert f"360 lần đo đang chờ gửi về (cũ nhất từ {fmt_time(oldest, 'vi')})." in section
    assert "7 lần đo đã bị bỏ vì bộ nhớ đệm của thiết bị đầy." in section
    english = _text(running.page(lang="en")).split(HEADING_EN, 1)[1]
    assert "failed at connecting (after 10.0 s)" in english
    assert "360 measurements waiting to be sent" in english
    assert "7 measurements were dropped because the box's buffer was full." in english


def test_a_silent_agent_and_old_data_are_said(running: Running) -> None:
    c = running.config
    now = datetime.now(UTC)
    long_ago = now - timedelta(minutes=12)
    running.feed(
        (inside_round(c, 3, long_ago), long_ago),
        (heartbeat(c, long_ago, last_seq=3), long_ago),
    )
    section = _text(running.page()).split(HEADING_VI, 1)[1]
    assert "Số liệu này đã cũ: thiết bị đo chưa gửi lần đo mới hơn." in section
    assert (
        f"Mất liên lạc với thiết bị đo từ {fmt_time(long_ago, 'vi')} (cách đây 12 phút)" in section
    )
    assert "Số liệu đo trong thời gian này sẽ được gửi bù khi có kết nối trở lại." in section
    english = _text(running.page(lang="en")).split(HEADING_EN, 1)[1]
    assert "The measuring box has been silent since" in english
    assert "(12 minutes ago)" in english


@pytest.mark.parametrize("fast", [False, True], ids=["routes", "fast-path"])
def test_pages_follow_rounds_at_most_every_interval(tmp_path: Path, fast: bool) -> None:
    """Rendered once, served from memory: newer rounds show only once the interval has passed
    since the view was last rebuilt (an hour here, then none)."""
    with serving(tmp_path, fast=fast, min_interval_s=3600, cache_s=3600) as r:
        c = r.config
        now = datetime.now(UTC)
        r.feed((inside_round(c, 1, now, portals={"vnpt-tslcd": 0.8}), now))
        first = r.page()
        assert "mở trang mất 0,80 giây" in _text(first)
        rendered = dict(r.pages._rendered)
        # Many rounds later, within the interval: the same page, not rendered again. (Under the
        # portal's 5 s slow threshold: a portal slow over one path for many rounds is that
        # path's incident, docs/alerting.md rule 8, and a new incident re-renders the page.)
        for seq in range(2, 30):
            r.feed((inside_round(c, seq, now, portals={"vnpt-tslcd": 4.5}), now))
        assert r.page() == first
        assert r.pages._rendered[("commune", AGENT, "vi")] is rendered[("commune", AGENT, "vi")]
        # The interval over: the newest round shows.
        r.pages.inside.min_interval_s = 0.0
        assert "mở trang mất 4,5 giây" in _text(r.page())


def test_reloads_leave_the_sinks_as_they_were_and_pages_follow_the_agent(
    tmp_path: Path,
) -> None:
    """Three reloads, the pages rebuilt for each new runtime value: the one list of sinks the
    bus feed calls is the same, with the same sinks (none added per rebuild), and the rebuilt
    pages still follow the agent's messages."""
    with serving(tmp_path, fast=False) as r:
        before = r.runtime
        r.page()
        sinks = list(before.inside_sinks)
        assert before.inside in sinks
        for _ in range(3):
            reply = r.client.post("/api/v1/config/reload", token=_write_token(r))
            assert reply.status == 200, reply.text
            assert r.app.state.runtime is not before
            r.page()  # the pages are rebuilt from the new runtime
        after = r.runtime
        assert r.pages.runtime is after
        assert after.inside_sinks is before.inside_sinks
        assert after.inside_sinks == sinks
        now = datetime.now(UTC)
        r.feed((inside_round(r.config, 5, now, portals={"vnpt-tslcd": 1.5}), now))
        r.pages.inside.min_interval_s = 0.0  # (the rebuilt pages' default is 2 s)
        assert "mở trang mất 1,5 giây" in _text(r.page())


def test_one_communes_agent_does_not_re_render_another_communes_page(tmp_path: Path) -> None:
    with serving(tmp_path, fast=False, cache_s=3600) as r:
        now = datetime.now(UTC)
        r.feed((inside_round(r.config, 1, now), now))
        r.page()
        other = r.page(NO_AGENT)
        key = ("commune", NO_AGENT, "vi")
        rendered = r.pages._rendered[key]
        r.pages.inside.min_interval_s = 0.0
        for seq in range(2, 6):
            r.feed((inside_round(r.config, seq, now, portals={"vnpt-tslcd": 3.0}), now))
            assert r.page(NO_AGENT) == other
        assert r.pages._rendered[key] is rendered  # not rendered again
        assert "mở trang mất 3,0 giây" in _text(r.page())


def _write_token(r: Running) -> str:
    async def make() -> str:
        store = await open_store(None, data_dir=r.path.parent / "data", migrate=False)
        try:
            issued = await store.create_token("reload", ["write"], datetime.now(UTC))
            return issued.token
        finally:
            await store.close()

    return asyncio.run(make())


def _metric(r: Running, name: str, **labels: str) -> float | None:
    reply = r.client.get("/metrics")
    assert reply.status == 200
    found = [
        s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_the_agents_metrics_are_served_and_follow_a_reload(tmp_path: Path) -> None:
    """/metrics of the running NetWatch: the agents' families from what the sinks were fed; a
    reload that changes the agent's part of the inventory makes its configuration outdated
    until the agent runs the new one."""
    with serving(tmp_path, fast=False) as r:
        now = datetime.now(UTC)
        r.feed((inside_round(r.config, 1, now), now), (heartbeat(r.config, now), now))
        agent = {"commune": AGENT, "agent": "28696-agent"}
        assert _metric(r, "netwatch_agent_last_seen_timestamp_seconds", **agent) == pytest.approx(
            now.timestamp()
        )
        assert _metric(r, "netwatch_agent_config_current", **agent) == 1
        assert _metric(r, "netwatch_inside_path_up", commune=AGENT, link="vnpt-tslcd") == 1
        assert _metric(r, "netwatch_agent_config_current", commune=NO_AGENT) is None
        r.path.write_text(
            CONFIG.replace(
                "      - {name: Máy in một cửa, kind: printer, address: 192.168.50.21}\n",
                "      - {name: Máy in một cửa, kind: printer, address: 192.168.50.21}\n"
                "      - {name: Máy lấy số, kind: queue, address: 192.168.50.22}\n",
            ),
            "utf-8",
        )
        reply = r.client.post("/api/v1/config/reload", token=_write_token(r))
        assert reply.status == 200, reply.text
        # The revisions are computed in a worker thread (seconds for the whole country).
        wait_until(
            lambda: _metric(r, "netwatch_agent_config_current", **agent) == 0,
            10,
            0.05,
            "the agent's configuration outdated",
        )
        fresh = agent_config(r.runtime.inventory, AGENT)
        assert fresh.revision != r.config.revision
        r.feed((heartbeat(fresh, now), now))
        assert _metric(r, "netwatch_agent_config_current", **agent) == 1
