"""Every word of the ISP's ticket page (and the provincial IT's view of a ticket), vi and en.

Moved verbatim from the former netwatch/web/isp.py (its `L` table is `Label` here, one named
entry per label). Incident kinds and ticket states are still this page's own wording; a later
change wires them to the one vocabulary catalogue (issue 14, item 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from netwatch.signing import LinkReason
from netwatch.web.i18n import Lang

Words = Mapping[Lang, str]

TICKET_STATE: Mapping[str, Words] = {
    "open": {"vi": "Đang mở — chưa tiếp nhận", "en": "Open — not yet acknowledged"},
    "acknowledged": {"vi": "Đã tiếp nhận — đang xử lý", "en": "Acknowledged — being worked on"},
    "resolved": {"vi": "Đã đóng", "en": "Resolved"},
}
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
# What NetWatch's terse "ok since …" / "unacknowledged since …" log texts say.
SINCE: Mapping[str, Words] = {
    "ok": {"vi": "Bình thường từ", "en": "Normal since"},
    "unacknowledged": {"vi": "Chưa được tiếp nhận từ", "en": "Not acknowledged since"},
}
# "level 2" in the log: an escalation level.
LEVEL: Words = {"vi": "Cấp", "en": "Level"}
# Why a signed link is refused: (English, Vietnamese), the API's detail and detail_vi.
LINK_REFUSED: Mapping[LinkReason, tuple[str, str]] = {
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
# The notice after an action (post/redirect/get), by action.
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
# The chart's title for screen readers.
CHART_TITLE: Words = {
    "vi": "Mất gói và độ trễ 24 giờ qua — {commune} — {link}",
    "en": "Packet loss and latency, last 24 hours — {commune} — {link}",
}


class Label:
    """The page's labels, headings, buttons and sentences, each in Vietnamese and English."""

    TICKET: Final[Words] = {"vi": "Phiếu sự cố", "en": "Trouble ticket"}
    SUMMARY: Final[Words] = {"vi": "Tóm tắt", "en": "Summary"}
    TICKET_STATE: Final[Words] = {"vi": "Trạng thái phiếu", "en": "Ticket state"}
    KIND: Final[Words] = {"vi": "Loại sự cố", "en": "Kind"}
    PROBLEM: Final[Words] = {"vi": "Tình trạng", "en": "Problem"}
    COMMUNE: Final[Words] = {"vi": "Xã/phường", "en": "Commune"}
    CODE: Final[Words] = {"vi": "mã", "en": "code"}
    LINK: Final[Words] = {"vi": "Đường truyền", "en": "Link"}
    CIRCUIT: Final[Words] = {"vi": "Mã kênh truyền", "en": "Circuit ID"}
    ISP: Final[Words] = {"vi": "Nhà mạng", "en": "ISP"}
    AFFECTED: Final[Words] = {"vi": "Các đường truyền bị ảnh hưởng", "en": "Affected links"}
    OPENED_AT: Final[Words] = {"vi": "Mở phiếu lúc", "en": "Opened"}
    ACKED_AT: Final[Words] = {"vi": "Tiếp nhận lúc", "en": "Acknowledged"}
    RESOLVED_AT: Final[Words] = {"vi": "Đóng lúc", "en": "Resolved"}
    NOT_ACKED: Final[Words] = {"vi": "Chưa tiếp nhận", "en": "Not yet"}
    FIRST_BAD: Final[Words] = {"vi": "Bắt đầu có sự cố", "en": "Problem began"}
    DOWNTIME: Final[Words] = {"vi": "Thời gian gián đoạn đến nay", "en": "Downtime so far"}
    EVIDENCE: Final[Words] = {"vi": "Số liệu đo", "en": "Evidence"}
    MEASURE: Final[Words] = {"vi": "Chỉ số", "en": "Measure"}
    FIRST_ROUND: Final[Words] = {"vi": "Lúc đầu", "en": "At first"}
    WORST: Final[Words] = {"vi": "Xấu nhất", "en": "Worst"}
    NOW: Final[Words] = {"vi": "Hiện tại", "en": "Now"}
    LOSS: Final[Words] = {"vi": "Mất gói", "en": "Packet loss"}
    RTT: Final[Words] = {"vi": "Độ trễ (RTT)", "en": "Latency (RTT)"}
    INTERFACE: Final[Words] = {"vi": "Cổng WAN", "en": "WAN interface"}
    UTILIZATION: Final[Words] = {"vi": "Băng thông dùng", "en": "Utilization"}
    IN_OUT: Final[Words] = {"vi": "vào / ra", "en": "in / out"}
    MEASURED_AT: Final[Words] = {"vi": "Đo lúc", "en": "Measured at"}
    IF_UP: Final[Words] = {"vi": "Hoạt động (up)", "en": "Up"}
    IF_DOWN: Final[Words] = {"vi": "Bị ngắt (down)", "en": "Down"}
    UNKNOWN: Final[Words] = {"vi": "Không rõ", "en": "Unknown"}
    CHART: Final[Words] = {
        "vi": "Mất gói và độ trễ 24 giờ qua",
        "en": "Loss and latency, last 24 hours",
    }
    PATH: Final[Words] = {"vi": "Đường đi khi mở phiếu", "en": "The path when the ticket opened"}
    HOP: Final[Words] = {"vi": "Chặng", "en": "Hop"}
    ADDRESS: Final[Words] = {"vi": "Địa chỉ", "en": "Address"}
    NAME: Final[Words] = {"vi": "Tên", "en": "Name"}
    ANSWERED: Final[Words] = {"vi": "Phản hồi", "en": "Answered"}
    NO_ANSWER: Final[Words] = {"vi": "không phản hồi", "en": "no answer"}
    TRACED: Final[Words] = {"vi": "Đo từ NetWatch lúc {at}.", "en": "Traced from NetWatch at {at}."}
    LOG: Final[Words] = {"vi": "Diễn biến phiếu", "en": "What happened"}
    ACTIONS: Final[Words] = {"vi": "Xử lý phiếu", "en": "Act on the ticket"}
    ACK: Final[Words] = {"vi": "Tiếp nhận phiếu", "en": "Acknowledge"}
    ACK_BUTTON: Final[Words] = {"vi": "Tiếp nhận", "en": "Acknowledge"}
    ADD_NOTE: Final[Words] = {"vi": "Thêm ghi chú", "en": "Add a note"}
    NOTE_BUTTON: Final[Words] = {"vi": "Gửi ghi chú", "en": "Send the note"}
    RESOLVE: Final[Words] = {"vi": "Đóng phiếu (đã khắc phục)", "en": "Resolve (fixed)"}
    RESOLVE_BUTTON: Final[Words] = {"vi": "Đóng phiếu", "en": "Resolve"}
    WHO: Final[Words] = {"vi": "Người xử lý (không bắt buộc)", "en": "Your name (optional)"}
    NOTE_OPT: Final[Words] = {"vi": "Ghi chú (không bắt buộc)", "en": "Note (optional)"}
    NOTE_TEXT: Final[Words] = {"vi": "Nội dung", "en": "Text"}
    FIX_TEXT: Final[Words] = {"vi": "Đã khắc phục thế nào", "en": "What was fixed"}
    RESOLVED_NOTE: Final[Words] = {
        "vi": "Phiếu đã đóng. Nếu sự cố quay lại, NetWatch sẽ mở lại phiếu và báo cho nhà mạng.",
        "en": "The ticket is resolved. If the problem comes back, NetWatch reopens it and "
        "tells the ISP.",
    }
    EXPIRES: Final[Words] = {"vi": "Liên kết có hiệu lực đến", "en": "This link is valid until"}
    REFUSED_TITLE: Final[Words] = {"vi": "Không mở được phiếu", "en": "The ticket cannot be opened"}
    FAILED_TITLE: Final[Words] = {"vi": "Không thực hiện được", "en": "Could not be done"}
    BACK: Final[Words] = {"vi": "Quay lại phiếu", "en": "Back to the ticket"}
    NWATCH: Final[Words] = {"vi": "NetWatch", "en": "NetWatch"}
    ISP_ACTOR: Final[Words] = {"vi": "nhà mạng", "en": "ISP"}
    IT_ACTOR: Final[Words] = {"vi": "CNTT tỉnh", "en": "provincial IT"}
