"""Every word of a ticket's body, as the ISP's page and the provincial IT's view show it, vi and en.

One named entry per label (`Label.TICKET`). Incident kinds, states, down causes, ticket statuses
and events come from the one vocabulary catalogue, netwatch.vocab, as in mail, chat, the status
page and the dashboards. The ISP page's own words (its refusals, its link's expiry) are in
netwatch.web.isp.words, the provincial IT view's in netwatch.web.admin.words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from alerts.model import DownCause, LinkState, PortalState
from alerts.tickets import EventKind
from netwatch.vocab import (
    DOWN_CAUSE,
    LANGS,
    LINK_STATE,
    PORTAL_STATE,
    TICKET_EVENT,
)
from netwatch.web.words import Common, Words

# States, down causes and log events: the one catalogue's wordings (netwatch.vocab), keyed by the
# stored values the body reads (a ticket's status and kind: netwatch.web.words).
PROBLEM: Mapping[str, Words] = {
    **{s.value: LINK_STATE[s] for s in LinkState},
    PortalState.FAILING.value: PORTAL_STATE[PortalState.FAILING],
}
# Said after "—" inside a sentence, so in the catalogue's inline (lower-case) form.
DETAIL: Mapping[str, Words] = {
    c.value: {lang: DOWN_CAUSE[c].inline(lang) for lang in LANGS} for c in DownCause
}
EVENT: Mapping[str, Words] = {e.value: TICKET_EVENT[e] for e in EventKind}
# What NetWatch's terse "ok since …" / "unacknowledged since …" log texts say.
SINCE: Mapping[str, Words] = {
    "ok": {"vi": "Bình thường từ", "en": "Normal since"},
    "unacknowledged": {"vi": "Chưa được tiếp nhận từ", "en": "Not acknowledged since"},
}
# "level 2" in the log: an escalation level.
LEVEL: Words = Common.LEVEL
# The notice after an action (post/redirect/get), by action (?done=); both views say it.
DONE: Mapping[str, Words] = {
    "acknowledge": {
        "vi": "Đã ghi nhận: phiếu đã được tiếp nhận. Việc nhắc và chuyển cấp dừng lại.",
        "en": "Done: the ticket is acknowledged. Reminders and escalation stop.",
    },
    "note": {"vi": "Đã thêm ghi chú vào nhật ký phiếu.", "en": "The note is in the ticket's log."},
    "internal_note": {
        "vi": "Đã lưu ghi chú nội bộ (không hiển thị công khai).",
        "en": "The internal note is kept (not shown publicly).",
    },
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
    """The body's labels, headings, buttons and sentences, each in Vietnamese and English."""

    TICKET: Final[Words] = {"vi": "Phiếu sự cố", "en": "Trouble ticket"}
    SUMMARY: Final[Words] = {"vi": "Tóm tắt", "en": "Summary"}
    TICKET_STATE: Final[Words] = {"vi": "Trạng thái phiếu", "en": "Ticket state"}
    KIND: Final[Words] = {"vi": "Loại sự cố", "en": "Kind"}
    PROBLEM: Final[Words] = Common.PROBLEM
    COMMUNE: Final[Words] = Common.COMMUNE
    CODE: Final[Words] = {"vi": "mã", "en": "code"}
    LINK: Final[Words] = Common.LINK
    CIRCUIT: Final[Words] = {"vi": "Mã kênh truyền", "en": "Circuit ID"}
    ISP: Final[Words] = Common.ISP
    AFFECTED: Final[Words] = {"vi": "Các đường truyền bị ảnh hưởng", "en": "Affected links"}
    OPENED_AT: Final[Words] = {"vi": "Mở phiếu lúc", "en": "Opened"}
    ACKED_AT: Final[Words] = {"vi": "Tiếp nhận lúc", "en": "Acknowledged"}
    RESOLVED_AT: Final[Words] = {"vi": "Đóng lúc", "en": "Resolved"}
    NOT_ACKED: Final[Words] = Common.NOT_ACKNOWLEDGED
    FIRST_BAD: Final[Words] = {"vi": "Bắt đầu có sự cố", "en": "Problem began"}
    DOWNTIME: Final[Words] = {"vi": "Thời gian gián đoạn đến nay", "en": "Downtime so far"}
    EVIDENCE: Final[Words] = {"vi": "Số liệu đo", "en": "Evidence"}
    MEASURE: Final[Words] = {"vi": "Chỉ số", "en": "Measure"}
    FIRST_ROUND: Final[Words] = {"vi": "Lúc đầu", "en": "At first"}
    WORST: Final[Words] = {"vi": "Xấu nhất", "en": "Worst"}
    NOW: Final[Words] = {"vi": "Hiện tại", "en": "Now"}
    LOSS: Final[Words] = Common.LOSS
    RTT: Final[Words] = {"vi": "Độ trễ (RTT)", "en": "Latency (RTT)"}
    INTERFACE: Final[Words] = {"vi": "Cổng WAN", "en": "WAN interface"}
    UTILIZATION: Final[Words] = {"vi": "Băng thông dùng", "en": "Utilization"}
    IN_OUT: Final[Words] = {"vi": "vào / ra", "en": "in / out"}
    MEASURED_AT: Final[Words] = {"vi": "Đo lúc", "en": "Measured at"}
    IF_UP: Final[Words] = {"vi": "Hoạt động (up)", "en": "Up"}
    IF_DOWN: Final[Words] = {"vi": "Bị ngắt (down)", "en": "Down"}
    UNKNOWN: Final[Words] = Common.UNKNOWN
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
    INSIDE: Final[Words] = {
        "vi": "Đo từ bên trong trung tâm xã (thiết bị đo tại xã)",
        "en": "Measured from inside the commune centre (its agent)",
    }
    INSIDE_AT: Final[Words] = {"vi": "Thời điểm", "en": "At"}
    INSIDE_PATH: Final[Words] = {"vi": "Đường", "en": "Path"}
    INSIDE_LAN: Final[Words] = {"vi": "Router (mạng nội bộ)", "en": "Router (LAN)"}
    INSIDE_FAR: Final[Words] = {"vi": "Đầu xa của đường", "en": "Far end of the path"}
    INSIDE_LATE: Final[Words] = {
        "vi": "gửi về sau khi có lại kết nối",
        "en": "sent after the line came back",
    }
    INSIDE_PORTAL: Final[Words] = {"vi": "Cổng dịch vụ", "en": "Portal"}
    INSIDE_TIMES: Final[Words] = {
        "vi": "DNS / kết nối / TLS / byte đầu / tổng",
        "en": "DNS / connect / TLS / first byte / total",
    }
    INSIDE_FAILED: Final[Words] = {"vi": "thất bại ở bước {phase}", "en": "failed at {phase}"}
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
    VISIBILITY: Final[Words] = {"vi": "Ai được xem ghi chú", "en": "Who sees the note"}
    VIS_PUBLIC: Final[Words] = {
        "vi": "Công khai: hiển thị trên trang trạng thái của xã và gửi cho người đã được báo",
        "en": "Public: shown on the commune's status page and sent to those already told",
    }
    VIS_INTERNAL: Final[Words] = {
        "vi": "Nội bộ: chỉ nhà mạng và CNTT tỉnh xem trong phiếu, không hiển thị công khai",
        "en": "Internal: only the ISP and provincial IT see it in the ticket, never public",
    }
    INTERNAL_NOTES: Final[Words] = {
        "vi": "Ghi chú nội bộ (không công khai)",
        "en": "Internal notes (not public)",
    }
    NOTE_PUBLIC: Final[Words] = {
        "vi": "Ghi chú này sẽ hiển thị công khai trên trang trạng thái của xã (không kèm tên "
        "người viết). Không ghi thông tin nội bộ, mật khẩu hay số điện thoại.",
        "en": "This note will be shown publicly on the commune's status page (without the "
        "writer's name). Do not write internal details, passwords or phone numbers.",
    }
    FIX_TEXT: Final[Words] = {"vi": "Đã khắc phục thế nào", "en": "What was fixed"}
    RESOLVED_NOTE: Final[Words] = {
        "vi": "Phiếu đã đóng. Nếu sự cố quay lại, NetWatch sẽ mở lại phiếu và báo cho nhà mạng.",
        "en": "The ticket is resolved. If the problem comes back, NetWatch reopens it and "
        "tells the ISP.",
    }
    ISP_ACTOR: Final[Words] = {"vi": "nhà mạng", "en": "ISP"}
    IT_ACTOR: Final[Words] = {"vi": "CNTT tỉnh", "en": "provincial IT"}
