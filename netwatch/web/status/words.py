"""Every word the status pages show, in Vietnamese and English (plain words, no jargon)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from netwatch.notify.messages import ProblemState, problem_words
from netwatch.vocab import DOWN_CAUSE as CATALOGUE_DOWN_CAUSE
from netwatch.vocab import LINK_STATE, TERM, Term
from netwatch.vocab import PORTAL_STATE as CATALOGUE_PORTAL_STATE
from netwatch.web.words import TICKET_KIND, TICKET_STATE, Common, Words

__all__ = [
    "DEVICE_KIND",
    "DOWN_CAUSE",
    "INSIDE",
    "PATH",
    "PHASE",
    "PORTAL_CSS",
    "PORTAL_STATE",
    "PROBLEM",
    "RANK",
    "STATE",
    "TICKET_KIND",
    "TICKET_STATE",
    "Explain",
    "Shown",
    "T",
    "Words",
]


class Shown(enum.Enum):
    """A link's or commune's state as the status page shows it (worst last)."""

    OK = "ok"
    UNKNOWN = "unknown"
    MAINTENANCE = "maintenance"
    SLOW = "slow"
    CONGESTED = "congested"
    LOSSY = "lossy"
    DOWN = "down"


# Severity: a commune shows its worst link; the province list sorts by it.
RANK = {
    Shown.OK: 0,
    Shown.UNKNOWN: 1,
    Shown.MAINTENANCE: 2,
    Shown.SLOW: 3,
    Shown.CONGESTED: 4,
    Shown.LOSSY: 5,
    Shown.DOWN: 6,
}

# State, kind and ticket words are the one catalogue's (netwatch/vocab.py): the pages, mail, chat
# and dashboards say them alike. These tables only key them the way the pages look them up (a
# link's judged state is shown as the state of the same name).
STATE: Mapping[Shown, Words] = {
    **{Shown(state.value): words for state, words in LINK_STATE.items()},
    Shown.MAINTENANCE: TERM[Term.MAINTENANCE],
    Shown.UNKNOWN: TERM[Term.NO_DATA],
}

PORTAL_STATE: Mapping[str, Words] = {
    **{state.value: words for state, words in CATALOGUE_PORTAL_STATE.items()},
    "unknown": TERM[Term.NO_DATA],
}
# CSS class of a portal state (the same palette as links).
PORTAL_CSS = {"ok": "ok", "slow": "slow", "failing": "failing", "unknown": "unknown"}

PATH: Mapping[str, Words] = {
    "tslcd": {"vi": "Truyền số liệu chuyên dùng", "en": "Government data network"},
    "internet": {"vi": "Internet", "en": "Internet"},
}

DOWN_CAUSE: Mapping[str, Words] = {
    cause.value: words for cause, words in CATALOGUE_DOWN_CAUSE.items()
}

T: Mapping[str, Words] = {
    "site_title": {"vi": "Tình trạng đường truyền", "en": "Connection status"},
    "provinces_h1": {
        "vi": "Tình trạng đường truyền các xã, phường",
        "en": "Connection status of communes and wards",
    },
    "province_h1": {"vi": "Tình trạng đường truyền — {name}", "en": "Connection status — {name}"},
    "updated": {
        "vi": "Cập nhật lúc {time} (giờ Việt Nam). Trang tự làm mới khi bật JavaScript.",
        "en": "Updated at {time} (Vietnam time). The page refreshes itself with JavaScript on.",
    },
    "hysteresis": {
        "vi": "Một tình trạng chỉ được ghi nhận khi kéo dài qua nhiều lần đo liên tiếp.",
        "en": "A state is only reported once it has held over several measurements in a row.",
    },
    "counts_h": {"vi": "Số xã theo tình trạng", "en": "Communes by state"},
    "all": {"vi": "Tất cả", "en": "All"},
    "portals_h": {"vi": "Cổng dịch vụ công", "en": "Public service portals"},
    "no_portals": {"vi": "Chưa cấu hình cổng nào.", "en": "No portal configured."},
    "communes_h": {"vi": "Các xã, phường", "en": "Communes and wards"},
    "search_label": {"vi": "Tìm xã, phường theo tên", "en": "Find a commune by name"},
    "search_hint": {
        "vi": "Gõ tên có dấu hoặc không dấu, ví dụ: tan phu dong",
        "en": "With or without Vietnamese diacritics, e.g. tan phu dong",
    },
    "search_button": {"vi": "Tìm", "en": "Search"},
    "search_found": {
        "vi": "{n} kết quả cho “{q}”.",
        "en": "{n} result(s) for “{q}”.",
    },
    "search_none": {
        "vi": "Không tìm thấy xã, phường nào tên “{q}”.",
        "en": "No commune named “{q}”.",
    },
    "filter_shown": {
        "vi": "Đang lọc: {state}.",
        "en": "Showing: {state}.",
    },
    "show_all": {"vi": "Xem tất cả", "en": "Show all"},
    "since": {"vi": "từ {time}", "en": "since {time}"},
    "province_of": {"vi": "{n} xã, phường", "en": "{n} communes"},
    "provinces_h": {"vi": "Các tỉnh, thành phố", "en": "Provinces"},
    "problems": {"vi": "{n} xã có sự cố", "en": "{n} communes with a problem"},
    "back_province": {"vi": "← Danh sách xã của {name}", "en": "← Communes of {name}"},
    "commune_h1": {"vi": "{name}", "en": "{name}"},
    "commune_sub": {
        "vi": "Mã xã {code} · {province}",
        "en": "Commune code {code} · {province}",
    },
    "answer_h": {"vi": "Kết nối của xã hiện nay", "en": "The commune's connection now"},
    "links_h": {"vi": "Các đường truyền", "en": "Links"},
    "link_isp": Common.ISP,
    "link_path": {"vi": "Loại đường truyền", "en": "Kind"},
    "link_state": {"vi": "Tình trạng", "en": "State"},
    "link_since": {"vi": "Từ lúc", "en": "Since"},
    "link_last": {"vi": "Lần đo gần nhất", "en": "Latest measurement"},
    "last_round": {
        "vi": "{time}: mất gói {loss}, độ trễ {rtt}",
        "en": "{time}: loss {loss}, latency {rtt}",
    },
    "measured_under_maintenance": {
        "vi": "Đo được trong lúc bảo trì: {state}",
        "en": "Measured during maintenance: {state}",
    },
    "tickets_h": {"vi": "Xử lý sự cố", "en": "Who is on it"},
    "no_ticket": {
        "vi": "Không có phiếu sự cố nào đang mở cho xã.",
        "en": "No open trouble ticket for this commune.",
    },
    "ticket_title": {"vi": "Phiếu {id}: {kind}", "en": "Ticket {id}: {kind}"},
    "ticket_opened": {"vi": "Mở phiếu lúc", "en": "Opened at"},
    "ticket_told": {"vi": "{who} được thông báo lúc", "en": "{who} told at"},
    "ticket_not_told_yet": {
        "vi": "Đang gửi thông báo",
        "en": "Notification being sent",
    },
    "ticket_nobody": {
        "vi": "Chưa gửi (chưa cấu hình người nhận thông báo)",
        "en": "Not sent (no recipient configured)",
    },
    "ticket_ack": Common.ACKNOWLEDGED,
    "ticket_ack_yes": {"vi": "Đã tiếp nhận lúc {time}", "en": "Yes, at {time}"},
    "ticket_ack_no": Common.NOT_ACKNOWLEDGED,
    "ticket_downtime": {"vi": "Thời gian gián đoạn", "en": "Downtime so far"},
    "ticket_notes": {"vi": "Ghi chú", "en": "Notes"},
    "who_isp": {"vi": "Nhà mạng", "en": "The ISP"},
    "who_it": Common.PROVINCIAL_IT,
    "who_both": {"vi": "Nhà mạng và CNTT tỉnh", "en": "The ISP and provincial IT"},
    "who_it_commune": {
        "vi": "CNTT tỉnh và cán bộ phụ trách của xã",
        "en": "Provincial IT and the commune's own contacts",
    },
    "actor_isp": Common.ISP,
    "actor_it": Common.PROVINCIAL_IT,
    "actor_system": {"vi": "NetWatch", "en": "NetWatch"},
    "chart_h": {"vi": "Độ trễ và mất gói 24 giờ qua", "en": "Latency and packet loss, last 24 h"},
    "chart_title": {
        "vi": "{isp} ({path}): độ trễ và mất gói 24 giờ qua",
        "en": "{isp} ({path}): latency and packet loss, last 24 hours",
    },
    "history_h": {"vi": "Sự cố 30 ngày qua", "en": "Incidents in the last 30 days"},
    "history_none": {
        "vi": "Không có sự cố nào trong 30 ngày qua.",
        "en": "No incident in the last 30 days.",
    },
    "history_when": {"vi": "Thời gian", "en": "When"},
    "history_what": {"vi": "Sự cố", "en": "What"},
    "history_state": {"vi": "Tình trạng phiếu", "en": "Ticket"},
    "history_open": {"vi": "đang diễn ra", "en": "ongoing"},
    "availability_h": {"vi": "Tỷ lệ sẵn sàng tháng {month}", "en": "Availability in {month}"},
    "availability_line": {
        "vi": "{isp} ({path}): {ratio}",
        "en": "{isp} ({path}): {ratio}",
    },
    "availability_note": {
        "vi": "Tỷ lệ thời gian đường truyền sử dụng được (không tính thời gian chưa đo); "
        "yêu cầu theo hợp đồng: {target}.",
        "en": "Share of measured time the link was usable; contract target: {target}.",
    },
    "availability_detail": {
        "vi": "mất kết nối {down}, chất lượng kém {degraded}; tính trên {known} có số liệu",
        "en": "down {down}, degraded {degraded}; over {known} with data",
    },
    "availability_unknown": {"vi": "chưa có số liệu", "en": "no data yet"},
    "not_found_h1": Common.NOT_FOUND,
    "commune_not_found": {
        "vi": "NetWatch không theo dõi xã, phường có mã “{code}”.",
        "en": "NetWatch does not monitor a commune with code “{code}”.",
    },
    "province_not_found": {
        "vi": "NetWatch không theo dõi tỉnh, thành phố có mã “{code}”.",
        "en": "NetWatch does not monitor a province with code “{code}”.",
    },
    "starting": Common.STARTING,
    "footer": {
        "vi": "NetWatch — giám sát đường truyền của Trung tâm Phục vụ hành chính công cấp xã. "
        "Trang công khai: không hiển thị địa chỉ nội bộ, thông tin liên hệ hay mật khẩu.",
        "en": "NetWatch — link monitoring for commune Public Administration Service Centers. "
        "Public page: no internal address, contact or secret is shown.",
    },
    "nav_province": Common.PROVINCE,
    "nav_all": {"vi": "Tất cả tỉnh", "en": "All provinces"},
}

# The problem behind a ticket, as mail and chat name it.
PROBLEM: Mapping[str, Words] = {state.value: problem_words(state) for state in ProblemState}


class Explain:
    """The sentences that say whose problem a state is (netwatch.web.status.explain fills their
    {placeholders}: line, told, reason, node, isp, limit, bw, since, until, name, n)."""

    LINE: Final[Words] = {"vi": "Đường truyền {isp} ({path})", "en": "The {isp} link ({path})"}
    # Said after a link's sentence: who has been told of its ticket.
    ISP_ON_IT: Final[Words] = {
        "vi": " Nhà mạng đã tiếp nhận xử lý.",
        "en": " The ISP is working on it.",
    }
    IT_TOLD: Final[Words] = {
        "vi": " CNTT tỉnh đã được thông báo.",
        "en": " Provincial IT has been told.",
    }
    ISP_TOLD: Final[Words] = {
        "vi": " Nhà mạng đã được thông báo.",
        "en": " The ISP has been told.",
    }
    SITE_TOLD: Final[Words] = {
        "vi": " CNTT tỉnh và cán bộ phụ trách của xã đã được thông báo.",
        "en": " Provincial IT and the commune's own contacts have been told.",
    }
    MAINTENANCE: Final[Words] = {
        "vi": "{line} đang được bảo trì theo kế hoạch ({reason}): có thể gián đoạn trong thời "
        "gian bảo trì.",
        "en": "{line} is under planned maintenance ({reason}): it may be interrupted.",
    }
    DOWN_UPSTREAM: Final[Words] = {
        "vi": "{line} mất kết nối do sự cố tại {node} của nhà mạng {isp}: nhiều xã trong khu vực "
        "cùng bị ảnh hưởng — không phải lỗi tại xã.{told}",
        "en": "{line} is down because of an outage at {node} of {isp}: several communes in the "
        "area are affected — not a fault at the commune.{told}",
    }
    DOWN_INTERFACE: Final[Words] = {
        "vi": "{line} mất kết nối: cổng WAN trên thiết bị mạng của xã báo mất tín hiệu từ đường "
        "truyền. Hãy kiểm tra dây cáp và modem/thiết bị quang của nhà mạng tại xã; nếu thiết bị "
        "vẫn bình thường, lỗi thuộc đường truyền của nhà mạng.{told}",
        "en": "{line} is down: the WAN port of the commune's router sees no signal from the "
        "line. Check the cable and the ISP's modem at the commune; if they look fine, the fault "
        "is on the ISP's line.{told}",
    }
    DOWN_REBOOTED: Final[Words] = {
        "vi": "{line} mất kết nối: thiết bị mạng của xã vừa khởi động lại (có thể do mất điện tại "
        "xã).{told}",
        "en": "{line} is down: the commune's router has just restarted (a power cut at the "
        "commune?).{told}",
    }
    DOWN_UNREACHABLE: Final[Words] = {
        "vi": "{line} mất kết nối: không liên lạc được với thiết bị mạng của xã — có thể mất điện "
        "tại xã hoặc đứt đường truyền của nhà mạng.{told}",
        "en": "{line} is down: the commune's router cannot be reached — a power cut at the "
        "commune, or the ISP's line is cut.{told}",
    }
    DOWN_SITE: Final[Words] = {
        "vi": "{line} mất kết nối và thiết bị đo đặt tại xã cũng không gửi tin: cả trung tâm xã "
        "mất liên lạc — nhiều khả năng do mất điện hoặc sự cố mạng nội bộ tại xã, chưa có dấu "
        "hiệu lỗi của nhà mạng.{told}",
        "en": "{line} is down and the commune's own agent is silent too: the whole centre is "
        "unreachable — most likely a power cut or a LAN problem at the commune, with no sign "
        "of a fault on the ISP's side.{told}",
    }
    DOWN: Final[Words] = {
        "vi": "{line} mất kết nối — lỗi đường truyền phía nhà mạng {isp}.{told}",
        "en": "{line} is down — a fault on {isp}'s side.{told}",
    }
    LOSSY: Final[Words] = {
        "vi": "{line} đang mất gói, kết nối chập chờn — lỗi chất lượng phía nhà mạng, không phải "
        "do xã dùng quá nhiều.{told}",
        "en": "{line} is losing packets (unstable) — a quality fault on the ISP's side, not the "
        "commune using too much.{told}",
    }
    SLOW: Final[Words] = {
        "vi": "{line} đang chậm: độ trễ vượt ngưỡng {limit} trong khi đường truyền không đầy — "
        "lỗi chất lượng phía nhà mạng.{told}",
        "en": "{line} is slow: latency above {limit} while the line is not full — a quality "
        "fault on the ISP's side.{told}",
    }
    CONGESTED: Final[Words] = {
        "vi": "{line} đang quá tải: xã đang dùng gần hết băng thông thuê bao ({bw} Mbps) — không "
        "phải lỗi của nhà mạng; CNTT tỉnh xem xét nâng băng thông hoặc giảm tải (tải tệp lớn, "
        "camera...).{told}",
        "en": "{line} is overloaded: the commune uses nearly all of its contracted bandwidth "
        "({bw} Mbps) — not an ISP fault; provincial IT looks at more bandwidth or less load "
        "(large downloads, cameras...).{told}",
    }
    BACK: Final[Words] = {
        "vi": "{line} đã hoạt động trở lại từ {since}. NetWatch tiếp tục theo dõi{until} rồi mới "
        "đóng phiếu sự cố.",
        "en": "{line} has been back since {since}. NetWatch keeps watching it{until} before it "
        "closes the ticket.",
    }
    UNTIL: Final[Words] = {"vi": " đến {closes}", "en": " until {closes}"}
    PORTAL_FAILING: Final[Words] = {
        "vi": "{name} đang gián đoạn — không phải lỗi đường truyền của xã.",
        "en": "{name} is interrupted — not a fault of the commune's connection.",
    }
    PORTAL_SLOW: Final[Words] = {
        "vi": "{name} đang phản hồi chậm — không phải lỗi đường truyền của xã.",
        "en": "{name} is responding slowly — not a fault of the commune's connection.",
    }
    # The probes have not reported for several rounds: what is shown is that old.
    STALE: Final[Words] = {
        "vi": "Dữ liệu chưa được cập nhật: lần đo gần nhất lúc {time} (cách đây {age}). Tình "
        "trạng hiển thị có thể đã thay đổi.",
        "en": "The data is not up to date: the latest measurement was at {time} ({age} ago). "
        "The states shown may have changed since.",
    }
    # No alerting core leads (web workers see the bus lease empty): tickets wait.
    ALERTING_PAUSED: Final[Words] = {
        "vi": "Hệ thống cảnh báo đang tạm ngưng từ {time}; phiếu sự cố chưa được cập nhật.",
        "en": "Alerting has been paused since {time}; trouble tickets are not being updated.",
    }
    MONITOR: Final[Words] = {
        "vi": "Hệ thống giám sát NetWatch đang mất kết nối — tình trạng hiển thị có thể chưa phản "
        "ánh đúng đường truyền của các xã.",
        "en": "NetWatch itself has lost connectivity — the states shown may not reflect the "
        "communes' links.",
    }
    UPSTREAM_OUTAGE: Final[Words] = {
        "vi": "Sự cố tại {node} của nhà mạng {isp}: {n} xã phía sau mất kết nối — không phải lỗi "
        "tại các xã; nhà mạng được thông báo một lần cho cả khu vực.",
        "en": "Outage at {node} of {isp}: {n} communes behind it are down — not a fault at the "
        "communes; the ISP is told once for the whole area.",
    }
    STILL_CONNECTED: Final[Words] = {
        "vi": "Xã vẫn còn kết nối qua: {names}.",
        "en": "The commune still has a connection through: {names}.",
    }
    NO_DATA_YET: Final[Words] = {
        "vi": "Chưa có số liệu đo: NetWatch vừa khởi động.",
        "en": "No measurement yet: NetWatch has just started.",
    }
    ALL_FINE: Final[Words] = {
        "vi": "Đường truyền của xã hoạt động bình thường.",
        "en": "The commune's connection is working normally.",
    }


# "Seen from the commune": the commune agent's view on the commune page (status/inside.py).
INSIDE: Mapping[str, Words] = {
    "h": {"vi": "Nhìn từ trung tâm xã", "en": "Seen from the commune"},
    "intro": {
        "vi": "Số liệu do thiết bị đo đặt tại Trung tâm Phục vụ hành chính công của xã gửi "
        "về, đo lúc {time} (cách đây {age}).",
        "en": "Measured by the box in the commune's Public Administration Service Center at "
        "{time} ({age} ago).",
    },
    "never": {
        "vi": "Chưa nhận được số liệu nào từ thiết bị đo tại xã.",
        "en": "Nothing has been received yet from the measuring box at the commune.",
    },
    "stale": {
        "vi": "Số liệu này đã cũ: thiết bị đo chưa gửi lần đo mới hơn.",
        "en": "This data is old: the measuring box has sent nothing newer.",
    },
    "portals_h": {
        "vi": "Cổng dịch vụ công qua từng đường truyền",
        "en": "Public service portals over each link",
    },
    "portal_over": {"vi": "{portal} qua {isp} ({path})", "en": "{portal} over {isp} ({path})"},
    "portal_time": {"vi": "mở trang mất {total}", "en": "page loaded in {total}"},
    "portal_failed": {
        "vi": "không mở được trang, lỗi ở bước {phase} (sau {total})",
        "en": "the page could not be opened, failed at {phase} (after {total})",
    },
    "portal_none": {
        "vi": "Chưa có lần đo cổng dịch vụ công nào.",
        "en": "No portal measurement yet.",
    },
    "seconds": {"vi": "{n} giây", "en": "{n} s"},
    "paths_h": {"vi": "Đường truyền đo từ xã", "en": "Links measured from the commune"},
    "path_up": {
        "vi": "thông, độ trễ {rtt}, mất gói {loss}",
        "en": "reachable, latency {rtt}, loss {loss}",
    },
    "path_down": {"vi": "không thông", "en": "not reachable"},
    "lan_up": {
        "vi": "Mạng nội bộ của xã: bộ định tuyến phản hồi bình thường.",
        "en": "The commune's LAN: the router answers.",
    },
    "lan_down": {
        "vi": "Mạng nội bộ của xã: bộ định tuyến không phản hồi.",
        "en": "The commune's LAN: the router does not answer.",
    },
    "devices_h": {"vi": "Thiết bị tại xã", "en": "Devices at the commune centre"},
    "devices_count": {"vi": "{up}/{n} thiết bị hoạt động.", "en": "{up} of {n} devices working."},
    "device_up": {"vi": "hoạt động", "en": "working"},
    "device_down": {"vi": "không phản hồi", "en": "not answering"},
    "agent_h": {"vi": "Thiết bị đo", "en": "The measuring box"},
    "heard": {
        "vi": "Liên lạc lần cuối lúc {time} (cách đây {age}).",
        "en": "Last heard at {time} ({age} ago).",
    },
    "silent": {
        "vi": "Mất liên lạc với thiết bị đo từ {time} (cách đây {age}) — có thể mất điện hoặc "
        "mất mạng tại xã. Số liệu đo trong thời gian này sẽ được gửi bù khi có kết nối trở lại.",
        "en": "The measuring box has been silent since {time} ({age} ago) — a power or network "
        "cut at the commune? What it measures meanwhile is sent once it reconnects.",
    },
    "never_heard": {
        "vi": "Chưa liên lạc được với thiết bị đo.",
        "en": "The measuring box has not been heard from yet.",
    },
    "buffer_empty": {
        "vi": "Không có số liệu chờ gửi.",
        "en": "Nothing waiting to be sent.",
    },
    "buffer": {
        "vi": "{n} lần đo đang chờ gửi về (cũ nhất từ {time}).",
        "en": "{n} measurements waiting to be sent (the oldest from {time}).",
    },
    "dropped": {
        "vi": "{n} lần đo đã bị bỏ vì bộ nhớ đệm của thiết bị đầy.",
        "en": "{n} measurements were dropped because the box's buffer was full.",
    },
}

DEVICE_KIND: Mapping[str, Words] = {
    "kiosk": {"vi": "Máy tra cứu tự phục vụ", "en": "Kiosk"},
    "queue": {"vi": "Máy lấy số thứ tự", "en": "Queue ticket machine"},
    "printer": {"vi": "Máy in", "en": "Printer"},
    "camera": {"vi": "Camera", "en": "Camera"},
    "other": {"vi": "Thiết bị khác", "en": "Other device"},
}

# The step of opening a portal page that failed (probes.http.HttpPhase values).
PHASE: Mapping[str, Words] = {
    "dns": {"vi": "phân giải tên miền", "en": "name lookup"},
    "connect": {"vi": "kết nối", "en": "connecting"},
    "tls": {"vi": "thiết lập kết nối bảo mật", "en": "secure connection (TLS)"},
    "http": {"vi": "chờ máy chủ trả lời", "en": "waiting for the server"},
    "content": {"vi": "kiểm tra nội dung trang", "en": "checking the page's content"},
}
