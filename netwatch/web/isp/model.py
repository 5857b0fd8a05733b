"""What the ISP's ticket page shows besides the ticket body (netwatch.web.ticket): the view of a
ticket through its signed link."""

from __future__ import annotations

from datetime import datetime

from netwatch.web.views import TicketDetail


class IspTicketView(TicketDetail):
    """A ticket as its signed link shows it, with the link's own expiry and until when it may
    act (acknowledge, note, resolve); `link_acts_until` is None for a link issued before
    NetWatch recorded links at issuance (it acts until it expires)."""

    link_expires_at: datetime
    link_expires_at_local: str
    link_acts_until: datetime | None = None
    link_may_act: bool = True
