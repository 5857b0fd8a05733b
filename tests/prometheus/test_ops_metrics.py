"""NetWatch's judged states, tickets and outbox as Prometheus families (netwatch/ops_metrics.py).

Written as timelines: rounds and ticket changes go in one by one, the scrape is read after each.
The exposition is parsed back with client_python's parser and checked by promtool.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from alerts.model import Incident, IncidentKind, LinkRound, PortalRound, Route
from alerts.subject import SubjectKey
from alerts.tickets import Actor, ActorKind, Step, TicketBook, TicketPolicy
from netwatch.health import CENTRAL, HealthMonitor
from netwatch.inventory import Inventory, load_inventory
from netwatch.metrics import MetricsCollector
from netwatch.ops_metrics import LINK_STATES, MeteredOutbox, OpsMetrics
from netwatch.plan import compile_plan
from netwatch.store import NewOutboxItem, OutboxBacklog, OutboxItem, open_store
from tests.lam_dong import ENV, EXAMPLE, LAC_DUONG_VNPT, assert_promtool_accepts
from tests.waiting import async_wait_until

T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
LINK = "24848/vnpt-tslcd"
NOC = Actor(ActorKind.ISP, "NOC VNPT")


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_inventory(EXAMPLE, environ=ENV)


@dataclass
class Books:
    """The alerting service's current ticket book, as OpsMetrics reads it."""

    book: TicketBook = field(default_factory=lambda: TicketBook(policy=TicketPolicy()))


@dataclass
class Setup:
    health: HealthMonitor
    books: Books
    ops: OpsMetrics
    collector: MetricsCollector
    registry: CollectorRegistry

    def scrape(self) -> Scrape:
        return Scrape(self.collector.exposition(self.registry).decode())


class Scrape:
    """The whole /metrics body, parsed back."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        """The one sample whose labels include these (None if there is none)."""
        found = [
            s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()
        ]
        assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
        return found[0] if found else None

    def states(self, **labels: str) -> list[str]:
        """The state label of every netwatch_link_state sample matching these labels."""
        return [
            s.labels["state"]
            for s in self.samples
            if s.name == "netwatch_link_state" and labels.items() <= s.labels.items()
        ]


def _setup(inventory: Inventory, books: Books | None = None) -> Setup:
    plan = compile_plan(inventory)
    registry = CollectorRegistry()
    collector = MetricsCollector(plan)
    collector.register(registry)
    health = HealthMonitor(inventory)
    books = books or Books()
    ops = OpsMetrics(inventory, plan, health, ticket_book=lambda: books.book, clock=lambda: T0)
    ops.register(registry, collector)
    return Setup(health, books, ops, collector, registry)


def _round(setup: Setup, at: datetime, received: int, link: str = LINK) -> None:
    rtt = 0.01 if received else None
    setup.health.links.observe(LinkRound(link, at, 5, received, rtt))


def _incident(since: datetime, state: str = "down", link: str = LINK) -> Incident:
    return Incident(
        key=SubjectKey.parse(f"link:{link}"),
        kind=IncidentKind.LINK_FAULT,
        state=state,
        since=since,
        route=Route.ISP,
        isp="vnpt",
        links=(link,),
    )


def test_each_link_has_one_series_with_its_judged_state(inventory: Inventory) -> None:
    setup = _setup(inventory)
    scrape = setup.scrape()
    links = sum(len(c.links) for c in inventory.communes)
    assert len(scrape.states()) == links  # one series per link, never one per state
    assert scrape.states(**LAC_DUONG_VNPT) == ["unknown"]  # not judged yet
    _round(setup, T0, 5)
    assert setup.scrape().states(**LAC_DUONG_VNPT) == ["ok"]
    for i in range(1, 3):
        _round(setup, T0 + timedelta(seconds=30 * i), 0)
        assert setup.scrape().states(**LAC_DUONG_VNPT) == ["ok"]  # hysteresis: not yet
    _round(setup, T0 + timedelta(seconds=90), 0)
    scrape = setup.scrape()
    assert scrape.states(**LAC_DUONG_VNPT) == ["down"]
    assert scrape.value("netwatch_link_state", **LAC_DUONG_VNPT, state="down") == 1
    assert set(scrape.states()) <= set(LINK_STATES)
    # The other link of the same commune is untouched.
    assert scrape.states(commune="24848", link="viettel-internet") == ["unknown"]


def test_a_bad_link_inside_a_maintenance_window_is_in_maintenance(inventory: Inventory) -> None:
    setup = _setup(inventory)
    for i in range(4):
        _round(setup, T0 + timedelta(seconds=30 * i), 0)
    assert setup.scrape().states(**LAC_DUONG_VNPT) == ["down"]
    step = setup.books.book.evaluate(
        [_incident(T0)], T0, maintenance={SubjectKey.parse(f"link:{LINK}")}
    )
    setup.books.book = step.book  # suppressed: no ticket, nobody paged
    assert setup.scrape().states(**LAC_DUONG_VNPT) == ["maintenance"]
    setup.books.book = setup.books.book.evaluate([_incident(T0)], T0 + timedelta(minutes=1)).book
    assert setup.scrape().states(**LAC_DUONG_VNPT) == ["down"]  # the window ended


def test_communes_and_links_carry_their_configuration(inventory: Inventory) -> None:
    scrape = _setup(inventory).scrape()
    info = scrape.value(
        "netwatch_commune_info",
        province="68",
        province_name="Lâm Đồng",
        commune="24848",
        commune_name="Xã Lạc Dương",
        latitude="12.0036",
        longitude="108.4219",
    )
    assert info == 1
    uncharted = [c for c in inventory.communes if c.coordinates is None]
    assert uncharted  # the example has communes without coordinates: no map labels for them
    labels = next(
        s.labels
        for s in scrape.samples
        if s.name == "netwatch_commune_info" and s.labels["commune"] == uncharted[0].code
    )
    assert "latitude" not in labels
    assert "longitude" not in labels
    assert scrape.value("netwatch_link_info", **LAC_DUONG_VNPT, circuit="LDG-TSLCD-24848") == 1
    assert scrape.value("netwatch_round_interval_seconds", kind="icmp") == 30


def test_portals_have_a_judged_state_per_vantage_point(inventory: Inventory) -> None:
    setup = _setup(inventory)
    assert setup.scrape().value(
        "netwatch_portal_state", portal="dvcqg", vantage=CENTRAL, state="unknown"
    )
    for i in range(3):
        setup.health.portals.observe(
            PortalRound("dvcqg", CENTRAL, T0 + timedelta(minutes=i), False, None, "connect")
        )
    scrape = setup.scrape()
    assert scrape.value("netwatch_portal_state", portal="dvcqg", state="failing") == 1
    assert scrape.value("netwatch_portal_state", portal="dvcqg", state="unknown") is None


def test_tickets_are_counted_through_their_lifecycle(inventory: Inventory) -> None:
    setup = _setup(inventory)
    scrape = setup.scrape()
    # Every ISP and kind exists at zero before the first ticket.
    for isp in ("vnpt", "viettel", "none"):
        assert scrape.value("netwatch_tickets_opened_total", isp=isp, kind="link_fault") == 0
    opened_at = T0 + timedelta(minutes=2)
    setup.books.book = setup.books.book.evaluate([_incident(T0)], opened_at).book
    scrape = setup.scrape()
    assert scrape.value("netwatch_tickets_opened_total", isp="vnpt", kind="link_fault") == 1
    assert scrape.value("netwatch_open_tickets", isp="vnpt", kind="link_fault", state="open") == 1
    # Scraped again without changes: nothing counted twice.
    assert setup.scrape().value("netwatch_tickets_opened_total", isp="vnpt", kind="link_fault") == 1
    ticket = next(iter(setup.books.book.tickets.values()))
    acked = setup.books.book.acknowledge(ticket.id, NOC, opened_at + timedelta(minutes=7))
    assert isinstance(acked, Step)
    setup.books.book = acked.book
    scrape = setup.scrape()
    vnpt = {"isp": "vnpt", "kind": "link_fault"}
    assert scrape.value("netwatch_tickets_acknowledged_total", **vnpt) == 1
    assert scrape.value("netwatch_open_tickets", **vnpt, state="open") == 0
    assert scrape.value("netwatch_open_tickets", **vnpt, state="acknowledged") == 1
    ack = "netwatch_ticket_time_to_acknowledge_seconds"
    assert scrape.value(f"{ack}_sum", **vnpt) == 7 * 60
    assert scrape.value(f"{ack}_bucket", **vnpt, le="300.0") == 0
    assert scrape.value(f"{ack}_bucket", **vnpt, le="600.0") == 1
    # The line recovers (the recovery clock runs), then the ticket resolves itself.
    book = setup.books.book
    recovered_at = T0 + timedelta(minutes=20)
    book = book.evaluate([], recovered_at).book
    book = book.evaluate([], recovered_at + timedelta(minutes=10)).book
    setup.books.book = book
    scrape = setup.scrape()
    assert scrape.value("netwatch_tickets_resolved_total", **vnpt) == 1
    restore = "netwatch_ticket_time_to_restore_seconds"
    assert scrape.value(f"{restore}_sum", **vnpt) == 20 * 60  # first bad round to recovery
    assert scrape.value(f"{restore}_count", **vnpt) == 1
    assert scrape.value("netwatch_open_tickets", **vnpt, state="acknowledged") == 0


def test_tickets_restored_at_start_are_not_counted_again(inventory: Inventory) -> None:
    books = Books()
    books.book = books.book.evaluate([_incident(T0)], T0 + timedelta(minutes=1)).book
    setup = _setup(inventory, books)  # a restart: the book comes back from the store
    scrape = setup.scrape()
    assert scrape.value("netwatch_tickets_opened_total", isp="vnpt", kind="link_fault") == 0
    assert scrape.value("netwatch_open_tickets", isp="vnpt", kind="link_fault", state="open") == 1


class FakeOutbox:
    """The OutboxStore port in memory (our own port: a fake is fair here)."""

    def __init__(self, items: list[OutboxItem]) -> None:
        self.items = items
        self.sent: list[int] = []

    async def claim_due(self, now: datetime, limit: int) -> list[OutboxItem]:
        out, self.items = self.items[:limit], self.items[limit:]
        return out

    async def mark_sent(self, item_id: int, at: datetime) -> None:
        self.sent.append(item_id)

    async def mark_failed(
        self, item_id: int, at: datetime, next_attempt_at: datetime | None, error: str
    ) -> None:
        pass


def test_deliveries_and_failures_are_counted_per_channel(inventory: Inventory) -> None:
    setup = _setup(inventory)
    items = [
        OutboxItem(i, None, ch, "x", {}, f"k{i}", T0, T0, 1, None, None)
        for i, ch in enumerate(["email"] * 3)
    ]
    items.append(OutboxItem(9, None, "telegram", "x", {}, "k9", T0, T0, 1, None, None))
    fake = FakeOutbox(items)
    metered: MeteredOutbox = setup.ops.metered(fake, ["email", "telegram", "webhook:abc"])

    async def deliver() -> None:
        claimed = await metered.claim_due(T0, 10)
        await metered.mark_sent(claimed[0].id, T0)
        await metered.mark_sent(claimed[1].id, T0)
        await metered.mark_failed(claimed[2].id, T0, T0 + timedelta(minutes=1), "timeout")
        await metered.mark_failed(claimed[3].id, T0, None, "rejected")

    asyncio.run(deliver())
    assert fake.sent == [0, 1]
    scrape = setup.scrape()
    assert scrape.value("netwatch_outbox_deliveries_total", channel="email") == 2
    assert scrape.value("netwatch_outbox_deliveries_total", channel="webhook:abc") == 0
    assert scrape.value("netwatch_outbox_delivery_failures_total", channel="email") == 1
    assert scrape.value("netwatch_outbox_delivery_failures_total", channel="telegram") == 1
    assert scrape.value("netwatch_outbox_given_up_total", channel="telegram") == 1
    assert scrape.value("netwatch_outbox_given_up_total", channel="email") == 0


def test_the_outbox_backlog_comes_from_the_store(inventory: Inventory, tmp_path: Path) -> None:
    plan = compile_plan(inventory)

    async def scenario() -> tuple[float | None, float | None, float | None]:
        store = await open_store(None, data_dir=tmp_path)
        try:
            item = NewOutboxItem(
                channel="email", recipient="noc@vnpt.test", payload={}, dedup_key="a"
            )
            await store.enqueue_many([item], T0)
            registry = CollectorRegistry()
            ops = OpsMetrics(
                inventory,
                plan,
                HealthMonitor(inventory),
                outbox_backlog=store.outbox_backlog,
                clock=lambda: T0 + timedelta(minutes=3),
            )
            registry.register(ops)
            assert registry.get_sample_value("netwatch_outbox_pending") is None  # not asked yet
            await ops.refresh_backlog()
            return (
                registry.get_sample_value("netwatch_outbox_pending"),
                registry.get_sample_value("netwatch_outbox_due"),
                registry.get_sample_value("netwatch_outbox_oldest_pending_age_seconds"),
            )
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (1, 1, 180)


def test_a_failing_store_keeps_the_last_backlog(inventory: Inventory) -> None:
    answers: list[OutboxBacklog | Exception] = [
        OutboxBacklog(pending=4, due=1, given_up=0, oldest_pending_at=T0),
        RuntimeError("database is locked"),
    ]

    async def backlog(now: datetime) -> OutboxBacklog:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    registry = CollectorRegistry()
    ops = OpsMetrics(
        inventory, compile_plan(inventory), HealthMonitor(inventory), outbox_backlog=backlog
    )
    registry.register(ops)
    asyncio.run(ops.refresh_backlog())
    asyncio.run(ops.refresh_backlog())
    assert registry.get_sample_value("netwatch_outbox_pending") == 4


def test_the_follow_loop_counts_without_a_scrape(inventory: Inventory) -> None:
    setup = _setup(inventory)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(setup.ops.run(stop, follow_s=0.01))
        setup.books.book = setup.books.book.evaluate([_incident(T0)], T0).book
        await async_wait_until(
            lambda: setup.ops.tickets.opened[("vnpt", "link_fault")], 5, 0.01, "ticket counted"
        )
        stop.set()
        await task

    asyncio.run(scenario())
    assert setup.ops.tickets.opened[("vnpt", "link_fault")] == 1


def test_exposition_passes_promtool(inventory: Inventory) -> None:
    assert shutil.which("promtool"), "promtool comes with the prometheus package (bootstrap.sh)"
    setup = _setup(inventory)
    for i in range(4):
        _round(setup, T0 + timedelta(seconds=30 * i), 0)
    setup.books.book = setup.books.book.evaluate([_incident(T0)], T0).book
    text = setup.collector.exposition(setup.registry)
    assert_promtool_accepts(text)
