"""What the ISP's ticket page shows besides the ticket body (netwatch.web.ticket): the view of a
ticket through its signed link."""

from __future__ import annotations

from datetime import datetime

from netwatch.web.views import TicketDetail


class IspTicketView(TicketDetail):
    """A ticket as its signed link shows it, with the link's own expiry."""

    link_expires_at: datetime
    link_expires_at_local: str
