"""The public status pages: province, commune (stable URL by official code), search, vi/en.

Routes (no login, read-only, never an address, contact or secret):

- ``/status``: the province page when NetWatch covers one province, else the list of provinces
  (with a search over every commune).
- ``/status/{province}``: every commune with its state, counts per state (``?state=down``
  filters), the portals, and search without diacritics (``?q=tan phu dong``).
- ``/status/xa/{code}``: one commune: the answer in plain words, each link, who is on it, the
  view from inside the commune centre when it has an agent (status/inside.py), the 24 h
  latency/loss chart, incidents of the last 30 days, this month's availability.

Vietnamese by default; ``?lang=en`` switches (remembered in a cookie). Pages are rendered once
per change of what they show and served from memory (gzip too) to everyone else: see
StatusPages.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netwatch.history import LinkSeries
from netwatch.web.deps import runtime_or_none
from netwatch.web.i18n import (
    DEFAULT_LANG,
    LANG_COOKIE,
    LANG_PARAM,
    Lang,
    pick_lang,
    remember_lang,
)
from netwatch.web.status.inside import InsideEntry, InsideViews
from netwatch.web.status.model import CommuneRecords, Snapshot, StatusModel
from netwatch.web.status.pages import (
    BASE,
    commune_page,
    message_page,
    province_page,
    provinces_page,
    redirect_page,
)
from netwatch.web.status.words import Shown, T

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

__all__ = ["BASE", "StatusPages", "fast_response", "pages_of", "redirect_page", "router"]

router = APIRouter(include_in_schema=False)
MAX_QUERY_CHARS = 100
# Rendered pages kept per (page, language, filter); searches are rendered per request.
_GZIP_MIN_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Rendered:
    """A page as bytes, plain and gzipped, with what it was rendered from."""

    snapshot: Snapshot
    records: CommuneRecords | None
    inside: InsideEntry | None  # the commune agent's view it showed (commune pages)
    body: bytes
    gzipped: bytes | None


@dataclass(slots=True)
class StatusPages:
    """The status pages of one app: the model, and rendered pages served from memory."""

    runtime: Runtime
    max_age_s: float = 10.0  # a snapshot is rebuilt at least this often
    store_ttl_s: float = 10.0  # tickets, availability and API maintenance windows re-read
    # A commune page shows its agent's newer messages at most this often (status/inside.py).
    inside_min_interval_s: float = 2.0
    model: StatusModel = field(init=False)
    inside: InsideViews = field(init=False)
    _rendered: dict[tuple[str, ...], Rendered] = field(default_factory=dict)
    # The fast path's answers, per page key, language and encoding: the ASGI messages the
    # route's Response sends for that page (no cookie to set), built once per Rendered.
    _wire: dict[tuple[tuple[str, ...], Lang, bool], Wire] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model = StatusModel(
            self.runtime,
            max_age_s=self.max_age_s,
            records_ttl_s=self.store_ttl_s,
            windows_ttl_s=self.store_ttl_s,
        )
        self.inside = InsideViews(self.runtime, min_interval_s=self.inside_min_interval_s)

    def series(self, link: str, now: datetime) -> LinkSeries | None:
        """A link's 24 h buckets (None when NetWatch keeps no history)."""
        return self.runtime.history.series(link, now)

    def cached(
        self,
        key: tuple[str, ...],
        snapshot: Snapshot,
        records: CommuneRecords | None,
        inside: InsideEntry | None = None,
    ) -> Rendered | None:
        """The page rendered from exactly this snapshot, these records and this agent view."""
        found = self._rendered.get(key)
        if (
            found is not None
            and found.snapshot is snapshot
            and found.records is records
            and found.inside is inside
        ):
            return found
        return None

    def keep(
        self,
        key: tuple[str, ...],
        snapshot: Snapshot,
        records: CommuneRecords | None,
        html: str,
        inside: InsideEntry | None = None,
    ) -> Rendered:
        """Remember a rendered page (and its gzip) for the next readers."""
        body = html.encode()
        gz = gzip.compress(body, 6) if len(body) >= _GZIP_MIN_BYTES else None
        rendered = Rendered(snapshot, records, inside, body, gz)
        self._rendered[key] = rendered
        return rendered


@dataclass(frozen=True, slots=True)
class Wire:
    """A rendered page as the ASGI messages its route sends (an ASGI app answering with them)."""

    rendered: Rendered
    start: Message
    body: Message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(self.start)
        await send(self.body)


def _wire_of(
    pages: StatusPages, key: tuple[str, ...], rendered: Rendered, lang: Lang, gz: bool
) -> Wire:
    """The messages `_respond` sends for this page to a request that sets no cookie, built by
    `_respond` itself (once per rendered page, language and encoding): the same bytes."""
    wanted = (key, lang, gz)
    found = pages._wire.get(wanted)
    if found is not None and found.rendered is rendered:
        return found
    headers = [(b"accept-encoding", b"gzip")] if gz else []
    probe = Request(
        {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": headers}
    )
    response = _respond(probe, lang, rendered.body, rendered.gzipped)
    start = {"type": "http.response.start", "status": 200, "headers": response.raw_headers}
    wire = Wire(rendered, start, {"type": "http.response.body", "body": response.body})
    pages._wire[wanted] = wire
    return wire


def _first_header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def pages_of(request: Request) -> StatusPages | None:
    """The app's StatusPages, made on first use; None while NetWatch is starting."""
    app_state = request.app.state
    runtime = runtime_or_none(request)
    if runtime is None:
        return None
    pages: StatusPages | None = getattr(app_state, "status_pages", None)
    if pages is None or pages.runtime is not runtime:
        pages = StatusPages(runtime)
        app_state.status_pages = pages
    return pages


def _respond(
    request: Request, lang: Lang, body: bytes, gzipped: bytes | None, status_code: int = 200
) -> Response:
    headers = {
        "Content-Language": lang,
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding, Cookie",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = gzipped
    response = Response(body, status_code, headers, media_type="text/html; charset=utf-8")
    remember_lang(request, response, lang)
    return response


def _html(request: Request, lang: Lang, html: str, status_code: int = 200) -> Response:
    body = html.encode()
    gz = gzip.compress(body, 6) if len(body) >= _GZIP_MIN_BYTES else None
    return _respond(request, lang, body, gz, status_code)


def _starting(request: Request, lang: Lang) -> Response:
    page = message_page(lang, "NetWatch", T["starting"][lang], request.url.path)
    response = _html(request, lang, page, 503)
    response.headers["Retry-After"] = "5"
    return response


def _query(request: Request) -> tuple[str, Shown | None]:
    q = request.query_params.get("q", "")[:MAX_QUERY_CHARS]
    raw_state = request.query_params.get("state", "")
    try:
        state = Shown(raw_state) if raw_state else None
    except ValueError:
        state = None
    return q, state


def _target(snapshot: Snapshot, province: int | None, path: str) -> tuple[int | None, str]:
    """The province a page shows, and its path: /status is the province when there is one."""
    if province is None and len(snapshot.provinces) == 1:
        return next(iter(snapshot.provinces)), BASE
    return province, path


def _province_key(
    path: str, province: int | None, lang: Lang, state: Shown | None
) -> tuple[str, ...]:
    return ("province", path, str(province), lang, state.value if state else "")


def _commune_key(code: str, lang: Lang) -> tuple[str, ...]:
    return ("commune", code, lang)


def _commune_code(code: str) -> str:
    wanted = code.strip()
    return wanted.zfill(5) if wanted.isdigit() else wanted


def _province_number(text: str) -> int | None:
    """A province code from the URL ("68"), None when it cannot be one."""
    return int(text) if text.isdigit() and len(text) <= 3 else None


_COMMUNE_PREFIX = BASE + "/xa/"


def fast_response(pages: StatusPages, scope: Scope) -> ASGIApp | None:
    """A GET of a status page already rendered from the current snapshot (and records),
    answered exactly as its route would (same bytes, headers, cookie); None when the route
    must run (not rendered yet, out of date, a search, a page not found, any other path).
    Touches nothing: no snapshot built, no store read (netwatch.web.app's `fast_pages`).

    Most readers send neither a query nor a cookie: their language is the default and their
    answer a prebuilt pair of ASGI messages; others are read as the route reads them."""
    snapshot = pages.model.current()
    if snapshot is None:
        return None
    path: str = scope["path"]
    request: Request | None = None
    if scope.get("query_string") or _first_header(scope, b"cookie") is not None:
        request = Request(scope)
        lang = pick_lang(request)
        q, state = _query(request)
    else:
        lang, q, state = DEFAULT_LANG, "", None
    if path.startswith(_COMMUNE_PREFIX):
        code = path[len(_COMMUNE_PREFIX) :]
        commune = snapshot.by_code.get(_commune_code(code)) if "/" not in code else None
        if commune is None:
            return None
        records = pages.model.current_records(commune.code)
        if records is None:
            return None
        inside = pages.inside.current(commune.code)
        if inside is None:
            return None
        key = _commune_key(commune.code, lang)
        rendered = pages.cached(key, snapshot, records, inside)
    else:
        province: int | None
        if path == BASE:
            province = None
        elif path.startswith(BASE + "/") and "/" not in path[len(BASE) + 1 :]:
            province = _province_number(path[len(BASE) + 1 :])
            if province is None:
                return None
        else:
            return None
        if q.strip():
            return None
        province, path = _target(snapshot, province, path)
        if province is not None and province not in snapshot.provinces:
            return None
        key = _province_key(path, province, lang, state)
        rendered = pages.cached(key, snapshot, None)
    if rendered is None:
        return None
    if request is not None and _sets_cookie(request, lang):
        return _respond(request, lang, rendered.body, rendered.gzipped)
    gz = rendered.gzipped is not None and b"gzip" in (
        _first_header(scope, b"accept-encoding") or b""
    )
    return _wire_of(pages, key, rendered, lang, gz)


def _sets_cookie(request: Request, lang: Lang) -> bool:
    """Whether the route's answer sets the language cookie (remember_lang's rule)."""
    return request.query_params.get(LANG_PARAM) == lang and request.cookies.get(LANG_COOKIE) != lang


async def _province(request: Request, province: int | None) -> Response:
    lang = pick_lang(request)
    pages = pages_of(request)
    if pages is None:
        return _starting(request, lang)
    snapshot = await pages.model.snapshot()
    q, state = _query(request)
    province, path = _target(snapshot, province, request.url.path)
    if province is not None and province not in snapshot.provinces:
        title = T["not_found_h1"][lang]
        text = T["province_not_found"][lang].format(code=province)
        return _html(request, lang, message_page(lang, title, text, request.url.path), 404)
    if q.strip():  # searches are not cached: any text may come
        if province is None:
            return _html(request, lang, provinces_page(snapshot, lang, q=q))
        html = province_page(snapshot, province, lang, q=q, path=path)
        return _html(request, lang, html)
    key = _province_key(path, province, lang, state)
    rendered = pages.cached(key, snapshot, None)
    if rendered is None:
        if province is None:
            html = provinces_page(snapshot, lang)
        else:
            html = province_page(snapshot, province, lang, state=state, path=path)
        rendered = pages.keep(key, snapshot, None, html)
    return _respond(request, lang, rendered.body, rendered.gzipped)


async def status_home(request: Request) -> Response:
    """The province page (one province) or the list of provinces."""
    return await _province(request, None)


async def commune_status(request: Request) -> Response:
    """One commune's page, by its official code."""
    code: str = request.path_params["code"]
    lang = pick_lang(request)
    pages = pages_of(request)
    if pages is None:
        return _starting(request, lang)
    snapshot = await pages.model.snapshot()
    commune = snapshot.by_code.get(_commune_code(code))
    if commune is None:
        title = T["not_found_h1"][lang]
        text = T["commune_not_found"][lang].format(code=code[:20])
        return _html(request, lang, message_page(lang, title, text, request.url.path), 404)
    records = await pages.model.records(commune)
    inside = pages.inside.entry(commune.code)
    key = _commune_key(commune.code, lang)
    rendered = pages.cached(key, snapshot, records, inside)
    if rendered is None:
        now = snapshot.taken_at

        def series(link: str) -> LinkSeries | None:
            return pages.series(link, now)

        html = commune_page(snapshot, commune, records, series, lang, inside.view)
        rendered = pages.keep(key, snapshot, records, html, inside)
    return _respond(request, lang, rendered.body, rendered.gzipped)


async def province_status(request: Request) -> Response:
    """One province's page, by its official code ("68")."""
    province: str = request.path_params["province"]
    lang = pick_lang(request)
    number = _province_number(province)
    if number is None:
        title = T["not_found_h1"][lang]
        text = T["province_not_found"][lang].format(code=province[:20])
        return _html(request, lang, message_page(lang, title, text, request.url.path), 404)
    return await _province(request, number)


# Plain Starlette routes, not FastAPI's: no parameter validation or dependency solving to pay
# for on the busiest pages (they read their few parameters themselves).
router.add_route("/status", status_home, methods=["GET"], include_in_schema=False)
router.add_route("/status/xa/{code}", commune_status, methods=["GET"], include_in_schema=False)
router.add_route("/status/{province}", province_status, methods=["GET"], include_in_schema=False)
