"""ISP ticket pages: evidence and actions through an expiring signed link, no account needed.

GET /t/{id}?exp&sig shows the ticket (JSON, or a page in Vietnamese — English with ?lang=en —
when the browser asks for HTML); POST /t/{id}/acknowledge, /note and /resolve act on it with the
same exp and sig (in the query, a form or a JSON body). Browsers' forms work without JavaScript
and are answered by a redirect back to the page (post/redirect/get). The link is checked before
anything else: a forged, altered or expired link gets 403 and learns nothing, not even whether
the ticket exists.

What the ISP sees: the commune, the link's name, its circuit ID and ISP, the problem and since
when, the downtime so far, the first bad round and the worst measurements, the router's WAN
interface state and utilization, a loss/latency chart when the history is there, and the whole
log, and the path trace taken when the ticket opened (where the path toward the subject stopped,
hop by hop, with the routers' addresses: they are the ISP's own). Not shown: contacts, SNMP
credentials, other monitored addresses (the circuit ID names the line in the ISP's own systems)
— see docs/isp-and-admin-pages.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from alerts.model import PathTrace
from alerts.subject import SubjectKey
from alerts.tickets import Actor, ActorKind
from netwatch.health import link_id
from netwatch.inventory.models import LOCAL_TZ
from netwatch.notify.messages import format_time_vi
from netwatch.notify.pathtext import format_rtt, hide_target, path_summary
from netwatch.signing import LinkCheck, LinkReason, LinkSigner, ticket_path
from netwatch.web.api import (
    ActionFailure,
    EventView,
    ManualAction,
    TicketDetail,
    TicketView,
    apply_action,
    ticket_detail,
    ticket_not_found,
)
from netwatch.web.charts import chart_data, latency_loss_chart
from netwatch.web.i18n import (
    LANGS,
    TIMEZONE_NOTE,
    Lang,
    fmt_duration,
    fmt_number,
    fmt_percent,
    fmt_time,
    is_lang,
    pick_lang,
)
from netwatch.web.layout import language_urls, page_response, render_page

if TYPE_CHECKING:
    from netwatch.web.app import Runtime

router = APIRouter(tags=["isp"])
MAX_BODY_BYTES = 16_384
MAX_NAME_CHARS = 100

Words = Mapping[Lang, str]

# Page-specific rules on top of the shared stylesheet: the log as a timeline, the forms.
TICKET_CSS = (
    "ol.timeline{list-style:none;margin:.5rem 0;padding:0;border-left:3px solid #12355b}"
    "ol.timeline li{margin:0 0 .6rem;padding:.1rem 0 .1rem .75rem}"
    "ol.timeline time{display:block;font-size:.875rem;color:#4a4a4a}"
    "ol.timeline .what{font-weight:600}"
    "form.action{border:1px solid #bbb;border-radius:.35rem;padding:.6rem .8rem;margin:.75rem 0}"
    "form.action h3{margin:0 0 .4rem}"
    "form.action label{display:block;font-weight:600;margin:.4rem 0 .15rem}"
    "form.action input[type=text],form.action textarea{width:100%}"
    "form.action button{margin-top:.5rem}"
    "table.measures td,table.measures th,table.hops td,table.hops th{overflow-wrap:normal}"
    "table.hops tr.stop th,table.hops tr.stop td{font-weight:700}"
    ".nowrap{white-space:nowrap}"
)

TICKET_STATE: Mapping[str, Words] = {
    "open": {"vi": "Đang mở — chưa tiếp nhận", "en": "Open — not yet acknowledged"},
    "acknowledged": {"vi": "Đã tiếp nhận — đang xử lý", "en": "Acknowledged — being worked on"},
    "resolved": {"vi": "Đã đóng", "en": "Resolved"},
}
TICKET_STATE_CSS = {"open": "st-down", "acknowledged": "st-slow", "resolved": "st-ok"}
KIND: Mapping[str, Words] = {
    "link_fault": {"vi": "Sự cố đường truyền", "en": "Link fault"},
    "capacity": {"vi": "Quá tải băng thông", "en": "Capacity (line full)"},
    "upstream_outage": {
        "vi": "Sự cố tại điểm kết nối của nhà mạng",
        "en": "Outage at the ISP's upstream node",
    },
    "portal_outage": {"vi": "Cổng dịch vụ công gián đoạn", "en": "Public service portal outage"},
    "monitor_connectivity": {
        "vi": "Hệ thống giám sát mất kết nối",
        "en": "The monitor lost its own connectivity",
    },
}
PROBLEM: Mapping[str, Words] = {
    "down": {"vi": "Mất kết nối", "en": "Down"},
    "lossy": {"vi": "Mất gói", "en": "Packet loss"},
    "slow": {"vi": "Chậm (độ trễ cao)", "en": "Slow (high latency)"},
    "congested": {"vi": "Quá tải", "en": "Congested"},
    "failing": {"vi": "Gián đoạn", "en": "Failing"},
    "ok": {"vi": "Bình thường", "en": "Normal"},
}
DETAIL: Mapping[str, Words] = {
    "interface_down": {
        "vi": "cổng WAN của bộ định tuyến bị ngắt",
        "en": "the router's WAN interface is down",
    },
    "router_rebooted": {"vi": "bộ định tuyến vừa khởi động lại", "en": "the router just rebooted"},
    "router_unreachable": {
        "vi": "bộ định tuyến cũng không phản hồi SNMP",
        "en": "the router does not answer SNMP either",
    },
    "no_echo": {"vi": "không có phản hồi ping", "en": "no ping replies"},
}
EVENT: Mapping[str, Words] = {
    "opened": {"vi": "Mở phiếu", "en": "Ticket opened"},
    "reopened": {"vi": "Mở lại phiếu", "en": "Ticket reopened"},
    "state_changed": {"vi": "Tình trạng thay đổi", "en": "State changed"},
    "kind_changed": {"vi": "Loại sự cố thay đổi", "en": "Kind of problem changed"},
    "evidence": {"vi": "Cập nhật số liệu", "en": "Evidence updated"},
    "recovering": {"vi": "Đường truyền đang phục hồi", "en": "Link recovering"},
    "line_back": {
        "vi": "Đường truyền đã hoạt động trở lại (đang theo dõi trước khi đóng phiếu)",
        "en": "Line back (watched before the ticket closes)",
    },
    "bad_again": {"vi": "Sự cố lặp lại", "en": "Bad again"},
    "recovery_held": {"vi": "Tạm dừng theo dõi phục hồi", "en": "Recovery watch paused"},
    "cleared": {"vi": "Sự cố đã hết", "en": "Problem cleared"},
    "auto_resolved": {
        "vi": "Tự động đóng (đường truyền đã ổn định)",
        "en": "Resolved automatically (the link held normal)",
    },
    "linked": {"vi": "Gộp vào sự cố cấp trên", "en": "Linked to an upstream incident"},
    "unlinked": {"vi": "Tách khỏi sự cố cấp trên", "en": "Unlinked from the upstream incident"},
    "maintenance_started": {"vi": "Bắt đầu bảo trì", "en": "Maintenance started"},
    "maintenance_ended": {"vi": "Kết thúc bảo trì", "en": "Maintenance ended"},
    "escalated": {"vi": "Chuyển cấp xử lý", "en": "Escalated"},
    "reminded": {"vi": "Nhắc lại", "en": "Reminder sent"},
    "acknowledged": {"vi": "Tiếp nhận", "en": "Acknowledged"},
    "resolved": {"vi": "Đóng phiếu", "en": "Resolved"},
    "note": {"vi": "Ghi chú", "en": "Note"},
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
DONE: Mapping[str, Words] = {
    "acknowledge": {
        "vi": "Đã ghi nhận: phiếu đã được tiếp nhận. Việc nhắc và chuyển cấp dừng lại.",
        "en": "Done: the ticket is acknowledged. Reminders and escalation stop.",
    },
    "note": {"vi": "Đã thêm ghi chú vào nhật ký phiếu.", "en": "The note is in the ticket's log."},
    "resolve": {
        "vi": "Đã đóng phiếu. Nếu đường truyền vẫn lỗi, phiếu sẽ tự mở lại.",
        "en": "The ticket is resolved. It reopens by itself if the link is still bad.",
    },
}
L: Mapping[str, Words] = {
    "ticket": {"vi": "Phiếu sự cố", "en": "Trouble ticket"},
    "summary": {"vi": "Tóm tắt", "en": "Summary"},
    "ticket_state": {"vi": "Trạng thái phiếu", "en": "Ticket state"},
    "kind": {"vi": "Loại sự cố", "en": "Kind"},
    "problem": {"vi": "Tình trạng", "en": "Problem"},
    "commune": {"vi": "Xã/phường", "en": "Commune"},
    "code": {"vi": "mã", "en": "code"},
    "link": {"vi": "Đường truyền", "en": "Link"},
    "circuit": {"vi": "Mã kênh truyền", "en": "Circuit ID"},
    "isp": {"vi": "Nhà mạng", "en": "ISP"},
    "affected": {"vi": "Các đường truyền bị ảnh hưởng", "en": "Affected links"},
    "opened_at": {"vi": "Mở phiếu lúc", "en": "Opened"},
    "acked_at": {"vi": "Tiếp nhận lúc", "en": "Acknowledged"},
    "resolved_at": {"vi": "Đóng lúc", "en": "Resolved"},
    "not_acked": {"vi": "Chưa tiếp nhận", "en": "Not yet"},
    "first_bad": {"vi": "Bắt đầu có sự cố", "en": "Problem began"},
    "downtime": {"vi": "Thời gian gián đoạn đến nay", "en": "Downtime so far"},
    "evidence": {"vi": "Số liệu đo", "en": "Evidence"},
    "measure": {"vi": "Chỉ số", "en": "Measure"},
    "first_round": {"vi": "Lúc đầu", "en": "At first"},
    "worst": {"vi": "Xấu nhất", "en": "Worst"},
    "now": {"vi": "Hiện tại", "en": "Now"},
    "loss": {"vi": "Mất gói", "en": "Packet loss"},
    "rtt": {"vi": "Độ trễ (RTT)", "en": "Latency (RTT)"},
    "interface": {"vi": "Cổng WAN", "en": "WAN interface"},
    "utilization": {"vi": "Băng thông dùng", "en": "Utilization"},
    "in_out": {"vi": "vào / ra", "en": "in / out"},
    "measured_at": {"vi": "Đo lúc", "en": "Measured at"},
    "if_up": {"vi": "Hoạt động (up)", "en": "Up"},
    "if_down": {"vi": "Bị ngắt (down)", "en": "Down"},
    "unknown": {"vi": "Không rõ", "en": "Unknown"},
    "chart": {"vi": "Mất gói và độ trễ 24 giờ qua", "en": "Loss and latency, last 24 hours"},
    "path": {"vi": "Đường đi khi mở phiếu", "en": "The path when the ticket opened"},
    "hop": {"vi": "Chặng", "en": "Hop"},
    "address": {"vi": "Địa chỉ", "en": "Address"},
    "name": {"vi": "Tên", "en": "Name"},
    "answered": {"vi": "Phản hồi", "en": "Answered"},
    "no_answer": {"vi": "không phản hồi", "en": "no answer"},
    "traced": {"vi": "Đo từ NetWatch lúc {at}.", "en": "Traced from NetWatch at {at}."},
    "log": {"vi": "Diễn biến phiếu", "en": "What happened"},
    "actions": {"vi": "Xử lý phiếu", "en": "Act on the ticket"},
    "ack": {"vi": "Tiếp nhận phiếu", "en": "Acknowledge"},
    "ack_button": {"vi": "Tiếp nhận", "en": "Acknowledge"},
    "add_note": {"vi": "Thêm ghi chú", "en": "Add a note"},
    "note_button": {"vi": "Gửi ghi chú", "en": "Send the note"},
    "resolve": {"vi": "Đóng phiếu (đã khắc phục)", "en": "Resolve (fixed)"},
    "resolve_button": {"vi": "Đóng phiếu", "en": "Resolve"},
    "who": {"vi": "Người xử lý (không bắt buộc)", "en": "Your name (optional)"},
    "note_opt": {"vi": "Ghi chú (không bắt buộc)", "en": "Note (optional)"},
    "note_text": {"vi": "Nội dung", "en": "Text"},
    "fix_text": {"vi": "Đã khắc phục thế nào", "en": "What was fixed"},
    "resolved_note": {
        "vi": "Phiếu đã đóng. Nếu sự cố quay lại, NetWatch sẽ mở lại phiếu và báo cho nhà mạng.",
        "en": "The ticket is resolved. If the problem comes back, NetWatch reopens it and "
        "tells the ISP.",
    },
    "expires": {"vi": "Liên kết có hiệu lực đến", "en": "This link is valid until"},
    "refused_title": {"vi": "Không mở được phiếu", "en": "The ticket cannot be opened"},
    "failed_title": {"vi": "Không thực hiện được", "en": "Could not be done"},
    "back": {"vi": "Quay lại phiếu", "en": "Back to the ticket"},
    "nwatch": {"vi": "NetWatch", "en": "NetWatch"},
    "isp_actor": {"vi": "nhà mạng", "en": "ISP"},
    "it_actor": {"vi": "CNTT tỉnh", "en": "provincial IT"},
}


def w(key: str, lang: Lang) -> str:
    """A label of this module in the page language."""
    return L[key][lang]


def _word(table: Mapping[str, Words], key: str | None, lang: Lang) -> str:
    if not key:
        return "—"
    words = table.get(key)
    return words[lang] if words is not None else key


class IspTicketView(TicketDetail):
    """A ticket as its signed link shows it, with the link's own expiry."""

    link_expires_at: datetime
    link_expires_at_local: str


@dataclass(frozen=True, slots=True)
class LiveLink:
    """The latest round of the ticket's link, as NetWatch measures it now."""

    measured_at: datetime | None
    loss_ratio: float | None
    rtt_median_s: float | None
    interface_up: bool | None
    utilization_in_ratio: float | None
    utilization_out_ratio: float | None


def live_link(runtime: Runtime, view: TicketDetail) -> LiveLink | None:
    """The latest ICMP and SNMP readings of a link ticket's link (None for other tickets)."""
    subject = view.subject
    if subject.commune is None or subject.link is None:
        return None
    key = SubjectKey.link(link_id(subject.commune, subject.link))
    obs = runtime.state.icmp.get(key)
    reading = next(
        (r for o in runtime.state.snmp.values() for r in o.interfaces if r.link_key == key), None
    )
    if obs is None and reading is None:
        return None
    result = obs.result if obs is not None else None
    return LiveLink(
        measured_at=result.started_at if result is not None else None,
        loss_ratio=result.loss_ratio if result is not None else None,
        rtt_median_s=result.rtt_median_s if result is not None else None,
        interface_up=reading.oper_up if reading is not None else None,
        utilization_in_ratio=reading.in_utilization_ratio if reading is not None else None,
        utilization_out_ratio=reading.out_utilization_ratio if reading is not None else None,
    )


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


async def read_fields(request: Request) -> dict[str, str] | str:
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


# --- rendering (shared with the provincial IT view) ------------------------------------------


def actor_words(actor: str, lang: Lang) -> str:
    """Who did it, in words: 'Nguyễn Văn An (nhà mạng)', 'ops (CNTT tỉnh)', 'NetWatch'."""
    kind, _, name = actor.partition(":")
    if kind == ActorKind.ISP.value:
        return f"{name} ({w('isp_actor', lang)})"
    if kind in (ActorKind.PROVINCIAL_IT.value, "token"):
        return f"{name} ({w('it_actor', lang)})"
    return "NetWatch" if actor == "netwatch" else actor


_STATE_TEXT = re.compile(r"^(?:(?P<why>[^:]+): )?(?P<state>[a-z_]+)(?: \((?P<detail>[a-z_]+)\))?$")
_SINCE_TEXT = re.compile(r"^(?P<what>ok|unacknowledged) since (?P<at>\S+)$")
SINCE: Mapping[str, Words] = {
    "ok": {"vi": "Bình thường từ", "en": "Normal since"},
    "unacknowledged": {"vi": "Chưa được tiếp nhận từ", "en": "Not acknowledged since"},
}


def event_text(event: EventView, lang: Lang) -> str:
    """An event's text; NetWatch's own texts are terse ("down (interface_down)"): say them."""
    text = event.text
    if event.actor != "netwatch" or not text:
        return text
    if match := _STATE_TEXT.match(text):
        state, detail = match["state"], match["detail"]
        if state in PROBLEM and (detail is None or detail in DETAIL):
            words = PROBLEM[state][lang] + (f" — {DETAIL[detail][lang]}" if detail else "")
            return f"{match['why']}: {words}" if match["why"] else words
    if match := _SINCE_TEXT.match(text):
        try:
            at = datetime.fromisoformat(match["at"])
        except ValueError:
            return text
        return f"{SINCE[match['what']][lang]} {fmt_time(at, lang)}"
    if text.startswith("level ") and text[6:].isdigit():
        return f"{'Cấp' if lang == 'vi' else 'Level'} {text[6:]}"
    return text


def _ms(seconds: float | None, lang: Lang) -> str:
    return "—" if seconds is None else f"{fmt_number(seconds * 1000, lang, 0)}\u00a0ms"


def _pct(ratio: float | None, lang: Lang) -> str:
    return fmt_percent(ratio, lang, 1).replace(" ", "\u00a0")  # "100,0 %" on one line


def _interface(up: bool | None, lang: Lang) -> str:
    return {True: w("if_up", lang), False: w("if_down", lang), None: w("unknown", lang)}[up]


def problem_words(view: TicketView, lang: Lang) -> str:
    """The problem and what NetWatch knows of its cause, in one phrase."""
    problem = _word(PROBLEM, view.problem_state, lang)
    if view.detail and view.detail in DETAIL:
        problem = f"{problem} — {DETAIL[view.detail][lang]}"
    return problem


def _facts(rows: list[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows)
        + "</dl>"
    )


def summary_html(view: TicketDetail, lang: Lang, now: datetime) -> str:
    """The ticket at a glance: state, problem, where, who, since when, downtime so far."""
    s = view.subject
    state = (
        f'<span class="st {TICKET_STATE_CSS.get(view.state, "st-unknown")}">'
        f"{escape(_word(TICKET_STATE, view.state, lang))}</span>"
    )
    where = (
        f"{escape(s.commune_name or '')} ({w('code', lang)} {escape(s.commune)})"
        if s.commune
        else escape(s.name)
    )
    rows = [
        (w("ticket_state", lang), state),
        (w("kind", lang), escape(_word(KIND, view.kind, lang))),
        (w("problem", lang), escape(problem_words(view, lang))),
        (w("commune", lang), where),
    ]
    if s.link:
        rows.append((w("link", lang), escape(s.link)))
    if s.circuit:
        rows.append((w("circuit", lang), f"<strong>{escape(s.circuit)}</strong>"))
    if s.isp_name:
        rows.append((w("isp", lang), escape(s.isp_name)))
    if len(view.evidence.links) > 1:
        rows.append((w("affected", lang), escape(", ".join(view.evidence.links))))
    rows += [
        (w("first_bad", lang), escape(fmt_time(view.first_bad_at, lang))),
        (w("opened_at", lang), escape(fmt_time(view.opened_at, lang))),
        (
            w("acked_at", lang),
            escape(fmt_time(view.acknowledged_at, lang))
            if view.acknowledged_at
            else escape(w("not_acked", lang)),
        ),
    ]
    if view.resolved_at:
        rows.append((w("resolved_at", lang), escape(fmt_time(view.resolved_at, lang))))
    rows.append(
        (w("downtime", lang), f"<strong>{escape(fmt_duration(view.downtime_s, lang))}</strong>")
    )
    return _facts(rows)


def evidence_html(view: TicketDetail, live: LiveLink | None, lang: Lang) -> str:
    """First bad round, worst, and now: loss, latency, interface, utilization."""
    ev = view.evidence
    now_loss = _pct(live.loss_ratio, lang) if live else "—"
    now_rtt = _ms(live.rtt_median_s, lang) if live else "—"
    now_if = _interface(live.interface_up, lang) if live else "—"
    now_util = "—"
    if live and (live.utilization_in_ratio is not None or live.utilization_out_ratio is not None):
        now_util = (
            f"{_pct(live.utilization_in_ratio, lang)} / {_pct(live.utilization_out_ratio, lang)} "
            f"({w('in_out', lang)})"
        )
    head = (
        f'<tr><th scope="col">{w("measure", lang)}</th>'
        f'<th scope="col">{w("first_round", lang)}</th>'
        f'<th scope="col">{w("worst", lang)}</th>'
        f'<th scope="col">{w("now", lang)}</th></tr>'
    )
    rows = [
        (
            w("loss", lang),
            _pct(ev.first_loss_ratio, lang),
            _pct(ev.worst_loss_ratio, lang),
            now_loss,
        ),
        (
            w("rtt", lang),
            _ms(ev.first_rtt_median_s, lang),
            _ms(ev.worst_rtt_median_s, lang),
            now_rtt,
        ),
        (w("interface", lang), "—", _interface(ev.interface_up, lang), now_if),
        (w("utilization", lang), "—", _pct(ev.worst_utilization_ratio, lang), now_util),
    ]
    body = "".join(
        f'<tr><th scope="row">{escape(a)}</th><td>{escape(b)}</td><td>{escape(c)}</td>'
        f"<td>{escape(d)}</td></tr>"
        for a, b, c, d in rows
    )
    when = (
        f'<p class="muted"><small>{w("first_round", lang)}: '
        f"{escape(fmt_time(view.first_bad_at, lang))}. {w('now', lang)}: "
        f"{escape(fmt_time(live.measured_at if live else None, lang))}.</small></p>"
    )
    return (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{w("evidence", lang)}">'
        f'<table class="measures">{head}{body}</table></div>{when}'
    )


def path_html(path: PathTrace, lang: Lang) -> str:
    """Where the path toward the subject stopped (a sentence), then the hops as a table."""
    vi = lang == "vi"
    last = path.last_hop()
    stop_ttl = last.ttl if last is not None and not path.reached else None
    head = (
        f'<tr><th scope="col">{w("hop", lang)}</th><th scope="col">{w("address", lang)}</th>'
        f'<th scope="col">{w("name", lang)}</th><th scope="col">{w("answered", lang)}</th>'
        f'<th scope="col">{w("rtt", lang)}</th></tr>'
    )
    rows = []
    for hop in path.hops:
        silent = not hop.received
        name = w("no_answer", lang) if silent else hop.name or "—"
        # An answered hop without an address is the traced address, left out for the ISP.
        address = "*" if silent else hop.address or "—"
        rtt = format_rtt(hop.rtt_s, vi=vi).replace(" ", "\u00a0") if hop.rtt_s is not None else "—"
        css = ' class="stop"' if hop.ttl == stop_ttl else ""
        rows.append(
            f'<tr{css}><th scope="row">{hop.ttl}</th><td>{escape(address)}</td>'
            f"<td>{escape(name)}</td><td>{hop.received}/{hop.sent}</td><td>{escape(rtt)}</td></tr>"
        )
    traced = L["traced"][lang].format(at=fmt_time(path.at, lang))
    return (
        f'<p class="path-stop"><strong>{escape(path_summary(path, vi=vi))}</strong></p>'
        f'<div class="scroll" tabindex="0" role="region" aria-label="{w("path", lang)}">'
        f'<table class="hops">{head}{"".join(rows)}</table></div>'
        f'<p class="muted"><small>{escape(traced)}</small></p>'
    )


def timeline_html(view: TicketDetail, lang: Lang) -> str:
    """The ticket's log, oldest first, as a timeline."""
    items = []
    for e in view.events:
        text = event_text(e, lang)
        items.append(
            f'<li><time datetime="{e.at.astimezone(LOCAL_TZ).isoformat(timespec="seconds")}">'
            f"{escape(fmt_time(e.at, lang))}</time>"
            f'<span class="what">{escape(_word(EVENT, e.kind, lang))}</span> — '
            f"{escape(actor_words(e.actor, lang))}"
            + (f"<br>{escape(text)}" if text else "")
            + "</li>"
        )
    return f'<ol class="timeline">{"".join(items)}</ol>'


def forms_html(
    view: TicketDetail,
    lang: Lang,
    action_base: str,
    hidden: Mapping[str, str],
    *,
    ask_name: bool,
) -> str:
    """Acknowledge, note and resolve forms (POST, no JavaScript), as the state allows."""
    hidden_html = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )

    def who(form: str) -> str:
        if not ask_name:
            return ""
        return (
            f'<label for="{form}-name">{w("who", lang)}</label>'
            f'<input type="text" id="{form}-name" name="name" maxlength="{MAX_NAME_CHARS}" '
            'autocomplete="name">'
        )

    forms = []
    if view.state == "open":
        forms.append(
            f'<form class="action" method="post" action="{escape(action_base)}/acknowledge">'
            f"{hidden_html}<h3>{w('ack', lang)}</h3>{who('ack')}"
            f'<label for="ack-text">{w("note_opt", lang)}</label>'
            '<input type="text" id="ack-text" name="text" maxlength="2000">'
            f'<button type="submit">{w("ack_button", lang)}</button></form>'
        )
    forms.append(
        f'<form class="action" method="post" action="{escape(action_base)}/note">{hidden_html}'
        f"<h3>{w('add_note', lang)}</h3>{who('note')}"
        f'<label for="note-text">{w("note_text", lang)}</label>'
        '<textarea id="note-text" name="text" rows="3" maxlength="2000" required></textarea>'
        f'<button type="submit">{w("note_button", lang)}</button></form>'
    )
    if view.state != "resolved":
        forms.append(
            f'<form class="action" method="post" action="{escape(action_base)}/resolve">'
            f"{hidden_html}<h3>{w('resolve', lang)}</h3>{who('resolve')}"
            f'<label for="resolve-text">{w("fix_text", lang)}</label>'
            '<textarea id="resolve-text" name="text" rows="3" maxlength="2000"></textarea>'
            f'<button type="submit">{w("resolve_button", lang)}</button></form>'
        )
    else:
        forms.insert(0, f'<p class="notice ok">{w("resolved_note", lang)}</p>')
    return "".join(forms)


def ticket_main_html(
    view: TicketDetail,
    lang: Lang,
    *,
    now: datetime,
    live: LiveLink | None,
    chart: str,
    forms: str,
    notice: str = "",
    footnote: str = "",
) -> str:
    """The body of a ticket page: summary, evidence, chart, forms, log."""
    return (
        f"<h1>{w('ticket', lang)} {escape(view.id)}</h1>{notice}"
        f"<h2>{w('summary', lang)}</h2>{summary_html(view, lang, now)}"
        f"<h2>{w('evidence', lang)}</h2>{evidence_html(view, live, lang)}"
        + (
            f"<h2>{w('path', lang)}</h2>{path_html(view.evidence.path, lang)}"
            if view.evidence.path is not None
            else ""
        )
        + (f"<h2>{w('chart', lang)}</h2>{chart}" if chart else "")
        + f"<h2>{w('actions', lang)}</h2>{forms}"
        f"<h2>{w('log', lang)}</h2>{timeline_html(view, lang)}"
        f'<p class="muted"><small>{escape(TIMEZONE_NOTE[lang])}. {footnote}</small></p>'
    )


def chart_html(runtime: Runtime, view: TicketDetail, lang: Lang, now: datetime) -> str:
    """Loss and latency of the ticket's link over the last 24 h (SVG), or "" without history."""
    s = view.subject
    history = runtime.history
    if history is None or s.commune is None or s.link is None:
        return ""
    series = history.series(link_id(s.commune, s.link), now)
    if series is None:
        return ""
    commune = runtime.inventory.commune(s.commune)
    threshold = (
        commune.effective_thresholds(runtime.inventory.thresholds).rtt_ms / 1000
        if commune is not None
        else None
    )
    title = {
        "vi": f"Mất gói và độ trễ 24 giờ qua — {s.commune_name} — {s.link}",
        "en": f"Packet loss and latency, last 24 hours — {s.commune_name} — {s.link}",
    }[lang]
    return latency_loss_chart(
        chart_data(series, now),
        lang=lang,
        title=title,
        chart_id=f"chart-{view.id}",
        rtt_threshold_s=threshold,
    )


def render_ticket_page(
    request: Request,
    runtime: Runtime,
    view: IspTicketView,
    exp: str,
    sig: str,
    lang: Lang,
    done: str | None,
) -> str:
    """The ISP's page: evidence, chart, the acknowledge, note and resolve forms, the log."""
    now = datetime.now(UTC)
    done_words = DONE.get(done or "")
    notice = (
        f'<p class="notice ok" role="status">{escape(done_words[lang])}</p>' if done_words else ""
    )
    hidden = {"exp": exp, "sig": sig, "lang": lang}
    main = ticket_main_html(
        view,
        lang,
        now=now,
        live=live_link(runtime, view),
        chart=chart_html(runtime, view, lang, now),
        forms=forms_html(view, lang, ticket_path(view.id), hidden, ask_name=True),
        notice=notice,
        footnote=escape(f"{w('expires', lang)} {fmt_time(view.link_expires_at, lang)}."),
    )
    # The switch keeps the link (exp, sig) but not the notice of an action just done.
    switch: dict[Lang, str] = {
        code: f"{ticket_path(view.id)}?{urlencode({'exp': exp, 'sig': sig, 'lang': code})}"
        for code in LANGS
    }
    return render_page(
        lang=lang,
        title=f"{w('ticket', lang)} {view.id} — NetWatch",
        main=main,
        switch=switch,
        extra_css=TICKET_CSS,
        robots_noindex=True,
    )


def private_page(request: Request, html: str, lang: Lang, status_code: int = 200) -> Response:
    """A page that must not be cached or leak its address (signed links, sessions)."""
    response = page_response(request, html, lang, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- errors ----------------------------------------------------------------------------------


def error_page(
    request: Request,
    status: int,
    title: Words,
    message: str,
    message_vi: str,
    *,
    back: str | None = None,
) -> Response:
    """A clear page for a refusal: the message in the page language, the other one below."""
    lang = pick_lang(request)
    first, second, other = (
        (message_vi, message, "en") if lang == "vi" else (message, message_vi, "vi")
    )
    back_html = f'<p><a href="{escape(back)}">{w("back", lang)}</a></p>' if back else ""
    main = (
        f"<h1>{escape(title[lang])}</h1>"
        f'<div class="notice" role="alert"><p>{escape(first)}</p></div>'
        f'<p lang="{other}" class="muted"><small>{escape(second)}</small></p>{back_html}'
    )
    html = render_page(
        lang=lang,
        title=f"{title[lang]} — NetWatch",
        main=main,
        switch=language_urls(request),
        robots_noindex=True,
    )
    return private_page(request, html, lang, status)


def _error(
    request: Request,
    html: bool,
    status: int,
    reason: str,
    message: str,
    message_vi: str,
    *,
    title_key: str = "failed_title",
    back: str | None = None,
) -> Response:
    if html:
        return error_page(request, status, L[title_key], message, message_vi, back=back)
    return JSONResponse(
        {"detail": message, "detail_vi": message_vi, "reason": reason}, status_code=status
    )


def _link_refused(request: Request, html: bool, check: LinkCheck) -> Response:
    message, message_vi = LINK_REFUSED[check.reason]
    if check.reason is LinkReason.EXPIRED and check.expires_at is not None:
        message_vi = f"{message_vi} (Hết hạn lúc {format_time_vi(check.expires_at)}.)"
    return _error(
        request, html, 403, check.reason.value, message, message_vi, title_key="refused_title"
    )


def _check(runtime: Runtime | None, ticket_id: str, exp: str | None, sig: str | None) -> LinkCheck:
    notifications = runtime.inventory.notifications if runtime is not None else None
    if notifications is None:
        # No secret configured: NetWatch never issued a link, so none can be valid.
        return LinkCheck(LinkReason.BAD_SIGNATURE)
    signer = LinkSigner.from_notifications(notifications)
    return signer.verify(ticket_id, exp, sig, datetime.now(UTC))


def _starting(request: Request, html: bool) -> Response:
    return _error(
        request,
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
    if detail.evidence.path is not None:
        # Where the path stops, but not the monitored address it was traced toward.
        detail.evidence.path = hide_target(detail.evidence.path)
    return IspTicketView(
        **detail.model_dump(),
        link_expires_at=check.expires_at,
        link_expires_at_local=check.expires_at.astimezone(LOCAL_TZ).isoformat(),
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
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    check = _check(runtime, ticket_id, exp, sig)
    if not check.ok:
        return _link_refused(request, html, check)
    if runtime is None or runtime.store is None:
        return _starting(request, html)
    view = await _view(runtime, ticket_id, check)
    if view is None:
        failure = ticket_not_found(ticket_id)
        return _error(
            request, html, failure.status, failure.reason, failure.message, failure.message_vi
        )
    if html:
        page_lang = pick_lang(request)
        page = render_ticket_page(request, runtime, view, exp or "", sig or "", page_lang, done)
        return private_page(request, page, page_lang)
    return JSONResponse(view.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


async def _act(request: Request, ticket_id: str, action: ManualAction) -> Response:
    html = wants_html(request)
    fields = await read_fields(request)
    if isinstance(fields, str):
        return _error(request, html, 400, "bad_body", fields, "Yêu cầu không đúng định dạng.")
    exp, sig = fields.get("exp"), fields.get("sig")
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    check = _check(runtime, ticket_id, exp, sig)
    if not check.ok:
        return _link_refused(request, html, check)
    if runtime is None or runtime.store is None or runtime.alerting is None:
        return _starting(request, html)
    lang_field = fields.get("lang")
    query = {"exp": exp or "", "sig": sig or ""}
    if is_lang(lang_field):
        query["lang"] = lang_field
    back = f"{ticket_path(ticket_id)}?{urlencode(query)}"
    name = fields.get("name", "").strip()
    if len(name) > MAX_NAME_CHARS:
        return _error(
            request,
            html,
            422,
            "name_too_long",
            f"name is longer than {MAX_NAME_CHARS} characters",
            f"Tên người xử lý dài quá {MAX_NAME_CHARS} ký tự.",
            back=back,
        )
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None:
        failure = ticket_not_found(ticket_id)
        return _error(
            request, html, failure.status, failure.reason, failure.message, failure.message_vi
        )
    if not name:
        isp = runtime.inventory.isps.get(ticket.isp) if ticket.isp else None
        name = isp.name if isp is not None else (ticket.isp or "nhà mạng")
    now = datetime.now(UTC)
    actor = Actor(ActorKind.ISP, name)
    result = await apply_action(runtime, ticket_id, action, actor, fields.get("text", ""), now)
    if isinstance(result, ActionFailure):
        return _error(
            request,
            html,
            result.status,
            result.reason,
            result.message,
            result.message_vi,
            back=back,
        )
    if html:
        # Post/redirect/get: a reload shows the page instead of sending the form again.
        return RedirectResponse(f"{back}&done={action.value}", status_code=303)
    view = await _view(runtime, ticket_id, check)
    assert view is not None  # it was just changed
    return JSONResponse(view.model_dump(mode="json"))


class IspActionIn(BaseModel):
    """The fields of an action (as a form or JSON): the link's exp and sig, who, what."""

    exp: str
    sig: str
    name: str | None = None  # default: the ticket's ISP
    text: str | None = None  # required for a note
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
