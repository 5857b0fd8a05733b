"""A ticket's handling times as the report counts them."""

from __future__ import annotations

from dataclasses import replace

from alerts.tickets import Actor, ActorKind, EventKind, TicketEvent, TicketStatus
from netwatch.reports.compute import ticket_figures
from netwatch.store import StoredTicket
from tests.reports.scenario import TICKETS, nov

SYSTEM = Actor(ActorKind.SYSTEM, "netwatch")


def _stored(**changes: object) -> StoredTicket:
    return StoredTicket(
        ticket=replace(TICKETS[0], **changes), updated_at=nov(6), escalation_level=1
    )


def test_restored_when_the_line_came_back_not_when_the_ticket_closed() -> None:
    figures = ticket_figures(_stored())
    assert figures.restored_at == nov(5, 12, 15, 30)
    assert figures.resolved_at == nov(5, 12, 25, 30)
    assert figures.time_to_restore_s == 7_950


def test_resolved_by_hand_while_still_bad_is_restored_when_resolved() -> None:
    figures = ticket_figures(_stored(ok_since=None, resolved_at=nov(5, 11)))
    assert figures.time_to_restore_s == 57 * 60


def test_a_ticket_closed_because_its_link_left_the_config_was_never_restored() -> None:
    log = (TicketEvent(7, nov(5, 11), SYSTEM, EventKind.UNMONITORED, "removed from monitoring"),)
    figures = ticket_figures(_stored(ok_since=nov(5, 11), resolved_at=nov(5, 11), log=log))
    assert figures.status == TicketStatus.RESOLVED.value
    assert figures.restored_at is None
    assert figures.time_to_restore_s is None
    assert figures.time_to_acknowledge_s == 1_050
