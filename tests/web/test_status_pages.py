"""The public status pages against a real NetWatch (probing off) in process, real SQLite.

Rounds are fed through the engine's own sinks (metrics, latest state, health with its real
hysteresis, link history), on the server's event loop; the alerting loop then records the states
and opens tickets as in production. Pages are read over HTTP (httpx's ASGI transport) as a phone would.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from alerts.model import Incident, IncidentKind, Route
from alerts.subject import SubjectKey
from netwatch.inventory import Inventory, load_inventory
from netwatch.observations import IcmpObservation, RoundReport
from netwatch.store import open_store
from netwatch.web.app import Runtime, fast_pages
from netwatch.web.status import StatusPages
from probes.icmp import PingResult
from tests.servers import in_process
from tests.waiting import wait_until
from tests.web.conftest import Client, Reply, netwatch_app

SECRET = "status-test-link-secret-534fbf20ed19f449423f7b64"
CONFIG = """
province: 82
isps:
  vnpt:
    name: VNPT Đồng Tháp
    contacts:
      - level: 1
        name: Trực NOC VNPT
        email: noc-vnpt@example.test
  viettel:
    name: Viettel Đồng Tháp
notifications:
  public_url: https://netwatch.dongthap.example
  link_secret: {env: NETWATCH_LINK_SECRET}
  smtp:  # nothing listens there: notices stay queued, as while a mail server is down
    host: 127.0.0.1
    port: 1
    from_address: netwatch@dongthap.example
    starttls: false
upstreams:
  pop-go-cong:
    name: POP VNPT Gò Công
    isp: vnpt
portals:
  dvcqg:
    name: Cổng Dịch vụ công quốc gia
    url: https://dichvucong.example/
communes:
  - code: 28696
    links:
      - id: vnpt-tslcd
        isp: vnpt
        circuit: DTP-TSLCD-28696
        bandwidth_mbps: 100
        path: tslcd
        address: 10.91.77.1
        upstream: pop-go-cong
      - id: viettel-inet
        isp: viettel
        circuit: VTL-INET-28696
        bandwidth_mbps: 50
        path: internet
        address: 10.91.77.5
  - code: 28468
    links:
      - id: vnpt-tslcd
        isp: vnpt
        circuit: DTP-TSLCD-28468
        bandwidth_mbps: 100
        path: tslcd
        address: 10.91.78.1
        upstream: pop-go-cong
  - code: 28321
    links:
      - id: vnpt-tslcd
        isp: vnpt
        circuit: DTP-TSLCD-28321
        bandwidth_mbps: 100
        path: tslcd
        address: 10.91.79.1
"""
TAN_PHU_DONG, TAN_PHU, TAN_PHUOC = "28696", "28468", "28321"
_TICK = timedelta(milliseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECRETS_AND_INTERNALS = (
    "10.91.77.1",
    "10.91.77.5",
    "DTP-TSLCD",
    "VTL-INET",
    "noc-vnpt@example.test",
    "Trực NOC",
    SECRET,
    "dichvucong.example",
)


@dataclass(slots=True)
class Status:
    """A running NetWatch, a client, and a way to act on its event loop."""

    client: Client
    app: FastAPI
    data_dir: Path
    loop: asyncio.AbstractEventLoop
    last: datetime = EPOCH

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def on_loop(self, work: Callable[[], Any]) -> Any:
        """Run work on the server's event loop (where the engine would call the sinks)."""

        async def call() -> Any:
            return work()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def rounds(self, link: str, count: int, *, received: int, rtt_s: float | None) -> None:
        """Feed `count` ICMP rounds of one link ("CODE/LINK-ID"), 10 ms apart, ending about now."""
        runtime = self.runtime
        target = next(t for t in runtime.plan.icmp if t.key.encoded == f"link:{link}")
        now = datetime.now(UTC)
        for i in range(count):
            # Rounds must move forward in time (an older round is ignored, as a late one is).
            at = max(now - timedelta(milliseconds=10 * (count - 1 - i)), self.last + _TICK)
            self.last = at
            result = PingResult(
                address=target.address,
                sent=10,
                received=received,
                loss_ratio=(10 - received) / 10,
                rtt_min_s=rtt_s,
                rtt_median_s=rtt_s if received else None,
                rtt_max_s=rtt_s if received else None,
                jitter_s=None,
                rtts_s=(rtt_s,) * received if rtt_s is not None else (),
                failure=None,
                started_at=at,
            )
            report = RoundReport("icmp", at, at, 0.0, 0.5, 1, 0)

            def feed(result: PingResult = result, report: RoundReport = report) -> None:
                for sink in runtime.engine.sinks:
                    sink.observe([IcmpObservation(target, result)])
                    sink.round_done(report)

            self.on_loop(feed)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.client.get(path, **kwargs)

    def wait_for(self, path: str, predicate: Callable[[str], bool], timeout_s: float = 15) -> str:
        """Poll a page until predicate(text) holds; the page's text."""
        last = [""]

        def shown() -> str | None:
            reply = self.get(path)
            assert reply.status == 200, reply.text
            last[0] = reply.text
            return reply.text if predicate(reply.text) else None

        try:
            return wait_until(shown, timeout_s, 0.1, path)
        except AssertionError:
            raise AssertionError(
                f"{path} never showed what was expected; last page:\n{last[0]}"
            ) from None


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_inventory(path, environ={"NETWATCH_LINK_SECRET": SECRET})


@contextmanager
def serving(tmp_path: Path, inventory: Inventory, *, fast: bool = False) -> Iterator[Status]:
    """NetWatch with probing off, alerting every 0.2 s, status data re-read every 0.2 s; `fast`:
    behind the web worker's fast path for rendered pages (netwatch.web.app.fast_pages)."""
    data_dir = tmp_path / "data"
    app = netwatch_app(tmp_path, inventory, data_dir)
    loops: list[asyncio.AbstractEventLoop] = []

    async def capture(request: Request) -> dict[str, str]:
        loops.append(asyncio.get_running_loop())
        runtime = request.app.state.runtime
        request.app.state.status_pages = StatusPages(runtime, max_age_s=1.0, store_ttl_s=0.2)
        return {}

    app.add_api_route("/_test/loop", capture)
    with in_process(app) as process:
        if fast:
            process = replace(process, asgi=fast_pages(app, inner=process.asgi))
        with process.client() as http:
            client = Client(str(http.base_url), http)
            assert client.get("/_test/loop").status == 200
            yield Status(client, app, data_dir, loops[0])


@pytest.fixture(params=[False, True], ids=["routes", "fast-path"])
def status(
    request: pytest.FixtureRequest, tmp_path: Path, inventory: Inventory
) -> Iterator[Status]:
    """A running NetWatch for one test: every test runs through FastAPI's routes alone, then
    behind the web worker's fast path (the same pages must come out, byte for byte)."""
    with serving(tmp_path, inventory, fast=request.param) as running:
        yield running


def _text(html: str) -> str:
    """The visible text: tags removed, entities read (&#39; is '), spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _no_internals(html: str) -> None:
    for secret in SECRETS_AND_INTERNALS:
        assert secret not in html, f"the public page shows {secret!r}"


def test_province_page_lists_communes_with_states_counts_and_portal(status: Status) -> None:
    status.rounds(f"{TAN_PHU}/vnpt-tslcd", 3, received=10, rtt_s=0.004)
    status.rounds(f"{TAN_PHUOC}/vnpt-tslcd", 3, received=0, rtt_s=None)
    page = status.wait_for(
        "/status", lambda t: 'class="st st-down">Mất kết nối</span> <small>' in t
    )
    reply = status.get("/status")
    assert reply.headers["content-language"] == "vi"
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    text = _text(page)
    assert '<html lang="vi">' in page
    assert "Tình trạng đường truyền — Đồng Tháp" in text
    # Every commune, linked by its official code, with its state in words.
    for code, name in ((TAN_PHU_DONG, "Xã Tân Phú Đông"), (TAN_PHU, "Xã Tân Phú")):
        assert f'href="/status/xa/{code}">{name}</a>' in page
    assert re.search(r"Xã Tân Phước 1</a><span><span class=\"st st-down\">Mất kết nối", page)
    assert re.search(r"Xã Tân Phú</a><span><span class=\"st st-ok\">Bình thường", page)
    # Counts per state (one commune has no measurement yet).
    assert "Bình thường 1" in text
    assert "Mất kết nối 1" in text
    assert "Chưa có số liệu 1" in text
    assert "Tất cả 3" in text
    # The national portal, and nothing internal.
    assert "Cổng Dịch vụ công quốc gia: Chưa có số liệu" in text
    _no_internals(page)
    assert "Tình trạng đường truyền — Đồng Tháp" in status.get("/status/82").text
    # Filtering by state keeps the counts and lists only those communes.
    down = _text(status.get("/status/82?state=down").text)
    assert "Đang lọc: Mất kết nối." in down
    assert "Xã Tân Phước 1" in down
    assert "Xã Tân Phú Đông" not in down.split("Đang lọc")[1]


def test_search_finds_communes_without_diacritics(status: Status) -> None:
    found = _text(status.get("/status?q=tan+phu+dong").text)
    assert "1 kết quả cho “tan phu dong”." in found
    listed = found.split("kết quả")[1]
    assert "Xã Tân Phú Đông" in listed
    assert "Xã Tân Phước 1" not in listed
    several = status.get("/status/82?q=T%C3%82N%20PH%C3%9A").text  # "TÂN PHÚ"
    assert "3 kết quả" in several
    # The exact name first, then whole words, then words that only start alike.
    listed = re.findall(r'class="name" href="/status/xa/(\d+)"', several)
    assert listed == [TAN_PHU, TAN_PHU_DONG, TAN_PHUOC]
    assert "0 kết quả" not in status.get("/status?q=tan+ph").text
    by_code = _text(status.get(f"/status?q={TAN_PHUOC}").text)
    assert "1 kết quả" in by_code
    assert "Xã Tân Phước 1" in by_code.split("kết quả")[1]
    none = status.get("/status?q=%3Cscript%3Exyz").text
    assert "Không tìm thấy xã, phường nào tên “&lt;script&gt;xyz”." in none
    assert "<script>xyz" not in none


def test_commune_page_explains_a_link_down_and_shows_the_ticket(status: Status) -> None:
    path = f"/status/xa/{TAN_PHU_DONG}"
    status.rounds(f"{TAN_PHU_DONG}/viettel-inet", 3, received=10, rtt_s=0.008)
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=10, rtt_s=0.006)
    calm = _text(status.wait_for(path, lambda t: "hoạt động bình thường" in t))
    assert "Đường truyền của xã hoạt động bình thường." in calm
    # Three rounds without an answer: the judged state turns down (3 of 5, hysteresis).
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=0, rtt_s=None)
    page = status.wait_for(path, lambda t: "Phiếu NW-" in t)
    text = _text(page)
    assert "Xã Tân Phú Đông" in text
    assert "Mã xã 28696 · Đồng Tháp" in text
    assert "Kết nối của xã hiện nay Mất kết nối từ" in text
    assert (
        "Đường truyền VNPT Đồng Tháp (Truyền số liệu chuyên dùng) mất kết nối — lỗi đường "
        "truyền phía nhà mạng VNPT Đồng Tháp." in text
    )
    assert "Xã vẫn còn kết nối qua: Đường truyền Viettel Đồng Tháp (Internet)." in text
    # The ticket: opened, the ISP told (its notice is queued: no SMTP here), not acknowledged.
    assert "Sự cố đường truyền — Mất kết nối" in text
    assert "Nhà mạng được thông báo lúc Đang gửi thông báo" in text
    assert "Tiếp nhận Chưa tiếp nhận" in text
    # The 24 h chart of each link, drawn on the server, and the month's availability.
    assert page.count('<svg viewBox="0 0 400 190" role="img"') == 2
    assert "Mất gói cao nhất 50 %" in text  # 3 rounds answered, 3 not, in one bucket
    assert "Tỷ lệ sẵn sàng tháng" in text
    # The line that stayed fine is fully available, not "no data" (its first state counts).
    assert "Viettel Đồng Tháp (Internet): 100,00 %" in text
    assert "Sự cố 30 ngày qua" in text
    _no_internals(page)
    assert len(page.encode()) < 100_000


def test_an_isp_node_down_is_explained_as_the_isps_not_the_communes(status: Status) -> None:
    # Both links behind POP VNPT Gò Công go dark: one outage of the node, not two link faults.
    status.rounds(f"{TAN_PHU}/vnpt-tslcd", 3, received=10, rtt_s=0.004)
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=10, rtt_s=0.004)
    status.rounds(f"{TAN_PHU}/vnpt-tslcd", 3, received=0, rtt_s=None)
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=0, rtt_s=None)
    expected = (
        "Đường truyền VNPT Đồng Tháp (Truyền số liệu chuyên dùng) mất kết nối do sự cố tại "
        "POP VNPT Gò Công của nhà mạng VNPT Đồng Tháp: nhiều xã trong khu vực cùng bị ảnh "
        "hưởng — không phải lỗi tại xã."
    )
    page = _text(status.wait_for(f"/status/xa/{TAN_PHU}", lambda t: "Phiếu NW-" in t))
    assert expected in page
    assert "Sự cố tại điểm kết nối của nhà mạng" in page  # the node's ticket covers the commune
    province = _text(status.get("/status").text)
    assert (
        "Sự cố tại POP VNPT Gò Công của nhà mạng VNPT Đồng Tháp: 2 xã phía sau mất kết nối"
        in province
    )


def test_commune_page_shows_acknowledgement_and_notes(status: Status) -> None:
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=0, rtt_s=None)
    path = f"/status/xa/{TAN_PHU_DONG}"
    status.wait_for(path, lambda t: "Phiếu NW-" in t)
    ticket_id = re.findall(r"Phiếu (NW-[\w-]+)", status.get(path).text)[0]

    async def acknowledge() -> None:
        from alerts.tickets import Actor, ActorKind

        alerting = status.runtime.alerting
        assert alerting is not None
        now = datetime.now(UTC)
        await alerting.acknowledge(ticket_id, Actor(ActorKind.ISP, "Nguyễn Văn A"), now)
        await alerting.note(
            ticket_id, Actor(ActorKind.ISP, "Nguyễn Văn A"), now, "Đã cử kỹ thuật, dự kiến 15:00."
        )

    asyncio.run_coroutine_threadsafe(acknowledge(), status.loop).result(10)
    page = status.wait_for(path, lambda t: "Đã cử kỹ thuật" in t)
    text = _text(page)
    assert "Tiếp nhận Đã tiếp nhận lúc" in text
    assert "Nhà mạng đã tiếp nhận xử lý." in text
    assert "Nhà mạng Đã cử kỹ thuật, dự kiến 15:00." in text
    assert "Nguyễn Văn A" not in page  # a role, never a person's name


def test_a_line_back_is_shown_as_watched_until_its_ticket_closes(status: Status) -> None:
    path = f"/status/xa/{TAN_PHU_DONG}"
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=0, rtt_s=None)
    status.wait_for(path, lambda t: "Phiếu NW-" in t)
    # Five good rounds in a row: the link is judged fine again; the ticket watches it.
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 5, received=10, rtt_s=0.006)
    text = _text(status.wait_for(path, lambda t: "đã hoạt động trở lại từ" in t))
    assert re.search(
        r"Đường truyền VNPT Đồng Tháp \(Truyền số liệu chuyên dùng\) đã hoạt động trở lại từ "
        r"[0-9:]+ [0-9/]+\. NetWatch tiếp tục theo dõi đến [0-9:]+ [0-9/]+ rồi mới đóng phiếu "
        r"sự cố\.",
        text,
    ), text
    assert "Đường truyền của xã hoạt động bình thường." in text
    assert "Xã vẫn còn kết nối qua" not in text  # nothing is down
    english = _text(status.get(f"{path}?lang=en").text)
    assert re.search(
        r"has been back since [0-9:]+ [0-9/]+\. NetWatch keeps watching it until [0-9:]+ "
        r"[0-9/]+ before it closes the ticket\.",
        english,
    ), english


def test_portal_outage_is_not_the_communes_line(status: Status) -> None:
    status.rounds(f"{TAN_PHU}/vnpt-tslcd", 3, received=10, rtt_s=0.004)
    since = datetime.now(UTC) - timedelta(minutes=4)
    outage = Incident(
        key=SubjectKey.parse("portal:dvcqg"),
        kind=IncidentKind.PORTAL_OUTAGE,
        state="failing",
        since=since,
        route=Route.PROVINCIAL_IT,
        detail="tls",
    )

    def fail_portal() -> None:
        status.runtime.health.incidents = (*status.runtime.health.incidents, outage)

    status.on_loop(fail_portal)
    expected = "Cổng Dịch vụ công quốc gia đang gián đoạn — không phải lỗi đường truyền của xã."
    commune = _text(status.wait_for(f"/status/xa/{TAN_PHU}", lambda t: expected in t))
    assert "Đường truyền của xã hoạt động bình thường" not in commune
    assert "Kết nối của xã hiện nay Bình thường" in commune
    province = _text(status.get("/status").text)
    assert expected in province
    assert "Cổng Dịch vụ công quốc gia: Đang gián đoạn từ" in province


def test_maintenance_window_shows_as_under_maintenance(status: Status) -> None:
    status.rounds(f"{TAN_PHU}/vnpt-tslcd", 3, received=10, rtt_s=0.004)
    issued = _with_store(status, "ops")
    now = datetime.now(UTC)
    body = {
        "scope": {"commune": TAN_PHU},
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "reason": "Nâng cấp thiết bị quang",
    }
    assert status.client.post("/api/v1/maintenance", json_body=body, token=issued).status == 201
    page = _text(status.wait_for(f"/status/xa/{TAN_PHU}", lambda t: "Đang bảo trì" in t))
    assert "đang được bảo trì theo kế hoạch (Nâng cấp thiết bị quang)" in page
    province = _text(
        status.wait_for("/status", lambda t: "Đang bảo trì</span> <strong>1</strong>" in t)
    )
    assert "Đang bảo trì 1" in province


def _with_store(status: Status, name: str) -> str:
    async def issue() -> str:
        store = await open_store(None, data_dir=status.data_dir, migrate=False)
        try:
            return (await store.create_token(name, ("write",), datetime.now(UTC))).token
        finally:
            await store.close()

    return asyncio.run(issue())


def test_english_switch_is_remembered(status: Status) -> None:
    path = f"/status/xa/{TAN_PHU_DONG}"
    vi = status.get(path).text
    assert 'href="/status/xa/28696?lang=en" hreflang="en" lang="en"' in vi
    reply = status.get(f"{path}?lang=en")
    assert reply.headers["content-language"] == "en"
    assert "nw_lang=en" in reply.headers["set-cookie"]
    assert "HttpOnly" in reply.headers["set-cookie"]
    assert '<html lang="en">' in reply.text
    english = _text(reply.text)
    assert "Commune code 28696 · Đồng Tháp" in english
    assert "The commune's connection now" in english
    assert "No data yet" in english
    # The cookie keeps English on the next page, without ?lang.
    again = status.get("/status", headers={"Cookie": "nw_lang=en"})
    assert '<html lang="en">' in again.text
    assert "Communes by state" in _text(again.text)
    # Links inside an English page stay English even without cookies.
    assert 'href="/status/xa/28696?lang=en"' in status.get("/status?lang=en").text
    back = status.get("/status?lang=vi", headers={"Cookie": "nw_lang=en"})
    assert '<html lang="vi">' in back.text
    assert "nw_lang=vi" in back.headers["set-cookie"]


def test_unknown_commune_and_province_are_clear_404s(status: Status) -> None:
    missing = status.get("/status/xa/99999")
    assert missing.status == 404
    assert "NetWatch không theo dõi xã, phường có mã “99999”." in _text(missing.text)
    assert status.get("/status/77").status == 404
    bad = status.get("/status/abc%3Cb%3E")
    assert bad.status == 404
    assert "<b>" not in bad.text
    english = status.get("/status/xa/1?lang=en")
    assert english.status == 404
    assert "does not monitor a commune" in english.text
    # Codes may be written without leading zeros.
    assert status.get("/status/xa/028696").status == 404
    assert status.get("/status/xa/28696").status == 200


def test_pages_are_light_self_contained_and_gzipped(status: Status) -> None:
    status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=10, rtt_s=0.006)
    for path in ("/status", f"/status/xa/{TAN_PHU_DONG}", "/status?q=tan"):
        page = status.get(path).text
        assert len(page.encode()) < 100_000
        assert "<script src" not in page
        assert "<link" not in page  # the stylesheet is inline
        assert not re.search(r"(src|href)=\"https?://", page)  # nothing from elsewhere
        url = status.client.base + path
        with status.client.http.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(b"".join(response.iter_raw())).decode() == page


def test_the_24h_chart_survives_a_restart(tmp_path: Path, inventory: Inventory) -> None:
    link = f"{TAN_PHU}/vnpt-tslcd"
    with serving(tmp_path, inventory) as first:
        first.rounds(link, 3, received=10, rtt_s=0.0123)
        first.rounds(link, 3, received=5, rtt_s=0.0123)
        before = _text(first.get(f"/status/xa/{TAN_PHU}").text)
        assert "Độ trễ trung vị 12 ms" in before  # 12,3 ms shown without decimals from 10 ms
        assert "Mất gói cao nhất 25 %" in before
    # The bucket being filled was written on the way out; a new NetWatch reads it back.
    with serving(tmp_path, inventory) as second:
        after = _text(second.get(f"/status/xa/{TAN_PHU}").text)
        assert "Độ trễ trung vị 12 ms" in after
        assert "Mất gói cao nhất 25 %" in after


def test_pages_escape_what_they_show_by_default() -> None:
    # Autoescape, not a convention: a value with markup is shown as text.
    from netwatch.web.status.pages import message_page

    page = message_page("en", "<b>T</b>", "<script>alert(1)</script>", '/status/xa/"x"')
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>&lt;b&gt;T&lt;/b&gt; — NetWatch</title>" in page
    assert 'href="/status/xa/&#34;x&#34;?lang=vi"' in page  # attributes too
    assert page.startswith('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')


def test_templates_are_found_through_the_installed_packages() -> None:
    from netwatch.web.templating import templates

    env = templates().env
    for name in ("base.html", "status/province.html", "status/commune.html", "isp/ticket.html"):
        template = env.get_template(name)
        assert template.filename is not None
        assert "/netwatch/web/" in template.filename.replace("\\", "/")
    assert env.autoescape is not False


def test_the_fast_path_answers_exactly_as_the_routes_do(
    tmp_path: Path, inventory: Inventory
) -> None:
    """A page the routes rendered is answered from memory with the same status, headers and
    bytes (plain and gzip, language cookie included); a search, an unknown page or an expired
    snapshot still reach the routes."""
    with serving(tmp_path, inventory, fast=True) as fast:
        fast.rounds("28696/vnpt-tslcd", 3, received=10, rtt_s=0.01)
        # Snapshots and records kept long enough for two requests in a row (the fixture's are
        # short-lived for the other tests' sake).
        fast.app.state.status_pages = StatusPages(fast.runtime, max_age_s=60, store_ttl_s=60)
        served: list[str] = []
        inner = fast.app  # counts what reaches FastAPI
        original = inner.middleware_stack

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            served.append(scope["path"])
            assert original is not None
            await original(scope, receive, send)

        inner.middleware_stack = counting
        cases = [
            ("/status", {}),
            ("/status/xa/28696", {}),
            ("/status/xa/28696?lang=en", {}),
            ("/status/xa/28696", {"Cookie": "nw_lang=en"}),
            ("/status", {"Accept-Encoding": "gzip"}),
            ("/status?lang=en", {"Cookie": "nw_lang=en", "Accept-Encoding": "gzip"}),
            ("/status?state=down", {}),
        ]
        for path, headers in cases:
            first = fast.client.http.get(path, headers={"Accept-Encoding": "identity", **headers})
            before = len(served)
            second = fast.client.http.get(path, headers={"Accept-Encoding": "identity", **headers})
            assert len(served) == before, f"{path} {headers}: not answered from memory"
            assert second.status_code == first.status_code == 200
            assert second.content == first.content, path
            strip = {"date"}
            assert [(k, v) for k, v in second.headers.multi_items() if k not in strip] == [
                (k, v) for k, v in first.headers.multi_items() if k not in strip
            ], (path, headers)
        for path in ("/status?q=tan", "/status/xa/99999", "/status/999"):
            before = len(served)
            fast.client.http.get(path)
            fast.client.http.get(path)
            assert len(served) == before + 2, f"{path} must reach the routes"
