"""ISP ticket pages: evidence and actions through an expiring signed link, no account needed.

GET /t/{id}?exp&sig shows the ticket (JSON, or a page in Vietnamese — English with ?lang=en —
when the browser asks for HTML); POST /t/{id}/acknowledge, /note and /resolve act on it with the
same exp and sig (in the query, a form or a JSON body). Browsers' forms work without JavaScript
and are answered by a redirect back to the page (post/redirect/get). The link is checked before
anything else: a forged, altered or expired link gets 403 and learns nothing, not even whether
the ticket exists. A genuine link is recorded in the store when a notice carries it and stamped
on its first use (by its id, netwatch.signing.link_id); one that provincial IT revoked gets 403
too, and one past `notifications.link_act_hours` since its notice shows the ticket but gets 403
for an action (VIEW_ONLY). The signature never
reaches the access log (netwatch.signing.RedactLinkSecrets, installed here).

What the ISP sees: the commune, the link's name, its circuit ID and ISP, the problem and since
when, the downtime so far, the first bad round and the worst measurements, the router's WAN
interface state and utilization, a loss/latency chart when the history is there, and the whole
log, and the path trace taken when the ticket opened (where the path toward the subject stopped,
hop by hop, with the routers' addresses: they are the ISP's own). Not shown: contacts, SNMP
credentials, other monitored addresses (the circuit ID names the line in the ISP's own systems)
— see docs/isp-and-admin-pages.md.

This module holds the routes; model.py the view, words.py the page's own words (vi/en), pages.py
what the templates (templates/*.html, autoescaped, extending the shared base.html) are given.
The ticket's body (summary, evidence, path, chart, forms, log) is netwatch.web.ticket's, shared
with the provincial IT's view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from alerts.tickets import Actor, ActorKind
from netwatch.inventory.models import LOCAL_TZ
from netwatch.notify.messages import format_time_vi
from netwatch.notify.pathtext import hide_target
from netwatch.signing import (
    LinkCheck,
    LinkReason,
    LinkSigner,
    install_log_redaction,
    link_id,
    ticket_path,
)
from netwatch.web.common import ActionDoc, add_action_routes, private_page, read_fields
from netwatch.web.deps import STARTING, runtime_or_none
from netwatch.web.i18n import is_lang, pick_lang
from netwatch.web.isp.model import IspTicketView
from netwatch.web.isp.pages import error_page, render_ticket_page
from netwatch.web.isp.words import LINK_REFUSED, Label
from netwatch.web.ticket.pages import (
    INTERNAL,
    MAX_NAME_CHARS,
    internal_note_text,
    note_visibility,
)
from netwatch.web.views import (
    ActionFailure,
    ManualAction,
    acts_until,
    apply_action,
    ticket_detail,
    ticket_not_found,
)
from netwatch.web.words import Common, Words

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

__all__ = ["IspTicketView", "router", "wants_html"]

router = APIRouter(tags=["isp"])
# Wherever this router serves, its links' signatures stay out of uvicorn's access log.
install_log_redaction()


# --- content negotiation and bodies ----------------------------------------------------------


def wants_html(request: Request) -> bool:
    """Whether the client prefers HTML to JSON (a browser); JSON when it does not say."""
    best_html = best_json = 0.0
    for part in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif media in ("application/json", "*/*", "application/*"):
            best_json = max(best_json, q)
    return best_html > best_json


def _error(
    request: Request,
    html: bool,
    failure: ActionFailure,
    *,
    title: Words = Label.FAILED_TITLE,
    back: str | None = None,
) -> Response:
    """What was not done and why: a page for a browser, else JSON (detail, detail_vi, reason)."""
    if html:
        return error_page(
            request, failure.status, title, failure.message, failure.message_vi, back=back
        )
    return JSONResponse(
        {"detail": failure.message, "detail_vi": failure.message_vi, "reason": failure.reason},
        status_code=failure.status,
    )


def _link_refused(
    request: Request, html: bool, check: LinkCheck, *, at: datetime | None = None
) -> Response:
    message, message_vi = LINK_REFUSED[check.reason]
    if check.reason is LinkReason.EXPIRED and check.expires_at is not None:
        message_vi = f"{message_vi} (Hết hạn lúc {format_time_vi(check.expires_at)}.)"
    if check.reason is LinkReason.VIEW_ONLY and at is not None:
        message_vi = f"{message_vi} (Hết thời hạn thao tác lúc {format_time_vi(at)}.)"
    failure = ActionFailure(403, check.reason.value, message, message_vi)
    return _error(request, html, failure, title=Label.REFUSED_TITLE)


def _check(runtime: Runtime | None, ticket_id: str, exp: str | None, sig: str | None) -> LinkCheck:
    notifications = runtime.inventory.notifications if runtime is not None else None
    if notifications is None:
        # No secret configured: NetWatch never issued a link, so none can be valid.
        return LinkCheck(LinkReason.BAD_SIGNATURE)
    signer = LinkSigner.from_notifications(notifications)
    return signer.verify(ticket_id, exp, sig, datetime.now(UTC))


_STARTING = ActionFailure(503, "starting", STARTING, Common.STARTING["vi"])


async def _opened(
    request: Request, html: bool, ticket_id: str, exp: str | None, sig: str | None
) -> tuple[Runtime, LinkCheck, datetime | None] | Response:
    """The runtime, the link's check and until when it may act, or the refusal: the link is
    checked before anything else (a bad link learns nothing, not even that NetWatch is
    starting), then whether it was revoked (stamping its first use)."""
    runtime = runtime_or_none(request)
    check = _check(runtime, ticket_id, exp, sig)
    if not check.ok:
        return _link_refused(request, html, check)
    if runtime is None:
        return _error(request, html, _STARTING)
    assert check.expires_at is not None
    assert exp is not None
    assert sig is not None
    record = await runtime.store.record_link(
        link_id(ticket_id, int(exp), sig), ticket_id, check.expires_at, datetime.now(UTC)
    )
    if record.revoked_at is not None:
        return _link_refused(request, html, LinkCheck(LinkReason.REVOKED, check.expires_at))
    return runtime, check, acts_until(runtime.inventory.notifications, record)


async def _view(
    runtime: Runtime, ticket_id: str, check: LinkCheck, act_until: datetime | None
) -> IspTicketView | None:
    assert check.expires_at is not None  # a valid link has its expiry
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None:
        return None
    detail = await ticket_detail(runtime, ticket, datetime.now(UTC))
    if detail.evidence.path is not None:
        # Where the path stops, but not the monitored address it was traced toward.
        detail.evidence.path = hide_target(detail.evidence.path)
    return IspTicketView(
        **detail.model_dump(),
        link_expires_at=check.expires_at,
        link_expires_at_local=check.expires_at.astimezone(LOCAL_TZ).isoformat(),
        link_acts_until=act_until,
        link_may_act=act_until is None or datetime.now(UTC) < act_until,
    )


_LINK_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": "Forged, altered or expired link: nothing is shown or changed"},
    404: {"description": "No such ticket"},
}


# --- endpoints -------------------------------------------------------------------------------


@router.get(
    "/t/{ticket_id}",
    response_model=IspTicketView,
    summary="A ticket's evidence, through its signed link (HTML for browsers)",
    responses={**_LINK_ERRORS, 200: {"content": {"text/html": {}}}},
)
async def isp_ticket(
    ticket_id: str,
    request: Request,
    exp: Annotated[str | None, Query(description="Expiry, unix seconds (part of the link)")] = None,
    sig: Annotated[str | None, Query(description="Signature (part of the link)")] = None,
    lang: Annotated[str | None, Query(description="Page language: vi (default) or en")] = None,
    done: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> Response:
    """Evidence and log of one ticket; a page with the action forms for browsers."""
    html = wants_html(request)
    opened = await _opened(request, html, ticket_id, exp, sig)
    if isinstance(opened, Response):
        return opened
    runtime, check, act_until = opened
    view = await _view(runtime, ticket_id, check, act_until)
    if view is None:
        return _error(request, html, ticket_not_found(ticket_id))
    if html:
        page_lang = pick_lang(request)
        notes = await runtime.store.internal_notes(ticket_id)
        page = render_ticket_page(
            request, runtime, view, exp or "", sig or "", page_lang, done, notes
        )
        return private_page(request, page, page_lang)
    return JSONResponse(view.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


async def _act(request: Request, ticket_id: str, action: ManualAction) -> Response:
    html = wants_html(request)
    fields = await read_fields(request)
    if isinstance(fields, str):
        bad_body = ActionFailure(400, "bad_body", fields, "Yêu cầu không đúng định dạng.")
        return _error(request, html, bad_body)
    exp, sig = fields.get("exp"), fields.get("sig")
    opened = await _opened(request, html, ticket_id, exp, sig)
    if isinstance(opened, Response):
        return opened
    runtime, check, act_until = opened
    if act_until is not None and datetime.now(UTC) >= act_until:
        refusal = LinkCheck(LinkReason.VIEW_ONLY, check.expires_at)
        return _link_refused(request, html, refusal, at=act_until)
    lang_field = fields.get("lang")
    query = {"exp": exp or "", "sig": sig or ""}
    if is_lang(lang_field):
        query["lang"] = lang_field
    back = f"{ticket_path(ticket_id)}?{urlencode(query)}"
    name = fields.get("name", "").strip()
    if len(name) > MAX_NAME_CHARS:
        too_long = ActionFailure(
            422,
            "name_too_long",
            f"name is longer than {MAX_NAME_CHARS} characters",
            f"Tên người xử lý dài quá {MAX_NAME_CHARS} ký tự.",
        )
        return _error(request, html, too_long, back=back)
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None:
        return _error(request, html, ticket_not_found(ticket_id))
    if not name:
        isp_id = ticket.ticket.isp
        isp = runtime.inventory.isps.get(isp_id) if isp_id else None
        name = isp.name if isp is not None else (isp_id or "nhà mạng")
    now = datetime.now(UTC)
    if action is ManualAction.NOTE:
        visibility = note_visibility(fields)
        if isinstance(visibility, ActionFailure):
            return _error(request, html, visibility, back=back)
        if visibility == INTERNAL:
            text = internal_note_text(fields.get("text", ""))
            if isinstance(text, ActionFailure):
                return _error(request, html, text, back=back)
            await runtime.store.add_internal_note(ticket_id, ActorKind.ISP.value, name, text, now)
            if html:
                return RedirectResponse(f"{back}&done=internal_note", status_code=303)
            kept = await _view(runtime, ticket_id, check, act_until)
            assert kept is not None  # it was just read
            return JSONResponse(kept.model_dump(mode="json"))
    actor = Actor(ActorKind.ISP, name)
    result = await apply_action(runtime, ticket_id, action, actor, fields.get("text", ""), now)
    if isinstance(result, ActionFailure):
        return _error(request, html, result, back=back)
    if html:
        # Post/redirect/get: a reload shows the page instead of sending the form again.
        return RedirectResponse(f"{back}&done={action.value}", status_code=303)
    view = await _view(runtime, ticket_id, check, act_until)
    assert view is not None  # it was just changed
    return JSONResponse(view.model_dump(mode="json"))


class IspActionIn(BaseModel):
    """The fields of an action (as a form or JSON): the link's exp and sig, who, what."""

    exp: str
    sig: str
    name: str | None = None  # default: the ticket's ISP
    text: str | None = None  # required for a note
    # A note's audience: "public" (default: the ticket's log, the commune's status page, the
    # notified) or "internal" (the ISP and provincial IT only, never the status page).
    visibility: str | None = None
    lang: str | None = None  # the page language to come back to (browsers)


_ACTION_DOC: dict[int | str, dict[str, object]] = {
    **_LINK_ERRORS,
    400: {"description": "The body is neither a form nor a JSON object"},
    409: {"description": "Refused by the ticket's lifecycle (already acknowledged, resolved)"},
    422: {"description": "A note without text, or a text too long"},
}
_BODY_DOC: dict[str, object] = {
    "requestBody": {
        "content": {
            "application/x-www-form-urlencoded": {"schema": IspActionIn.model_json_schema()},
            "application/json": {"schema": IspActionIn.model_json_schema()},
        }
    }
}


# The three actions, one route each (POST /t/{id}/acknowledge, /note, /resolve): what the API's
# documentation says of each. They differ in nothing else.
_ACTIONS: tuple[ActionDoc, ...] = (
    (
        ManualAction.ACKNOWLEDGE,
        "Acknowledge a ticket through its signed link",
        "Take the ticket: escalation and reminders stop. Browsers are sent back to the page.",
    ),
    (
        ManualAction.NOTE,
        "Add a note through the signed link",
        "A note in the ticket's log, told to those already notified.",
    ),
    (
        ManualAction.RESOLVE,
        "Resolve a ticket through its signed link",
        "Say it is fixed; the ticket reopens if the link is in fact still bad.",
    ),
)


def _action_endpoint(action: ManualAction) -> Callable[[str, Request], Awaitable[Response]]:
    async def endpoint(ticket_id: str, request: Request) -> Response:
        return await _act(request, ticket_id, action)

    return endpoint


add_action_routes(
    router,
    "/t/{{ticket_id}}/{action}",
    _ACTIONS,
    _action_endpoint,
    name="isp_{action}",
    response_model=IspTicketView,
    responses=_ACTION_DOC,
    openapi_extra=_BODY_DOC,
)
