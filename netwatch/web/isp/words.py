"""The ISP page's own words, vi and en: why its signed link is refused, its refusal pages, the
link's expiry. The ticket body's words (shared with the provincial IT's view) are in
netwatch.web.ticket.words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from netwatch.signing import LinkReason
from netwatch.web.words import Common, Words

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
    LinkReason.REVOKED: (
        "this ticket link was revoked by provincial IT; use the link of a newer notice",
        "Liên kết này đã bị bộ phận CNTT của tỉnh thu hồi. Hãy dùng liên kết trong thông báo "
        "mới hơn hoặc liên hệ bộ phận CNTT của tỉnh.",
    ),
    LinkReason.VIEW_ONLY: (
        "this ticket link may no longer act on the ticket (it still shows it); use the link of "
        "a newer notice, or ask provincial IT",
        "Liên kết này đã hết thời hạn thao tác trên phiếu (vẫn xem được phiếu). Hãy dùng liên "
        "kết trong thông báo mới hơn hoặc liên hệ bộ phận CNTT của tỉnh.",
    ),
}


class Label:
    """The ISP page's own labels and titles."""

    EXPIRES: Final[Words] = {"vi": "Liên kết có hiệu lực đến", "en": "This link is valid until"}
    ACTS_UNTIL: Final[Words] = {
        "vi": "Liên kết dùng để thao tác (xác nhận, ghi chú, báo đã khắc phục) đến",
        "en": "This link acts on the ticket (acknowledge, note, resolve) until",
    }
    VIEW_ONLY: Final[Words] = {
        "vi": "Liên kết này đã hết thời hạn thao tác lúc {at}: chỉ còn xem được phiếu. Hãy dùng "
        "liên kết trong thông báo mới hơn hoặc liên hệ bộ phận CNTT của tỉnh.",
        "en": "This link's time to act ended at {at}: it only shows the ticket now. Use the "
        "link of a newer notice, or ask provincial IT.",
    }
    REFUSED_TITLE: Final[Words] = {"vi": "Không mở được phiếu", "en": "The ticket cannot be opened"}
    FAILED_TITLE: Final[Words] = Common.FAILED
    BACK: Final[Words] = {"vi": "Quay lại phiếu", "en": "Back to the ticket"}
