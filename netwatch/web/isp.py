"""ISP ticket pages: evidence and actions through an expiring signed link, no account needed.

GET /t/{id}?exp&sig shows the ticket (JSON, or a Vietnamese page when the browser asks for
HTML); POST /t/{id}/acknowledge, /note and /resolve act on it with the same exp and sig (in the
query, a form or a JSON body). The link is checked before anything else: a forged, altered or
expired link gets 403 and learns nothing, not even whether the ticket exists.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel

from alerts.tickets import Actor, ActorKind
from netwatch.inventory.models import LOCAL_TZ
from netwatch.notify.messages import format_duration_vi, format_time_vi
from netwatch.signing import LinkCheck, LinkReason, LinkSigner, ticket_path
from netwatch.web.api import (
    ActionFailure,
    EventView,
    ManualAction,
    TicketDetail,
    apply_action,
    ticket_detail,
    ticket_not_found,
)

if TYPE_CHECKING:
    from netwatch.web.app import Runtime

router = APIRouter(tags=["isp"])
MAX_BODY_BYTES = 16_384
MAX_NAME_CHARS = 100

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:48rem;padding:1rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}td,th{padding:.35rem .5rem;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}form{margin:.75rem 0;padding:.75rem;border:1px solid #ccc}
input[type=text],textarea{width:100%;box-sizing:border-box}button{margin-top:.5rem}
.error{border-left:4px solid #b00020;padding:.5rem .75rem;background:#fdf1f1}
"""
TICKET_STATE_VI = {
    "open": "Đang mở — chưa tiếp nhận",
    "acknowledged": "Đã tiếp nhận — đang xử lý",
    "resolved": "Đã đóng",
}
KIND_VI = {
    "link_fault": "Sự cố đường truyền",
    "capacity": "Quá tải băng thông",
    "upstream_outage": "Sự cố tại điểm kết nối của nhà mạng",
    "portal_outage": "Cổng dịch vụ công gián đoạn",
    "monitor_connectivity": "Hệ thống giám sát mất kết nối",
}
PROBLEM_VI = {
    "down": "Mất kết nối",
    "lossy": "Mất gói",
    "slow": "Chậm (độ trễ cao)",
    "congested": "Quá tải",
    "failing": "Gián đoạn",
    "ok": "Bình thường",
}
DETAIL_VI = {
    "interface_down": "cổng WAN của bộ định tuyến bị ngắt",
    "router_rebooted": "bộ định tuyến vừa khởi động lại",
    "router_unreachable": "bộ định tuyến cũng không phản hồi SNMP",
    "no_echo": "không có phản hồi ping",
}
EVENT_VI = {
    "opened": "Mở phiếu",
    "reopened": "Mở lại phiếu",
    "state_changed": "Tình trạng thay đổi",
    "kind_changed": "Loại sự cố thay đổi",
    "evidence": "Cập nhật số liệu",
    "recovering": "Đường truyền đang phục hồi",
    "bad_again": "Sự cố lặp lại",
    "recovery_held": "Tạm dừng theo dõi phục hồi",
    "cleared": "Sự cố đã hết",
    "auto_resolved": "Tự động đóng (đường truyền đã ổn định)",
    "linked": "Gộp vào sự cố cấp trên",
    "unlinked": "Tách khỏi sự cố cấp trên",
    "maintenance_started": "Bắt đầu bảo trì",
    "maintenance_ended": "Kết thúc bảo trì",
    "escalated": "Chuyển cấp xử lý",
    "reminded": "Nhắc lại",
    "acknowledged": "Tiếp nhận",
    "resolved": "Đóng phiếu",
    "note": "Ghi chú",
}
LINK_REFUSED = {
    LinkReason.MALFORMED: (
        "this ticket link is incomplete or damaged (exp and sig are required)",
        "Liên kết phiếu không đầy đủ hoặc bị hỏng. Hãy mở lại đúng liên kết trong thông báo.",
    ),
    LinkReason.BAD_SIGNATURE: (
        "this ticket link is not valid: it was not issued by NetWatch, or it was altered",
        "Liên kết không hợp lệ: liên kết không do NetWatch cấp hoặc đã bị sửa đổi.",
    ),
    LinkReason.EXPIRED: (
        "this ticket link has expired; the next notice about the ticket carries a new one",
        "Liên kết đã hết hạn. Thông báo tiếp theo về phiếu sẽ kèm liên kết mới; "
        "hoặc liên hệ bộ phận CNTT của tỉnh.",
    ),
}


class IspTicketView(TicketDetail):
    """A ticket as its signed link shows it, with the link's own expiry."""

    link_expires_at: datetime
    link_expires_at_local: str


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


async def _fields(request: Request) -> dict[str, str] | str:
    """The query and body fields (body wins), or why the body cannot be read."""
    fields = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return fields
    if len(raw) > MAX_BODY_BYTES:
        return f"the request body is larger than {MAX_BODY_BYTES} bytes"
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the request body is not UTF-8"
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            return "the request body is not valid JSON"
        if not isinstance(data, dict) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in data.values()
        ):
            return "the JSON body must be an object of strings (exp, sig, name, text)"
        fields.update({str(k): str(v) for k, v in data.items()})
    elif content_type in ("application/x-www-form-urlencoded", ""):
        fields.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
    else:
        return "send the fields as a form or as JSON"
    return fields


# --- pages -----------------------------------------------------------------------------------


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} — NetWatch</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _error(html: bool, status: int, reason: str, message: str, message_vi: str) -> Response:
    if html:
        body = (
            "<h1>Không thực hiện được</h1>"
            f'<p class="error">{escape(message_vi)}</p>'
            f'<p lang="en"><small>{escape(message)}</small></p>'
        )
        return HTMLResponse(_page("Lỗi", body), status_code=status)
    return JSONResponse(
        {"detail": message, "detail_vi": message_vi, "reason": reason}, status_code=status
    )


def _failure(html: bool, failure: ActionFailure) -> Response:
    return _error(html, failure.status, failure.reason, failure.message, failure.message_vi)


def _link_refused(html: bool, check: LinkCheck) -> Response:
    message, message_vi = LINK_REFUSED[check.reason]
    if check.reason is LinkReason.EXPIRED and check.expires_at is not None:
        message_vi = f"{message_vi} (Hết hạn lúc {format_time_vi(check.expires_at)}.)"
    return _error(html, 403, check.reason.value, message, message_vi)


def _actor_vi(actor: str) -> str:
    kind, _, name = actor.partition(":")
    if kind == ActorKind.ISP.value:
        return f"{name} (nhà mạng)"
    if kind == ActorKind.PROVINCIAL_IT.value:
        return f"{name} (CNTT tỉnh)"
    return "NetWatch" if actor == "netwatch" else actor


def _event_text(event: EventView) -> str:
    # NetWatch's own events carry the problem state ("lossy"): say it in words.
    return PROBLEM_VI.get(event.text, event.text) if event.actor == "netwatch" else event.text


def _percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f}%".replace(".", ",")


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f} ms"


def render_ticket_page(view: IspTicketView, exp: str, sig: str) -> str:
    """The ISP's page: evidence, the log, and the acknowledge, note and resolve forms."""
    s = view.subject
    problem = PROBLEM_VI.get(view.problem_state or "", view.problem_state or "—")
    if view.detail and view.detail in DETAIL_VI:
        problem = f"{problem} — {DETAIL_VI[view.detail]}"
    interface = {True: "Hoạt động", False: "Bị ngắt (down)", None: "Không rõ"}[
        view.evidence.interface_up
    ]
    rows = [
        ("Trạng thái phiếu", TICKET_STATE_VI.get(view.state, view.state)),
        ("Loại sự cố", KIND_VI.get(view.kind, view.kind)),
        ("Tình trạng", problem),
        ("Xã/phường", f"{s.commune_name} (mã {s.commune})" if s.commune else s.name),
        ("Đường truyền", s.link or "—"),
        ("Mã kênh truyền", s.circuit or "—"),
        ("Nhà mạng", s.isp_name or "—"),
        ("Bắt đầu có sự cố", format_time_vi(view.first_bad_at) if view.first_bad_at else "—"),
        ("Thời gian gián đoạn đến nay", format_duration_vi(view.downtime_s)),
        ("Tỷ lệ mất gói cao nhất", _percent(view.evidence.worst_loss_ratio)),
        ("Độ trễ (RTT) cao nhất", _ms(view.evidence.worst_rtt_median_s)),
        ("Cổng WAN của bộ định tuyến", interface),
    ]
    if len(view.evidence.links) > 1:
        rows.append(("Các đường truyền bị ảnh hưởng", ", ".join(view.evidence.links)))
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    log = "".join(
        f"<tr><td>{escape(format_time_vi(e.at))}</td><td>{escape(_actor_vi(e.actor))}</td>"
        f"<td>{escape(EVENT_VI.get(e.kind, e.kind))}</td><td>{escape(_event_text(e))}</td></tr>"
        for e in view.events
    )
    base = ticket_path(view.id)
    hidden = (
        f'<input type="hidden" name="exp" value="{escape(exp)}">'
        f'<input type="hidden" name="sig" value="{escape(sig)}">'
    )
    who = (
        '<label>Người xử lý (không bắt buộc)<input type="text" name="name" '
        f'maxlength="{MAX_NAME_CHARS}"></label>'
    )
    forms = []
    if view.state == "open":
        forms.append(
            f'<form method="post" action="{base}/acknowledge">{hidden}'
            f"<h3>Tiếp nhận phiếu</h3>{who}"
            '<label>Ghi chú (không bắt buộc)<input type="text" name="text"></label>'
            "<button>Tiếp nhận</button></form>"
        )
    forms.append(
        f'<form method="post" action="{base}/note">{hidden}<h3>Thêm ghi chú</h3>{who}'
        '<label>Nội dung<textarea name="text" rows="3" required></textarea></label>'
        "<button>Gửi ghi chú</button></form>"
    )
    if view.state != "resolved":
        forms.append(
            f'<form method="post" action="{base}/resolve">{hidden}'
            f"<h3>Đóng phiếu (đã khắc phục)</h3>{who}"
            '<label>Nội dung khắc phục<textarea name="text" rows="3"></textarea></label>'
            "<button>Đóng phiếu</button></form>"
        )
    body = (
        f"<h1>Phiếu sự cố {escape(view.id)}</h1>"
        f"<table>{table}</table>"
        "<h2>Nhật ký phiếu</h2>"
        "<table><tr><th>Thời gian</th><th>Người thực hiện</th><th>Việc</th><th>Nội dung</th>"
        f"</tr>{log}</table>"
        f"{''.join(forms)}"
        f"<p><small>Liên kết có hiệu lực đến {escape(format_time_vi(view.link_expires_at))}. "
        "Thời gian theo giờ Việt Nam (UTC+7).</small></p>"
    )
    return _page(f"Phiếu {view.id}", body)


# --- endpoints -------------------------------------------------------------------------------


def _check(runtime: Runtime | None, ticket_id: str, exp: str | None, sig: str | None) -> LinkCheck:
    notifications = runtime.inventory.notifications if runtime is not None else None
    if notifications is None:
        # No secret configured: NetWatch never issued a link, so none can be valid.
        return LinkCheck(LinkReason.BAD_SIGNATURE)
    signer = LinkSigner.from_notifications(notifications)
    return signer.verify(ticket_id, exp, sig, datetime.now(UTC))


def _starting(html: bool) -> Response:
    return _error(
        html,
        503,
        "starting",
        "NetWatch is starting; try again in a few seconds",
        "NetWatch đang khởi động, vui lòng thử lại sau ít giây.",
    )


async def _view(runtime: Runtime, ticket_id: str, check: LinkCheck) -> IspTicketView | None:
    assert runtime.store is not None
    assert check.expires_at is not None  # a valid link has its expiry
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None:
        return None
    detail = await ticket_detail(runtime, ticket, datetime.now(UTC))
    return IspTicketView(
        **detail.model_dump(),
        link_expires_at=check.expires_at,
        link_expires_at_local=check.expires_at.astimezone(LOCAL_TZ).isoformat(),
    )


_LINK_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": "Forged, altered or expired link: nothing is shown or changed"},
    404: {"description": "No such ticket"},
}


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
) -> Response:
    """Evidence and log of one ticket; a Vietnamese page with the action forms for browsers."""
    html = wants_html(request)
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    check = _check(runtime, ticket_id, exp, sig)
    if not check.ok:
        return _link_refused(html, check)
    if runtime is None or runtime.store is None:
        return _starting(html)
    view = await _view(runtime, ticket_id, check)
    if view is None:
        return _failure(html, ticket_not_found(ticket_id))
    if html:
        return HTMLResponse(render_ticket_page(view, exp or "", sig or ""))
    return JSONResponse(view.model_dump(mode="json"))


async def _act(request: Request, ticket_id: str, action: ManualAction) -> Response:
    html = wants_html(request)
    fields = await _fields(request)
    if isinstance(fields, str):
        return _error(html, 400, "bad_body", fields, "Yêu cầu không đúng định dạng.")
    exp, sig = fields.get("exp"), fields.get("sig")
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    check = _check(runtime, ticket_id, exp, sig)
    if not check.ok:
        return _link_refused(html, check)
    if runtime is None or runtime.store is None or runtime.alerting is None:
        return _starting(html)
    name = fields.get("name", "").strip()
    if len(name) > MAX_NAME_CHARS:
        return _error(
            html,
            422,
            "name_too_long",
            f"name is longer than {MAX_NAME_CHARS} characters",
            f"Tên người xử lý dài quá {MAX_NAME_CHARS} ký tự.",
        )
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None:
        return _failure(html, ticket_not_found(ticket_id))
    if not name:
        isp = runtime.inventory.isps.get(ticket.isp) if ticket.isp else None
        name = isp.name if isp is not None else (ticket.isp or "nhà mạng")
    now = datetime.now(UTC)
    actor = Actor(ActorKind.ISP, name)
    result = await apply_action(runtime, ticket_id, action, actor, fields.get("text", ""), now)
    if isinstance(result, ActionFailure):
        return _failure(html, result)
    if html:
        # Post/redirect/get: a reload shows the page instead of sending the form again.
        query = urlencode({"exp": exp or "", "sig": sig or ""})
        return RedirectResponse(f"{ticket_path(ticket_id)}?{query}", status_code=303)
    view = await _view(runtime, ticket_id, check)
    assert view is not None  # it was just changed
    return JSONResponse(view.model_dump(mode="json"))


class IspActionIn(BaseModel):
    """The fields of an action (as a form or JSON): the link's exp and sig, who, what."""

    exp: str
    sig: str
    name: str | None = None  # default: the ticket's ISP
    text: str | None = None  # required for a note


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


@router.post(
    "/t/{ticket_id}/acknowledge",
    response_model=IspTicketView,
    summary="Acknowledge a ticket through its signed link",
    responses=_ACTION_DOC,
    openapi_extra=_BODY_DOC,
)
async def isp_acknowledge(ticket_id: str, request: Request) -> Response:
    """Take the ticket: escalation and reminders stop. Browsers are sent back to the page."""
    return await _act(request, ticket_id, ManualAction.ACKNOWLEDGE)


@router.post(
    "/t/{ticket_id}/note",
    response_model=IspTicketView,
    summary="Add a note through the signed link",
    responses=_ACTION_DOC,
    openapi_extra=_BODY_DOC,
)
async def isp_note(ticket_id: str, request: Request) -> Response:
    """A note in the ticket's log, told to those already notified."""
    return await _act(request, ticket_id, ManualAction.NOTE)


@router.post(
    "/t/{ticket_id}/resolve",
    response_model=IspTicketView,
    summary="Resolve a ticket through its signed link",
    responses=_ACTION_DOC,
    openapi_extra=_BODY_DOC,
)
async def isp_resolve(ticket_id: str, request: Request) -> Response:
    """Say it is fixed; the ticket reopens if the link is in fact still bad."""
    return await _act(request, ticket_id, ManualAction.RESOLVE)
