"""A real NetWatch (probing off) in process, reached through httpx's ASGI transport, real SQLite."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from alerts.model import Incident, IncidentKind, Measurements, Route
from alerts.subject import SubjectKey
from netwatch.inventory import Inventory, load_inventory
from netwatch.observations import IcmpObservation
from netwatch.signing import LinkSigner
from netwatch.store import Store, open_store
from netwatch.web.app import Runtime, create_app
from probes.icmp import PingResult
from tests.servers import InProcess, in_process
from tests.waiting import wait_until

LINK_SECRET = "test-link-secret-5d12125b938f682271d3f773a9c4"
COMMUNE = "24848"
LINK = "vnpt-tslcd"
LINK_ID = f"{COMMUNE}/{LINK}"
CONFIG = """
province: 68
isps:
  vnpt:
    name: VNPT Lâm Đồng
  viettel:
    name: Viettel Lâm Đồng
provincial_it:
  name: Trung tâm Chuyển đổi số tỉnh Lâm Đồng
notifications:
  public_url: https://netwatch.lamdong.example
  link_secret: {env: NETWATCH_LINK_SECRET}
  link_valid_days: 7
tickets:
  recovery_min: 10
  reopen_window_min: 120
upstreams:
  pop-lac-duong:
    name: POP VNPT Lạc Dương
    isp: vnpt
communes:
  - code: 24848
    links:
      - id: vnpt-tslcd
        isp: vnpt
        circuit: LDG-TSLCD-0001
        bandwidth_mbps: 100
        path: tslcd
        address: 127.0.0.1
        upstream: pop-lac-duong
      - id: viettel-inet
        isp: viettel
        circuit: VTL-INET-0042
        bandwidth_mbps: 50
        path: internet
        address: 127.0.0.2
"""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer."""

    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.text)


class Client:
    """An HTTP client that follows redirects as a browser does, answering plain Replies.

    Over a real socket when given only a base URL (a NetWatch subprocess, the lab), or in
    process through `http` (an httpx client on tests.servers.in_process) where no socket is
    needed. Content is asked for unencoded, as urllib did.
    """

    def __init__(
        self, base: str, http: httpx.Client | None = None, api_token: str | None = None
    ) -> None:
        self.base = base.rstrip("/")
        # Sent as the bearer token to /api/v1 when a request names none (and is not anonymous).
        self.api_token = api_token
        # Over a socket, no connection kept alive (none left open for the GC to warn about).
        self.http = http or httpx.Client(
            timeout=15, limits=httpx.Limits(max_keepalive_connections=0)
        )
        # No cookies kept (urllib kept none): a page's language or session never sticks.
        self.http.cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))  # type: ignore[assignment]

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object | None = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        raw: bytes | None = None,
        anonymous: bool = False,
    ) -> Reply:
        """Send one request; redirects are followed, as a browser does. Requests to /api/v1
        carry `api_token` unless they name their own token or are `anonymous`."""
        data = raw
        if token is None and not anonymous and path.startswith("/api/v1"):
            token = self.api_token
        sent = {"Accept-Encoding": "identity", **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        elif form is not None:
            data = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = self.http.request(
                method, self.base + path, content=data, headers=sent, follow_redirects=True
            )
        except httpx.TransportError as exc:  # an OSError, as urllib's were: nothing answered
            raise ConnectionError(f"{method} {self.base}{path}: {exc}") from exc
        return Reply(response.status_code, dict(response.headers), response.text)

    def get(self, path: str, **kwargs: Any) -> Reply:
        """GET."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        """POST."""
        return self.request("POST", path, **kwargs)


@dataclass(frozen=True, slots=True)
class Server:
    """The running NetWatch and what tests need to drive it."""

    client: Client
    app: FastAPI
    data_dir: Path
    inventory: Inventory
    signer: LinkSigner
    process: InProcess

    def browser(self, **options: Any) -> httpx.Client:
        """Another client of the same NetWatch, with its own cookies (httpx.Client options);
        over https by default, as the configured public URL is (the admin cookies are Secure)."""
        options.setdefault("base_url", "https://testserver")
        return self.process.client(**options)

    @property
    def runtime(self) -> Runtime:
        """The app's runtime (built by its lifespan)."""
        runtime: Runtime = self.app.state.runtime
        return runtime

    def with_store(self, work: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
        """Run work against the same database through a second, independent Store."""

        async def run() -> T:
            store = await open_store(None, data_dir=self.data_dir, migrate=False)
            try:
                return await work(store)
            finally:
                await store.close()

        return asyncio.run(run())

    def make_token(
        self,
        name: str,
        scopes: tuple[str, ...] = ("write",),
        *,
        provinces: tuple[int, ...] | None = None,
        isp: str | None = None,
    ) -> str:
        """A new API token in the store (restricted to provinces or an ISP if given)."""
        issued = self.with_store(
            lambda s: s.create_token(
                name, list(scopes), datetime.now(UTC), provinces=provinces, isp=isp
            )
        )
        return issued.token

    def link_query(self, ticket_id: str) -> str:
        """The query string of a fresh signed link to the ticket."""
        link = self.signer.sign(ticket_id, datetime.now(UTC))
        return f"exp={link.exp}&sig={link.sig}"

    def open_ticket(
        self,
        link: str = LINK,
        state: str = "down",
        *,
        loss_ratio: float = 1.0,
        rtt_median_s: float | None = None,
        timeout_s: float = 20.0,
        commune: str = COMMUNE,
    ) -> str:
        """Make the health monitor report a link fault; wait for the alerting loop's ticket."""
        runtime = self.runtime
        key = f"{commune}/{link}"
        target = next(t for t in runtime.plan.icmp if t.link is not None and t.link.id == key)
        now = datetime.now(UTC)
        received = round(10 * (1 - loss_ratio))
        rtts = (rtt_median_s,) * received if rtt_median_s is not None else ()
        runtime.state.observe(
            [
                IcmpObservation(
                    target,
                    PingResult(
                        address=target.address,
                        sent=10,
                        received=received,
                        loss_ratio=loss_ratio,
                        rtt_min_s=rtt_median_s,
                        rtt_median_s=rtt_median_s,
                        rtt_max_s=rtt_median_s,
                        jitter_s=None,
                        rtts_s=rtts,
                        failure=None,
                        started_at=now,
                    ),
                )
            ]
        )
        incident = Incident(
            key=SubjectKey.parse(f"link:{key}"),
            kind=IncidentKind.LINK_FAULT,
            state=state,
            since=now - timedelta(minutes=3),
            route=Route.ISP,
            isp=target.link.isp if target.link else None,
            links=(key,),
            detail="interface_down" if state == "down" else "",
            # What the health monitor would have measured in the round that judged it.
            measured=Measurements(loss_ratio=loss_ratio, rtt_median_s=rtt_median_s),
        )
        runtime.health.incidents = (*runtime.health.incidents, incident)
        return self.wait_for_ticket(incident.key.encoded, timeout_s)

    def wait_for_ticket(self, incident_key: str, timeout_s: float = 20.0) -> str:
        """The id of the ticket the alerting loop opens for an incident key."""

        def opened() -> list[str]:
            tickets = self.client.get("/api/v1/tickets").json()
            return [str(t["id"]) for t in tickets if t["incident_key"] == incident_key]

        try:
            return wait_until(opened, timeout_s, 0.1, "ticket")[0]
        except AssertionError:
            raise AssertionError("the alerting loop opened no ticket") from None


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    """The test configuration, with its link secret from a given environment."""
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_inventory(path, environ={"NETWATCH_LINK_SECRET": LINK_SECRET})


def netwatch_app(tmp_path: Path, inventory: Inventory, data_dir: Path) -> FastAPI:
    """The one place web tests build NetWatch: probing off, alerting every 0.2 s."""
    return create_app(
        tmp_path / "netwatch.yaml",
        inventory=inventory,
        probing=False,
        data_dir=data_dir,
        alerting_tick_s=0.2,
    )


@pytest.fixture
def server(tmp_path: Path, inventory: Inventory) -> Iterator[Server]:
    """NetWatch with probing off, alerting every 0.2 s, in process (its lifespan runs)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = netwatch_app(tmp_path, inventory, data_dir)
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
        # Every /api/v1 route needs a token: the tests' client reads and writes as national IT.
        made.client.api_token = made.make_token("tests", ("read", "write"))
        yield made


def login_csrf(browser: httpx.Client) -> str:
    """The login form's CSRF field (its cookie lands in the browser)."""
    found = re.search(r'name="login_csrf" value="([0-9a-f]+)"', browser.get("/admin/login").text)
    assert found, "the login form has no CSRF field"
    return found.group(1)


def admin_login(browser: httpx.Client, token: str, next_path: str = "/admin") -> httpx.Response:
    """Log in to the admin view as a person does: the form (with its CSRF field), then the post."""
    data = {"token": token, "next": next_path, "login_csrf": login_csrf(browser)}
    return browser.post("/admin/login", data=data)


def password_login(
    browser: httpx.Client, user: str, password: str, next_path: str = "/admin"
) -> httpx.Response:
    """Log in to the admin view with a person's name and password, through the form."""
    data = {"user": user, "password": password, "next": next_path}
    return browser.post("/admin/login", data={**data, "login_csrf": login_csrf(browser)})


def page_csrf(page: str) -> str:
    """A logged-in page's CSRF field, for its forms."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)
