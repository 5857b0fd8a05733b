"""Every word of the provincial IT view (/admin), in Vietnamese and English.

Moved verbatim from the former `A` table and the messages written inside the routes: each entry
has a name (`Label.LOGIN`, `Message.CSRF`) instead of a string key. Words with {placeholders}
are filled with `str.format` (or the templates' `say` filter). The kinds and states of tickets
are netwatch.web.words': one wording for every view.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from netwatch.web.words import Common, Words

__all__ = [
    "DONE",
    "REFUSAL_TITLE",
    "ROUND_KIND",
    "Label",
    "Message",
    "Refusal",
    "Words",
]


class Label:
    """The view's labels, headings, buttons and sentences."""

    TITLE: Final[Words] = {"vi": "Quản trị NetWatch", "en": "NetWatch administration"}
    LOGIN: Final[Words] = {"vi": "Đăng nhập", "en": "Log in"}
    LOGIN_INTRO: Final[Words] = {
        "vi": "Dành cho cán bộ CNTT của tỉnh và kỹ thuật viên nhà mạng. Đăng nhập bằng tài "
        "khoản (tạo bằng lệnh “netwatch user create”), hoặc bằng mã truy cập (API token) có "
        "quyền ghi, tạo bằng lệnh “netwatch token create TÊN --scope write”.",
        "en": "For provincial IT staff and ISP engineers. Log in with an account (made with "
        "“netwatch user create”), or with an API token that has the write scope, "
        "made with “netwatch token create NAME --scope write”.",
    }
    TOKEN: Final[Words] = {"vi": "Mã truy cập (API token)", "en": "API token"}
    USER: Final[Words] = {"vi": "Tên đăng nhập", "en": "User name"}
    LOGIN_TOKEN: Final[Words] = {"vi": "Đăng nhập bằng mã", "en": "Log in with the token"}
    PASSWORD: Final[Words] = {"vi": "Mật khẩu", "en": "Password"}
    WITH_PASSWORD: Final[Words] = {
        "vi": "Đăng nhập bằng tài khoản",
        "en": "Log in with an account",
    }
    WITH_TOKEN: Final[Words] = {
        "vi": "Hoặc đăng nhập bằng mã truy cập",
        "en": "Or log in with an API token",
    }
    LOGOUT: Final[Words] = {"vi": "Đăng xuất", "en": "Log out"}
    LOGGED_IN_AS: Final[Words] = {"vi": "Đăng nhập với mã", "en": "Logged in with token"}
    LOGGED_IN_USER: Final[Words] = {"vi": "Đăng nhập với tài khoản", "en": "Logged in as"}
    UNTIL: Final[Words] = {"vi": "đến", "en": "until"}
    BYE: Final[Words] = {"vi": "Bạn đã đăng xuất.", "en": "You are logged out."}
    ISP_LINKS: Final[Words] = {
        "vi": "Đường dẫn đã gửi nhà mạng",
        "en": "Links sent to the ISP",
    }
    LINKS_INTRO: Final[Words] = {
        "vi": "Mỗi thông báo về phiếu kèm một đường dẫn có chữ ký: đường dẫn cho phép xem phiếu "
        "đến khi hết hạn, và xác nhận, ghi chú, báo đã khắc phục đến hạn thao tác. Nếu một "
        "đường dẫn bị lộ, hãy thu hồi riêng đường dẫn đó (kể cả khi chưa ai mở); các đường dẫn "
        "khác vẫn dùng được.",
        "en": "Each notice about the ticket carries a signed link: it shows the ticket until it "
        "expires, and acknowledges, notes and resolves until its time to act ends. If one "
        "leaks, revoke that link alone (even before anyone opened it); the others keep "
        "working.",
    }
    NO_LINKS: Final[Words] = {
        "vi": "Chưa có đường dẫn nào được gửi hoặc được mở.",
        "en": "No link has been sent or opened yet.",
    }
    LINK_ID: Final[Words] = {"vi": "Mã đường dẫn", "en": "Link id"}
    ISSUED: Final[Words] = {"vi": "Gửi lúc", "en": "Sent"}
    FIRST_USED: Final[Words] = {"vi": "Mở lần đầu", "en": "First opened"}
    NOT_OPENED: Final[Words] = {"vi": "Chưa mở", "en": "Not opened"}
    ACTS_UNTIL: Final[Words] = {"vi": "Hạn thao tác", "en": "Acts until"}
    UNTIL_EXPIRY: Final[Words] = {"vi": "Đến khi hết hạn", "en": "Until it expires"}
    EXPIRES: Final[Words] = {"vi": "Hết hạn", "en": "Expires"}
    REVOKED: Final[Words] = {"vi": "Đã thu hồi", "en": "Revoked"}
    REVOKE: Final[Words] = {"vi": "Thu hồi", "en": "Revoke"}
    TICKETS: Final[Words] = {"vi": "Phiếu đang mở", "en": "Open tickets"}
    MAINTENANCE: Final[Words] = {"vi": "Bảo trì", "en": "Maintenance"}
    HEALTH: Final[Words] = {"vi": "Tình trạng NetWatch", "en": "NetWatch health"}
    RELOAD: Final[Words] = {"vi": "Nạp lại cấu hình", "en": "Reload the configuration"}
    RELOAD_INTRO: Final[Words] = {
        "vi": "Đọc lại tệp cấu hình (danh sách xã, đường truyền, ngưỡng) mà không khởi động lại. "
        "Tệp có lỗi thì cấu hình đang chạy được giữ nguyên. Xã bị bỏ khỏi tệp sẽ ngừng được "
        "giám sát và các phiếu đang mở của xã đó được đóng với lý do “Đã ngừng giám sát”.",
        "en": "Read the configuration file (communes, links, thresholds) again without a "
        "restart. A file with mistakes leaves the running configuration as it is. Communes "
        "removed from the file stop being monitored; their open tickets close as “removed "
        "from monitoring”.",
    }
    RELOAD_APPLIED: Final[Words] = {
        "vi": "Đã nạp lại cấu hình: {communes} xã được giám sát.",
        "en": "Configuration reloaded: {communes} communes monitored.",
    }
    RELOAD_REQUESTED: Final[Words] = {
        "vi": "Tệp cấu hình hợp lệ ({communes} xã); mọi tiến trình NetWatch đang nạp lại.",
        "en": "The file is valid ({communes} communes); every NetWatch process is reloading it.",
    }
    RELOAD_REFUSED: Final[Words] = {
        "vi": "Tệp cấu hình có lỗi; cấu hình đang chạy được giữ nguyên. Sửa các lỗi sau rồi "
        "nạp lại:",
        "en": "The file has mistakes; the running configuration stays. Fix these and reload:",
    }
    RELOAD_UNAVAILABLE: Final[Words] = {
        "vi": "Tiến trình này không tự nạp lại cấu hình (gửi SIGHUP cho tiến trình NetWatch).",
        "en": "This process does not reload its configuration (send SIGHUP to NetWatch).",
    }
    ADDED: Final[Words] = {"vi": "Thêm", "en": "Added"}
    REMOVED: Final[Words] = {"vi": "Bỏ", "en": "Removed"}
    CHANGED: Final[Words] = {"vi": "Đổi", "en": "Changed"}
    CLOSED_AS_REMOVED: Final[Words] = {
        "vi": "Phiếu đóng do ngừng giám sát",
        "en": "Tickets closed as removed from monitoring",
    }
    NO_TICKETS: Final[Words] = {
        "vi": "Không có phiếu nào đang mở.",
        "en": "No ticket is open.",
    }
    TICKET: Final[Words] = {"vi": "Phiếu", "en": "Ticket"}
    SUBJECT: Final[Words] = {"vi": "Xã / đường truyền", "en": "Commune / link"}
    ISP: Final[Words] = Common.ISP
    PROBLEM: Final[Words] = Common.PROBLEM
    OPENED: Final[Words] = {"vi": "Mở lúc", "en": "Opened"}
    AGE: Final[Words] = {"vi": "Tuổi phiếu", "en": "Age"}
    ACK: Final[Words] = Common.ACKNOWLEDGED
    LEVEL: Final[Words] = Common.LEVEL
    NOT_ACKED: Final[Words] = {"vi": "Chưa", "en": "Not yet"}
    OLDEST_FIRST: Final[Words] = {"vi": "cũ nhất trước", "en": "oldest first"}
    NEWEST_FIRST: Final[Words] = {"vi": "mới nhất trước", "en": "newest first"}
    SORTED: Final[Words] = {"vi": "Sắp xếp theo tuổi", "en": "Sorted by age"}
    COUNTS: Final[Words] = {
        "vi": "{open} phiếu đang mở, {unacked} phiếu chưa được tiếp nhận.",
        "en": "{open} open tickets, {unacked} not acknowledged.",
    }
    WINDOWS: Final[Words] = {
        "vi": "Các đợt bảo trì hiện tại và sắp tới",
        "en": "Current and coming windows",
    }
    NO_WINDOWS: Final[Words] = {
        "vi": "Không có đợt bảo trì nào đang diễn ra hoặc sắp tới.",
        "en": "No maintenance window now or to come.",
    }
    CONFIG_WINDOWS: Final[Words] = {
        "vi": "Lịch bảo trì trong tệp cấu hình (chỉ đọc)",
        "en": "Windows in the configuration file (read-only)",
    }
    SCOPE: Final[Words] = {"vi": "Phạm vi", "en": "Scope"}
    START: Final[Words] = {"vi": "Bắt đầu", "en": "Start"}
    END: Final[Words] = {"vi": "Kết thúc", "en": "End"}
    REASON: Final[Words] = {"vi": "Lý do", "en": "Reason"}
    BY: Final[Words] = {"vi": "Người tạo", "en": "Created by"}
    STATUS: Final[Words] = {"vi": "Trạng thái", "en": "Status"}
    ACTIVE: Final[Words] = {"vi": "Đang bảo trì", "en": "In progress"}
    PLANNED: Final[Words] = {"vi": "Sắp tới", "en": "Planned"}
    END_NOW: Final[Words] = {"vi": "Kết thúc ngay", "en": "End now"}
    CANCEL: Final[Words] = {"vi": "Hủy", "en": "Cancel"}
    NEW_WINDOW: Final[Words] = {"vi": "Tạo đợt bảo trì", "en": "Plan a maintenance window"}
    NEW_HINT: Final[Words] = {
        "vi": "Trong thời gian bảo trì, NetWatch không mở phiếu và không báo nhà mạng cho "
        "phạm vi đã chọn. Giờ theo giờ Việt Nam.",
        "en": "During the window NetWatch opens no ticket and tells no ISP about what it "
        "covers. Times are Vietnam time.",
    }
    CREATE: Final[Words] = {"vi": "Tạo", "en": "Create"}
    WHOLE_PROVINCE: Final[Words] = {"vi": "Toàn tỉnh", "en": "Whole province"}
    G_PROVINCE: Final[Words] = Common.PROVINCE
    G_COMMUNE: Final[Words] = Common.COMMUNE
    G_LINK: Final[Words] = Common.LINK
    G_ISP: Final[Words] = Common.ISP
    G_UPSTREAM: Final[Words] = {"vi": "Điểm kết nối của nhà mạng", "en": "ISP upstream node"}
    CHOOSE: Final[Words] = {"vi": "— chọn —", "en": "— choose —"}
    ROUNDS: Final[Words] = {"vi": "Các vòng đo", "en": "Probe rounds"}
    KIND: Final[Words] = {"vi": "Loại", "en": "Kind"}
    INTERVAL: Final[Words] = {"vi": "Chu kỳ", "en": "Interval"}
    LAST_ROUND: Final[Words] = {"vi": "Vòng gần nhất", "en": "Last round"}
    LAG: Final[Words] = {"vi": "Trễ lịch", "en": "Lag"}
    DURATION: Final[Words] = {"vi": "Thời gian đo", "en": "Duration"}
    TARGETS: Final[Words] = {"vi": "Số mục tiêu", "en": "Targets"}
    SKIPPED: Final[Words] = {"vi": "Vòng bị bỏ", "en": "Skipped"}
    FAILURES: Final[Words] = {"vi": "Lỗi đo", "en": "Failures"}
    ON_TIME: Final[Words] = {"vi": "Đúng lịch", "en": "On time"}
    LATE: Final[Words] = {"vi": "Chậm lịch", "en": "Late"}
    NOT_YET: Final[Words] = {"vi": "Chưa chạy", "en": "Not yet run"}
    OFF: Final[Words] = {"vi": "Không bật", "en": "Off"}
    OUTBOX: Final[Words] = {"vi": "Hàng đợi thông báo", "en": "Notification outbox"}
    PENDING: Final[Words] = {"vi": "Đang chờ gửi", "en": "Pending"}
    DUE: Final[Words] = {"vi": "Đến hạn gửi", "en": "Due now"}
    GIVEN_UP: Final[Words] = {"vi": "Đã bỏ (gửi lỗi quá nhiều lần)", "en": "Given up"}
    OLDEST_PENDING: Final[Words] = {"vi": "Cũ nhất đang chờ", "en": "Oldest pending"}
    ALERTING: Final[Words] = {"vi": "Xử lý phiếu tự động", "en": "Alerting loop"}
    LAST_TICK: Final[Words] = {"vi": "Lần đánh giá gần nhất", "en": "Last evaluation"}
    UNKNOWN: Final[Words] = Common.UNKNOWN
    DATABASE: Final[Words] = {"vi": "Cơ sở dữ liệu", "en": "Database"}
    DB_OK: Final[Words] = {"vi": "Hoạt động", "en": "OK"}
    DB_BAD: Final[Words] = {"vi": "Lỗi", "en": "Failing"}
    ANSWERED_IN: Final[Words] = {"vi": "trả lời trong", "en": "answered in"}
    COMMUNES: Final[Words] = {"vi": "Số xã/phường", "en": "Communes"}
    LINKS: Final[Words] = {"vi": "Số đường truyền", "en": "Links"}
    OPEN_TICKETS: Final[Words] = TICKETS
    AGO: Final[Words] = {"vi": "trước", "en": "ago"}
    FAIL_HINT: Final[Words] = {
        "vi": "Lỗi đo: mục tiêu không trả lời trong vòng gần nhất.",
        "en": "Failures: targets that did not answer in the last round.",
    }
    BACK: Final[Words] = {"vi": "Quay lại", "en": "Back"}


# A probe kind's name on the health page, by kind.
ROUND_KIND: Mapping[str, Words] = {
    "icmp": {"vi": "Ping (ICMP)", "en": "Ping (ICMP)"},
    "snmp": {"vi": "SNMP (bộ định tuyến)", "en": "SNMP (routers)"},
    "http": {"vi": "Cổng dịch vụ công (HTTPS)", "en": "Portals (HTTPS)"},
}
# The notice after a maintenance window is made or ended (post/redirect/get), by ?done=.
DONE: Mapping[str, Words] = {
    "created": {"vi": "Đã tạo đợt bảo trì.", "en": "The maintenance window is planned."},
    "ended": {"vi": "Đã kết thúc đợt bảo trì.", "en": "The maintenance window is ended."},
}


class Refusal(enum.Enum):
    """Why a request of the IT view is refused."""

    LOGIN_FAILED = "login_failed"
    NO_SCOPE = "no_scope"
    SESSION = "session"
    CSRF = "csrf"
    BAD_INPUT = "bad_input"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    STARTING = "starting"
    TOO_MANY = "too_many"
    UNAVAILABLE = "unavailable"  # a part NetWatch needs is missing here (Chromium for PDFs)


REFUSAL_TITLE: Mapping[Refusal, Words] = {
    Refusal.LOGIN_FAILED: {"vi": "Đăng nhập không thành công", "en": "Login failed"},
    Refusal.NO_SCOPE: {"vi": "Không đủ quyền", "en": "Not allowed"},
    Refusal.SESSION: {"vi": "Cần đăng nhập lại", "en": "Please log in again"},
    Refusal.CSRF: {"vi": "Biểu mẫu không hợp lệ", "en": "Form not accepted"},
    Refusal.BAD_INPUT: {"vi": "Dữ liệu chưa đúng", "en": "Please check the form"},
    Refusal.NOT_FOUND: Common.NOT_FOUND,
    Refusal.CONFLICT: Common.FAILED,
    Refusal.TOO_MANY: {"vi": "Tạm khóa đăng nhập", "en": "Login paused"},
    Refusal.STARTING: {"vi": "NetWatch đang khởi động", "en": "NetWatch is starting"},
    Refusal.UNAVAILABLE: {"vi": "Chưa thực hiện được", "en": "Not available here"},
}


class Message:
    """What a refusal page or a form error says ({placeholders} filled by the caller)."""

    STARTING: Final[Words] = Common.STARTING
    SESSION_GONE: Final[Words] = {
        "vi": "Phiên đăng nhập không còn hiệu lực (hết hạn, đã đăng xuất hoặc mã truy cập đã "
        "bị thu hồi). Không có thay đổi nào được thực hiện.",
        "en": "Your session is no longer valid (expired, logged out, or the token was "
        "revoked). Nothing was changed.",
    }
    # The English side of a bad body is the reader's own reason (read_fields).
    BAD_BODY: Final[str] = "Yêu cầu không đúng định dạng."
    CSRF: Final[Words] = {
        "vi": "Biểu mẫu đã cũ hoặc không được gửi từ trang quản trị. Hãy mở lại trang "
        "và thử lại. Không có thay đổi nào được thực hiện.",
        "en": "The form is stale or was not sent from the admin pages. Open the page "
        "again and retry. Nothing was changed.",
    }
    NO_SCOPE: Final[Words] = {
        "vi": "Mã truy cập này không có quyền ghi (write). Hãy dùng mã tạo với --scope write.",
        "en": "This token lacks the write scope. Use a token made with --scope write.",
    }
    LOGIN_CSRF: Final[Words] = {
        "vi": "Trang đăng nhập đã cũ hoặc biểu mẫu không được gửi từ trang này. Hãy mở lại "
        "trang đăng nhập và thử lại.",
        "en": "The login page is stale or the form was not sent from it. Open the login page "
        "again and retry.",
    }
    TOO_MANY: Final[Words] = {
        "vi": "Quá nhiều lần đăng nhập sai. Hãy thử lại sau {seconds} giây.",
        "en": "Too many failed logins. Try again in {seconds} seconds.",
    }
    NO_SUCH_LINK: Final[Words] = {
        "vi": "Phiếu này không có đường dẫn {link_id}.",
        "en": "This ticket has no link {link_id}.",
    }
    LINK_ALREADY_REVOKED: Final[Words] = {
        "vi": "Đường dẫn {link_id} đã bị thu hồi trước đó.",
        "en": "Link {link_id} was already revoked.",
    }
    LOGIN_FAILED: Final[Words] = {
        "vi": "Mã truy cập không đúng, không tồn tại hoặc đã bị thu hồi.",
        "en": "The token is wrong, unknown or revoked.",
    }
    PASSWORD_FAILED: Final[Words] = {
        "vi": "Tên đăng nhập hoặc mật khẩu không đúng, hoặc tài khoản đã bị khóa.",
        "en": "The user name or password is wrong, or the account is disabled.",
    }
    ROLE_REFUSED: Final[Words] = {
        "vi": "Tài khoản của bạn không có quyền dùng trang này.",
        "en": "Your account may not use this page.",
    }
    SCOPE_OUTSIDE: Final[Words] = {
        "vi": "Phạm vi đã chọn nằm ngoài các tỉnh bạn phụ trách.",
        "en": "The chosen scope lies outside your provinces.",
    }
    BAD_SORT: Final[Words] = {
        "vi": "Cách sắp xếp {sort!r} không hợp lệ: dùng age hoặc -age.",
        "en": "sort {sort!r} is not valid: use age or -age.",
    }
    NOT_A_TIME: Final[Words] = {
        "vi": "{field}: “{value}” không phải ngày giờ (dạng 2026-11-22T22:00).",
        "en": "{field}: “{value}” is not a date and time (like 2026-11-22T22:00).",
    }
    CHOOSE_SCOPE: Final[Words] = {
        "vi": "Hãy chọn phạm vi bảo trì.",
        "en": "Choose what the window covers.",
    }
    END_BEFORE_START: Final[Words] = {
        "vi": "Thời điểm kết thúc phải sau thời điểm bắt đầu.",
        "en": "The end must be after the start.",
    }
    ENDS_IN_PAST: Final[Words] = {
        "vi": "Đợt bảo trì này đã kết thúc trong quá khứ.",
        "en": "This window ends in the past.",
    }
    NO_REASON: Final[Words] = {
        "vi": "Hãy ghi lý do bảo trì.",
        "en": "Give the reason for the window.",
    }
    REASON_TOO_LONG: Final[Words] = {
        "vi": "Lý do dài quá {max_chars} ký tự.",
        "en": "The reason is longer than {max_chars} characters.",
    }
    BAD_SCOPE: Final[Words] = {
        "vi": "Phạm vi không hợp lệ: {detail}",
        "en": "Not a valid scope: {detail}",
    }
    NO_SUCH_WINDOW: Final[Words] = {
        "vi": "Không có đợt bảo trì số {window_id}.",
        "en": "There is no maintenance window {window_id}.",
    }
    WINDOW_ALREADY_ENDED: Final[Words] = {
        "vi": "Đợt bảo trì số {window_id} đã kết thúc hoặc đã bị hủy trước đó.",
        "en": "Maintenance window {window_id} was already ended or cancelled.",
    }
