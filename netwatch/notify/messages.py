"""Ticket notices rendered for people and machines: e-mail, webhook JSON and chat text.

Texts are Vietnamese first, English below; every time is shown in Asia/Ho_Chi_Minh. Rendering
is pure: the same notice always gives the same bytes, which is what makes a resend after a
crash recognisable (same Message-ID, same webhook delivery id).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from alerts.model import DownCause, IncidentKind, LinkState, Measurements, PathTrace, PortalState
from alerts.tickets import EventKind
from netwatch.notify.pathtext import (
    hide_target,
    hop_label,
    hop_line,
    hops_json,
    path_arrows,
    path_summary,
)
from netwatch.vocab import (
    DOWN_CAUSE,
    INCIDENT_KIND,
    LINK_STATE,
    PORTAL_STATE,
    TERM,
    TICKET_EVENT,
    Lang,
    Term,
    Wording,
)

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WEBHOOK_SCHEMA = "netwatch.ticket-notice/v1"
EMAIL_FORMAT = "email/v1"
CHAT_FORMAT = "chat/v1"
ZNS_FORMAT = "zns/v1"
CHAT_NOTE_MAX_CHARS = 500  # Telegram caps a message at 4096 characters; a long note is cut


class NoticeEvent(enum.Enum):
    """What happened to the ticket."""

    OPENED = "opened"
    UPDATED = "updated"
    ESCALATED = "escalated"
    REMINDER = "reminder"
    ACKNOWLEDGED = "acknowledged"
    NOTE = "note"
    RESOLVED = "resolved"
    AUTO_RESOLVED = "auto_resolved"
    UNMONITORED = "unmonitored"  # closed because the subject left the configuration
    REOPENED = "reopened"
    LINE_BACK = "line_back"  # the incident is gone: "line back, watching N min before closing"
    BAD_AGAIN = "bad_again"  # bad again after a line-back notice, before the ticket closed


class ProblemState(enum.Enum):
    """The bad state behind the ticket (link states, or a failing portal)."""

    DOWN = "down"
    LOSSY = "lossy"
    SLOW = "slow"
    CONGESTED = "congested"
    FAILING = "failing"


class ChannelKind(enum.Enum):
    """The kinds of channel a notice can be rendered for."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    TELEGRAM = "telegram"
    ZALO = "zalo"


@dataclass(frozen=True, slots=True)
class TicketNotice:
    """One ticket event to tell people about; everything the texts need, nothing looked up."""

    event: NoticeEvent
    ticket_id: str
    event_id: int  # the event's number in the ticket's log: makes each message's identity
    kind: IncidentKind
    state: ProblemState
    at: datetime  # when the event happened
    first_bad_at: datetime
    downtime_s: float  # so far; the total once resolved
    commune_code: str | None = None
    commune_name: str | None = None  # official name, e.g. "Xã Lạc Dương"
    province_name: str | None = None
    subject_name: str | None = None  # an upstream node or portal, when no commune is the subject
    link_id: str | None = None
    isp_name: str | None = None
    circuit_id: str | None = None
    path: PathTrace | None = None  # toward the subject, traced when the ticket opened
    evidence: Measurements = field(default_factory=Measurements)  # the worst figures
    ticket_url: str | None = None  # the ISP's signed link
    ticket_url_expires_at: datetime | None = None
    escalation_level: int = 1
    note: str | None = None
    actor: str | None = None
    back_since: datetime | None = None  # line back: since when it has been fine
    closes_after_s: float | None = None  # line back: watched this long before auto-resolving

    def __post_init__(self) -> None:
        for name in ("at", "first_bad_at", "ticket_url_expires_at", "back_since"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"TicketNotice.{name} must be timezone-aware")
        if not self.ticket_id:
            raise ValueError("TicketNotice.ticket_id must not be empty")


@dataclass(frozen=True, slots=True)
class EmailContent:
    """A rendered e-mail before addressing: subject, plain-text body and thread identity."""

    subject: str
    text: str
    ticket_id: str
    event_id: int
    event: NoticeEvent
    date: datetime

    def to_payload(self) -> dict[str, object]:
        """JSON-able form, as stored in the outbox."""
        return {
            "format": EMAIL_FORMAT,
            "subject": self.subject,
            "text": self.text,
            "ticket_id": self.ticket_id,
            "event_id": self.event_id,
            "event": self.event.value,
            "date": self.date.isoformat(),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> EmailContent | None:
        """Read back `to_payload`; None when the payload is not an e-mail of this format."""
        subject, text = payload.get("subject"), payload.get("text")
        ticket_id, event_id = payload.get("ticket_id"), payload.get("event_id")
        event, date = payload.get("event"), payload.get("date")
        if payload.get("format") != EMAIL_FORMAT:
            return None
        if not (isinstance(subject, str) and isinstance(text, str) and isinstance(ticket_id, str)):
            return None
        if not (isinstance(event_id, int) and isinstance(event, str) and isinstance(date, str)):
            return None
        try:
            parsed_event = NoticeEvent(event)
            parsed_date = datetime.fromisoformat(date)
        except ValueError:
            return None
        if parsed_date.utcoffset() is None:
            return None
        return cls(subject, text, ticket_id, event_id, parsed_event, parsed_date)


# --- words ---------------------------------------------------------------------------------

# The words come from the one catalogue (netwatch/vocab.py); these only say which entry names
# each notice event and problem state.
_EVENT: Mapping[NoticeEvent, Wording] = {
    NoticeEvent.OPENED: TICKET_EVENT[EventKind.OPENED],
    NoticeEvent.UPDATED: TERM[Term.STATUS_UPDATE],
    NoticeEvent.ESCALATED: TICKET_EVENT[EventKind.ESCALATED],
    NoticeEvent.REMINDER: TICKET_EVENT[EventKind.REMINDED],
    NoticeEvent.ACKNOWLEDGED: TICKET_EVENT[EventKind.ACKNOWLEDGED],
    NoticeEvent.NOTE: TICKET_EVENT[EventKind.NOTE],
    NoticeEvent.RESOLVED: TICKET_EVENT[EventKind.RESOLVED],
    NoticeEvent.AUTO_RESOLVED: TICKET_EVENT[EventKind.AUTO_RESOLVED],
    NoticeEvent.UNMONITORED: TICKET_EVENT[EventKind.UNMONITORED],
    NoticeEvent.REOPENED: TICKET_EVENT[EventKind.REOPENED],
    NoticeEvent.LINE_BACK: TICKET_EVENT[EventKind.LINE_BACK],
    NoticeEvent.BAD_AGAIN: TICKET_EVENT[EventKind.BAD_AGAIN],
}
_STATE: Mapping[ProblemState, Wording] = {
    ProblemState.DOWN: LINK_STATE[LinkState.DOWN],
    ProblemState.LOSSY: LINK_STATE[LinkState.LOSSY],
    ProblemState.SLOW: LINK_STATE[LinkState.SLOW],
    ProblemState.CONGESTED: LINK_STATE[LinkState.CONGESTED],
    ProblemState.FAILING: PORTAL_STATE[PortalState.FAILING],
}


def notice_event_words(event: NoticeEvent) -> Wording:
    """The catalogue's words for what happened to the ticket."""
    return _EVENT[event]


def problem_words(state: ProblemState) -> Wording:
    """The catalogue's words for the bad state behind a ticket."""
    return _STATE[state]


def local_time(at: datetime) -> datetime:
    """The moment in Vietnam's time zone."""
    return at.astimezone(LOCAL_TZ)


def format_time_vi(at: datetime) -> str:
    """'07:15 22/11/2026 (giờ Việt Nam)'."""
    return f"{local_time(at):%H:%M %d/%m/%Y} (giờ Việt Nam)"


def format_time_en(at: datetime) -> str:
    """'07:15 22/11/2026 (Vietnam time, UTC+7)'."""
    return f"{local_time(at):%H:%M %d/%m/%Y} (Vietnam time, UTC+7)"


def _split_duration(seconds: float) -> tuple[int, int, int]:
    minutes_total = int(max(seconds, 0.0) // 60)
    days, rest = divmod(minutes_total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return days, hours, minutes


def format_duration_vi(seconds: float) -> str:
    """Plain words: '1 giờ 5 phút', '2 ngày 3 giờ', '40 giây'."""
    if seconds < 60:
        return f"{max(int(seconds), 0)} giây"
    days, hours, minutes = _split_duration(seconds)
    parts = [f"{days} ngày"] if days else []
    parts += [f"{hours} giờ"] if hours else []
    parts += [f"{minutes} phút"] if minutes else []
    return " ".join(parts)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_duration_en(seconds: float) -> str:
    """Plain words: '1 hour 5 minutes', '2 days 3 hours', '40 seconds'."""
    if seconds < 60:
        return _plural(max(int(seconds), 0), "second")
    days, hours, minutes = _split_duration(seconds)
    parts = [_plural(days, "day")] if days else []
    parts += [_plural(hours, "hour")] if hours else []
    parts += [_plural(minutes, "minute")] if minutes else []
    return " ".join(parts)


def _number(value: float, decimal_comma: bool) -> str:
    # Vietnamese writes 12,5 where English writes 12.5.
    text = f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"
    return text.replace(".", ",") if decimal_comma else text


def _place(notice: TicketNotice) -> str:
    if notice.commune_name:
        if notice.province_name:
            return f"{notice.commune_name}, {notice.province_name}"
        return notice.commune_name
    return notice.subject_name or notice.link_id or notice.ticket_id


def _evidence_lines(evidence: Measurements, vi: bool) -> list[str]:
    lines: list[str] = []
    if evidence.loss_ratio is not None:
        pct = _number(evidence.loss_ratio * 100, vi)
        lines.append(f"Tỷ lệ mất gói: {pct}%" if vi else f"Packet loss: {pct}%")
    if evidence.rtt_median_s is not None:
        ms = _number(evidence.rtt_median_s * 1000, vi)
        lines.append(f"Độ trễ trung vị: {ms} ms" if vi else f"Median round-trip time: {ms} ms")
    if evidence.rtt_max_s is not None:
        ms = _number(evidence.rtt_max_s * 1000, vi)
        lines.append(f"Độ trễ lớn nhất: {ms} ms" if vi else f"Maximum round-trip time: {ms} ms")
    if evidence.interface_up is not None:
        if vi:
            state = "hoạt động (up)" if evidence.interface_up else "ngừng hoạt động (down)"
            lines.append(f"Cổng WAN của router: {state}")
        else:
            lines.append(f"Router WAN interface: {'up' if evidence.interface_up else 'down'}")
    if evidence.utilization_ratio is not None:
        pct = _number(evidence.utilization_ratio * 100, vi)
        if vi:
            lines.append(f"Mức sử dụng băng thông: {pct}% băng thông hợp đồng")
        else:
            lines.append(f"Utilization: {pct}% of contracted bandwidth")
    lines += _inside_lines(evidence, vi)
    # The interface line above already says it; repeating it as the cause adds nothing.
    said = evidence.down_cause is DownCause.INTERFACE_DOWN and evidence.interface_up is False
    if evidence.down_cause is not None and not said:
        cause = DOWN_CAUSE[evidence.down_cause].inline("vi" if vi else "en")
        lines.append(f"Ghi nhận thêm: {cause}" if vi else f"Also seen: {cause}")
    return lines


def _seconds_text(value: float | None, vi: bool) -> str:
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text.replace('.', ',') if vi else text} s"


def _inside_lines(evidence: Measurements, vi: bool) -> list[str]:
    """What the commune's agent saw from inside, round by round, with its times (Vietnam)."""
    lines: list[str] = []
    if evidence.inside_paths:
        lines.append(
            "Đo từ bên trong trung tâm xã (thiết bị đo tại xã):"
            if vi
            else "Measured from inside the commune centre (its agent):"
        )
    for p in evidence.inside_paths:
        at = f"{local_time(p.at):%H:%M:%S %d/%m}"
        path = p.link.split("/", 1)[-1]
        if p.lan_up is None:
            lan = ""
        elif vi:
            lan = (
                "router trong mạng nội bộ trả lời"
                if p.lan_up
                else "router trong mạng nội bộ không trả lời"
            )
        else:
            lan = "router answers on the LAN" if p.lan_up else "router silent on the LAN"
        if vi:
            far = "đầu xa trả lời" if p.answered else "đầu xa không trả lời"
        else:
            far = "far end answers" if p.answered else "far end unreachable"
        figures = []
        if p.rtt_median_s is not None:
            figures.append(f"{_number(p.rtt_median_s * 1000, vi)} ms")
        if p.loss_ratio is not None:
            figures.append(
                f"mất {_number(p.loss_ratio * 100, vi)}% gói"
                if vi
                else f"{_number(p.loss_ratio * 100, vi)}% lost"
            )
        late = " (gửi về sau khi có lại kết nối)" if vi else " (sent after the line came back)"
        text = ", ".join(x for x in (lan, far, *figures) if x)
        label = "đường" if vi else "path"
        lines.append(f"{at} — {label} {path}: {text}{late if p.backfilled else ''}")
    for t in evidence.inside_portals:
        at = f"{local_time(t.at):%H:%M:%S %d/%m}"
        path = t.link.split("/", 1)[-1]
        if vi:
            state = "thành công" if t.ok else f"thất bại ở bước {t.failed_phase or 'không rõ'}"
            phases = (
                f"DNS {_seconds_text(t.dns_s, vi)}, kết nối {_seconds_text(t.connect_s, vi)}, "
                f"TLS {_seconds_text(t.tls_s, vi)}, byte đầu {_seconds_text(t.first_byte_s, vi)}"
            )
            lines.append(
                f"Cổng {t.portal} qua đường {path} lúc {at}: {state}, tổng "
                f"{_seconds_text(t.total_s, vi)} ({phases})"
            )
        else:
            state = "ok" if t.ok else f"failed at {t.failed_phase or 'unknown'}"
            phases = (
                f"DNS {_seconds_text(t.dns_s, vi)}, connect {_seconds_text(t.connect_s, vi)}, "
                f"TLS {_seconds_text(t.tls_s, vi)}, first byte {_seconds_text(t.first_byte_s, vi)}"
            )
            lines.append(
                f"Portal {t.portal} over path {path} at {at}: {state}, total "
                f"{_seconds_text(t.total_s, vi)} ({phases})"
            )
    return lines


# What each event's headline says; filled in by `_headline` (the same fields in both languages).
_HEADLINE: Mapping[NoticeEvent, Wording] = {
    NoticeEvent.OPENED: Wording(
        "NetWatch phát hiện sự cố tại {place} từ {since}: {state}.",
        "NetWatch found a problem at {place} since {since}: {state}.",
    ),
    NoticeEvent.UPDATED: Wording("Tình trạng hiện tại: {state}.", "Current state: {state}."),
    NoticeEvent.ESCALATED: Wording(
        "Phiếu chưa được tiếp nhận; đã chuyển lên cấp xử lý {level}.",
        "Not acknowledged yet; escalated to level {level}.",
    ),
    NoticeEvent.REMINDER: Wording(
        "Phiếu vẫn chưa được tiếp nhận; sự cố ({state}) vẫn đang tiếp diễn.",
        "Still not acknowledged; the problem ({state}) goes on.",
    ),
    NoticeEvent.ACKNOWLEDGED: Wording(
        "Phiếu đã được tiếp nhận bởi {who}.", "Acknowledged by {who}."
    ),
    NoticeEvent.NOTE: Wording("{who} đã thêm ghi chú.", "{who} added a note."),
    NoticeEvent.RESOLVED: Wording("Phiếu đã được đóng bởi {who}.", "Resolved by {who}."),
    NoticeEvent.AUTO_RESOLVED: Wording(
        "Kết nối đã ổn định trở lại; NetWatch tự động đóng phiếu.",
        "The connection has been back to normal long enough; NetWatch closed the ticket.",
    ),
    NoticeEvent.UNMONITORED: Wording(
        "{place} đã được gỡ khỏi cấu hình giám sát; NetWatch đóng phiếu mà không xác nhận "
        "sự cố đã được khắc phục.",
        "{place} was removed from monitoring; NetWatch closed the ticket without seeing the "
        "problem fixed.",
    ),
    NoticeEvent.REOPENED: Wording(
        "Sự cố tái diễn ({state}); phiếu được mở lại.",
        "The problem came back ({state}); the ticket is open again.",
    ),
    NoticeEvent.LINE_BACK: Wording(
        "Kết nối của {place} đã hoạt động bình thường trở lại từ {since}; "
        "NetWatch tiếp tục theo dõi {watch} trước khi tự động đóng phiếu.",
        "The connection of {place} has been back to normal since {since}; "
        "NetWatch watches it {watch} more before closing the ticket.",
    ),
    NoticeEvent.BAD_AGAIN: Wording(
        "Sự cố xuất hiện lại ({state}) trong thời gian theo dõi; phiếu vẫn mở.",
        "The problem is back ({state}) while being watched; the ticket stays open.",
    ),
}


def _headline(n: TicketNotice, lang: Lang) -> str:
    vi = lang == "vi"
    when = format_time_vi if vi else format_time_en
    # A line-back notice tells since when the line is fine; every other since when it was bad.
    line_back = n.event is NoticeEvent.LINE_BACK
    return _HEADLINE[n.event][lang].format(
        place=_place(n),
        since=when(n.back_since or n.at) if line_back else when(n.first_bad_at),
        state=_STATE[n.state].inline(lang),
        who=n.actor or _BODY.unknown[lang],
        level=n.escalation_level,
        watch=_minutes(n.closes_after_s, vi=vi),
    )


def _minutes(seconds: float | None, *, vi: bool) -> str:
    minutes = max(1, round((seconds or 0) / 60))
    return f"{minutes} phút" if vi else f"{minutes} min"


def _closed(n: TicketNotice) -> bool:
    return n.event in (NoticeEvent.RESOLVED, NoticeEvent.AUTO_RESOLVED, NoticeEvent.UNMONITORED)


@dataclass(frozen=True, slots=True)
class _BodyWords:
    """The labels of an e-mail body, each in both languages; `_body` writes either with them."""

    ticket: Wording
    incident: Wording
    code: Wording
    commune: Wording
    province: Wording
    subject: Wording
    isp: Wording
    circuit: Wording
    link: Wording
    since: Wording
    downtime_total: Wording
    downtime_so_far: Wording
    escalation: Wording
    notice_time: Wording
    evidence: Wording
    path_traced: Wording
    note: Wording
    unknown: Wording
    see_link: Wording
    link_expires: Wording


_BODY = _BodyWords(
    ticket=Wording("Phiếu", "Ticket"),
    incident=Wording("Loại sự cố", "Incident"),
    code=Wording("mã", "code"),
    commune=Wording("Đơn vị", "Commune"),
    province=Wording("Tỉnh/thành phố", "Province"),
    subject=Wording("Đối tượng", "Subject"),
    isp=Wording("Nhà mạng", "ISP"),
    circuit=Wording("Mã mạch (circuit ID)", "Circuit ID"),
    link=Wording("Đường truyền", "Link"),
    since=Wording("Bắt đầu từ", "Since"),
    downtime_total=Wording("Tổng thời gian sự cố", "Total downtime"),
    downtime_so_far=Wording("Thời gian sự cố đến nay", "Downtime so far"),
    escalation=Wording("Cấp xử lý", "Escalation level"),
    notice_time=Wording("Thời điểm thông báo", "Notice time"),
    evidence=Wording("Bằng chứng đo được:", "Evidence:"),
    path_traced=Wording(
        "Đường đi từ NetWatch, đo lúc {at}:", "Path from NetWatch, traced at {at}:"
    ),
    note=Wording("Ghi chú", "Note"),
    unknown=Wording("không rõ", "unknown"),
    see_link=Wording(
        "Xem bằng chứng, tiếp nhận, ghi chú hoặc đóng phiếu (không cần đăng nhập):",
        "See the evidence, acknowledge, add a note or resolve (no login needed):",
    ),
    link_expires=Wording("Liên kết hết hạn lúc {at}.", "The link expires at {at}."),
)


def _body(n: TicketNotice, lang: Lang) -> list[str]:
    """The body in one language: the same lines, in the same order, for both."""
    w = _BODY
    vi = lang == "vi"
    when = format_time_vi if vi else format_time_en
    duration = format_duration_vi if vi else format_duration_en
    headline = _headline(n, lang)
    lines = [f"{w.ticket[lang]} {n.ticket_id} — {_EVENT[n.event][lang]}", "", headline, ""]
    lines.append(
        f"{w.incident[lang]}: {INCIDENT_KIND[n.kind][lang]} ({_STATE[n.state].inline(lang)})"
    )
    if n.commune_name:
        code = f" ({w.code[lang]} {n.commune_code})" if n.commune_code else ""
        lines.append(f"{w.commune[lang]}: {n.commune_name}{code}")
        if n.province_name:
            lines.append(f"{w.province[lang]}: {n.province_name}")
    elif n.subject_name:
        lines.append(f"{w.subject[lang]}: {n.subject_name}")
    if n.isp_name:
        lines.append(f"{w.isp[lang]}: {n.isp_name}")
    if n.circuit_id:
        lines.append(f"{w.circuit[lang]}: {n.circuit_id}")
    if n.link_id:
        lines.append(f"{w.link[lang]}: {n.link_id}")
    lines.append(f"{w.since[lang]}: {when(n.first_bad_at)}")
    label = w.downtime_total[lang] if _closed(n) else w.downtime_so_far[lang]
    lines.append(f"{label}: {duration(n.downtime_s)}")
    lines.append(f"{w.escalation[lang]}: {n.escalation_level}")
    lines.append(f"{w.notice_time[lang]}: {when(n.at)}")
    evidence = _evidence_lines(n.evidence, vi=vi)
    if evidence:
        lines += ["", w.evidence[lang]] + [f"  - {line}" for line in evidence]
    if n.path is not None:
        path = hide_target(n.path)  # the ISP reads this: not the monitored address itself
        lines += ["", path_summary(path, vi=vi)]
        lines.append(w.path_traced[lang].format(at=when(path.at)))
        lines += [f"  {hop_line(hop, vi=vi)}" for hop in path.hops]
    if n.note:
        lines += ["", f"{w.note[lang]} ({n.actor or w.unknown[lang]}):", n.note]
    if n.ticket_url:
        lines += ["", w.see_link[lang]]
        lines.append(n.ticket_url)
        if n.ticket_url_expires_at is not None:
            lines.append(w.link_expires[lang].format(at=when(n.ticket_url_expires_at)))
    return lines


# --- e-mail ----------------------------------------------------------------------------------


def email_subject(notice: TicketNotice) -> str:
    """The subject every message of one ticket shares (mail clients thread on it, too)."""
    isp = f" — {notice.isp_name}" if notice.isp_name else ""
    return (
        f"[NetWatch {notice.ticket_id}] {INCIDENT_KIND[notice.kind].vi}: {_place(notice)}{isp}"
        f" | {INCIDENT_KIND[notice.kind].en}"
    )


def render_email(notice: TicketNotice) -> EmailContent:
    """Subject and plain-text body: Vietnamese, then '--- English ---', then English."""
    footer_vi = (
        "Thư tự động từ NetWatch, hệ thống giám sát mạng của Trung tâm Phục vụ hành chính công."
    )
    footer_en = (
        "Automatic message from NetWatch, the network monitor of the public service centers."
    )
    lines = [*_body(notice, "vi"), "", footer_vi, "", "--- English ---", ""]
    lines += [*_body(notice, "en"), "", footer_en]
    return EmailContent(
        subject=email_subject(notice),
        text="\n".join(lines) + "\n",
        ticket_id=notice.ticket_id,
        event_id=notice.event_id,
        event=notice.event,
        date=notice.at,
    )


_DOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


def _id_part(text: str) -> str:
    # RFC 5322 msg-id: the left part must be a dot-atom; anything else becomes '-'.
    return _UNSAFE_ID_CHARS.sub("-", text).strip("-") or "x"


def sender_domain(from_address: str) -> str:
    """The domain of an address ('netwatch@tinh.gov.vn' -> 'tinh.gov.vn')."""
    _local, at, domain = from_address.rpartition("@")
    domain = domain.strip().rstrip(">").lower() if at else ""
    # A Message-ID needs some domain; ".invalid" (RFC 2606) can never collide with a real one.
    return domain if _DOMAIN.fullmatch(domain) else "netwatch.invalid"


def thread_root_id(ticket_id: str, domain: str) -> str:
    """The Message-ID of a ticket's first message, derived from the ticket and sender domain."""
    return f"<ticket.{_id_part(ticket_id)}@{domain}>"


def message_id(ticket_id: str, event_id: int, event: NoticeEvent, domain: str) -> str:
    """The Message-ID of one message; the opening message is the thread root itself."""
    if event is NoticeEvent.OPENED:
        return thread_root_id(ticket_id, domain)
    return f"<ticket.{_id_part(ticket_id)}.{event_id}.{event.value}@{domain}>"


def build_email(content: EmailContent, from_address: str, to_address: str) -> EmailMessage:
    """The MIME message, with threading headers; the same content always gives the same IDs."""
    domain = sender_domain(from_address)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_address
    msg["To"] = to_address
    msg["Subject"] = content.subject
    # The event time, not the send time: a resend is then the same message in every header.
    msg["Date"] = format_datetime(local_time(content.date))
    own_id = message_id(content.ticket_id, content.event_id, content.event, domain)
    msg["Message-ID"] = own_id
    root = thread_root_id(content.ticket_id, domain)
    if own_id != root:
        msg["In-Reply-To"] = root
        msg["References"] = root
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg["Content-Language"] = "vi, en"
    msg["X-NetWatch-Ticket"] = content.ticket_id
    msg["X-NetWatch-Event"] = content.event.value
    msg.set_content(content.text, charset="utf-8")
    return msg


# --- webhook and chat ------------------------------------------------------------------------


def _time_pair(at: datetime | None) -> dict[str, str] | None:
    if at is None:
        return None
    utc = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"utc": utc, "local": local_time(at).isoformat()}


def render_webhook(notice: TicketNotice) -> dict[str, object]:
    """The webhook JSON body (schema netwatch.ticket-notice/v1; new keys may be added)."""
    ev = notice.evidence
    return {
        "schema": WEBHOOK_SCHEMA,
        "event": notice.event.value,
        "event_id": notice.event_id,
        "at": _time_pair(notice.at),
        "ticket": {
            "id": notice.ticket_id,
            "kind": notice.kind.value,
            "state": notice.state.value,
            "escalation_level": notice.escalation_level,
            "url": notice.ticket_url,
            "url_expires_at": _time_pair(notice.ticket_url_expires_at),
            "first_bad_at": _time_pair(notice.first_bad_at),
            "downtime_s": round(notice.downtime_s, 3),
        },
        "commune": {
            "code": notice.commune_code,
            "name": notice.commune_name,
            "province": notice.province_name,
        },
        "subject_name": notice.subject_name,
        "link": {
            "id": notice.link_id,
            "isp": notice.isp_name,
            "circuit_id": notice.circuit_id,
            "path": [hop_label(hop) for hop in hide_target(notice.path).hops]
            if notice.path
            else [],
        },
        "evidence": {
            "loss_ratio": ev.loss_ratio,
            "rtt_median_s": ev.rtt_median_s,
            "rtt_max_s": ev.rtt_max_s,
            "interface_up": ev.interface_up,
            "utilization_ratio": ev.utilization_ratio,
            "down_cause": ev.down_cause.value if ev.down_cause else None,
            "inside_paths": [
                {
                    "link": p.link,
                    "at": _time_pair(p.at),
                    "lan_up": p.lan_up,
                    "answered": p.answered,
                    "loss_ratio": p.loss_ratio,
                    "rtt_median_s": p.rtt_median_s,
                    "backfilled": p.backfilled,
                }
                for p in ev.inside_paths
            ],
            "inside_portals": [
                {
                    "portal": t.portal,
                    "link": t.link,
                    "at": _time_pair(t.at),
                    "ok": t.ok,
                    "total_s": t.total_s,
                    "failed_phase": t.failed_phase,
                    "dns_s": t.dns_s,
                    "connect_s": t.connect_s,
                    "tls_s": t.tls_s,
                    "first_byte_s": t.first_byte_s,
                }
                for t in ev.inside_portals
            ],
        },
        "trace": _trace_json(notice.path),
        "note": notice.note,
        "actor": notice.actor,
        "summary": {"vi": _headline(notice, "vi"), "en": _headline(notice, "en")},
    }


def _trace_json(path: PathTrace | None) -> dict[str, object] | None:
    """The path trace in the webhook body: where it stops, and every hop (the traced address
    itself left out, as everywhere the ISP reads)."""
    if path is None:
        return None
    path = hide_target(path)
    last = path.last_hop()
    return {
        "at": _time_pair(path.at),
        "reached": path.reached,
        "stops_after": (
            {"ttl": last.ttl, "address": last.address, "name": last.name}
            if last is not None and not path.reached
            else None
        ),
        "summary": {"vi": path_summary(path, vi=True), "en": path_summary(path, vi=False)},
        "hops": hops_json(path),
    }


def render_chat(notice: TicketNotice) -> str:
    """A short plain-text chat message (no markup, so nothing needs escaping)."""
    isp = f" — {notice.isp_name}" if notice.isp_name else ""
    circuit = f" (mạch {notice.circuit_id})" if notice.circuit_id else ""
    local = local_time(notice.first_bad_at)
    lines = [
        f"[{notice.ticket_id}] {_EVENT[notice.event].vi}: {INCIDENT_KIND[notice.kind].vi}",
        f"{_place(notice)}{isp}{circuit} — {_STATE[notice.state].inline('vi')}",
    ]
    if notice.event is not NoticeEvent.OPENED:
        lines.append(_headline(notice, "vi"))
    lines += [
        f"Từ {local:%H:%M %d/%m/%Y} (giờ VN), "
        f"{'tổng' if _closed(notice) else 'đã'} {format_duration_vi(notice.downtime_s)}",
    ]
    if notice.path is not None:
        path = hide_target(notice.path)
        lines.append(path_summary(path, vi=True))
        lines.append(f"Tuyến: {path_arrows(path)}")
    if notice.note:
        note = notice.note
        if len(note) > CHAT_NOTE_MAX_CHARS:
            note = note[: CHAT_NOTE_MAX_CHARS - 1] + "…"
        lines.append(f"Ghi chú: {note}")
    lines.append(
        f"EN: {_EVENT[notice.event].en} · {INCIDENT_KIND[notice.kind].en},"
        f" {_STATE[notice.state].inline('en')}"
        f" since {local:%H:%M %d/%m/%Y} (UTC+7), {format_duration_en(notice.downtime_s)}"
    )
    if notice.ticket_url:
        lines.append(notice.ticket_url)
    return "\n".join(lines)


def outbox_payload(
    kind: ChannelKind, notice: TicketNotice, *, zns_template: str | None = None
) -> dict[str, object]:
    """The rendered message as stored in the outbox for a channel of this kind (a ZNS message
    also names the template Zalo approved for its event: `zns_template`)."""
    match kind:
        case ChannelKind.EMAIL:
            return render_email(notice).to_payload()
        case ChannelKind.WEBHOOK:
            return {"format": WEBHOOK_SCHEMA, "body": render_webhook(notice)}
        case ChannelKind.TELEGRAM:
            return {"format": CHAT_FORMAT, "text": render_chat(notice)}
        case ChannelKind.ZALO:
            if zns_template is None:
                raise ValueError("a ZNS message needs the template id Zalo approved")
            return zns_payload(notice, zns_template)


def dedup_key(notice: TicketNotice, channel: str, recipient: str) -> str:
    """One outbox item per ticket event, channel and recipient: enqueueing twice is a no-op."""
    return f"{notice.ticket_id}/{notice.event_id}/{channel}/{recipient}"


# --- Zalo ZNS --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZnsParam:
    """One parameter of the ZNS template (docs/zalo.md lists them for the template's form)."""

    name: str
    zns_type: str  # the parameter type chosen when the template is registered with Zalo
    max_chars: int  # what Zalo allows that type; longer values are cut with "…"
    example: str


# The ZNS parameter types and their lengths are Zalo's (Zalo's template form; docs/zalo.md).
ZNS_PARAMS: tuple[ZnsParam, ...] = (
    ZnsParam("ma_phieu", "Mã số", 30, "NW-2026-000042"),
    ZnsParam("su_kien", "Trạng thái giao dịch", 30, "Mở phiếu sự cố"),
    ZnsParam("dia_diem", "Địa chỉ", 200, "Xã Lạc Dương, Lâm Đồng"),
    ZnsParam("tinh_trang", "Nhãn tùy chỉnh", 30, "Mất kết nối"),
    ZnsParam("nha_mang", "Tên thương hiệu", 200, "VNPT, mạch LDG-FTTH-0012345"),
    ZnsParam("bat_dau", "Nhãn tùy chỉnh", 30, "07:15 22/11/2026"),
    ZnsParam("thoi_gian_su_co", "Nhãn tùy chỉnh", 30, "1 giờ 5 phút"),
    ZnsParam("nguoi_xu_ly", "Tên khách hàng", 30, "Nguyễn Văn Đức"),
)
_ZNS_EMPTY = "—"  # a template parameter may not be empty


def fit_zns(text: str, max_chars: int) -> str:
    """`text` within `max_chars` characters: NFC first (a decomposed 'ệ' counts three), then
    cut at a character boundary with '…' as the last one; never empty."""
    text = " ".join(unicodedata.normalize("NFC", text).split()) or _ZNS_EMPTY
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rstrip() + "…"


def render_zns(notice: TicketNotice) -> dict[str, str]:
    """The template data of a ZNS message: Vietnamese, every value within its type's length.

    The ISP's signed ticket link is left out on purpose: Zalo stores and shows template data,
    and the link's signature is a credential (the template's button opens the public status
    page instead; docs/zalo.md)."""
    local = local_time(notice.first_bad_at)
    isp = notice.isp_name or ""
    if notice.circuit_id:
        isp = f"{isp}, mạch {notice.circuit_id}" if isp else f"mạch {notice.circuit_id}"
    values = {
        "ma_phieu": notice.ticket_id,
        "su_kien": _EVENT[notice.event].vi,
        "dia_diem": _place(notice),
        "tinh_trang": _STATE[notice.state].vi,
        "nha_mang": isp,
        "bat_dau": f"{local:%H:%M %d/%m/%Y}",
        "thoi_gian_su_co": format_duration_vi(notice.downtime_s),
        "nguoi_xu_ly": notice.actor or "",
    }
    return {p.name: fit_zns(values[p.name], p.max_chars) for p in ZNS_PARAMS}


def zns_payload(notice: TicketNotice, template_id: str) -> dict[str, object]:
    """The outbox payload of a ZNS message: the template Zalo approved for this event, and its
    data. The template id is taken when the message is queued, so a reloaded configuration's
    templates apply to new messages and a queued one keeps the template its data was made for."""
    return {
        "format": ZNS_FORMAT,
        "template_id": template_id,
        "event": notice.event.value,
        "template_data": render_zns(notice),
    }
