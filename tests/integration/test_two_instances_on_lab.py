"""Two NetWatches on one PostgreSQL: both probe, one leads alerting, the other takes over.

DESIGN (Storage and scale): a session advisory lock elects the leader; the standby judges links
too (its pages and /metrics stay live) but opens no ticket, sends nothing, writes no state
history and refuses manual changes with 503. When the leader goes, the standby takes the lock at
its next tick, continues the ticket book from the store and closes the episode: one ticket, one
opening mail, one resolve notice, nothing doubled or lost across the handover.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from netwatch.lab import Lab
from netwatch.store import open_store
from tests.conftest import PgCluster
from tests.integration.conftest import pg_database
from tests.integration.scenarios import (
    QUICK_RETRY,
    VNPT_LINK,
    VNPT_MAIL,
    Twin,
    _after_rounds,
    _book,
    _code_of,
    _event,
    _event_mail,
    _inventory,
    _mail,
    _outbox_drained,
    _ticket,
    _wait_for,
)
from tests.integration.test_run_on_lab import Client, serving
from tests.lab_netwatch import quick_app
from tests.servers import reserved_port

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(300)]

LAB_INDEX = 14  # 10.102.0.0/16, namespaces nwl14-*: `scenario_lab` (conftest) builds it


@pytest.fixture
def shared(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[Twin]:
    """One PostgreSQL database and one SMTP server for both instances."""
    with pg_database(pg_cluster, "nw_pair") as url:
        twin = Twin("postgresql", tmp_path, url, reserved_port())
        twin.smtp_up()
        try:
            yield twin
        finally:
            twin.smtp_down()


def _role(client: Client) -> str:
    """'leader' (200) or 'standby' (503), as a load balancer's health check sees it."""
    status, body = client.get("/healthz/leader")
    role = str(json.loads(body)["role"])
    assert status == (200 if role == "leader" else 503), (status, role)
    return role


def _acknowledge(client: Client, ticket_id: str, token: str) -> int:
    request = urllib.request.Request(
        f"{client.base}/api/v1/tickets/{ticket_id}/acknowledge",
        data=json.dumps({"text": "đã tiếp nhận"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def _token(url: str, data_dir: Path) -> str:
    async def make() -> str:
        store = await open_store(url, data_dir=data_dir, migrate=False)
        try:
            return (await store.create_token("ops", ["write"], datetime.now(UTC))).token
        finally:
            await store.close()

    return asyncio.run(make())


def test_the_standby_takes_over_without_losing_or_doubling_anything(lab: Lab, shared: Twin) -> None:
    inventory = _inventory(lab, shared.smtp_port, recovery_min=0.2)
    code = _code_of(inventory, 1)  # single-homed, VNPT
    key = f"link:{code}/{VNPT_LINK}"

    def app(name: str) -> FastAPI:
        (shared.data_dir / name).mkdir()
        return quick_app(
            lab.paths.config_file,
            inventory=inventory,
            data_dir=shared.data_dir / name,
            database_url=shared.database_url,
            retry=QUICK_RETRY,
        )

    with ExitStack() as standby_stack:
        first_stack = ExitStack()
        first = first_stack.enter_context(serving(app("first")))
        second_app = app("second")
        second = standby_stack.enter_context(serving(second_app))
        try:
            assert (_role(first), _role(second)) == ("leader", "standby")
            assert lab.commune_down(int(code)).ok
            ticket = _wait_for(_ticket(shared, key), f"a ticket for {key}")
            _wait_for(_event_mail(shared.box, VNPT_MAIL, ticket.id, "opened"), "the opening mail")
            # The standby takes no change: the leader's book would overwrite it.
            token = _token(str(shared.database_url), shared.data_dir)
            assert _acknowledge(second, ticket.id, token) == 503
        finally:
            first_stack.close()  # the leader goes away
        _wait_for(lambda: _role(second) == "leader" or None, "the standby taking over", 30)
        assert _acknowledge(second, ticket.id, token) == 200
        assert lab.commune_restore(int(code)).ok
        _wait_for(
            _event_mail(shared.box, VNPT_MAIL, ticket.id, "auto_resolved"),
            "the auto-resolve notice from the new leader",
        )
        # Anything doubled would be on its way after two more rounds of the new leader (and
        # their evaluations), and sent once its outbox has drained.
        _after_rounds([second_app.state.runtime], 2)
        _wait_for(_outbox_drained(shared), "the new leader's outbox sent")
        book = _book(shared)
        # The new leader counts what happened after the handover, not the ticket's whole log
        # again (the first leader counted its opening): Prometheus sums the two instances.
        counted: dict[str, float] = {}
        for family in text_string_to_metric_families(second.get("/metrics")[1]):
            for sample in family.samples:
                if sample.name.startswith("netwatch_tickets_"):
                    counted[sample.name] = counted.get(sample.name, 0) + sample.value
        assert counted.get("netwatch_tickets_opened_total", 0) == 0, counted
        assert counted["netwatch_tickets_acknowledged_total"] == 1, counted
        assert counted["netwatch_tickets_resolved_total"] == 1, counted

    assert [t.key.encoded for t in book.tickets] == [key]  # one ticket across the handover
    [ticket] = book.tickets
    kinds = book.kinds(ticket)
    assert kinds.count("opened") == 1
    assert kinds[-1] == "auto_resolved"
    assert "acknowledged" in kinds
    sent = [(m["To"], m["X-NetWatch-Ticket"], _event(m)) for m in shared.box.messages]
    assert len(sent) == len(set(sent)), sent  # nothing mailed twice
    assert [_event(m) for m in _mail(shared.box, VNPT_MAIL, ticket.id)].count("opened") == 1
