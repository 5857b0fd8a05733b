"""`POST /api/v1/config/reload` against a real NetWatch (probing off, real SQLite): a bad file
keeps the running configuration and answers every mistake with its position; a good one closes
a removed link's ticket as removed from monitoring and keeps the others (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from netwatch.inventory import Inventory
from netwatch.observations import IcmpObservation
from netwatch.runtime import Runtime
from netwatch.signing import LinkSigner
from netwatch.web.reload import enable_reload
from probes.icmp import PingResult
from tests.servers import in_process
from tests.waiting import wait_until
from tests.web.conftest import (
    CONFIG,
    LINK_SECRET,
    Client,
    Server,
    admin_login,
    netwatch_app,
    page_csrf,
)

REMOVED = "24848/viettel-inet"
KEPT = "24848/vnpt-tslcd"
# The same file without the Viettel link, and a link of a second commune added.
WITHOUT_VIETTEL = CONFIG.split("      - id: viettel-inet")[0] + (
    "  - code: 24853\n"
    "    links:\n"
    "      - {id: vnpt-a, isp: vnpt, circuit: C-1, bandwidth_mbps: 10, path: tslcd,"
    " address: 127.0.0.3}\n"
)


@pytest.fixture
def reloading(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    """NetWatch as in `server`, reloading its file on request (the file's secret from the
    environment, as `netwatch run` reads it)."""
    monkeypatch.setenv("NETWATCH_LINK_SECRET", LINK_SECRET)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = netwatch_app(tmp_path, inventory, data_dir)
    enable_reload(app, tmp_path / "netwatch.yaml")
    assert inventory.notifications is not None
    with in_process(app) as process, process.client() as http:
        made = Server(
            Client(str(http.base_url), http),
            app,
            data_dir,
            inventory,
            LinkSigner.from_notifications(inventory.notifications),
            process,
        )
        made.client.api_token = made.make_token("tests", ("read", "write"))
        yield made


def _token(server: Server) -> str:
    issued = server.with_store(lambda s: s.create_token("ops", ("write",), datetime.now(UTC)))
    return issued.token


def _cut(server: Server, link: str) -> None:
    """Rounds with no echo for a link, fed to the health monitor on the app's loop: its state
    goes down by hysteresis (enter_rounds), as it would on the lab."""
    runtime: Runtime = server.app.state.runtime
    target = next(t for t in runtime.plan.icmp if t.link is not None and t.link.id == link)

    def feed() -> None:
        for _ in range(5):
            now = datetime.now(UTC)
            result = PingResult(target.address, 5, 0, 1.0, None, None, None, None, (), None, now)
            runtime.health.observe([IcmpObservation(target, result)])

    server.process.portal.call(feed)


def _ticket(server: Server, key: str) -> dict[str, object]:
    def found() -> list[dict[str, object]]:
        tickets = server.client.get("/api/v1/tickets").json()
        return [t for t in tickets if t["incident_key"] == key]

    return wait_until(found, 20, 0.1, f"ticket of {key}")[0]


def test_reload_refuses_a_bad_file_with_positions_and_keeps_running(reloading: Server) -> None:
    server = reloading
    token = _token(server)
    path = server.data_dir.parent / "netwatch.yaml"
    before = server.app.state.runtime
    path.write_text(
        CONFIG.replace("bandwidth_mbps: 50", "bandwidth_mbps: -5").replace(
            "isp: viettel\n", "isp: mobifone\n"
        ),
        encoding="utf-8",
    )
    reply = server.client.post("/api/v1/config/reload", token=token)
    assert reply.status == 422, reply.text
    body = reply.json()
    assert body["status"] == "refused"
    errors = {(e["path"], e["line"]) for e in body["errors"]}
    lines = path.read_text().splitlines()
    assert ("communes[0].links[1].isp", lines.index("        isp: mobifone") + 1) in errors
    bandwidth = lines.index("        bandwidth_mbps: -5") + 1
    assert ("communes[0].links[1].bandwidth_mbps", bandwidth) in errors
    assert all(e["file"] == str(path) and e["column"] >= 1 for e in body["errors"])
    assert server.app.state.runtime is before  # the old configuration runs on
    metrics = server.client.get("/metrics").text
    assert "netwatch_config_reload_success 0.0" in metrics
    assert 'netwatch_config_reloads_total{outcome="failure"} 1.0' in metrics
    # No token: 401, as every write route.
    assert server.client.post("/api/v1/config/reload", anonymous=True).status == 401


def test_reload_resolves_a_removed_links_ticket_as_removed(reloading: Server) -> None:
    server = reloading
    token = _token(server)
    _cut(server, REMOVED)
    _cut(server, KEPT)
    # The kept link is the only one behind its (unpinged) upstream node: that node's outage.
    removed, kept = _ticket(server, f"link:{REMOVED}"), _ticket(server, "upstream:pop-lac-duong")
    path = server.data_dir.parent / "netwatch.yaml"
    path.write_text(WITHOUT_VIETTEL, encoding="utf-8")

    reply = server.client.post("/api/v1/config/reload", token=token)

    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["status"] == "applied"
    assert f"link:{REMOVED}" in body["removed"]
    assert "link:24853/vnpt-a" in body["added"]
    assert body["tickets_closed"] == [removed["id"]]
    detail = server.client.get(f"/api/v1/tickets/{removed['id']}").json()
    assert detail["state"] == "resolved"
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[-1] == "unmonitored"
    assert "auto_resolved" not in kinds
    assert "recovering" not in kinds
    # The link that stays keeps its ticket (its upstream's) and its judged state.
    still = server.client.get(f"/api/v1/tickets/{kept['id']}").json()
    assert still["state"] == "open"
    assert [e["kind"] for e in still["events"]] == ["opened"]
    runtime: Runtime = server.app.state.runtime
    status = runtime.health.link_status("24848", "vnpt-tslcd")
    assert status is not None
    assert status.state.value == "down"
    assert [c.code for c in runtime.inventory.communes] == ["24848", "24853"]
    assert {t.key.encoded for t in runtime.plan.icmp if t.link} == {
        f"link:{KEPT}",
        "link:24853/vnpt-a",
    }
    # The ticket page names the resolution as it is (Vietnamese first).
    query = server.link_query(str(removed["id"]))
    page = server.client.get(f"/t/{removed['id']}?{query}", headers={"Accept": "text/html"})
    assert "Đã ngừng giám sát" in page.text
    metrics = server.client.get("/metrics").text
    assert "netwatch_config_reload_success 1.0" in metrics
    assert 'commune="24853"' in metrics  # the added commune's info series


def _admin(server: Server, token: str) -> tuple[httpx.Client, str]:
    """A logged-in admin browser and the health page's CSRF field."""
    browser = server.browser(follow_redirects=False)
    assert admin_login(browser, token, "/admin/health").status_code == 303
    health = browser.get("/admin/health")
    assert health.status_code == 200
    assert 'action="/admin/config/reload"' in health.text  # the button
    return browser, page_csrf(health.text)


def test_the_admin_health_page_reloads_and_shows_every_mistake(reloading: Server) -> None:
    """The admin action of issue 15: provincial IT press "Nạp lại cấu hình"; a bad file is
    listed with its positions and changes nothing, a good one is applied."""
    server = reloading
    browser, csrf = _admin(server, _token(server))
    path = server.data_dir.parent / "netwatch.yaml"
    before = server.app.state.runtime
    path.write_text(CONFIG.replace("isp: viettel\n", "isp: mobifone\n"), encoding="utf-8")
    line = path.read_text().splitlines().index("        isp: mobifone") + 1
    try:
        # Without the session's CSRF field: refused, nothing reloaded.
        assert browser.post("/admin/config/reload", data={}).status_code == 403
        refused = browser.post("/admin/config/reload", data={"csrf": csrf})
        assert refused.status_code == 422
        assert "Tệp cấu hình có lỗi; cấu hình đang chạy được giữ nguyên." in refused.text
        assert f"{path}:{line}:" in refused.text
        assert "communes[0].links[1].isp" in refused.text
        assert server.app.state.runtime is before

        path.write_text(WITHOUT_VIETTEL, encoding="utf-8")
        applied = browser.post("/admin/config/reload", data={"csrf": csrf})
        assert applied.status_code == 200, applied.text
        assert "Đã nạp lại cấu hình: 2 xã được giám sát." in applied.text
        assert f"link:{REMOVED}" in applied.text
        assert server.app.state.runtime is not before
    finally:
        browser.close()
    assert [c.code for c in server.app.state.runtime.inventory.communes] == ["24848", "24853"]
