"""The provincial IT view (/admin): open tickets, maintenance windows, NetWatch's own health.

Behind a login with an API token that has the write scope (`netwatch token create NAME --scope
write`; the store keeps only hashes) turned into a signed, HttpOnly, SameSite=Strict session
cookie with an expiry (netwatch.web.session). Every POST form carries the session's CSRF token.
Pages work without JavaScript; every write is a POST answered by a redirect (post/redirect/get).
Bad input gets a page saying what is wrong with a 4xx status, never a 500.

Maintenance windows are stored with the same store calls as POST /api/v1/maintenance, checked
against the inventory the same way, and ended with the same cancel; the alerting loop picks
them up on its next tick. Times are typed and shown in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse

from alerts.tickets import Actor, ActorKind
from netwatch.health import link_id
from netwatch.inventory.models import LOCAL_TZ
from netwatch.store import (
    ApiToken,
    MaintenanceWindow,
    NewMaintenance,
    RevokeOutcome,
    TicketState,
    TokenReason,
)
from netwatch.web.auth import WRITE_SCOPE
from netwatch.web.deps import require_runtime, runtime_or_none
from netwatch.web.i18n import TIMEZONE_NOTE, Lang, fmt_duration, fmt_number, fmt_time, pick_lang
from netwatch.web.isp import (
    DONE,
    KIND,
    TICKET_CSS,
    TICKET_STATE,
    TICKET_STATE_CSS,
    Words,
    chart_html,
    forms_html,
    live_link,
    private_page,
    problem_words,
    read_fields,
    ticket_main_html,
)
from netwatch.web.layout import NavLink, language_urls, render_page
from netwatch.web.session import (
    SESSION_COOKIE,
    SESSION_PATH,
    Session,
    SessionReason,
    SessionSigner,
)
from netwatch.web.views import (
    ActionFailure,
    ManualAction,
    ScopeIn,
    TicketView,
    apply_action,
    scope_target,
    ticket_detail,
    ticket_not_found,
    ticket_view,
)

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

PREFIX = "/admin"
router = APIRouter(prefix=PREFIX, include_in_schema=False)
MAX_REASON_CHARS = 500
MAX_TOKEN_CHARS = 200
DEFAULT_WINDOW = timedelta(hours=2)

ADMIN_CSS = (
    "form.inline{display:inline;margin:0}"
    "form.inline button{padding:.2rem .6rem}"
    "form.stack label{display:block;font-weight:600;margin:.5rem 0 .15rem}"
    "form.stack input,form.stack select,form.stack textarea{width:100%}"
    "form.stack button{margin-top:.75rem}"
    ".hint{font-size:.875rem;color:#4a4a4a;margin:.1rem 0}"
    "table.tickets td,table.tickets th{font-size:.95rem}"
    "th a{color:inherit}"
    ".nowrap{white-space:nowrap}"
    ".ok-text{color:#0a5a26;font-weight:600}.bad-text{color:#9c0019;font-weight:600}"
)

A: Mapping[str, Words] = {
    "title": {"vi": "Quản trị NetWatch", "en": "NetWatch administration"},
    "login": {"vi": "Đăng nhập", "en": "Log in"},
    "login_intro": {
        "vi": "Dành cho cán bộ CNTT của tỉnh. Đăng nhập bằng mã truy cập (API token) có quyền "
        "ghi, tạo bằng lệnh “netwatch token create TÊN --scope write”.",
        "en": "For provincial IT staff. Log in with an API token that has the write scope, "
        "made with “netwatch token create NAME --scope write”.",
    },
    "token": {"vi": "Mã truy cập (API token)", "en": "API token"},
    "logout": {"vi": "Đăng xuất", "en": "Log out"},
    "logged_in_as": {"vi": "Đăng nhập với mã", "en": "Logged in with token"},
    "until": {"vi": "đến", "en": "until"},
    "bye": {"vi": "Bạn đã đăng xuất.", "en": "You are logged out."},
    "tickets": {"vi": "Phiếu đang mở", "en": "Open tickets"},
    "maintenance": {"vi": "Bảo trì", "en": "Maintenance"},
    "health": {"vi": "Tình trạng NetWatch", "en": "NetWatch health"},
    "no_tickets": {
        "vi": "Không có phiếu nào đang mở.",
        "en": "No ticket is open.",
    },
    "ticket": {"vi": "Phiếu", "en": "Ticket"},
    "subject": {"vi": "Xã / đường truyền", "en": "Commune / link"},
    "isp": {"vi": "Nhà mạng", "en": "ISP"},
    "problem": {"vi": "Tình trạng", "en": "Problem"},
    "opened": {"vi": "Mở lúc", "en": "Opened"},
    "age": {"vi": "Tuổi phiếu", "en": "Age"},
    "ack": {"vi": "Tiếp nhận", "en": "Acknowledged"},
    "level": {"vi": "Cấp", "en": "Level"},
    "not_acked": {"vi": "Chưa", "en": "Not yet"},
    "oldest_first": {"vi": "cũ nhất trước", "en": "oldest first"},
    "newest_first": {"vi": "mới nhất trước", "en": "newest first"},
    "sorted": {"vi": "Sắp xếp theo tuổi", "en": "Sorted by age"},
    "counts": {
        "vi": "{open} phiếu đang mở, {unacked} phiếu chưa được tiếp nhận.",
        "en": "{open} open tickets, {unacked} not acknowledged.",
    },
    "windows": {"vi": "Các đợt bảo trì hiện tại và sắp tới", "en": "Current and coming windows"},
    "no_windows": {
        "vi": "Không có đợt bảo trì nào đang diễn ra hoặc sắp tới.",
        "en": "No maintenance window now or to come.",
    },
    "config_windows": {
        "vi": "Lịch bảo trì trong tệp cấu hình (chỉ đọc)",
        "en": "Windows in the configuration file (read-only)",
    },
    "scope": {"vi": "Phạm vi", "en": "Scope"},
    "start": {"vi": "Bắt đầu", "en": "Start"},
    "end": {"vi": "Kết thúc", "en": "End"},
    "reason": {"vi": "Lý do", "en": "Reason"},
    "by": {"vi": "Người tạo", "en": "Created by"},
    "status": {"vi": "Trạng thái", "en": "Status"},
    "active": {"vi": "Đang bảo trì", "en": "In progress"},
    "planned": {"vi": "Sắp tới", "en": "Planned"},
    "end_now": {"vi": "Kết thúc ngay", "en": "End now"},
    "cancel": {"vi": "Hủy", "en": "Cancel"},
    "new_window": {"vi": "Tạo đợt bảo trì", "en": "Plan a maintenance window"},
    "new_hint": {
        "vi": "Trong thời gian bảo trì, NetWatch không mở phiếu và không báo nhà mạng cho "
        "phạm vi đã chọn. Giờ theo giờ Việt Nam.",
        "en": "During the window NetWatch opens no ticket and tells no ISP about what it "
        "covers. Times are Vietnam time.",
    },
    "create": {"vi": "Tạo", "en": "Create"},
    "created": {"vi": "Đã tạo đợt bảo trì.", "en": "The maintenance window is planned."},
    "ended": {"vi": "Đã kết thúc đợt bảo trì.", "en": "The maintenance window is ended."},
    "whole_province": {"vi": "Toàn tỉnh", "en": "Whole province"},
    "g_province": {"vi": "Tỉnh", "en": "Province"},
    "g_commune": {"vi": "Xã/phường", "en": "Commune"},
    "g_link": {"vi": "Đường truyền", "en": "Link"},
    "g_isp": {"vi": "Nhà mạng", "en": "ISP"},
    "g_upstream": {"vi": "Điểm kết nối của nhà mạng", "en": "ISP upstream node"},
    "choose": {"vi": "— chọn —", "en": "— choose —"},
    "rounds": {"vi": "Các vòng đo", "en": "Probe rounds"},
    "kind": {"vi": "Loại", "en": "Kind"},
    "interval": {"vi": "Chu kỳ", "en": "Interval"},
    "last_round": {"vi": "Vòng gần nhất", "en": "Last round"},
    "lag": {"vi": "Trễ lịch", "en": "Lag"},
    "duration": {"vi": "Thời gian đo", "en": "Duration"},
    "targets": {"vi": "Số mục tiêu", "en": "Targets"},
    "skipped": {"vi": "Vòng bị bỏ", "en": "Skipped"},
    "failures": {"vi": "Lỗi đo", "en": "Failures"},
    "on_time": {"vi": "Đúng lịch", "en": "On time"},
    "late": {"vi": "Chậm lịch", "en": "Late"},
    "not_yet": {"vi": "Chưa chạy", "en": "Not yet run"},
    "off": {"vi": "Không bật", "en": "Off"},
    "outbox": {"vi": "Hàng đợi thông báo", "en": "Notification outbox"},
    "pending": {"vi": "Đang chờ gửi", "en": "Pending"},
    "due": {"vi": "Đến hạn gửi", "en": "Due now"},
    "given_up": {"vi": "Đã bỏ (gửi lỗi quá nhiều lần)", "en": "Given up"},
    "oldest_pending": {"vi": "Cũ nhất đang chờ", "en": "Oldest pending"},
    "alerting": {"vi": "Xử lý phiếu tự động", "en": "Alerting loop"},
    "last_tick": {"vi": "Lần đánh giá gần nhất", "en": "Last evaluation"},
    "unknown": {"vi": "Không rõ", "en": "Unknown"},
    "database": {"vi": "Cơ sở dữ liệu", "en": "Database"},
    "db_ok": {"vi": "Hoạt động", "en": "OK"},
    "db_bad": {"vi": "Lỗi", "en": "Failing"},
    "answered_in": {"vi": "trả lời trong", "en": "answered in"},
    "communes": {"vi": "Số xã/phường", "en": "Communes"},
    "links": {"vi": "Số đường truyền", "en": "Links"},
    "open_tickets": {"vi": "Phiếu đang mở", "en": "Open tickets"},
    "ago": {"vi": "trước", "en": "ago"},
    "icmp": {"vi": "Ping (ICMP)", "en": "Ping (ICMP)"},
    "snmp": {"vi": "SNMP (bộ định tuyến)", "en": "SNMP (routers)"},
    "http": {"vi": "Cổng dịch vụ công (HTTPS)", "en": "Portals (HTTPS)"},
    "fail_hint": {
        "vi": "Lỗi đo: mục tiêu không trả lời trong vòng gần nhất.",
        "en": "Failures: targets that did not answer in the last round.",
    },
    "back": {"vi": "Quay lại", "en": "Back"},
}


def a(key: str, lang: Lang) -> str:
    """A label of the IT view in the page language."""
    return A[key][lang]


class Refusal(enum.Enum):
    """Why a request of the IT view is refused."""

    LOGIN_FAILED = "login_failed"
    NO_SCOPE = "no_scope"
    SESSION = "session"
    CSRF = "csrf"
    BAD_INPUT = "bad_input"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    STARTING = "starting"


REFUSAL_TITLE: Mapping[Refusal, Words] = {
    Refusal.LOGIN_FAILED: {"vi": "Đăng nhập không thành công", "en": "Login failed"},
    Refusal.NO_SCOPE: {"vi": "Không đủ quyền", "en": "Not allowed"},
    Refusal.SESSION: {"vi": "Cần đăng nhập lại", "en": "Please log in again"},
    Refusal.CSRF: {"vi": "Biểu mẫu không hợp lệ", "en": "Form not accepted"},
    Refusal.BAD_INPUT: {"vi": "Dữ liệu chưa đúng", "en": "Please check the form"},
    Refusal.NOT_FOUND: {"vi": "Không tìm thấy", "en": "Not found"},
    Refusal.CONFLICT: {"vi": "Không thực hiện được", "en": "Could not be done"},
    Refusal.STARTING: {"vi": "NetWatch đang khởi động", "en": "NetWatch is starting"},
}


@dataclass(frozen=True, slots=True)
class Login:
    """A verified session and the token it was opened with."""

    session: Session
    token: ApiToken

    @property
    def actor(self) -> Actor:
        """Provincial IT, named after the token (as the API names it)."""
        return Actor(ActorKind.PROVINCIAL_IT, self.token.name)


# --- sessions ----------------------------------------------------------------------------------


def session_signer(request: Request, runtime: Runtime) -> SessionSigner:
    """The signer: keyed by the link secret when configured, else by the app's own key."""
    notifications = runtime.inventory.notifications
    if notifications is not None:
        return SessionSigner.from_link_secret(notifications.link_secret.reveal())
    signer: SessionSigner = request.app.state.admin_session_signer  # made with the app
    return signer


async def current_login(request: Request, runtime: Runtime) -> Login | None:
    """The logged-in session, if the cookie is genuine and its token still has the scope."""
    signer = session_signer(request, runtime)
    check = signer.verify(request.cookies.get(SESSION_COOKIE), datetime.now(UTC))
    if check.reason is not SessionReason.OK or check.session is None:
        return None
    token = next(
        (t for t in await runtime.store.list_tokens() if t.id == check.session.token_id), None
    )
    if token is None or token.revoked_at is not None or WRITE_SCOPE not in token.scopes:
        return None
    return Login(check.session, token)


def _safe_next(target: str | None) -> str:
    # Only our own pages: never another host ("//evil", "/\\evil") after the login.
    if (
        target
        and target.startswith(SESSION_PATH)
        and not target.startswith("//")
        and "\\" not in target
        and "\n" not in target
        and "\r" not in target
    ):
        return target
    return SESSION_PATH


# --- page helpers ------------------------------------------------------------------------------


def _nav(lang: Lang, current: str) -> list[NavLink]:
    return [
        NavLink("/admin", a("tickets", lang), current == "tickets"),
        NavLink("/admin/maintenance", a("maintenance", lang), current == "maintenance"),
        NavLink("/admin/health", a("health", lang), current == "health"),
    ]


def _csrf_field(login: Login) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(login.session.csrf)}">'


def _footer(login: Login | None, lang: Lang) -> str:
    tz = f"<p><small>{escape(TIMEZONE_NOTE[lang])}</small></p>"
    if login is None:
        return tz
    return (
        f'<form class="inline" method="post" action="/admin/logout">{_csrf_field(login)}'
        f"{a('logged_in_as', lang)} <strong>{escape(login.token.name)}</strong> "
        f"({a('until', lang)} {escape(fmt_time(login.session.expires_at, lang))}). "
        f'<button type="submit">{a("logout", lang)}</button></form>{tz}'
    )


def _page(
    request: Request,
    lang: Lang,
    title: str,
    main: str,
    *,
    login: Login | None,
    current: str = "",
    status_code: int = 200,
    extra_css: str = "",
) -> Response:
    html = render_page(
        lang=lang,
        title=f"{title} — NetWatch",
        main=main,
        switch=language_urls(request),
        nav=_nav(lang, current) if login is not None else (),
        footer=_footer(login, lang),
        extra_css=ADMIN_CSS + extra_css,
        home="/admin",
        robots_noindex=True,
    )
    return private_page(request, html, lang, status_code)


def _refused(
    request: Request,
    status: int,
    refusal: Refusal,
    message: Words,
    *,
    login: Login | None = None,
    back: str | None = None,
) -> Response:
    lang = pick_lang(request)
    title = REFUSAL_TITLE[refusal][lang]
    links = ""
    if refusal is Refusal.SESSION:
        links = f'<p><a href="/admin/login">{a("login", lang)}</a></p>'
    elif back:
        links = f'<p><a href="{escape(back)}">{a("back", lang)}</a></p>'
    main = (
        f"<h1>{escape(title)}</h1>"
        f'<div class="notice" role="alert"><p>{escape(message[lang])}</p></div>{links}'
    )
    return _page(request, lang, title, main, login=login, status_code=status)


def starting_page(request: Request) -> Response:
    """503: the runtime is not built yet (netwatch.web.app answers NotReady with this)."""
    return _refused(
        request,
        503,
        Refusal.STARTING,
        {
            "vi": "NetWatch đang khởi động, vui lòng thử lại sau ít giây.",
            "en": "NetWatch is starting; try again in a few seconds.",
        },
    )


def _to_login(request: Request) -> Response:
    query = urlencode(
        {"next": str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")}
    )
    return RedirectResponse(f"/admin/login?{query}", status_code=303)


def _session_gone(request: Request) -> Response:
    return _refused(
        request,
        401,
        Refusal.SESSION,
        {
            "vi": "Phiên đăng nhập không còn hiệu lực (hết hạn, đã đăng xuất hoặc mã truy cập đã "
            "bị thu hồi). Không có thay đổi nào được thực hiện.",
            "en": "Your session is no longer valid (expired, logged out, or the token was "
            "revoked). Nothing was changed.",
        },
    )


async def _writable(
    request: Request,
) -> tuple[Runtime, Login, dict[str, str]] | Response:
    """For a POST: the runtime, the login and the form fields, or the refusal page."""
    runtime = require_runtime(request)
    login = await current_login(request, runtime)
    if login is None:
        return _session_gone(request)
    fields = await read_fields(request)
    if isinstance(fields, str):
        return _refused(
            request, 400, Refusal.BAD_INPUT, {"vi": "Yêu cầu không đúng định dạng.", "en": fields}
        )
    if not SessionSigner.csrf_ok(login.session, fields.get("csrf")):
        return _refused(
            request,
            403,
            Refusal.CSRF,
            {
                "vi": "Biểu mẫu đã cũ hoặc không được gửi từ trang quản trị. Hãy mở lại trang "
                "và thử lại. Không có thay đổi nào được thực hiện.",
                "en": "The form is stale or was not sent from the admin pages. Open the page "
                "again and retry. Nothing was changed.",
            },
            login=login,
        )
    return runtime, login, fields


async def _readable(request: Request) -> tuple[Runtime, Login] | Response:
    """For a GET: the runtime and the login, or a redirect to the login page."""
    runtime = require_runtime(request)
    login = await current_login(request, runtime)
    if login is None:
        return _to_login(request)
    return runtime, login


def _notice(text: str) -> str:
    return f'<p class="notice ok" role="status">{escape(text)}</p>'


# --- login and logout ------------------------------------------------------------------------


def _login_form(lang: Lang, next_path: str, message: str = "") -> str:
    error = f'<div class="notice" role="alert"><p>{escape(message)}</p></div>' if message else ""
    return (
        f"<h1>{a('title', lang)}</h1>{error}<p>{a('login_intro', lang)}</p>"
        '<form class="stack" method="post" action="/admin/login">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        f'<label for="token">{a("token", lang)}</label>'
        f'<input type="password" id="token" name="token" required maxlength="{MAX_TOKEN_CHARS}" '
        'autocomplete="current-password" spellcheck="false">'
        f'<button type="submit">{a("login", lang)}</button></form>'
    )


@router.get("/login")
async def login_page(
    request: Request,
    next: Annotated[str | None, Query()] = None,
    bye: Annotated[str | None, Query()] = None,
) -> Response:
    """The login form (a logged-in visitor goes straight on)."""
    lang = pick_lang(request)
    runtime = runtime_or_none(request)
    if runtime is not None and await current_login(request, runtime) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    main = (_notice(a("bye", lang)) if bye else "") + _login_form(lang, _safe_next(next))
    return _page(request, lang, a("login", lang), main, login=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token (hash compared in the store) and open a session."""
    lang = pick_lang(request)
    runtime = require_runtime(request)
    fields = await read_fields(request)
    if isinstance(fields, str):
        return _refused(
            request, 400, Refusal.BAD_INPUT, {"vi": "Yêu cầu không đúng định dạng.", "en": fields}
        )
    next_path = _safe_next(fields.get("next"))
    token = fields.get("token", "").strip()
    check = await runtime.store.verify_token(token[:MAX_TOKEN_CHARS], WRITE_SCOPE)
    if check.reason is TokenReason.MISSING_SCOPE:
        message = {
            "vi": "Mã truy cập này không có quyền ghi (write). Hãy dùng mã tạo với --scope write.",
            "en": "This token lacks the write scope. Use a token made with --scope write.",
        }
        main = _login_form(lang, next_path, message[lang])
        return _page(request, lang, a("login", lang), main, login=None, status_code=403)
    if not check.ok or check.info is None:
        message = {
            "vi": "Mã truy cập không đúng, không tồn tại hoặc đã bị thu hồi.",
            "en": "The token is wrong, unknown or revoked.",
        }
        main = _login_form(lang, next_path, message[lang])
        return _page(request, lang, a("login", lang), main, login=None, status_code=401)
    signer = session_signer(request, runtime)
    cookie, _ = signer.issue(check.info.id, datetime.now(UTC))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(signer.ttl.total_seconds()),
        path=SESSION_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session in this browser (revoke the token to end every session)."""
    checked = await _writable(request)
    if isinstance(checked, Response):
        if checked.status_code == 401:  # no session anyway: nothing to end
            return RedirectResponse("/admin/login?bye=1", status_code=303)
        return checked
    response = RedirectResponse("/admin/login?bye=1", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path=SESSION_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


# --- open tickets --------------------------------------------------------------------------------


SORTS = ("age", "-age")


def _ticket_rows(views: Sequence[TicketView], lang: Lang) -> str:
    rows = []
    for v in views:
        s = v.subject
        subject = (
            f"{escape(s.commune_name or '')}<br><small>{escape(s.link or '')}</small>"
            if s.commune
            else escape(s.name)
        )
        ack = (
            f'<span class="ok-text nowrap">{escape(fmt_time(v.acknowledged_at, lang))}</span>'
            if v.acknowledged_at
            else f'<span class="bad-text">{a("not_acked", lang)}</span>'
        )
        state = (
            f'<span class="st {TICKET_STATE_CSS.get(v.state, "st-unknown")}">'
            f"{escape(TICKET_STATE[v.state][lang] if v.state in TICKET_STATE else v.state)}</span>"
        )
        rows.append(
            f'<tr><td><a href="/admin/tickets/{escape(v.id)}">{escape(v.id)}</a><br>{state}</td>'
            f"<td>{subject}</td><td>{escape(s.isp_name or '—')}</td>"
            f"<td>{escape(problem_words(v, lang))}<br>"
            f"<small>{escape(KIND[v.kind][lang] if v.kind in KIND else v.kind)}</small></td>"
            f'<td class="nowrap">{escape(fmt_time(v.opened_at, lang))}</td>'
            f'<td class="num" data-age-s="{int(v.age_s)}">'
            f"{escape(fmt_duration(v.age_s, lang))}</td>"
            f'<td>{ack}</td><td class="num">{v.escalation_level}</td></tr>'
        )
    return "".join(rows)


@router.get("")
async def tickets_page(
    request: Request, sort: Annotated[str, Query()] = "age", done: str | None = None
) -> Response:
    """Every open or acknowledged ticket across communes, with age and acknowledgement."""
    checked = await _readable(request)
    if isinstance(checked, Response):
        return checked
    runtime, login = checked
    lang = pick_lang(request)
    if sort not in SORTS:
        return _refused(
            request,
            422,
            Refusal.BAD_INPUT,
            {
                "vi": f"Cách sắp xếp {sort!r} không hợp lệ: dùng age hoặc -age.",
                "en": f"sort {sort!r} is not valid: use age or -age.",
            },
            login=login,
            back="/admin",
        )
    now = datetime.now(UTC)
    stored = await runtime.store.list_tickets(
        [TicketState.OPEN, TicketState.ACKNOWLEDGED], None, 1000
    )
    views = sorted(
        (ticket_view(runtime, t, now) for t in stored),
        key=lambda v: v.opened_at,
        reverse=sort == "-age",
    )
    unacked = sum(1 for v in views if not v.acknowledged)
    other = "-age" if sort == "age" else "age"
    order = a("oldest_first", lang) if sort == "age" else a("newest_first", lang)
    arrow = "▲" if sort == "age" else "▼"
    counts = A["counts"][lang].format(open=len(views), unacked=unacked)
    if views:
        aria = "ascending" if sort == "age" else "descending"
        table = (
            f'<div class="scroll" tabindex="0" role="region" aria-label="{a("tickets", lang)}">'
            '<table class="tickets"><caption class="muted">'
            f"{a('sorted', lang)}: {order}</caption><thead><tr>"
            f'<th scope="col">{a("ticket", lang)}</th><th scope="col">{a("subject", lang)}</th>'
            f'<th scope="col">{a("isp", lang)}</th><th scope="col">{a("problem", lang)}</th>'
            f'<th scope="col">{a("opened", lang)}</th>'
            f'<th scope="col" class="num" aria-sort="{aria}">'
            f'<a href="/admin?{urlencode({"sort": other})}">{a("age", lang)} {arrow}</a></th>'
            f'<th scope="col">{a("ack", lang)}</th><th scope="col" class="num">'
            f"{a('level', lang)}</th></tr></thead><tbody>{_ticket_rows(views, lang)}</tbody>"
            "</table></div>"
        )
    else:
        table = f"<p>{a('no_tickets', lang)}</p>"
    main = f"<h1>{a('tickets', lang)}</h1><p>{escape(counts)}</p>{table}"
    return _page(request, lang, a("tickets", lang), main, login=login, current="tickets")


# --- one ticket, acted on as provincial IT ---------------------------------------------------


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: str, done: str | None = None) -> Response:
    """A ticket's evidence and log, with acknowledge, note and resolve as provincial IT."""
    checked = await _readable(request)
    if isinstance(checked, Response):
        return checked
    runtime, login = checked
    lang = pick_lang(request)
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None:
        failure = ticket_not_found(ticket_id)
        return _refused(
            request,
            404,
            Refusal.NOT_FOUND,
            {"vi": failure.message_vi, "en": failure.message},
            login=login,
            back="/admin",
        )
    now = datetime.now(UTC)
    view = await ticket_detail(runtime, ticket, now)
    done_words = DONE.get(done or "")
    main = ticket_main_html(
        view,
        lang,
        now=now,
        live=live_link(runtime, view),
        chart=chart_html(runtime, view, lang, now),
        forms=forms_html(
            view,
            lang,
            f"/admin/tickets/{ticket_id}",
            {"csrf": login.session.csrf},
            ask_name=False,
        ),
        notice=_notice(done_words[lang]) if done_words else "",
    )
    title = f"{a('ticket', lang)} {ticket_id}"
    return _page(request, lang, title, main, login=login, current="tickets", extra_css=TICKET_CSS)


async def _ticket_action(request: Request, ticket_id: str, action: ManualAction) -> Response:
    checked = await _writable(request)
    if isinstance(checked, Response):
        return checked
    runtime, login, fields = checked
    back = f"/admin/tickets/{ticket_id}"
    result = await apply_action(
        runtime, ticket_id, action, login.actor, fields.get("text", ""), datetime.now(UTC)
    )
    if isinstance(result, ActionFailure):
        refusal = {404: Refusal.NOT_FOUND, 409: Refusal.CONFLICT}.get(
            result.status, Refusal.BAD_INPUT
        )
        return _refused(
            request,
            result.status,
            refusal,
            {"vi": result.message_vi, "en": result.message},
            login=login,
            back=back,
        )
    return RedirectResponse(f"{back}?done={action.value}", status_code=303)


@router.post("/tickets/{ticket_id}/acknowledge")
async def ticket_acknowledge(request: Request, ticket_id: str) -> Response:
    """Acknowledge as provincial IT."""
    return await _ticket_action(request, ticket_id, ManualAction.ACKNOWLEDGE)


@router.post("/tickets/{ticket_id}/note")
async def ticket_note(request: Request, ticket_id: str) -> Response:
    """A note as provincial IT."""
    return await _ticket_action(request, ticket_id, ManualAction.NOTE)


@router.post("/tickets/{ticket_id}/resolve")
async def ticket_resolve(request: Request, ticket_id: str) -> Response:
    """Resolve as provincial IT."""
    return await _ticket_action(request, ticket_id, ManualAction.RESOLVE)


# --- maintenance windows -----------------------------------------------------------------------


SCOPE_KINDS = ("province", "commune", "link", "isp", "upstream")


def _isp_name(runtime: Runtime, isp: str) -> str:
    found = runtime.inventory.isps.get(isp)
    return found.name if found is not None else isp


def scope_options(runtime: Runtime, lang: Lang) -> list[tuple[str, list[tuple[str, str]]]]:
    """What a window may cover, grouped: (group label, [(value "kind:target", label)])."""
    inv = runtime.inventory
    provinces = sorted({c.province_code for c in inv.communes})
    groups: list[tuple[str, list[tuple[str, str]]]] = [
        (
            a("g_province", lang),
            [(f"province:{p}", f"{a('whole_province', lang)} ({p:02d})") for p in provinces],
        ),
        (
            a("g_commune", lang),
            [(f"commune:{c.code}", f"{c.name} ({c.code})") for c in inv.communes],
        ),
        (
            a("g_link", lang),
            [
                (
                    f"link:{link_id(c.code, link.id)}",
                    f"{c.name} — {link.id} ({_isp_name(runtime, link.isp)})",
                )
                for c in inv.communes
                for link in c.links
            ],
        ),
        (a("g_isp", lang), [(f"isp:{k}", isp.name) for k, isp in inv.isps.items()]),
        (
            a("g_upstream", lang),
            [(f"upstream:{k}", up.name) for k, up in inv.upstreams.items()],
        ),
    ]
    return [(label, options) for label, options in groups if options]


def scope_words(runtime: Runtime, scope: str, target: str, lang: Lang) -> str:
    """A stored window's scope in words."""
    for _, options in scope_options(runtime, lang):
        for value, label in options:
            if value == f"{scope}:{target}":
                return label
    return f"{scope}: {target}"


def _local_input(at: datetime) -> str:
    return f"{at.astimezone(LOCAL_TZ):%Y-%m-%dT%H:%M}"


def _maintenance_form(
    runtime: Runtime, login: Login, lang: Lang, values: Mapping[str, str], now: datetime
) -> str:
    chosen = values.get("target", "")
    groups = "".join(
        f'<optgroup label="{escape(label)}">'
        + "".join(
            f'<option value="{escape(value)}"{" selected" if value == chosen else ""}>'
            f"{escape(text)}</option>"
            for value, text in options
        )
        + "</optgroup>"
        for label, options in scope_options(runtime, lang)
    )
    start = values.get("start") or _local_input(now)
    end = values.get("end") or _local_input(now + DEFAULT_WINDOW)
    return (
        f'<h2>{a("new_window", lang)}</h2><p class="hint">{a("new_hint", lang)}</p>'
        f'<form class="stack" method="post" action="/admin/maintenance">{_csrf_field(login)}'
        f'<label for="target">{a("scope", lang)}</label>'
        f'<select id="target" name="target" required>'
        f'<option value="">{a("choose", lang)}</option>{groups}</select>'
        f'<label for="start">{a("start", lang)}</label>'
        f'<input type="datetime-local" id="start" name="start" required value="{escape(start)}">'
        f'<label for="end">{a("end", lang)}</label>'
        f'<input type="datetime-local" id="end" name="end" required value="{escape(end)}">'
        f'<label for="reason">{a("reason", lang)}</label>'
        f'<input type="text" id="reason" name="reason" required maxlength="{MAX_REASON_CHARS}" '
        f'value="{escape(values.get("reason", ""))}">'
        f'<button type="submit">{a("create", lang)}</button></form>'
    )


def _window_rows(
    runtime: Runtime, login: Login, windows: Sequence[MaintenanceWindow], lang: Lang, now: datetime
) -> str:
    rows = []
    for win in windows:
        active = win.starts_at <= now
        status = (
            f'<span class="st st-maintenance">{a("active", lang)}</span>'
            if active
            else a("planned", lang)
        )
        button = a("end_now", lang) if active else a("cancel", lang)
        rows.append(
            f"<tr><td>{escape(scope_words(runtime, win.scope, win.target, lang))}</td>"
            f"<td>{escape(fmt_time(win.starts_at, lang))}</td>"
            f"<td>{escape(fmt_time(win.ends_at, lang))}</td>"
            f"<td>{escape(win.reason)}</td><td>{escape(win.created_by)}</td><td>{status}</td>"
            f'<td><form class="inline" method="post" action="/admin/maintenance/{win.id}/end">'
            f'{_csrf_field(login)}<button type="submit" '
            f'aria-label="{escape(button)}: {escape(win.reason)}">{escape(button)}</button>'
            "</form></td></tr>"
        )
    return "".join(rows)


def _config_windows(runtime: Runtime, lang: Lang) -> str:
    windows = runtime.inventory.maintenance
    if not windows:
        return ""
    items = []
    for m in windows:
        given = {k: v for k, v in m.scope.model_dump().items() if v is not None}
        kind, target = next(iter(given.items())) if given else ("", "")
        when = (
            f"{m.start:%H:%M %d/%m/%Y} – {m.end:%H:%M %d/%m/%Y}"
            if m.start is not None and m.end is not None
            else f"{m.every} {' '.join(m.days)} {m.at or ''} "
            f"({fmt_number(m.duration_min or 0, lang, 0)} min)"
        )
        items.append(
            f"<li>{escape(scope_words(runtime, kind, str(target), lang))}: {escape(when)} — "
            f"{escape(m.reason)}</li>"
        )
    return f"<h2>{a('config_windows', lang)}</h2><ul>{''.join(items)}</ul>"


async def _maintenance_page(
    request: Request,
    runtime: Runtime,
    login: Login,
    *,
    values: Mapping[str, str] | None = None,
    error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Response:
    lang = pick_lang(request)
    now = datetime.now(UTC)
    windows = await runtime.store.maintenance_windows(start=now)
    if windows:
        table = (
            f'<div class="scroll" tabindex="0" role="region" aria-label="{a("windows", lang)}">'
            f'<table><thead><tr><th scope="col">{a("scope", lang)}</th>'
            f'<th scope="col">{a("start", lang)}</th>'
            f'<th scope="col">{a("end", lang)}</th><th scope="col">{a("reason", lang)}</th>'
            f'<th scope="col">{a("by", lang)}</th><th scope="col">{a("status", lang)}</th>'
            f'<th scope="col"><span class="hide-narrow">{a("end", lang)}</span></th>'
            f"</tr></thead><tbody>{_window_rows(runtime, login, windows, lang, now)}</tbody>"
            "</table></div>"
        )
    else:
        table = f"<p>{a('no_windows', lang)}</p>"
    alert = f'<div class="notice" role="alert"><p>{escape(error)}</p></div>' if error else ""
    main = (
        f"<h1>{a('maintenance', lang)}</h1>{notice}{alert}"
        f"<h2>{a('windows', lang)}</h2>{table}"
        f"{_maintenance_form(runtime, login, lang, values or {}, now)}"
        f"{_config_windows(runtime, lang)}"
    )
    return _page(
        request,
        lang,
        a("maintenance", lang),
        main,
        login=login,
        current="maintenance",
        status_code=status_code,
    )


@router.get("/maintenance")
async def maintenance_page(request: Request, done: str | None = None) -> Response:
    """Current and coming windows, each with an end button, and the form for a new one."""
    checked = await _readable(request)
    if isinstance(checked, Response):
        return checked
    runtime, login = checked
    lang = pick_lang(request)
    notice = _notice(a(done, lang)) if done in ("created", "ended") else ""
    return await _maintenance_page(request, runtime, login, notice=notice)


def _parse_local(text: str, field: str, lang: Lang) -> datetime | str:
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return {
            "vi": f"{field}: “{value}” không phải ngày giờ (dạng 2026-11-22T22:00).",
            "en": f"{field}: “{value}” is not a date and time (like 2026-11-22T22:00).",
        }[lang]
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def _window_from_form(
    runtime: Runtime, values: Mapping[str, str], lang: Lang, now: datetime, created_by: str
) -> NewMaintenance | str:
    """The window the form describes, checked like the API's, or what is wrong with it."""

    def say(vi: str, en: str) -> str:
        return vi if lang == "vi" else en

    kind, _, target = values["target"].partition(":")
    if kind not in SCOPE_KINDS or not target:
        return say("Hãy chọn phạm vi bảo trì.", "Choose what the window covers.")
    start = _parse_local(values["start"], a("start", lang), lang)
    if isinstance(start, str):
        return start
    end = _parse_local(values["end"], a("end", lang), lang)
    if isinstance(end, str):
        return end
    if end <= start:
        return say(
            "Thời điểm kết thúc phải sau thời điểm bắt đầu.", "The end must be after the start."
        )
    if end <= now:
        return say("Đợt bảo trì này đã kết thúc trong quá khứ.", "This window ends in the past.")
    reason = values["reason"].strip()
    if not reason:
        return say("Hãy ghi lý do bảo trì.", "Give the reason for the window.")
    if len(reason) > MAX_REASON_CHARS:
        return say(
            f"Lý do dài quá {MAX_REASON_CHARS} ký tự.",
            f"The reason is longer than {MAX_REASON_CHARS} characters.",
        )
    try:
        value: int | str = int(target) if kind == "province" else target
        scope = ScopeIn.model_validate({kind: value})
        scope_kind, scope_value = scope_target(runtime, scope)
    except (HTTPException, ValueError) as exc:
        detail = str(exc.detail) if isinstance(exc, HTTPException) else str(exc)
        return say(f"Phạm vi không hợp lệ: {detail}", f"Not a valid scope: {detail}")
    return NewMaintenance(scope_kind, scope_value, start, end, reason, created_by)


@router.post("/maintenance")
async def create_maintenance(request: Request) -> Response:
    """Store a window covering the chosen scope (the alerting loop suppresses its tickets)."""
    checked = await _writable(request)
    if isinstance(checked, Response):
        return checked
    runtime, login, fields = checked
    lang = pick_lang(request)
    values = {k: fields.get(k, "") for k in ("target", "start", "end", "reason")}
    now = datetime.now(UTC)
    window = _window_from_form(runtime, values, lang, now, f"token:{login.token.name}")
    if isinstance(window, str):
        return await _maintenance_page(
            request, runtime, login, values=values, error=window, status_code=422
        )
    await runtime.store.add_maintenance(window, now)
    return RedirectResponse("/admin/maintenance?done=created", status_code=303)


@router.post("/maintenance/{window_id}/end")
async def end_maintenance(request: Request, window_id: str) -> Response:
    """End a window now (or cancel a planned one): it stops suppressing from now on."""
    checked = await _writable(request)
    if isinstance(checked, Response):
        return checked
    runtime, login, _ = checked
    if not window_id.isdigit() or len(window_id) > 18:
        outcome = RevokeOutcome.NOT_FOUND
    else:
        outcome = await runtime.store.cancel_maintenance(int(window_id), datetime.now(UTC))
    if outcome is RevokeOutcome.NOT_FOUND:
        return _refused(
            request,
            404,
            Refusal.NOT_FOUND,
            {
                "vi": f"Không có đợt bảo trì số {window_id}.",
                "en": f"There is no maintenance window {window_id}.",
            },
            login=login,
            back="/admin/maintenance",
        )
    if outcome is RevokeOutcome.ALREADY:
        return _refused(
            request,
            409,
            Refusal.CONFLICT,
            {
                "vi": f"Đợt bảo trì số {window_id} đã kết thúc hoặc đã bị hủy trước đó.",
                "en": f"Maintenance window {window_id} was already ended or cancelled.",
            },
            login=login,
            back="/admin/maintenance",
        )
    return RedirectResponse("/admin/maintenance?done=ended", status_code=303)


# --- NetWatch's own health -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundHealth:
    """One probe kind's schedule and its last round."""

    kind: str
    interval_s: float
    targets: int
    started_at: datetime | None
    lag_s: float | None
    duration_s: float | None
    skipped_rounds: int | None
    failures: int | None
    on_time: bool | None  # None: not run yet (or the kind is off)


def round_health(runtime: Runtime, now: datetime) -> list[RoundHealth]:
    """The last round of each probe kind, and whether the schedule holds."""
    plan, state = runtime.plan, runtime.state
    failures = {
        "icmp": sum(1 for o in state.icmp.values() if o.result.received == 0),
        "snmp": sum(1 for o in state.snmp.values() if o.sample.failure is not None),
        "http": sum(1 for o in state.portals.values() if o.http.failure is not None),
    }
    out = []
    for kind, interval, targets in (
        ("icmp", plan.icmp_interval_s, len(plan.icmp)),
        ("snmp", plan.snmp_interval_s, len(plan.snmp)),
        ("http", plan.http_interval_s, len(plan.portals)),
    ):
        report = state.rounds.get(kind)
        on_time = None
        if report is not None:
            # Late: no round has started for two intervals (plus the last one's length).
            on_time = now - report.started_at <= timedelta(seconds=2 * interval + report.duration_s)
        out.append(
            RoundHealth(
                kind=kind,
                interval_s=interval,
                targets=targets,
                started_at=report.started_at if report else None,
                lag_s=report.lag_s if report else None,
                duration_s=report.duration_s if report else None,
                skipped_rounds=report.skipped_rounds if report else None,
                failures=failures[kind] if report else None,
                on_time=on_time,
            )
        )
    return out


def _seconds(value: float | None, lang: Lang) -> str:
    if value is None:
        return "—"
    if value < 10:
        return f"{fmt_number(value, lang, 2)} s"
    return fmt_duration(value, lang)


@router.get("/health")
async def health_page(request: Request) -> Response:
    """Rounds (lag, duration, failures), targets, the outbox, the alerting loop, the database."""
    checked = await _readable(request)
    if isinstance(checked, Response):
        return checked
    runtime, login = checked
    lang = pick_lang(request)
    now = datetime.now(UTC)
    rounds = round_health(runtime, now)
    rows = []
    for r in rounds:
        if r.targets == 0:
            verdict = a("off", lang)
        elif r.on_time is None:
            verdict = f'<span class="st st-unknown">{a("not_yet", lang)}</span>'
        elif r.on_time:
            verdict = f'<span class="st st-ok">{a("on_time", lang)}</span>'
        else:
            verdict = f'<span class="st st-down">{a("late", lang)}</span>'
        failures = "—" if r.failures is None else f"{r.failures} / {r.targets}"
        rows.append(
            f'<tr><th scope="row">{a(r.kind, lang)}</th><td>{verdict}</td>'
            f'<td class="nowrap">{escape(_seconds(r.interval_s, lang))}</td>'
            f"<td>{escape(fmt_time(r.started_at, lang))}</td>"
            f'<td class="num">{escape(_seconds(r.lag_s, lang))}</td>'
            f'<td class="num">{escape(_seconds(r.duration_s, lang))}</td>'
            f'<td class="num">{r.targets}</td><td class="num">{escape(failures)}</td>'
            f'<td class="num">{"—" if r.skipped_rounds is None else r.skipped_rounds}</td></tr>'
        )
    rounds_table = (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{a("rounds", lang)}">'
        f'<table><thead><tr><th scope="col">{a("kind", lang)}</th>'
        f'<th scope="col">{a("status", lang)}</th>'
        f'<th scope="col">{a("interval", lang)}</th><th scope="col">{a("last_round", lang)}</th>'
        f'<th scope="col" class="num">{a("lag", lang)}</th>'
        f'<th scope="col" class="num">{a("duration", lang)}</th>'
        f'<th scope="col" class="num">{a("targets", lang)}</th>'
        f'<th scope="col" class="num">{a("failures", lang)}</th>'
        f'<th scope="col" class="num">{a("skipped", lang)}</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f'<p class="hint">{a("fail_hint", lang)}</p>'
    )
    started = time.monotonic()
    try:
        backlog = await runtime.store.outbox_backlog(now)
        open_count = len(
            await runtime.store.list_tickets(
                [TicketState.OPEN, TicketState.ACKNOWLEDGED], None, 1000
            )
        )
        db_error = ""
    except Exception as exc:  # the page must say the database fails, not fail itself
        backlog, open_count, db_error = None, None, type(exc).__name__
    db_s = time.monotonic() - started
    if backlog is not None:
        outbox = [
            (a("pending", lang), str(backlog.pending)),
            (a("due", lang), str(backlog.due)),
            (a("given_up", lang), str(backlog.given_up)),
            (a("oldest_pending", lang), fmt_time(backlog.oldest_pending_at, lang)),
        ]
    else:
        outbox = [(a("pending", lang), a("unknown", lang))]
    last_tick = runtime.alerting.last_tick_at
    tick_text = (
        f"{fmt_time(last_tick, lang)} ({fmt_duration((now - last_tick).total_seconds(), lang)} "
        f"{a('ago', lang)})"
        if isinstance(last_tick, datetime)
        else a("unknown", lang)
    )
    db = (
        f'<span class="st st-ok">{a("db_ok", lang)}</span> '
        f"({a('answered_in', lang)} {fmt_number(db_s * 1000, lang, 0)} ms)"
        if not db_error
        else f'<span class="st st-down">{a("db_bad", lang)}</span> ({escape(db_error)})'
    )
    links = sum(len(c.links) for c in runtime.inventory.communes)
    facts = [
        (a("database", lang), db),
        (a("alerting", lang), f"{a('last_tick', lang)}: {escape(tick_text)}"),
        (a("open_tickets", lang), "—" if open_count is None else str(open_count)),
        (a("communes", lang), str(len(runtime.inventory.communes))),
        (a("links", lang), str(links)),
    ]
    facts_html = (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
        + "</dl>"
    )
    outbox_html = (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in outbox)
        + "</dl>"
    )
    main = (
        f"<h1>{a('health', lang)}</h1>{facts_html}"
        f"<h2>{a('rounds', lang)}</h2>{rounds_table}"
        f"<h2>{a('outbox', lang)}</h2>{outbox_html}"
    )
    return _page(request, lang, a("health", lang), main, login=login, current="health")
