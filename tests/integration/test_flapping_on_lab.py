"""Issue 4: a link flapping every 20 s for 10 minutes is at most one episode (scaled 1/5).

Its own module and lab (two minutes of flapping), so the suite can run it beside the other
scenarios (tests/integration/scenarios.py has what they share).
"""

from __future__ import annotations

import time

import pytest

from netwatch.lab import Lab
from tests.integration.scenarios import (
    VNPT_LINK,
    VNPT_MAIL,
    Twin,
    _book,
    _code_of,
    _event,
    _inventory,
    _log,
    _mail,
    _netwatch,
    _outbox_drained,
    _wait_for,
)

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(360)]

LAB_INDEX = 7  # 10.95.0.0/16, namespaces nwl7-*: `scenario_lab` (conftest) builds it


def test_flapping_link_is_one_episode_not_a_storm(lab: Lab, twins: list[Twin]) -> None:
    code = _code_of(_inventory(lab, 25), 3)  # single-homed, VNPT, behind pop-vnpt-2
    key = f"link:{code}/{VNPT_LINK}"
    flap_s, duration_s = 4.0, 120.0  # issue 4: 20 s at 10 s rounds, for 10 minutes
    with _netwatch(lab, twins, lambda t: _inventory(lab, t.smtp_port)):
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            assert lab.commune_down(int(code)).ok
            time.sleep(flap_s)
            assert lab.commune_restore(int(code)).ok
            time.sleep(flap_s)
        books = {twin.backend: _book(twin) for twin in twins}
        # Let the outboxes deliver what the stores hold.
        for twin in twins:
            _wait_for(_outbox_drained(twin), f"{twin.backend}: the outbox sent")

    for twin in twins:
        book = books[twin.backend]
        # Offline half the time is reported (3 bad rounds of 5), once.
        tickets = book.by_key(key)
        assert len(tickets) == 1, (twin.backend, [t.id for t in tickets])
        [ticket] = tickets
        assert [t.key.encoded for t in book.tickets] == [key]
        kinds = book.kinds(ticket)
        assert kinds.count("opened") == 1
        assert "reopened" not in kinds
        assert "auto_resolved" not in kinds
        assert ticket.evidence.worst_state == "down"
        mails = _mail(twin.box, VNPT_MAIL, ticket.id)
        assert [_event(m) for m in mails].count("opened") == 1
        # Not a storm: a handful of messages in two minutes of flapping (one per round: 60).
        assert len(mails) <= 5, (twin.backend, [_event(m) for m in mails], _log(book, ticket))
