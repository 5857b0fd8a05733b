"""The report mailed on the 1st at 08:00 Vietnam time, on an injected clock, through the real
outbox and a real SMTP server (aiosmtpd with STARTTLS and AUTH), on SQLite and PostgreSQL.

The store holds tests/reports/scenario.py's November; at 2026-12-01 08:00 local the mail about
November goes to each provincial IT contact once, with the XLSX, CSV (and PDF) files; a restart
at 08:05 sends nothing again; a failed send is retried; any past month can be mailed on demand.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import aiohttp
import pytest
from openpyxl import load_workbook

from netwatch.alerting import StoreOutbox, build_channels
from netwatch.inventory import Inventory, load_inventory
from netwatch.notify.outbox import OutboxWorker, RetryPolicy
from netwatch.reportmail import ReportMailer, report_dedup_key
from netwatch.reports import Month
from netwatch.store import Store
from netwatch.store.rollups import Rollups
from tests.notify.conftest import SMTP_PASSWORD, SMTP_USER, ManualClock, SmtpServer
from tests.reports.scenario import CONFIG, ENV, LOCAL, write_month

IT_CHIEF = "truongphong.cntt@lamdong.gov.vn"
IT_DUTY = "truc.cntt@lamdong.gov.vn"
DECEMBER_1_0800 = datetime(2026, 12, 1, 8, 0, tzinfo=LOCAL)
HAS_CHROMIUM = shutil.which("chromium") is not None
SmtpFactory = "Callable[..., Awaitable[SmtpServer]]"


def _config(port: int, ca_file: Path) -> str:
    """The scenario's configuration with an SMTP server and provincial IT's contacts."""
    smtp = (
        "  smtp:\n"
        "    host: 127.0.0.1\n"
        f"    port: {port}\n"
        "    from_address: netwatch@lamdong.gov.vn\n"
        f"    username: {SMTP_USER}\n"
        "    password: {env: NETWATCH_SMTP_PASSWORD}\n"
        f"    ca_file: {ca_file}\n"
    )
    contacts = (
        "provincial_it:\n"
        "  name: Trung tâm Chuyển đổi số tỉnh Lâm Đồng\n"
        "  contacts:\n"
        f"    - {{level: 1, name: Trực CNTT, email: {IT_DUTY}}}\n"
        f"    - {{level: 2, name: Trưởng phòng CNTT, email: {IT_CHIEF}}}\n"
        f"    - {{level: 3, name: Phòng CNTT, email: {IT_CHIEF.upper()}}}\n"
    )
    anchor = "  link_secret: {env: NETWATCH_LINK_SECRET}\n"
    assert anchor in CONFIG
    return CONFIG.replace(anchor, anchor + smtp) + contacts


@pytest.fixture
def port(db_url: str) -> int:
    """An SMTP port of the notifier tests' range, one per backend (xdist runs them at once)."""
    return 18650 if db_url.startswith("sqlite") else 18651


@pytest.fixture
def inventory(tmp_path: Path, port: int, ca_file: Path) -> Inventory:
    path = tmp_path / "netwatch.yaml"
    path.write_text(_config(port, ca_file), encoding="utf-8")
    return load_inventory(path, environ={**ENV, "NETWATCH_SMTP_PASSWORD": SMTP_PASSWORD})


@pytest.fixture
async def november(store: Store) -> Store:
    await write_month(store)
    return store


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def _worker(
    store: Store, inventory: Inventory, http: aiohttp.ClientSession, clock: ManualClock
) -> OutboxWorker:
    """The outbox worker as the runtime builds it (the configured channels, the store)."""
    channels = build_channels(inventory, http, clock)
    policy = RetryPolicy(base_delay_s=10, jitter_ratio=0)
    return OutboxWorker(StoreOutbox(store), channels, clock, policy=policy)


def _mailer(
    store: Store, inventory: Inventory, clock: ManualClock, *, pdf: bool = HAS_CHROMIUM
) -> ReportMailer:
    return ReportMailer(inventory, store, Rollups(store), clock, pdf=pdf)


def _parsed(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _files(message: EmailMessage) -> dict[str, bytes]:
    out = {}
    for part in message.iter_attachments():
        name = part.get_filename()
        payload = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(payload, bytes)
        out[name] = payload
    return out


async def test_the_mail_of_the_first_goes_once_with_the_files(
    november: Store,
    inventory: Inventory,
    session: aiohttp.ClientSession,
    smtp_factory: object,
    port: int,
) -> None:
    server: SmtpServer = await smtp_factory(port)  # type: ignore[operator]
    store = november
    clock = ManualClock(DECEMBER_1_0800 - timedelta(minutes=1))
    mailer = _mailer(store, inventory, clock)
    worker = _worker(store, inventory, session, clock)

    # 07:59: not yet.
    assert (await mailer.check()).month is None
    assert await store.outbox_items() == []
    # The trigger: the 1st at 08:00 in Vietnam, i.e. 01:00 UTC.
    assert mailer.next_due(clock.now()) == DECEMBER_1_0800
    assert mailer.due_at(Month(2027, 1)) == datetime(2027, 1, 1, 8, tzinfo=LOCAL)

    # 08:00: November's report, to each address once (the third contact repeats the second's).
    clock.set(DECEMBER_1_0800)
    outcome = await mailer.check()
    assert outcome.month == Month(2026, 11)
    assert outcome.enqueued == 2
    assert outcome.pdf is HAS_CHROMIUM
    items = await store.outbox_items()
    assert sorted(i.dedup_key for i in items) == sorted(
        [report_dedup_key(Month(2026, 11), IT_DUTY), report_dedup_key(Month(2026, 11), IT_CHIEF)]
    )
    assert (await worker.deliver_due()).delivered == 2

    assert sorted(r for got in server.received for r in got.rcpt_tos) == sorted([IT_DUTY, IT_CHIEF])
    for got in server.received:
        assert got.tls
        assert got.login == SMTP_USER
    message = _parsed(server.received[0].data)
    assert message["Subject"] == (
        "[NetWatch] Báo cáo chất lượng đường truyền tháng 11/2026 / Monthly circuit report 2026-11"
    )
    assert message["Date"] == "Tue, 01 Dec 2026 08:00:00 +0700"
    assert message["Message-ID"].startswith("<netwatch.report.2026-11.")
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Độ khả dụng chung: 99,657 %" in text
    assert "- VNPT: 2 mạch, độ khả dụng 99,554 %, 1 mạch vi phạm." in text
    assert "https://netwatch.lamdong.example/admin/reports/monthly?month=2026-11" in text
    files = _files(message)
    expected = {"netwatch-2026-11.xlsx", "netwatch-2026-11.csv"}
    if HAS_CHROMIUM:
        expected.add("netwatch-2026-11.pdf")
        assert files["netwatch-2026-11.pdf"].startswith(b"%PDF")
    assert set(files) == expected
    book = load_workbook(io.BytesIO(files["netwatch-2026-11.xlsx"]))
    rows = list(book["Mạch"].iter_rows(values_only=True))
    assert rows[1][rows[0].index("Mã mạch")] == "LDG-TSLCD-0001"
    assert rows[1][rows[0].index("Mất kết nối (giây)")] == 17_130
    csv_text = files["netwatch-2026-11.csv"].decode("utf-8-sig")
    assert "LDG-TSLCD-0001" in csv_text
    assert "17130" in csv_text

    # Later that morning the same process looks again: nothing new.
    clock.set(DECEMBER_1_0800 + timedelta(minutes=2))
    assert (await mailer.check()).already == 2

    # A restart at 08:05: a new mailer and a new outbox worker on the same store send nothing.
    clock.set(DECEMBER_1_0800 + timedelta(minutes=5))
    again = await _mailer(store, inventory, clock).check()
    assert (again.month, again.enqueued, again.already) == (Month(2026, 11), 0, 2)
    assert (await _worker(store, inventory, session, clock).deliver_due()).claimed == 0
    assert len(server.received) == 2
    assert len(await store.outbox_items()) == 2

    # The next one is due on 1 January at 08:00.
    assert mailer.next_due(clock.now()) == datetime(2027, 1, 1, 8, tzinfo=LOCAL)


async def test_a_month_this_database_never_watched_is_not_mailed_by_itself(
    store: Store, inventory: Inventory
) -> None:
    # A NetWatch (or a test's database) that starts on 1 December records nothing of November:
    # at 08:00 no report of a month nobody watched, only on demand.
    clock = ManualClock(DECEMBER_1_0800)
    mailer = _mailer(store, inventory, clock, pdf=False)
    assert (await mailer.check()).month is None
    assert await store.outbox_items() == []
    await write_month(store)  # the history reaches back into October
    assert (await mailer.check()).month == Month(2026, 11)
    assert len(await store.outbox_items()) == 2


async def test_a_failed_send_is_retried_and_any_past_month_mails_on_demand(
    november: Store,
    inventory: Inventory,
    session: aiohttp.ClientSession,
    smtp_factory: object,
    port: int,
) -> None:
    # The mail server is down at 08:00.
    server: SmtpServer = await smtp_factory(port, start=False)  # type: ignore[operator]
    clock = ManualClock(DECEMBER_1_0800)
    mailer = _mailer(november, inventory, clock, pdf=False)
    worker = _worker(november, inventory, session, clock)
    assert (await mailer.check()).enqueued == 2
    first = await worker.deliver_due()
    assert (first.delivered, first.retrying) == (0, 2)
    assert server.received == []

    # Back up: the outbox tries again with the same files, and delivers.
    await server.start()
    clock.advance(15)
    assert (await worker.deliver_due()).delivered == 2
    assert len(server.received) == 2

    # October on demand (a past month), same rule: once per recipient.
    october = await mailer.mail(Month(2026, 10), clock.now())
    assert (october.month, october.enqueued) == (Month(2026, 10), 2)
    assert (await worker.deliver_due()).delivered == 2
    message = _parsed(server.received[-1].data)
    assert "tháng 10/2026" in message["Subject"]
    assert set(_files(message)) == {"netwatch-2026-10.xlsx", "netwatch-2026-10.csv"}
    assert (await mailer.mail(Month(2026, 10), clock.now())).already == 2


async def test_the_loop_mails_when_it_leads(
    november: Store, inventory: Inventory, port: int
) -> None:
    """`run` (what the runtime starts) looks at the schedule and mails only while leading."""
    clock = ManualClock(DECEMBER_1_0800 + timedelta(hours=1))
    leading = asyncio.Event()
    looked = asyncio.Event()

    def is_leader() -> bool:
        looked.set()
        return leading.is_set()

    enqueued = asyncio.Event()  # the outbox worker's wake-up, as the runtime wires it
    mailer = ReportMailer(
        inventory,
        november,
        Rollups(november),
        clock,
        is_leader=is_leader,
        wake=enqueued.set,
        pdf=False,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(mailer.run(stop))
    try:
        await asyncio.wait_for(looked.wait(), 10)
        assert await november.outbox_items() == []  # a standby mails nothing
        stop.set()
        await asyncio.wait_for(task, 10)
        leading.set()
        stop.clear()
        task = asyncio.create_task(mailer.run(stop))
        await asyncio.wait_for(enqueued.wait(), 30)
        assert len(await november.outbox_items()) == 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_mail_missed_at_eight_is_sent_within_a_day_only(
    november: Store, inventory: Inventory, port: int
) -> None:
    # NetWatch installed on 6 December: it does not mail a November it may never have watched.
    clock = ManualClock(DECEMBER_1_0800 + timedelta(days=5))
    assert (await _mailer(november, inventory, clock, pdf=False).check()).month is None
    # Down at 08:00, back at 07:59 the next day: still sent.
    clock.set(DECEMBER_1_0800 + timedelta(hours=23, minutes=59))
    late = await _mailer(november, inventory, clock, pdf=False).check()
    assert (late.month, late.enqueued) == (Month(2026, 11), 2)
    assert len(await november.outbox_items()) == 2
