"""NetWatch's one vocabulary: the Vietnamese and English words for every state, kind and event.

Mail, chat, the status pages, the ISP and admin pages and the Grafana dashboards all name the same
things (a link down, an upstream outage, an acknowledged ticket); issue 14 found three tables
saying them three ways ("Sự cố nút mạng cấp trên" in mail, "Sự cố tại điểm kết nối của nhà mạng"
on the pages). Here each thing has exactly one wording per language, keyed by its own enum member,
so a new member without words fails tests/notify/test_vocabulary.py and mypy sees every lookup.

An enum-keyed module rather than gettext/Babel: the keys are already typed enums, there are two
languages shipped together (every text is Vietnamese first, English beside it), and no translator
workflow (.po files, plural rules) is needed; a missing wording is then a failing test, not an
untranslated string at run time.

Every wording is written as it stands alone, as a label (capital first letter, no full stop);
``Wording.inline`` gives the form used inside a sentence ("NetWatch phát hiện …: mất kết nối").
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from alerts.model import DownCause, IncidentKind, LinkState, NodeState, PortalState
from alerts.tickets import EventKind, TicketStatus

Lang = Literal["vi", "en"]
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")


@dataclass(frozen=True, slots=True)
class Wording(Mapping[Lang, str]):
    """One thing's words: exactly one Vietnamese and one English wording.

    It is a ``{lang: text}`` mapping, so it serves wherever the pages take one (``words[lang]``).
    """

    vi: str
    en: str

    def __getitem__(self, lang: Lang) -> str:
        if lang == "vi":
            return self.vi
        if lang == "en":
            return self.en
        raise KeyError(lang)

    def __iter__(self) -> Iterator[Lang]:
        return iter(LANGS)

    def __len__(self) -> int:
        return len(LANGS)

    def inline(self, lang: Lang) -> str:
        """The wording inside a sentence: its first letter in lower case ("mất kết nối")."""
        text = self[lang]
        return text[:1].lower() + text[1:]

    def pair(self) -> str:
        """Both languages on one line, as dashboards show them: "Mất kết nối / down"."""
        return f"{self.vi} / {self.inline('en')}"


class Term(enum.Enum):
    """Things NetWatch names that are no member of a domain enum."""

    NO_DATA = "no_data"  # a link or portal not measured yet
    MAINTENANCE = "maintenance"  # a link inside a maintenance window
    STATUS_UPDATE = "status_update"  # a notice about a changed ticket (state, kind, evidence)


INCIDENT_KIND: Final[Mapping[IncidentKind, Wording]] = {
    IncidentKind.LINK_FAULT: Wording("Sự cố đường truyền", "Link fault"),
    IncidentKind.CAPACITY: Wording("Quá tải băng thông", "Capacity (line full)"),
    IncidentKind.UPSTREAM_OUTAGE: Wording(
        "Sự cố tại điểm kết nối của nhà mạng", "Outage at the ISP's upstream node"
    ),
    IncidentKind.PORTAL_OUTAGE: Wording(
        "Cổng dịch vụ công gián đoạn", "Public service portal outage"
    ),
    IncidentKind.MONITOR_CONNECTIVITY: Wording(
        "Hệ thống giám sát mất kết nối", "The monitor lost its own connectivity"
    ),
    IncidentKind.SITE_UNREACHABLE: Wording(
        "Mất liên lạc với cả trung tâm xã (mất điện hoặc mạng nội bộ)",
        "Site unreachable (power or LAN)",
    ),
    IncidentKind.AGENT_HEALTH: Wording(
        "Thiết bị đo tại xã không gửi số liệu", "The commune agent is silent"
    ),
}

# The note added to a site-unreachable ticket when the agent's buffered rounds show its LAN was
# up while the lines were down (issue 11): a sentence, filled with the lines' names.
SITE_LINES_CUT: Final[Wording] = Wording(
    "Số liệu thiết bị đo tại xã gửi về sau khi có lại kết nối cho thấy mạng nội bộ của xã vẫn "
    "hoạt động trong lúc mất liên lạc: sự cố do đường truyền ({links}) bị gián đoạn, không phải "
    "do mất điện. Phiếu sự cố đã được chuyển cho nhà mạng.",
    "The commune agent's buffered rounds, sent once a line was back, show the commune's LAN was "
    "up during the outage: the line(s) ({links}) were cut, it was not a power loss. The ISPs "
    "have been given their tickets.",
)

LINK_STATE: Final[Mapping[LinkState, Wording]] = {
    LinkState.OK: Wording("Bình thường", "Normal"),
    LinkState.SLOW: Wording("Chậm (độ trễ cao)", "Slow (high latency)"),
    LinkState.LOSSY: Wording("Mất gói", "Packet loss"),
    LinkState.CONGESTED: Wording("Quá tải (đầy băng thông)", "Congested (line full)"),
    LinkState.DOWN: Wording("Mất kết nối", "Down"),
}

PORTAL_STATE: Final[Mapping[PortalState, Wording]] = {
    PortalState.OK: Wording("Hoạt động bình thường", "Working normally"),
    PortalState.SLOW: Wording("Phản hồi chậm", "Responding slowly"),
    PortalState.FAILING: Wording("Đang gián đoạn", "Interrupted"),
}

NODE_STATE: Final[Mapping[NodeState, Wording]] = {
    NodeState.UP: Wording("Hoạt động", "Up"),
    NodeState.DOWN: Wording("Mất kết nối", "Down"),
}

DOWN_CAUSE: Final[Mapping[DownCause, Wording]] = {
    DownCause.INTERFACE_DOWN: Wording(
        "Thiết bị mạng (router) của xã báo cổng WAN ngừng hoạt động",
        "The commune's router reports its WAN port down",
    ),
    DownCause.ROUTER_REBOOTED: Wording(
        "Thiết bị mạng (router) của xã vừa khởi động lại", "The commune's router has just restarted"
    ),
    DownCause.ROUTER_UNREACHABLE: Wording(
        "Thiết bị mạng (router) của xã cũng không phản hồi SNMP",
        "The commune's router does not answer SNMP either",
    ),
    DownCause.NO_ECHO: Wording("Không có phản hồi ping", "No ping answered"),
}

TICKET_STATUS: Final[Mapping[TicketStatus, Wording]] = {
    TicketStatus.OPEN: Wording("Đang mở — chưa tiếp nhận", "Open — not yet acknowledged"),
    TicketStatus.ACKNOWLEDGED: Wording(
        "Đã tiếp nhận — đang xử lý", "Acknowledged — being worked on"
    ),
    TicketStatus.RESOLVED: Wording("Đã đóng", "Resolved"),
}

TICKET_EVENT: Final[Mapping[EventKind, Wording]] = {
    EventKind.OPENED: Wording("Mở phiếu sự cố", "Ticket opened"),
    EventKind.REOPENED: Wording("Mở lại phiếu", "Ticket reopened"),
    EventKind.STATE_CHANGED: Wording("Tình trạng thay đổi", "State changed"),
    EventKind.KIND_CHANGED: Wording("Loại sự cố thay đổi", "Kind of problem changed"),
    EventKind.EVIDENCE: Wording("Cập nhật số liệu", "Evidence updated"),
    EventKind.RECOVERING: Wording("Đường truyền đang phục hồi", "Link recovering"),
    EventKind.LINE_BACK: Wording(
        "Đường truyền đã hoạt động trở lại (đang theo dõi trước khi đóng phiếu)",
        "Line back (watched before the ticket closes)",
    ),
    EventKind.BAD_AGAIN: Wording("Sự cố xuất hiện lại", "Bad again"),
    EventKind.RECOVERY_HELD: Wording("Tạm dừng theo dõi phục hồi", "Recovery watch paused"),
    EventKind.CLEARED: Wording("Sự cố đã hết", "Problem cleared"),
    EventKind.AUTO_RESOLVED: Wording(
        "Tự động đóng phiếu (đã ổn định trở lại)", "Resolved automatically (back to normal)"
    ),
    EventKind.UNMONITORED: Wording(
        "Đã ngừng giám sát (đối tượng được gỡ khỏi cấu hình)",
        "Removed from monitoring (taken out of the configuration)",
    ),
    EventKind.LINKED: Wording("Gộp vào sự cố cấp trên", "Linked to an upstream incident"),
    EventKind.UNLINKED: Wording("Tách khỏi sự cố cấp trên", "Unlinked from the upstream incident"),
    EventKind.MAINTENANCE_STARTED: Wording("Bắt đầu bảo trì", "Maintenance started"),
    EventKind.MAINTENANCE_ENDED: Wording("Kết thúc bảo trì", "Maintenance ended"),
    EventKind.ESCALATED: Wording("Chuyển cấp xử lý", "Escalated"),
    EventKind.REMINDED: Wording(
        "Nhắc lại: phiếu chưa được tiếp nhận", "Reminder: not acknowledged yet"
    ),
    EventKind.ACKNOWLEDGED: Wording("Tiếp nhận", "Acknowledged"),
    EventKind.RESOLVED: Wording("Đóng phiếu (đã khắc phục)", "Resolved (fixed)"),
    EventKind.NOTE: Wording("Ghi chú mới", "New note"),
}

TERM: Final[Mapping[Term, Wording]] = {
    Term.NO_DATA: Wording("Chưa có số liệu", "No data yet"),
    Term.MAINTENANCE: Wording("Đang bảo trì", "Under maintenance"),
    Term.STATUS_UPDATE: Wording("Cập nhật tình trạng", "Status update"),
}

Key = (
    IncidentKind | LinkState | PortalState | NodeState | DownCause | TicketStatus | EventKind | Term
)

# Which table holds which enum: the test walks it, so an enum left out here fails too. (Any: a
# Mapping is invariant in its key, and each table is keyed by its own enum.)
TABLES: Final[Mapping[type[enum.Enum], Mapping[Any, Wording]]] = {
    IncidentKind: INCIDENT_KIND,
    LinkState: LINK_STATE,
    PortalState: PORTAL_STATE,
    NodeState: NODE_STATE,
    DownCause: DOWN_CAUSE,
    TicketStatus: TICKET_STATUS,
    EventKind: TICKET_EVENT,
    Term: TERM,
}

# Members of different enums never compare equal (LinkState.DOWN != NodeState.DOWN), so one
# mapping holds them all.
CATALOGUE: Final[Mapping[Key, Wording]] = {
    key: wording for table in TABLES.values() for key, wording in table.items()
}


def wording(key: Key) -> Wording:
    """The one wording of a state, kind or event."""
    return CATALOGUE[key]


def say(key: Key, lang: Lang) -> str:
    """The wording of a state, kind or event in one language, as a label."""
    return CATALOGUE[key][lang]
