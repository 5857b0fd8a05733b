"""Every route of the app, enumerated from `app.routes` (a route added later is covered without
touching this file, or the test fails asking for a sample of its new path parameter):

- a public route is in `PUBLIC` (or `SIGNED`: the ISP's signed links, refused without one);
- every other route refuses an anonymous caller (401, or the admin's login page);
- an ISP's caller (a token restricted to the ISP, and an ISP engineer's account) cannot read or
  act on another ISP's ticket, circuit, link or report; a province's caller (token and account)
  cannot read or act on another province's.

The inventory has two provinces (Lâm Đồng 68, Hà Nội 01), two ISPs (VNPT, Viettel), one commune
of each province with a link of each ISP, and an open ticket on every link. Against a real
NetWatch (probing off) and its real SQLite store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import fastapi.routing
import httpx
import pytest

from netwatch.inventory import load_inventory
from netwatch.signing import LinkSigner
from netwatch.store import NewMaintenance, Store
from tests.servers import in_process
from tests.web.conftest import (
    LINK_SECRET,
    Client,
    Server,
    admin_login,
    netwatch_app,
    password_login,
)

CONFIG = """
isps:
  vnpt:
    name: VNPT
  viettel:
    name: Viettel
notifications:
  public_url: https://netwatch.example
  link_secret: {env: NETWATCH_LINK_SECRET}
upstreams:
  pop-lac-duong:
    name: POP VNPT Lạc Dương
    isp: vnpt
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: LDG-VNPT-0001, bandwidth_mbps: 100, path: tslcd,
         address: 127.0.0.1, upstream: pop-lac-duong}
      - {id: viettel-inet, isp: viettel, circuit: LDG-VTL-0002, bandwidth_mbps: 50,
         path: internet, address: 127.0.0.2}
  - code: 70
    links:
      - {id: vnpt-hn, isp: vnpt, circuit: HNI-VNPT-0003, bandwidth_mbps: 100, path: tslcd,
         address: 127.0.0.3}
      - {id: viettel-hn, isp: viettel, circuit: HNI-VTL-0004, bandwidth_mbps: 50,
         path: internet, address: 127.0.0.4}
"""
# (commune, link, province, isp, circuit)
LINKS = (
    ("24848", "vnpt-tslcd", 68, "vnpt", "LDG-VNPT-0001"),
    ("24848", "viettel-inet", 68, "viettel", "LDG-VTL-0002"),
    ("00070", "vnpt-hn", 1, "vnpt", "HNI-VNPT-0003"),
    ("00070", "viettel-hn", 1, "viettel", "HNI-VTL-0004"),
)
PASSWORD = "mật-khẩu-đủ-dài-2026"

# Routes anyone may call: the public status pages, Prometheus's and load balancers' checks on the
# private network (docs/security.md), the API's schema, the login form.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/status"),
    ("GET", "/status/xa/{code}"),
    ("GET", "/status/{province}"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/healthz/leader"),
    ("GET", "/openapi.json"),
    ("GET", "/admin/login"),
    ("POST", "/admin/login"),
    ("POST", "/admin/logout"),  # ends the cookie's session, if any; nothing else
}
# The ISP's signed links: public paths, refused (403) without a valid signature.
SIGNED = re.compile(r"^/t/\{ticket_id\}(/|$)")


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a split: what it owns (path samples) and what only it may see (markers)."""

    tickets: tuple[str, ...]
    communes: tuple[str, ...]
    links: tuple[tuple[str, str], ...]  # (commune, link)
    window: int
    markers: tuple[str, ...]  # circuits and ticket ids: never in the other side's answers


@dataclass
class World:
    """The running NetWatch, its tokens and accounts, its tickets by link."""

    server: Server
    tickets: dict[str, str]  # "commune/link" -> ticket id
    windows: dict[str, int]  # commune -> maintenance window id
    tokens: dict[str, str]

    def side(self, keep: str, value: object) -> Side:
        """The links whose `keep` (province or isp) is `value`."""
        index = {"province": 2, "isp": 3}[keep]
        rows = [row for row in LINKS if row[index] == value]
        tickets = tuple(self.tickets[f"{c}/{link}"] for c, link, *_ in rows)
        communes = tuple(dict.fromkeys(c for c, *_ in rows))
        window = self.windows[communes[0]]
        return Side(
            tickets,
            communes,
            tuple((c, link) for c, link, *_ in rows),
            window,
            tuple(row[4] for row in rows) + tickets,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """NetWatch on the two-province, two-ISP inventory, a ticket open on every link."""
    tmp_path = tmp_path_factory.mktemp("scopes")
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory = load_inventory(path, environ={"NETWATCH_LINK_SECRET": LINK_SECRET})
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = netwatch_app(tmp_path, inventory, data_dir)
    assert inventory.notifications is not None
    with in_process(app) as process, process.client() as http:
        server = Server(
            Client(str(http.base_url), http),
            app,
            data_dir,
            inventory,
            LinkSigner.from_notifications(inventory.notifications),
            process,
        )
        national = server.make_token("national", ("read", "write"))
        server.client.api_token = national
        tickets = {
            f"{commune}/{link}": server.open_ticket(link, commune=commune)
            for commune, link, *_ in LINKS
        }
        start = datetime.now(UTC) + timedelta(days=30)

        async def windows(store: Store) -> dict[str, int]:
            out = {}
            for commune in ("24848", "00070"):
                window = NewMaintenance(
                    "commune", commune, start, start + timedelta(hours=2), "x", "token:national"
                )
                out[commune] = (await store.add_maintenance(window, datetime.now(UTC))).id
            return out

        tokens = {
            "national": national,
            "isp": server.make_token("vnpt-noc", ("read", "write"), isp="vnpt"),
            "province": server.make_token("cntt-68", ("read", "write"), provinces=(68,)),
        }

        async def users(store: Store) -> None:
            now = datetime.now(UTC)
            await store.create_user("kt-vnpt", "isp", PASSWORD, now, isp="vnpt")
            await store.create_user("cntt-ld", "province", PASSWORD, now, provinces=[68])

        server.with_store(users)
        yield World(server, tickets, server.with_store(windows), tokens)


def _routes(world: World) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves (HEAD goes with GET).

    FastAPI 0.165 keeps an included router as one entry of `app.routes`; its
    `iter_route_contexts` yields every route inside, with the path the app serves it at
    (older FastAPI copied the routes into `app.routes`, where each is its own entry)."""
    routes: Iterable[Any] = world.server.app.routes
    expand = getattr(fastapi.routing, "iter_route_contexts", None)
    if expand is not None:
        routes = expand(world.server.app.routes)
    out = []
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and methods:
            out += [(m, path) for m in sorted(methods) if m != "HEAD"]
    assert len(out) > 20, out  # the API, the admin view, the status pages, the ISP's links
    return out


def _fill(template: str, side: Side) -> str:
    """The template's path parameters from a side's samples; a new parameter fails the test,
    asking for a sample here."""
    commune, link = side.links[0]
    samples = {
        "ticket_id": side.tickets[0],
        "code": side.communes[0],
        "commune": commune,
        "link": link,
        "window_id": str(side.window),
        "link_id": "0" * 32,
    }

    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in samples, f"add a sample for the path parameter {name!r} of {template}"
        return samples[name]

    return re.sub(r"\{([^}]+)\}", one, template)


def _ask(browser: httpx.Client, method: str, path: str, csrf: str | None = None) -> httpx.Response:
    form = {"csrf": csrf or "", "text": "x", "target": "province:1", "reason": "x"}
    data = form if csrf and method != "GET" else None
    body = {"text": "x"} if path.startswith("/api/v1") and method != "GET" else None
    return browser.request(method, path, data=data, json=body)


def test_public_routes_are_listed_and_every_other_refuses_an_anonymous_caller(
    world: World,
) -> None:
    seen_public, refused = set(), []
    ours = world.side("isp", "vnpt")
    with world.server.browser(follow_redirects=False) as anonymous:
        for method, template in _routes(world):
            if (method, template) in PUBLIC:
                seen_public.add((method, template))
                continue
            answer = _ask(anonymous, method, _fill(template, ours))
            if SIGNED.match(template):
                assert answer.status_code == 403, (method, template, answer.status_code)
            elif template.startswith("/admin") and method == "GET":
                assert answer.status_code == 303, (method, template)
                assert answer.headers["location"].startswith("/admin/login")
            else:
                assert answer.status_code == 401, (method, template, answer.status_code)
            refused.append((method, template))
    assert seen_public == PUBLIC, "a route of the allow-list is gone: update PUBLIC"
    # The enumeration found the API, the admin view and the signed links (not an empty list).
    assert ("GET", "/api/v1/tickets/{ticket_id}") in refused
    assert ("POST", "/admin/maintenance") in refused
    assert ("GET", "/t/{ticket_id}") in refused


def _caller(world: World, kind: str, how: str) -> tuple[httpx.Client, str | None]:
    """A client for the kind of caller (isp, province) as a token or a person's session, and
    the session's CSRF token (None for a bearer token)."""
    browser = world.server.browser(follow_redirects=False)
    if how == "token":
        browser.headers["Authorization"] = f"Bearer {world.tokens[kind]}"
        token_login = admin_login(browser, world.tokens[kind])
        assert token_login.status_code == 303
    else:
        user = {"isp": "kt-vnpt", "province": "cntt-ld"}[kind]
        assert password_login(browser, user, PASSWORD).status_code == 303
    page = browser.get("/admin")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found
    return browser, found.group(1)


@pytest.mark.parametrize(
    ("kind", "shown", "hidden"),
    [
        ("isp", 'value="vnpt"', 'value="viettel"'),
        ("province", 'value="68"', 'value="01"'),
    ],
)
def test_the_report_form_offers_only_what_the_caller_may_see(
    world: World, kind: str, shown: str, hidden: str
) -> None:
    browser, _ = _caller(world, kind, "account")
    try:
        form = browser.get("/admin/reports/monthly")
    finally:
        browser.close()
    assert form.status_code == 200
    assert shown in form.text
    assert hidden not in form.text


def _ticket_changes(world: World) -> dict[str, int]:
    async def count(store: Store) -> dict[str, int]:
        return {t: len(await store.ticket_events(t)) for t in world.tickets.values()}

    return world.server.with_store(count)


@pytest.mark.parametrize("how", ["token", "account"])
@pytest.mark.parametrize(
    ("kind", "own", "other"),
    [("isp", ("isp", "vnpt"), ("isp", "viettel")), ("province", ("province", 68), ("province", 1))],
    ids=["isp", "province"],
)
def test_a_restricted_caller_meets_nothing_of_another_isp_or_province(
    world: World, kind: str, own: tuple[str, object], other: tuple[str, object], how: str
) -> None:
    ours, theirs = world.side(*own), world.side(*other)
    before = _ticket_changes(world)
    browser, csrf = _caller(world, kind, how)
    answered_ok = 0
    try:
        for method, template in _routes(world):
            if (method, template) in PUBLIC or SIGNED.match(template):
                continue
            if how == "account" and template.startswith("/api/v1"):
                continue  # people use /admin; the API takes bearer tokens (docs/security.md)
            path = _fill(template, theirs)
            answer = _ask(browser, method, path, csrf if template.startswith("/admin") else None)
            where = (kind, how, method, path, answer.status_code)
            if method != "GET":
                # Acting on the other's ticket, window or scope: refused, nothing changed.
                assert answer.status_code >= 400, where
                continue
            # The same route with our own samples answers (a refusal is not blanket).
            mine = _ask(browser, method, _fill(template, ours))
            assert mine.status_code in (200, 403), (kind, how, method, template)
            answered_ok += mine.status_code == 200
            if answer.status_code in (403, 404):
                continue
            assert answer.status_code == 200, where
            for marker in theirs.markers:
                assert marker not in answer.text, (*where, marker)
        # The other's tickets are untouched; ours are readable and listed.
        assert _ticket_changes(world) == before
        for ticket in ours.tickets:
            assert browser.get(f"/admin/tickets/{ticket}").status_code == 200
        listed = browser.get("/admin").text
        assert all(ticket in listed for ticket in ours.tickets)
        if how == "token":
            for ticket in ours.tickets:
                assert browser.get(f"/api/v1/tickets/{ticket}").status_code == 200
            listed_api = browser.get("/api/v1/tickets").json()
            assert sorted(t["id"] for t in listed_api) == sorted(ours.tickets)
            circuits = {link["circuit"] for link in browser.get("/api/v1/links").json()}
            assert circuits == {m for m in ours.markers if m not in ours.tickets}
    finally:
        browser.close()
    # Lists and our own things answered, not everything refused: the API's reads and /admin's
    # list and ticket page (tokens), /admin's list and ticket page (accounts).
    assert answered_ok >= (7 if how == "token" else 2), answered_ok


def test_a_national_caller_sees_both_provinces_and_isps(world: World) -> None:
    client = world.server.client
    assert {t["id"] for t in client.get("/api/v1/tickets").json()} == set(world.tickets.values())
    assert {link["circuit"] for link in client.get("/api/v1/links").json()} == {
        row[4] for row in LINKS
    }


def test_an_isp_caller_acts_on_its_own_tickets_but_plans_no_maintenance(world: World) -> None:
    ours = world.side("isp", "vnpt")
    token = world.tokens["isp"]
    client = world.server.client
    note = client.post(
        f"/api/v1/tickets/{ours.tickets[0]}/notes", json_body={"text": "Đang xử lý"}, token=token
    )
    assert note.status == 200
    assert note.json()["events"][-1]["actor"] == "isp:vnpt-noc"
    window = {
        "scope": {"commune": "24848"},
        "start": "2030-01-01T08:00",
        "end": "2030-01-01T09:00",
        "reason": "x",
    }
    assert client.post("/api/v1/maintenance", json_body=window, token=token).status == 403
    assert client.get("/api/v1/maintenance", token=token).status == 403
    assert client.post("/api/v1/config/reload", token=token).status == 403
    # Its circuits, never the provincial network's monitored addresses (as on its ticket page).
    links = client.get("/api/v1/links", token=token).json()
    assert {(link["circuit"], link["address"]) for link in links} == {
        ("LDG-VNPT-0001", ""),
        ("HNI-VNPT-0003", ""),
    }


def test_a_province_caller_plans_maintenance_only_in_its_provinces(world: World) -> None:
    token = world.tokens["province"]
    client = world.server.client

    def window(commune: str) -> dict[str, object]:
        return {
            "scope": {"commune": commune},
            "start": "2030-01-01T08:00",
            "end": "2030-01-01T09:00",
            "reason": "Bảo trì",
        }

    assert client.post("/api/v1/maintenance", json_body=window("24848"), token=token).status == 201
    assert client.post("/api/v1/maintenance", json_body=window("70"), token=token).status == 403
    listed = client.get("/api/v1/maintenance", token=token).json()
    assert {w["target"] for w in listed} == {"24848"}
    assert client.post("/api/v1/config/reload", token=token).status == 403


def test_read_tokens_read_and_write_tokens_read_too(world: World) -> None:
    client = world.server.client
    reader = world.server.make_token("dashboard", ("read",))
    writer = world.server.make_token("legacy", ("write",))
    ticket = next(iter(world.tickets.values()))
    for token in (reader, writer):
        assert client.get("/api/v1/tickets", token=token).status == 200
    refused = client.post(f"/api/v1/tickets/{ticket}/notes", json_body={"text": "x"}, token=reader)
    assert (refused.status, refused.json()["detail"]) == (403, "API token lacks the 'write' scope")


def test_the_public_status_pages_show_no_private_field(world: World) -> None:
    # An engineer's name in a ticket's log (through the API, as provincial IT writes it).
    ticket = world.tickets["24848/vnpt-tslcd"]
    note = {"text": "Kỹ sư Nguyễn Văn Bình đang xử lý"}
    assert world.server.client.post(f"/api/v1/tickets/{ticket}/notes", json_body=note).status == 200
    private = [row[4] for row in LINKS] + ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    private += ["national", "vnpt-noc", "pop-lac-duong"]  # token names, upstream id
    with world.server.browser(follow_redirects=False) as anonymous:
        for path in ("/status", "/status/68", "/status/01", "/status/xa/24848", "/status/xa/00070"):
            page = anonymous.get(path)
            assert page.status_code == 200, path
            for value in private:
                assert value not in page.text, (path, value)
