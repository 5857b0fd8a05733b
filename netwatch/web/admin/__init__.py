"""The provincial IT view (/admin): open tickets, maintenance windows, NetWatch's own health.

Behind a login with an API token that has the write scope (`netwatch token create NAME --scope
write`; the store keeps only hashes) turned into a signed, HttpOnly, SameSite=Strict session
cookie with an expiry (netwatch.web.session). Every POST form carries the session's CSRF token.
Pages work without JavaScript; every write is a POST answered by a redirect (post/redirect/get).
Bad input gets a page saying what is wrong with a 4xx status, never a 500.

Maintenance windows are stored with the same store calls as POST /api/v1/maintenance, checked
against the inventory the same way, and ended with the same cancel; the alerting loop picks
them up on its next tick. Times are typed and shown in Asia/Ho_Chi_Minh.

This module holds the routes; model.py what the pages show, words.py every word (vi/en),
pages.py the page shell, templates/*.html the pages (autoescaped, extending base.html).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from netwatch.runtime import Runtime
from netwatch.store import RevokeOutcome, TicketStatus, TokenReason
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
from netwatch.web.admin.words import DONE, Label, Message, Refusal
from netwatch.web.auth import WRITE_SCOPE
from netwatch.web.common import read_fields
from netwatch.web.deps import RuntimeDep, runtime_or_none
from netwatch.web.i18n import pick_lang
from netwatch.web.session import SESSION_COOKIE, SESSION_PATH, SessionReason, SessionSigner
from netwatch.web.ticket.pages import CONTEXT as TICKET_CONTEXT
from netwatch.web.ticket.pages import TicketForms, ticket_body
from netwatch.web.views import (
    ActionFailure,
    ManualAction,
    apply_action,
    ticket_detail,
    ticket_not_found,
    ticket_view,
)

__all__ = ["PREFIX", "Login", "round_health", "router", "starting_page"]

PREFIX = "/admin"
router = APIRouter(prefix=PREFIX, include_in_schema=False)
MAX_TOKEN_CHARS = 200


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
    tokens = await runtime.store.list_tokens()
    token = next((t for t in tokens if t.id == check.session.token_id), None)
    if token is None or token.revoked_at is not None or WRITE_SCOPE not in token.scopes:
        return None
    return Login(token, check.session)


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
    if not SessionSigner.csrf_ok(login.session, fields.get("csrf")):
        return refused(request, 403, Refusal.CSRF, Message.CSRF, login=login)
    return login, fields


async def _readable(request: Request, runtime: Runtime) -> Login | Response:
    """For a GET: the login, or a redirect to the login page."""
    login = await current_login(request, runtime)
    return login if login is not None else _to_login(request)


# --- login and logout ------------------------------------------------------------------------


def _login_page(
    request: Request, next_path: str, *, error: str = "", bye: bool = False, status_code: int = 200
) -> Response:
    lang = pick_lang(request)
    return page(
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
    )


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
    return _login_page(request, _safe_next(next), bye=bool(bye))


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    """Check the token (hash compared in the store) and open a session."""
    lang = pick_lang(request)
    fields = await read_fields(request)
    if isinstance(fields, str):
        return _bad_body(request, fields)
    next_path = _safe_next(fields.get("next"))
    token = fields.get("token", "").strip()
    check = await runtime.store.verify_token(token[:MAX_TOKEN_CHARS], WRITE_SCOPE)
    if check.reason is TokenReason.MISSING_SCOPE:
        return _login_page(request, next_path, error=Message.NO_SCOPE[lang], status_code=403)
    if not check.ok or check.info is None:
        return _login_page(request, next_path, error=Message.LOGIN_FAILED[lang], status_code=401)
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
async def logout(request: Request, runtime: RuntimeDep) -> Response:
    """End the session in this browser (revoke the token to end every session)."""
    checked = await _writable(request, runtime)
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
    views = sorted(
        (ticket_view(runtime, t, now) for t in stored),
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
    if ticket is None:
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
    view = await ticket_detail(runtime, ticket, now)
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
        ),
    )


async def _ticket_action(
    request: Request, runtime: Runtime, ticket_id: str, action: ManualAction
) -> Response:
    checked = await _writable(request, runtime)
    if isinstance(checked, Response):
        return checked
    login, fields = checked
    back = f"/admin/tickets/{ticket_id}"
    result = await apply_action(
        runtime, ticket_id, action, login.actor, fields.get("text", ""), datetime.now(UTC)
    )
    if isinstance(result, ActionFailure):
        refusal = {404: Refusal.NOT_FOUND, 409: Refusal.CONFLICT}.get(
            result.status, Refusal.BAD_INPUT
        )
        return refused(
            request,
            result.status,
            refusal,
            {"vi": result.message_vi, "en": result.message},
            login=login,
            back=back,
        )
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
    windows = await runtime.store.maintenance_windows(start=now)
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
        options=scope_options(runtime, lang),
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
    lang = pick_lang(request)
    values = {k: fields.get(k, "") for k in ("target", "start", "end", "reason")}
    now = datetime.now(UTC)
    window = window_from_form(runtime, values, lang, now, login.created_by)
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
    if not window_id.isdigit() or len(window_id) > 18:
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


# --- NetWatch's own health -------------------------------------------------------------------


@router.get("/health")
async def health_page(request: Request, runtime: RuntimeDep) -> Response:
    """Rounds (lag, duration, failures), targets, the outbox, the alerting loop, the database."""
    login = await _readable(request, runtime)
    if isinstance(login, Response):
        return login
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
