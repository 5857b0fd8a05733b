"""Words more than one web view says (the status pages, the ticket body, the provincial IT view,
the charts), each written once, in Vietnamese and English.

The states, kinds, causes, statuses and events are netwatch.vocab's (mail, chat and dashboards
say them too); these are the pages' own nouns and labels that several views share. A view's
other words stay in its own words.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from alerts.model import IncidentKind
from alerts.tickets import TicketStatus
from netwatch.vocab import INCIDENT_KIND, TICKET_STATUS
from netwatch.web.i18n import Lang

Words = Mapping[Lang, str]

# A ticket's status and kind, keyed by the stored values the views read (the catalogue's words).
TICKET_STATE: Mapping[str, Words] = {s.value: TICKET_STATUS[s] for s in TicketStatus}
TICKET_KIND: Mapping[str, Words] = {k.value: INCIDENT_KIND[k] for k in IncidentKind}


class Common:
    """One wording for a label the views share."""

    ISP: Final[Words] = {"vi": "Nhà mạng", "en": "ISP"}
    PROVINCIAL_IT: Final[Words] = {"vi": "CNTT tỉnh", "en": "Provincial IT"}
    PROVINCE: Final[Words] = {"vi": "Tỉnh", "en": "Province"}
    COMMUNE: Final[Words] = {"vi": "Xã/phường", "en": "Commune"}
    LINK: Final[Words] = {"vi": "Đường truyền", "en": "Link"}
    PROBLEM: Final[Words] = {"vi": "Tình trạng", "en": "Problem"}
    LEVEL: Final[Words] = {"vi": "Cấp", "en": "Level"}  # an escalation level
    ACKNOWLEDGED: Final[Words] = {"vi": "Tiếp nhận", "en": "Acknowledged"}
    NOT_ACKNOWLEDGED: Final[Words] = {"vi": "Chưa tiếp nhận", "en": "Not yet"}
    UNKNOWN: Final[Words] = {"vi": "Không rõ", "en": "Unknown"}
    LOSS: Final[Words] = {"vi": "Mất gói", "en": "Packet loss"}  # the measure
    NOT_FOUND: Final[Words] = {"vi": "Không tìm thấy", "en": "Not found"}
    FAILED: Final[Words] = {"vi": "Không thực hiện được", "en": "Could not be done"}
    STARTING: Final[Words] = {
        "vi": "NetWatch đang khởi động, vui lòng thử lại sau ít giây.",
        "en": "NetWatch is starting; try again in a few seconds.",
    }
