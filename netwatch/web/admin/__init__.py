"""The provincial IT view (/admin): open tickets, maintenance windows, the monthly report,
NetWatch's own health.

Behind a login with an API token that has the write scope (`netwatch token create NAME --scope
write`; the store keeps only hashes) turned into a server-side session (netwatch.web.session):
an HttpOnly, SameSite=Strict cookie carries its random id, logout deletes it in the store. Every
POST form carries the session's CSRF token (in the body, never the URL); the login form has its
own (a pre-session cookie). Failed logins are logged and rate-limited (netwatch.web.auth).
The ticket page lists the ticket's signed ISP links seen in use, each revocable on its own.
Pages work without JavaScript; every write is a POST answered by a redirect (post/redirect/get).
Bad input gets a page saying what is wrong with a 4xx status, never a 500.

Maintenance windows are stored with the same store calls as POST /api/v1/maintenance, checked
against the inventory the same way, and ended with the same cancel; the alerting loop picks
them up on its next tick. Times are typed and shown in Asia/Ho_Chi_Minh.

This module holds the routes; model.py what the pages show, words.py every word (vi/en),
pages.py the page shell, templates/*.html the pages (autoescaped, extending base.html).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse

from netwatch.reports import (
    Lang as ReportLang,
)
from netwatch.reports import (
    Month,
    ReportError,
    circuits_of,
    latest_complete_month,
    monthly_report,
)
from netwatch.reports.pdf import ChromiumMissingError, PdfError, print_pdf
from netwatch.runtime import Runtime
from netwatch.store import RevokeOutcome, TicketStatus, TokenReason
from netwatch.store.users import LoginReason
from netwatch.web.admin.model import (
    DEFAULT_WINDOW,
    MAX_REASON_CHARS,
    SORTS,
    Login,
    config_windows,
    last_tick_words,
    local_input,
    round_health,
    scope_options,
    seconds_words,
    ticket_rows,
    window_from_form,
    window_rows,
)
from netwatch.web.admin.pages import page, refused
from netwatch.web.admin.words import DONE, Label, Message, Refusal, Words
from netwatch.web.api import for_caller
from netwatch.web.auth import (
    NAME_PREFIX,
    WRITE_SCOPE,
    Caller,
    auth_guard,
    guard_keys,
    record_failure,
    token_id_of,
)
from netwatch.web.common import read_fields
from netwatch.web.deps import RuntimeDep, runtime_or_none
from netwatch.web.i18n import pick_lang
from netwatch.web.monthly.page import (
    REPORT_CSS,
    downloads,
    print_html,
    report_page,
)
from netwatch.web.monthly.page import (
    W as REPORT_WORDS,
)
from netwatch.web.reach import Reach, Role
from netwatch.web.reload import perform_reload
from netwatch.web.reports import report_file, report_file_name, report_scope
from netwatch.web.session import (
    LOGIN_CSRF_COOKIE,
    LOGIN_CSRF_TTL_S,
    SESSION_COOKIE,
    SESSION_PATH,
    SESSION_TTL,
    Session,
    SessionSigner,
    cookie_secure,
    cookie_value,
    csrf_ok,
    session_id_of,
)
from netwatch.web.ticket.pages import CONTEXT as TICKET_CONTEXT
from netwatch.web.ticket.pages import (
    INTERNAL,
    TicketForms,
    internal_note_text,
    note_visibility,
    ticket_body,
)
from netwatch.web.views import (
    ActionFailure,
    ManualAction,
    acts_until,
    apply_action,
    ticket_detail,
    ticket_not_found,
    ticket_view,
)

__all__ = ["PREFIX", "Login", "round_health", "router", "starting_page"]

PREFIX = "/admin"
log = logging.getLogger("netwatch.web.admin")

router = APIRouter(prefix=PREFIX, include_in_schema=False)
MAX_TOKEN_CHARS = 200
MAX_NAME_CHARS = 64


# --- sessions ----------------------------------------------------------------------------------


def session_signer(request: Request, runtime: Runtime | None) -> SessionSigner:
    """The login form's CSRF key: derived (HKDF, own label) from the link secret when one is
    configured, so every instance and web worker agrees. Without one, a fixed key: the check is
    then a plain double-submit (cookie and field agree), which a random key per process would
    break whenever the form and its POST reach different web workers."""
    notifications = runtime.inventory.notifications if runtime is not None else None
    if notifications is not None:
        return SessionSigner.from_link_secret(notifications.link_secret.reveal())
    return SessionSigner.unkeyed()


def secure_cookies(request: Request, runtime: Runtime | None) -> bool:
    """Whether the cookies get `Secure`: from the configured public URL (not from the scheme
    uvicorn sees, which is http behind a TLS proxy); without one, unless the page was asked
    for on a loopback host."""
    notifications = runtime.inventory.notifications if runtime is not None else None
    if notifications is not None:
        return cookie_secure(notifications.public_url)
    host = request.url.hostname or ""
    return cookie_secure(f"http://{host}") if host else True


async def current_login(request: Request, runtime: Runtime) -> Login | None:
    """The logged-in session, if the store knows it and its token still has the scope (or its
    person's account is still enabled)."""
    session_id = session_id_of(request.cookies.get(SESSION_COOKIE))
    if session_id is None:
        return None
    stored = await runtime.store.get_session(session_id, datetime.now(UTC))
    if stored is None:
        return None
    session = Session(stored.token_id, stored.expires_at, stored.csrf, stored.user_name)
    if stored.user_name is not None:
        person = await runtime.store.get_user(stored.user_name)
        if person is None or person.disabled_at is not None:
            return None
        return Login(Caller.of_user(person), session)
    tokens = await runtime.store.list_tokens()
    token = next((t for t in tokens if t.id == stored.token_id), None)
    if token is None or token.revoked_at is not None or WRITE_SCOPE not in token.scopes:
        return None
    return Login(Caller.of_token(token), session)


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


def starting_page(request: Request) -> Response:
    """503: the runtime is not built yet (netwatch.web.app answers NotReady with this)."""
    return refused(request, 503, Refusal.STARTING, Message.STARTING)


def _to_login(request: Request) -> Response:
    query = urlencode(
        {"next": str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")}
    )
    return RedirectResponse(f"/admin/login?{query}", status_code=303)


def _bad_body(request: Request, reason: str) -> Response:
    return refused(request, 400, Refusal.BAD_INPUT, {"vi": Message.BAD_BODY, "en": reason})


async def _writable(request: Request, runtime: Runtime) -> tuple[Login, dict[str, str]] | Response:
    """For a POST: the login and the form fields, or the refusal page."""
    login = await current_login(request, runtime)
    if login is None:
        return refused(request, 401, Refusal.SESSION, Message.SESSION_GONE)
    fields = await read_fields(request)
    if isinstance(fields, str):
        return _bad_body(request, fields)
    # From the form body (or a script's header) only: a token in the URL ends up in logs.
    presented = request.headers.get("x-csrf-token") or fields.get("csrf")
    if "csrf" in request.query_params or not csrf_ok(login.session.csrf, presented):
        return refused(request, 403, Refusal.CSRF, Message.CSRF, login=login)
    return login, fields


async def _readable(request: Request, runtime: Runtime) -> Login | Response:
    """For a GET: the login, or a redirect to the login page."""
    login = await current_login(request, runtime)
    return login if login is not None else _to_login(request)


def _not_allowed(request: Request, login: Login) -> Response:
    """403: the login's role may not use this page (an ISP's engineer and maintenance)."""
    return refused(request, 403, Refusal.NO_SCOPE, Message.ROLE_REFUSED, login=login, back="/admin")


# --- login and logout ------------------------------------------------------------------------


def _login_page(
    request: Request,
    runtime: Runtime | None,
    next_path: str,
    *,
    error: str = "",
    bye: bool = False,
    status_code: int = 200,
) -> Response:
    """The login form, with a CSRF field tied to the browser's pre-session cookie (set here
    when the browser has none yet)."""
    lang = pick_lang(request)
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    signer = session_signer(request, runtime)
    fresh = not SessionSigner.nonce_ok(nonce)
    if fresh:
        nonce = SessionSigner.new_nonce()
    response = page(
        request,
        "login.html",
        lang,
        Label.LOGIN[lang],
        login=None,
        status_code=status_code,
        next_path=next_path,
        error=error,
        bye=bye,
        max_token=MAX_TOKEN_CHARS,
        login_csrf=signer.login_csrf(nonce),
    )
    if fresh:
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            nonce,
            max_age=LOGIN_CSRF_TTL_S,
            path=SESSION_PATH,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request, runtime),
        )
    return response


@router.get("/login")
async def login_page(
    request: Request,
    next: Annotated[str | None, Query()] = None,
    bye: Annotated[str | None, Query()] = None,
) -> Response:
    """The login form (a logged-in visitor goes straight on); shown even while starting."""
    runtime = runtime_or_none(request)
    if runtime is not None and await current_login(request, runtime) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, runtime, _safe_next(next), bye=bool(bye))


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    """Check the form's CSRF field, the rate limit, then the token (hash compared in the
    store), and open a session in the store."""
    lang = pick_lang(request)
    fields = await read_fields(request)
    if isinstance(fields, str):
        return _bad_body(request, fields)
    next_path = _safe_next(fields.get("next"))
    signer = session_signer(request, runtime)
    if "login_csrf" in request.query_params or not signer.login_csrf_ok(
        request.cookies.get(LOGIN_CSRF_COOKIE), fields.get("login_csrf")
    ):
        return _login_page(
            request, runtime, next_path, error=Message.LOGIN_CSRF[lang], status_code=403
        )
    name = fields.get("user", "").strip()[:MAX_NAME_CHARS]
    if name:
        return await _password_login(request, runtime, name, fields.get("password", ""), next_path)
    token = fields.get("token", "").strip()[:MAX_TOKEN_CHARS]
    user = token_id_of(token)
    retry = await auth_guard(request).retry_after(runtime.store, guard_keys(request, user))
    if retry is not None:
        response = _login_page(
            request,
            runtime,
            next_path,
            error=Message.TOO_MANY[lang].format(seconds=retry),
            status_code=429,
        )
        response.headers["Retry-After"] = str(retry)
        return response
    check = await runtime.store.verify_token(token, WRITE_SCOPE)
    if check.reason is TokenReason.MISSING_SCOPE:
        return _login_page(
            request, runtime, next_path, error=Message.NO_SCOPE[lang], status_code=403
        )
    if not check.ok or check.info is None:
        await record_failure(request, runtime.store, "login", user, check.reason.value)
        return _login_page(
            request, runtime, next_path, error=Message.LOGIN_FAILED[lang], status_code=401
        )
    session_id, _ = await runtime.store.open_session(check.info.id, datetime.now(UTC), SESSION_TTL)
    return _logged_in(request, runtime, session_id, next_path)


async def _password_login(
    request: Request, runtime: Runtime, name: str, password: str, next_path: str
) -> Response:
    """A person's login: the rate limit (per address and per name), then argon2."""
    lang = pick_lang(request)
    who = f"{NAME_PREFIX}{name}"
    retry = await auth_guard(request).retry_after(runtime.store, guard_keys(request, who))
    if retry is not None:
        response = _login_page(
            request,
            runtime,
            next_path,
            error=Message.TOO_MANY[lang].format(seconds=retry),
            status_code=429,
        )
        response.headers["Retry-After"] = str(retry)
        return response
    check = await runtime.store.verify_password(name, password)
    if not check.ok or check.user is None:
        await record_failure(request, runtime.store, "login", who, check.reason.value)
        error = Message.PASSWORD_FAILED[lang]
        return _login_page(request, runtime, next_path, error=error, status_code=401)
    assert check.reason is LoginReason.OK
    session_id, _ = await runtime.store.open_session(
        None, datetime.now(UTC), SESSION_TTL, user_name=check.user.name
    )
    return _logged_in(request, runtime, session_id, next_path)


def _logged_in(request: Request, runtime: Runtime, session_id: str, next_path: str) -> Response:
    """The redirect that carries a new session's cookie (the login form's is dropped)."""
    secure = secure_cookies(request, runtime)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie_value(session_id),
        max_age=int(SESSION_TTL.total_seconds()),
        path=SESSION_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    response.delete_cookie(
        LOGIN_CSRF_COOKIE, path=SESSION_PATH, httponly=True, samesite="strict", secure=secure
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep) -> Response:
    """End the session: deleted in the store, so the cookie is worthless even if copied
    (revoke the token to end every session it opened)."""
    checked = await _writable(request, runtime)
    if isinstance(checked, Response):
        if checked.status_code == 401:  # no session anyway: nothing to end
            return RedirectResponse("/admin/login?bye=1", status_code=303)
        return checked
    session_id = session_id_of(request.cookies.get(SESSION_COOKIE))
    if session_id is not None:
        await runtime.store.end_session(session_id)
    response = RedirectResponse("/admin/login?bye=1", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path=SESSION_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request, runtime),
    )
    return response


# --- open tickets --------------------------------------------------------------------------------


@router.get("")
async def tickets_page(
    request: Request,
    runtime: RuntimeDep,
    sort: Annotated[str, Query()] = "age",
    done: str | None = None,
) -> Response:
    """Every open or acknowledged ticket across communes, with age and acknowledgement."""
    login = await _readable(request, runtime)
    if isinstance(login, Response):
        return login
    lang = pick_lang(request)
    if sort not in SORTS:
        return refused(
            request,
            422,
            Refusal.BAD_INPUT,
            {k: v.format(sort=sort) for k, v in Message.BAD_SORT.items()},
            login=login,
            back="/admin",
        )
    now = datetime.now(UTC)
    stored = await runtime.store.list_tickets(
        [TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED], None, 1000
    )
    topology = runtime.health.topology
    views = sorted(
        (
            ticket_view(runtime, t, now)
            for t in stored
            if login.reach.sees_ticket(topology, t.ticket)
        ),
        key=lambda v: v.opened_at,
        reverse=sort == "-age",
    )
    unacked = sum(1 for v in views if not v.acknowledged)
    return page(
        request,
        "tickets.html",
        lang,
        Label.TICKETS[lang],
        login=login,
        current="tickets",
        rows=ticket_rows(views, lang),
        counts=Label.COUNTS[lang].format(open=len(views), unacked=unacked),
        sort=sort,
        other_sort_url=f"/admin?{urlencode({'sort': '-age' if sort == 'age' else 'age'})}",
    )


# --- one ticket, acted on as provincial IT ---------------------------------------------------


@router.get("/tickets/{ticket_id}")
async def ticket_page(
    request: Request, runtime: RuntimeDep, ticket_id: str, done: str | None = None
) -> Response:
    """A ticket's evidence and log, with acknowledge, note and resolve as provincial IT."""
    login = await _readable(request, runtime)
    if isinstance(login, Response):
        return login
    lang = pick_lang(request)
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None or not login.reach.sees_ticket(runtime.health.topology, ticket.ticket):
        failure = ticket_not_found(ticket_id)
        return refused(
            request,
            404,
            Refusal.NOT_FOUND,
            {"vi": failure.message_vi, "en": failure.message},
            login=login,
            back="/admin",
        )
    now = datetime.now(UTC)
    view = for_caller(await ticket_detail(runtime, ticket, now), login.caller)
    notifications = runtime.inventory.notifications
    # The signed links and their revocation are provincial IT's (an ISP's login has none).
    issued = [] if login.role is Role.ISP else await runtime.store.ticket_links(ticket_id)
    links = [(link, acts_until(notifications, link)) for link in issued]
    internal_notes = await runtime.store.internal_notes(ticket_id)
    return page(
        request,
        "ticket.html",
        lang,
        f"{Label.TICKET[lang]} {ticket_id}",
        login=login,
        current="tickets",
        **TICKET_CONTEXT,
        # The ticket's body, the same as the ISP sees (netwatch.web.ticket), acted on as
        # provincial IT: the session's CSRF token in its forms, the token naming the actor.
        t=ticket_body(
            runtime,
            view,
            lang,
            now,
            TicketForms(
                f"/admin/tickets/{ticket_id}", {"csrf": login.session.csrf}, ask_name=False
            ),
            done=done,
            internal_notes=internal_notes,
        ),
        ticket_id=ticket_id,
        links=links,
    )


async def _sees_ticket(runtime: Runtime, login: Login, ticket_id: str) -> bool:
    """Whether the ticket exists and is the login's to see (others are "not found")."""
    ticket = await runtime.store.get_ticket(ticket_id)
    return ticket is not None and login.reach.sees_ticket(runtime.health.topology, ticket.ticket)


def _failed(request: Request, failure: ActionFailure, login: Login, back: str) -> Response:
    refusal = {404: Refusal.NOT_FOUND, 409: Refusal.CONFLICT}.get(failure.status, Refusal.BAD_INPUT)
    return refused(
        request,
        failure.status,
        refusal,
        {"vi": failure.message_vi, "en": failure.message},
        login=login,
        back=back,
    )


async def _internal_note(
    request: Request,
    runtime: Runtime,
    ticket_id: str,
    login: Login,
    fields: dict[str, str],
    back: str,
) -> Response | None:
    """Keep an internal note (the form asked for one), or None: a public note, as before."""
    visibility = note_visibility(fields)
    if isinstance(visibility, ActionFailure):
        return _failed(request, visibility, login, back)
    if visibility != INTERNAL:
        return None
    if await runtime.store.get_ticket(ticket_id) is None:
        return _failed(request, ticket_not_found(ticket_id), login, "/admin")
    text = internal_note_text(fields.get("text", ""))
    if isinstance(text, ActionFailure):
        return _failed(request, text, login, back)
    actor = login.actor
    await runtime.store.add_internal_note(
        ticket_id, actor.kind.value, actor.name, text, datetime.now(UTC)
    )
    return RedirectResponse(f"{back}?done=internal_note", status_code=303)


async def _ticket_action(
    request: Request, runtime: Runtime, ticket_id: str, action: ManualAction
) -> Response:
    checked = await _writable(request, runtime)
    if isinstance(checked, Response):
        return checked
    login, fields = checked
    back = f"/admin/tickets/{ticket_id}"
    if not await _sees_ticket(runtime, login, ticket_id):
        return _failed(request, ticket_not_found(ticket_id), login, "/admin")
    if action is ManualAction.NOTE:
        kept = await _internal_note(request, runtime, ticket_id, login, fields, back)
        if kept is not None:
            return kept
    result = await apply_action(
        runtime, ticket_id, action, login.actor, fields.get("text", ""), datetime.now(UTC)
    )
    if isinstance(result, ActionFailure):
        return _failed(request, result, login, back)
    return RedirectResponse(f"{back}?done={action.value}", status_code=303)


@router.post("/tickets/{ticket_id}/acknowledge")
async def ticket_acknowledge(request: Request, runtime: RuntimeDep, ticket_id: str) -> Response:
    """Acknowledge as provincial IT."""
    return await _ticket_action(request, runtime, ticket_id, ManualAction.ACKNOWLEDGE)


@router.post("/tickets/{ticket_id}/note")
async def ticket_note(request: Request, runtime: RuntimeDep, ticket_id: str) -> Response:
    """A note as provincial IT."""
    return await _ticket_action(request, runtime, ticket_id, ManualAction.NOTE)


@router.post("/tickets/{ticket_id}/resolve")
async def ticket_resolve(request: Request, runtime: RuntimeDep, ticket_id: str) -> Response:
    """Resolve as provincial IT."""
    return await _ticket_action(request, runtime, ticket_id, ManualAction.RESOLVE)


@router.post("/tickets/{ticket_id}/links/{link_id}/revoke")
async def revoke_link(
    request: Request, runtime: RuntimeDep, ticket_id: str, link_id: str
) -> Response:
    """Revoke one signed ISP link of the ticket: it gets 403 from now on, the others work."""
    checked = await _writable(request, runtime)
    if isinstance(checked, Response):
        return checked
    login, _ = checked
    back = f"/admin/tickets/{quote(ticket_id, safe='')}"
    if login.role is Role.ISP:
        return _not_allowed(request, login)
    seen = await _sees_ticket(runtime, login, ticket_id)
    known = {link.id for link in await runtime.store.ticket_links(ticket_id)} if seen else set()
    outcome = (
        await runtime.store.revoke_link(link_id, login.created_by, datetime.now(UTC))
        if link_id in known
        else RevokeOutcome.NOT_FOUND
    )
    if outcome is RevokeOutcome.DONE:
        return RedirectResponse(f"{back}#links", status_code=303)
    found = outcome is not RevokeOutcome.NOT_FOUND
    message = Message.LINK_ALREADY_REVOKED if found else Message.NO_SUCH_LINK
    status, refusal = (409, Refusal.CONFLICT) if found else (404, Refusal.NOT_FOUND)
    return refused(
        request,
        status,
        refusal,
        {k: v.format(link_id=link_id[:40]) for k, v in message.items()},
        login=login,
        back=back,
    )


# --- maintenance windows -----------------------------------------------------------------------


async def _maintenance_page(
    request: Request,
    runtime: Runtime,
    login: Login,
    *,
    values: dict[str, str] | None = None,
    error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Response:
    lang = pick_lang(request)
    now = datetime.now(UTC)
    inventory, topology = runtime.inventory, runtime.health.topology
    windows = [
        w
        for w in await runtime.store.maintenance_windows(start=now)
        if login.reach.sees_window(inventory, topology, w)
    ]
    given = values or {}
    shown = {
        "target": given.get("target", ""),
        "start": given.get("start") or local_input(now),
        "end": given.get("end") or local_input(now + DEFAULT_WINDOW),
        "reason": given.get("reason", ""),
    }
    return page(
        request,
        "maintenance.html",
        lang,
        Label.MAINTENANCE[lang],
        login=login,
        current="maintenance",
        status_code=status_code,
        rows=window_rows(runtime, windows, lang, now),
        notice=notice,
        error=error,
        options=scope_options(runtime, lang, login.reach),
        values=shown,
        max_reason=MAX_REASON_CHARS,
        config_windows=config_windows(runtime, lang),
    )


@router.get("/maintenance")
async def maintenance_page(
    request: Request, runtime: RuntimeDep, done: str | None = None
) -> Response:
    """Current and coming windows, each with an end button, and the form for a new one."""
    login = await _readable(request, runtime)
    if isinstance(login, Response):
        return login
    if login.role is Role.ISP:
        return _not_allowed(request, login)
    lang = pick_lang(request)
    done_words = DONE.get(done or "")
    notice = done_words[lang] if done_words else ""
    return await _maintenance_page(request, runtime, login, notice=notice)


@router.post("/maintenance")
async def create_maintenance(request: Request, runtime: RuntimeDep) -> Response:
    """Store a window covering the chosen scope (the alerting loop suppresses its tickets)."""
    checked = await _writable(request, runtime)
    if isinstance(checked, Response):
        return checked
    login, fields = checked
    if login.role is Role.ISP:
        return _not_allowed(request, login)
    lang = pick_lang(request)
    values = {k: fields.get(k, "") for k in ("target", "start", "end", "reason")}
    now = datetime.now(UTC)
    window = window_from_form(runtime, values, lang, now, login.created_by)
    if not isinstance(window, str) and not login.reach.covers(
        runtime.inventory, runtime.health.topology, window.scope, window.target
    ):
        window = Message.SCOPE_OUTSIDE[lang]
    if isinstance(window, str):
        return await _maintenance_page(
            request, runtime, login, values=values, error=window, status_code=422
        )
    await runtime.store.add_maintenance(window, now)
    return RedirectResponse("/admin/maintenance?done=created", status_code=303)


@router.post("/maintenance/{window_id}/end")
async def end_maintenance(request: Request, runtime: RuntimeDep, window_id: str) -> Response:
    """End a window now (or cancel a planned one): it stops suppressing from now on."""
    checked = await _writable(request, runtime)
    if isinstance(checked, Response):
        return checked
    login, _ = checked
    if login.role is Role.ISP:
        return _not_allowed(request, login)
    window = (
        await runtime.store.maintenance_window(int(window_id))
        if window_id.isdigit() and len(window_id) <= 18
        else None
    )
    if window is None or not login.reach.sees_window(
        runtime.inventory, runtime.health.topology, window
    ):
        outcome = RevokeOutcome.NOT_FOUND
    else:
        outcome = await runtime.store.cancel_maintenance(int(window_id), datetime.now(UTC))
    if outcome is RevokeOutcome.NOT_FOUND:
        message = Message.NO_SUCH_WINDOW
        status, refusal = 404, Refusal.NOT_FOUND
    elif outcome is RevokeOutcome.ALREADY:
        message = Message.WINDOW_ALREADY_ENDED
        status, refusal = 409, Refusal.CONFLICT
    else:
        return RedirectResponse("/admin/maintenance?done=ended", status_code=303)
    return refused(
        request,
        status,
        refusal,
        {k: v.format(window_id=window_id) for k, v in message.items()},
        login=login,
        back="/admin/maintenance",
    )


# --- reloading the configuration -------------------------------------------------------------


@router.post("/config/reload")
async def reload_configuration(request: Request, runtime: RuntimeDep) -> Response:
    """The health page's button: the configuration file read again and applied, as SIGHUP and
    `POST /api/v1/config/reload` do; the outcome (or every mistake, positioned) on a page."""
    checked = await _writable(request, runtime)
    if isinstance(checked, Response):
        return checked
    login, _ = checked
    if login.role is not Role.NATIONAL:
        return _not_allowed(request, login)
    log.info("configuration reload asked from the admin view by=%s", login.created_by)
    lang = pick_lang(request)
    try:
        status, answer = await perform_reload(request.app)
    except HTTPException:
        status, answer, unavailable = 409, None, True
    else:
        unavailable = False
    return page(
        request,
        "reload.html",
        lang,
        Label.RELOAD[lang],
        login=login,
        current="health",
        status_code=status,
        answer=answer,
        unavailable=unavailable,
    )


# --- NetWatch's own health -------------------------------------------------------------------


@router.get("/health")
async def health_page(request: Request, runtime: RuntimeDep) -> Response:
    """Rounds (lag, duration, failures), targets, the outbox, the alerting loop, the database
    (deployment-wide figures: national and provincial callers, not an ISP's)."""
    login = await _readable(request, runtime)
    if isinstance(login, Response):
        return login
    if login.role is Role.ISP:
        return _not_allowed(request, login)
    lang = pick_lang(request)
    now = datetime.now(UTC)
    started = time.monotonic()
    try:
        backlog = await runtime.store.outbox_backlog(now)
        open_count: int | None = len(
            await runtime.store.list_tickets(
                [TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED], None, 1000
            )
        )
        db_error = ""
    except Exception as exc:  # the page must say the database fails, not fail itself
        backlog, open_count, db_error = None, None, type(exc).__name__
    db_s = time.monotonic() - started
    return page(
        request,
        "health.html",
        lang,
        Label.HEALTH[lang],
        login=login,
        current="health",
        rounds=round_health(runtime, now),
        seconds=seconds_words,
        db_ms=db_s * 1000,
        db_error=db_error,
        last_tick=last_tick_words(runtime.alerting.last_tick_at, now, lang),
        open_count=open_count,
        communes=len(runtime.inventory.communes),
        links=sum(len(c.links) for c in runtime.inventory.communes),
        backlog=backlog,
    )


# --- the monthly report ----------------------------------------------------------------------

REPORT_PATH = f"{PREFIX}/reports/monthly"
REPORT_FORMATS = ("html", "csv", "xlsx", "pdf")


@dataclass(frozen=True, slots=True)
class Picker:
    """The month form's fields: the choices and what is chosen."""

    action: str
    month: str
    max_month: str
    province: str
    isp: str
    provinces: list[tuple[str, str]]
    isps: list[tuple[str, str]]


def _picker(
    runtime: Runtime, month: Month, province: str | None, isp: str | None, reach: Reach
) -> Picker:
    """The report form, offering only the provinces and ISPs the caller may see."""
    circuits = circuits_of(runtime.inventory, None, reach.isp, reach.provinces)
    provinces = sorted({(c.info.province, c.province_name) for c in circuits})
    isps = sorted({(c.info.isp, c.isp_name) for c in circuits})
    return Picker(
        REPORT_PATH,
        str(month),
        str(Month.of(datetime.now(UTC))),
        province or "",
        isp or "",
        provinces,
        isps,
    )


@router.get("/reports/monthly")
async def monthly_report_page(
    request: Request,
    runtime: RuntimeDep,
    month: str | None = None,
    province: str | None = None,
    isp: str | None = None,
    format: str = "html",
) -> Response:
    """A month's report to print or send an ISP, with the CSV, XLSX and PDF files of it."""
    login = await _readable(request, runtime)
    if isinstance(login, Response):
        return login
    lang = pick_lang(request)

    def bad(status: int, words: Words, refusal: Refusal = Refusal.BAD_INPUT) -> Response:
        return refused(request, status, refusal, words, login=login, back=REPORT_PATH)

    if format not in REPORT_FORMATS:
        return bad(422, {k: v.format(text=format[:20]) for k, v in REPORT_WORDS.BAD_FORMAT.items()})
    now = datetime.now(UTC)
    try:
        wanted = Month.parse(month) if month else latest_complete_month(now)
    except ValueError:
        text = (month or "")[:20]
        return bad(422, {k: v.format(text=text) for k, v in REPORT_WORDS.BAD_MONTH.items()})
    province = (province or "").strip() or None
    if province is not None:
        if not (province.isdigit() and len(province) <= 2):
            words = REPORT_WORDS.BAD_PROVINCE
            return bad(422, {k: v.format(text=province[:20]) for k, v in words.items()})
        province = f"{int(province):02d}"
    isp = (isp or "").strip() or None
    try:
        province, isp, within = report_scope(login.reach, province, isp)
        report = await monthly_report(
            runtime.store,
            runtime.rollups,
            runtime.inventory,
            wanted,
            now,
            province=province,
            isp=isp,
            within=within,
        )
    except ReportError as exc:
        if exc.not_found:
            words = REPORT_WORDS.NOTHING_MONITORED
            filled = {k: v.format(detail=exc.message) for k, v in words.items()}
            return bad(404, filled, Refusal.NOT_FOUND)
        return bad(422, {k: v.format(month=wanted) for k, v in REPORT_WORDS.NOT_BEGUN.items()})
    if format in ("csv", "xlsx"):
        response = report_file(report, ReportLang(lang), "csv" if format == "csv" else "xlsx")
        response.headers["Cache-Control"] = "no-store"
        return response
    if format == "pdf":
        try:
            pdf = await print_pdf(print_html(report, lang))
        except ChromiumMissingError:
            return bad(503, REPORT_WORDS.NO_CHROMIUM, Refusal.UNAVAILABLE)
        except PdfError as exc:
            log.warning("report pdf failed month=%s: %s", wanted, exc)
            words = REPORT_WORDS.PDF_FAILED
            filled = {k: v.format(detail=str(exc)[:120]) for k, v in words.items()}
            return bad(503, filled, Refusal.UNAVAILABLE)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{report_file_name(report, "pdf")}"',
                "Cache-Control": "no-store",
            },
        )
    body = report_page(report, lang)
    return page(
        request,
        "report.html",
        lang,
        body.title,
        login=login,
        current="reports",
        r=body,
        report_css=REPORT_CSS,
        picker=_picker(runtime, wanted, province, isp, login.reach),
        downloads=downloads(report, lang, REPORT_PATH),
    )
