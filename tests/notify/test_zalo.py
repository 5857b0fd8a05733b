"""Zalo ZNS through the real path: a ticket opened by the alerting service, its outbox rows in
SQLite, the delivery worker, and a stand-in for Zalo's APIs on loopback (tests/notify/zalo_peer.py)
that checks the access token and records every request. Retried, given up and token refresh
as docs/zalo.md says."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import textwrap
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from alerts.model import Incident, IncidentKind, Route
from alerts.subject import SubjectKey
from alerts.tickets import OpenTicket
from netwatch.alerting import Alerting, StoreOutbox, build_channels
from netwatch.health import HealthMonitor
from netwatch.inventory import Inventory, load_inventory
from netwatch.inventory.models import ZNS_EVENTS
from netwatch.inventory.secrets import Secret
from netwatch.notify.channels import Delivered, Failed, FailureReason
from netwatch.notify.messages import (
    ZNS_PARAMS,
    NoticeEvent,
    ProblemState,
    fit_zns,
    render_zns,
    zns_payload,
)
from netwatch.notify.outbox import OutboxWorker
from netwatch.notify.zalo import ZaloChannel, ZaloConfig, tracking_id
from netwatch.ops_metrics import MeteredOutbox
from netwatch.steadyclock import SteadyClock
from netwatch.store import Store, open_store
from tests.clocks import TwoClocks

from .conftest import make_notice
from .zalo_peer import ACCESS_TOKEN, APP_ID, HANG, REFRESH_TOKEN, SECRET_KEY, FakeZalo, zalo_api

LINK = "24848/vnpt-tslcd"
PHONE = "84912345678"
T0 = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)  # 22:00 in Asia/Ho_Chi_Minh
TEMPLATE_OPENED = "401234"
TEMPLATE_RESOLVED = "401235"
ENV = {
    "NW_LINK_SECRET": "9921c527c59c2d56534fbf20ed19f449423f7b64",
    "NW_ZALO_ACCESS_TOKEN": ACCESS_TOKEN,
    "NW_ZALO_REFRESH_TOKEN": REFRESH_TOKEN,
    "NW_ZALO_SECRET_KEY": SECRET_KEY,
}
CONFIG = """
isps:
  vnpt:
    name: VNPT Lâm Đồng
    contacts:
      - {level: 1, name: NOC VNPT Lâm Đồng, zalo_phone: "0912 345 678"}
notifications:
  public_url: https://netwatch.lamdong.example
  link_secret: {env: NW_LINK_SECRET}
  zalo:
    access_token: {env: NW_ZALO_ACCESS_TOKEN}
    refresh_token: {env: NW_ZALO_REFRESH_TOKEN}
    app_id: "@APP_ID@"
    secret_key: {env: NW_ZALO_SECRET_KEY}
    api_base_url: "@BASE@"
    oauth_base_url: "@BASE@"
    timeout_s: 2
    templates: {opened: @OPENED@, resolved: "@RESOLVED@"}
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: LDG-TSLCD-0001, bandwidth_mbps: 100, path: tslcd,
         address: 127.0.0.1}
"""


@dataclass
class Rig:
    """Alerting, the SQLite outbox and its worker, all pointed at the Zalo stand-in."""

    zalo: FakeZalo
    store: Store
    alerting: Alerting
    worker: OutboxWorker
    outbox: MeteredOutbox
    clocks: TwoClocks
    channel: ZaloChannel

    async def open_ticket(self) -> None:
        actions = await self.alerting.evaluate(await self.alerting.now())
        assert [type(a) for a in actions] == [OpenTicket]


def _inventory(tmp_path: Path, base_url: str, env: dict[str, str]) -> Inventory:
    text = (
        textwrap.dedent(CONFIG)
        .replace("@BASE@", base_url)
        .replace("@APP_ID@", APP_ID)
        .replace("@OPENED@", TEMPLATE_OPENED)
        .replace("@RESOLVED@", TEMPLATE_RESOLVED)
    )
    path = tmp_path / "netwatch.yaml"
    path.write_text(text, encoding="utf-8")
    return load_inventory(path, environ=env)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(None, data_dir=tmp_path)
    try:
        yield store
    finally:
        await store.close()


async def _rig(
    tmp_path: Path,
    store: Store,
    zalo: FakeZalo,
    env: dict[str, str],
    session: aiohttp.ClientSession,
) -> Rig:
    inventory = _inventory(tmp_path, zalo.base_url, env)
    health = HealthMonitor(inventory)
    health.incidents = (
        Incident(
            key=SubjectKey.parse(f"link:{LINK}"),
            kind=IncidentKind.LINK_FAULT,
            state="down",
            since=T0 - timedelta(minutes=3),
            route=Route.ISP,
            isp="vnpt",
            links=(LINK,),
            detail="no_echo",
        ),
    )
    clocks = TwoClocks(T0)
    steady = SteadyClock(wall=clocks.now, monotonic=clocks.mono)
    alerting = Alerting(inventory, store, health, clock=steady)
    channels = build_channels(inventory, session, clocks)
    outbox = MeteredOutbox(StoreOutbox(store, monotonic=clocks.mono), channels)
    worker = OutboxWorker(outbox, channels, clocks, rng=random.Random(7))
    channel = channels["zalo"]
    assert isinstance(channel, ZaloChannel)
    return Rig(zalo, store, alerting, worker, outbox, clocks, channel)


@pytest.fixture
async def rig(tmp_path: Path, store: Store) -> AsyncIterator[Rig]:
    async with zalo_api() as zalo, aiohttp.ClientSession() as session:
        yield await _rig(tmp_path, store, zalo, ENV, session)


EXPECTED_OPENED = {
    "ma_phieu": "@TICKET@",
    "su_kien": "Mở phiếu sự cố",
    "dia_diem": "Xã Lạc Dương, Lâm Đồng",
    "tinh_trang": "Mất kết nối",
    "nha_mang": "VNPT Lâm Đồng, mạch LDG-TSLCD-0001",
    "bat_dau": "21:57 05/12/2026",
    "thoi_gian_su_co": "3 phút",
    "nguoi_xu_ly": "—",
}


async def _ticket_id(store: Store) -> str:
    [stored] = await store.list_tickets()
    return stored.ticket.id


async def test_a_ticket_opening_reaches_zalo_once_with_its_template_data(rig: Rig) -> None:
    await rig.open_ticket()
    report = await rig.worker.deliver_due()
    assert (report.claimed, report.delivered) == (1, 1)
    ticket = await _ticket_id(rig.store)

    [call] = rig.zalo.calls
    assert call.access_token == ACCESS_TOKEN
    [item] = await rig.store.outbox_items()
    assert call.body == {
        "phone": PHONE,
        "template_id": TEMPLATE_OPENED,
        "template_data": {**EXPECTED_OPENED, "ma_phieu": ticket},
        "tracking_id": item.dedup_key,
    }
    assert item.dedup_key == f"{ticket}/0/zalo/{PHONE}"
    assert item.sent_at is not None
    # A ZNS template carries no signed link, so a notice told only by Zalo issues none: nothing
    # to list or revoke on the ticket's admin page.
    assert await rig.store.ticket_links(ticket) == []
    # Vietnamese as written, composed (NFC), not escaped into something else on the way.
    data = call.body["template_data"]
    assert all(unicodedata.is_normalized("NFC", v) for v in data.values())

    # Nothing more is sent: not by the worker, not by the next evaluation of the same incident.
    assert (await rig.worker.deliver_due()).claimed == 0
    rig.clocks.advance(30)
    await rig.alerting.evaluate(await rig.alerting.now())
    assert (await rig.worker.deliver_due()).claimed == 0
    assert len(rig.zalo.calls) == 1
    assert rig.outbox.delivered["zalo"] == 1


async def test_a_server_error_is_retried_then_delivered_once(rig: Rig) -> None:
    rig.zalo.script = [(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")]
    await rig.open_ticket()
    assert (await rig.worker.deliver_due()).retrying == 1
    [item] = await rig.store.outbox_items()
    assert item.sent_at is None
    assert item.last_error is not None
    assert item.last_error == "server_error: HTTP 502 (not a ZNS answer)"

    assert (await rig.worker.deliver_due()).claimed == 0  # not due before its backoff
    rig.clocks.advance(3600)
    assert (await rig.worker.deliver_due()).delivered == 1
    assert len(rig.zalo.calls) == 2
    assert len(rig.zalo.delivered) == 1
    first, second = rig.zalo.calls
    assert first.body == second.body  # the same tracking_id, the same data: one message
    rig.clocks.advance(3600)
    assert (await rig.worker.deliver_due()).claimed == 0


async def test_no_answer_in_time_is_retried_with_the_same_tracking_id(rig: Rig) -> None:
    rig.zalo.script = [HANG]
    await rig.open_ticket()
    report = await rig.worker.deliver_due()
    assert report.retrying == 1
    [item] = await rig.store.outbox_items()
    assert item.last_error is not None
    assert item.last_error.startswith("unanswered: 1 in a row;")
    rig.zalo.release.set()

    rig.clocks.advance(3600)
    assert (await rig.worker.deliver_due()).delivered == 1
    assert len(rig.zalo.delivered) == 1
    assert rig.zalo.calls[0].body["tracking_id"] == rig.zalo.calls[1].body["tracking_id"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-118, "Zalo account not existed"),
        (-108, "Phone number invalid"),
        (-131, "Template not approved"),
        (-112, "Template data invalid"),
        (-139, "User rejected this type of message"),
    ],
)
async def test_a_permanent_error_is_given_up_logged_and_counted_never_retried(
    rig: Rig, caplog: pytest.LogCaptureFixture, code: int, message: str
) -> None:
    caplog.set_level(logging.INFO)
    rig.zalo.script = [(200, {"error": code, "message": message})]
    await rig.open_ticket()
    report = await rig.worker.deliver_due()
    assert report.gave_up == 1
    [item] = await rig.store.outbox_items()
    assert item.next_attempt_at is None  # given up in the store: no further attempt
    assert item.last_error == f"rejected: ZNS {code} {message}"
    assert rig.outbox.gave_up["zalo"] == 1
    gave_up = [r.getMessage() for r in caplog.records if "notify.gave_up" in r.getMessage()]
    assert gave_up == [
        f"notify.gave_up channel=zalo item={item.id} attempts=1 reason=rejected "
        f"detail=ZNS {code} {message}"
    ]

    rig.clocks.advance(7 * 24 * 3600)
    assert (await rig.worker.deliver_due()).claimed == 0
    assert len(rig.zalo.calls) == 1


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (-144, FailureReason.RATE_LIMITED),  # the OA's daily quota
        (-115, FailureReason.RATE_LIMITED),  # out of quota until topped up
        (-100, FailureReason.SERVER_ERROR),  # Zalo: "unknown error, try again later"
        (-9999, FailureReason.SERVER_ERROR),  # a code NetWatch does not know: kept, retried
    ],
)
async def test_quota_and_temporary_codes_are_retried(
    rig: Rig, code: int, reason: FailureReason
) -> None:
    rig.zalo.script = [(200, {"error": code, "message": "thử lại sau"})]
    await rig.open_ticket()
    assert (await rig.worker.deliver_due()).retrying == 1
    [item] = await rig.store.outbox_items()
    assert item.last_error is not None
    assert item.last_error.startswith(f"{reason.value}: ZNS {code} thử lại sau")
    rig.clocks.advance(3600)
    assert (await rig.worker.deliver_due()).delivered == 1


async def test_an_expired_access_token_is_refreshed_once_and_the_message_sent(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.zalo.access_token = "a-token-zalo-handed-out-elsewhere"  # ours has expired
    await rig.open_ticket()
    assert (await rig.worker.deliver_due()).delivered == 1

    [refresh] = rig.zalo.token_calls
    assert refresh.secret_key == SECRET_KEY
    assert refresh.content_type == "application/x-www-form-urlencoded"
    assert refresh.form == {
        "app_id": APP_ID,
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
    }
    expired, retried = rig.zalo.calls
    assert expired.access_token == ACCESS_TOKEN
    assert retried.access_token == "zalo-access-token-0002-new"
    assert expired.body == retried.body
    assert rig.channel.refreshes == 1

    # The next expiry spends the refresh token Zalo handed out with the last access token.
    rig.zalo.access_token = "expired-again"
    payload = zns_payload(make_notice(NoticeEvent.RESOLVED, 9), TEMPLATE_RESOLVED)
    assert await rig.channel.send(PHONE, payload, "NW-x/9/zalo/84912345678") == Delivered(
        "msg_id=a1b2c3d4e5f60002"
    )
    assert rig.zalo.token_calls[1].form["refresh_token"] == "zalo-refresh-token-0002-new"
    assert rig.channel.refreshes == 2

    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (ACCESS_TOKEN, REFRESH_TOKEN, SECRET_KEY, "zalo-access-token-0002-new"):
        assert secret not in logged


async def test_two_sends_finding_the_token_expired_refresh_it_once(rig: Rig) -> None:
    rig.zalo.access_token = "someone-else"
    payloads = [
        zns_payload(make_notice(NoticeEvent.OPENED, i, ticket_id=f"NW-{i}"), TEMPLATE_OPENED)
        for i in (1, 2, 3)
    ]
    outcomes = await asyncio.gather(
        *(rig.channel.send(PHONE, p, f"NW-{i}/zalo") for i, p in enumerate(payloads))
    )
    assert all(isinstance(o, Delivered) for o in outcomes)
    assert len(rig.zalo.token_calls) == 1  # Zalo's refresh token is single-use
    assert len(rig.zalo.delivered) == 3


async def test_a_refused_refresh_is_given_up_without_showing_the_secrets(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.zalo.access_token = "someone-else"
    rig.zalo.refresh_token = "a-refresh-token-we-do-not-have"
    await rig.open_ticket()
    assert (await rig.worker.deliver_due()).gave_up == 1
    [item] = await rig.store.outbox_items()
    assert item.last_error == (
        "auth_failed: token refresh refused: -14014 Refresh token is invalid or expired"
    )
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (ACCESS_TOKEN, REFRESH_TOKEN, SECRET_KEY):
        assert secret not in logged
        assert secret not in item.last_error
    assert len(rig.zalo.calls) == 1  # not sent again with the token Zalo refused


async def test_only_a_refresh_token_configured_takes_an_access_token_first(
    tmp_path: Path, store: Store
) -> None:
    env = {k: v for k, v in ENV.items() if k != "NW_ZALO_ACCESS_TOKEN"}
    async with zalo_api() as zalo:
        config = CONFIG.replace("    access_token: {env: NW_ZALO_ACCESS_TOKEN}\n", "")
        assert config != CONFIG
        path = tmp_path / "netwatch.yaml"
        text = (
            textwrap.dedent(config)
            .replace("@BASE@", zalo.base_url)
            .replace("@APP_ID@", APP_ID)
            .replace("@OPENED@", TEMPLATE_OPENED)
            .replace("@RESOLVED@", TEMPLATE_RESOLVED)
        )
        path.write_text(text, encoding="utf-8")
        inventory = load_inventory(path, environ=env)
        async with aiohttp.ClientSession() as session:
            channel = build_channels(inventory, session, TwoClocks(T0))["zalo"]
            payload = zns_payload(make_notice(), TEMPLATE_OPENED)
            outcome = await channel.send(PHONE, payload, "NW-1/1/zalo/84912345678")
    assert outcome == Delivered("msg_id=a1b2c3d4e5f60001")
    assert len(zalo.token_calls) == 1
    [call] = zalo.calls
    assert call.access_token == "zalo-access-token-0002-new"


async def test_an_expired_token_without_a_refresh_token_is_given_up(rig: Rig) -> None:
    async with aiohttp.ClientSession() as session:
        channel = ZaloChannel(
            ZaloConfig(
                access_token=Secret("expired", "NW_ZALO_ACCESS_TOKEN"),
                api_base_url=rig.zalo.base_url,
                oauth_base_url=rig.zalo.base_url,
            ),
            session,
        )
        outcome = await channel.send(PHONE, zns_payload(make_notice(), TEMPLATE_OPENED), "d")
    assert outcome == Failed(
        FailureReason.AUTH_FAILED,
        False,
        "ZNS -124 Access token invalid; no refresh_token configured to take a new one",
    )
    assert rig.zalo.token_calls == []


async def test_an_unreachable_api_is_retryable_and_hides_the_token() -> None:
    async with zalo_api() as zalo:
        base = zalo.base_url
    async with aiohttp.ClientSession() as session:  # the peer has stopped: refused
        channel = ZaloChannel(
            ZaloConfig(Secret(ACCESS_TOKEN, "T"), api_base_url=base, oauth_base_url=base),
            session,
        )
        outcome = await channel.send(PHONE, zns_payload(make_notice(), TEMPLATE_OPENED), "d")
    assert isinstance(outcome, Failed)
    assert (outcome.reason, outcome.retryable) == (FailureReason.CONNECTION_REFUSED, True)
    assert ACCESS_TOKEN not in outcome.detail


async def test_not_a_zns_payload_is_refused_without_a_request(rig: Rig) -> None:
    outcome = await rig.channel.send(PHONE, {"format": "chat/v1", "text": "x"}, "d")
    assert outcome == Failed(FailureReason.BAD_PAYLOAD, False, "not a ZNS payload")
    assert rig.zalo.calls == []


async def test_events_without_a_template_are_not_queued_for_zalo(rig: Rig) -> None:
    """Only `opened` and `resolved` have templates here: an escalation is not sent by Zalo."""
    await rig.open_ticket()
    [item] = await rig.store.outbox_items()
    assert item.payload["template_id"] == TEMPLATE_OPENED
    assert item.payload["event"] == "opened"


# --- the template data ----------------------------------------------------------------------


def test_every_value_fits_its_zns_type_and_long_ones_end_with_an_ellipsis() -> None:
    long_name = "Xã " + "Nguyễn Đình Chiểu " * 20
    notice = make_notice(
        NoticeEvent.LINE_BACK,
        5,
        commune_name=long_name,
        isp_name="Tập đoàn Bưu chính Viễn thông Việt Nam " * 8,
        actor="Trưởng ca trực Trung tâm điều hành mạng VNPT Lâm Đồng",
        back_since=T0,
        closes_after_s=600.0,
        state=ProblemState.CONGESTED,
    )
    data = render_zns(notice)
    limits = {p.name: p.max_chars for p in ZNS_PARAMS}
    assert set(data) == set(limits)
    for name, value in data.items():
        assert 0 < len(value) <= limits[name], name
    assert data["su_kien"] == "Đường truyền đã hoạt động trở…"
    assert data["nguoi_xu_ly"] == "Trưởng ca trực Trung tâm điều…"
    assert data["dia_diem"].endswith("…")
    assert len(data["dia_diem"]) == 200
    assert data["tinh_trang"] == "Quá tải (đầy băng thông)"
    assert "sig=" not in "".join(data.values())  # the signed link never goes to Zalo


def test_decomposed_text_is_composed_before_it_is_measured() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Văn Đức")
    assert len(decomposed) > 14
    assert fit_zns(decomposed, 14) == "Nguyễn Văn Đức"
    assert fit_zns("  ", 30) == "—"
    assert fit_zns("a" * 31, 30) == "a" * 29 + "…"


def test_tracking_ids_stay_within_zalos_length_and_stable() -> None:
    short = "NW-2026-000042/1/zalo/84912345678"
    assert tracking_id(short) == short
    long = "NW-2026-000042-" + "x" * 60 + "/12/zalo/84912345678"
    assert len(tracking_id(long)) == 48
    assert tracking_id(long) == tracking_id(long)
    assert tracking_id(long) != tracking_id(long.replace("/12/", "/13/"))


def test_the_config_lists_every_notice_event() -> None:
    assert set(ZNS_EVENTS) == {e.value for e in NoticeEvent}


async def test_a_rate_limited_answer_is_retryable(rig: Rig) -> None:
    rig.zalo.script = [(429, "Too Many Requests")]
    outcome = await rig.channel.send(PHONE, zns_payload(make_notice(), TEMPLATE_OPENED), "d")
    assert outcome == Failed(FailureReason.RATE_LIMITED, True, "HTTP 429 (not a ZNS answer)")


def _channel(
    session: aiohttp.ClientSession, zalo: FakeZalo, token_file: Path, refresh: str = REFRESH_TOKEN
) -> ZaloChannel:
    return ZaloChannel(
        ZaloConfig(
            access_token=Secret(ACCESS_TOKEN, "NW_ZALO_ACCESS_TOKEN"),
            refresh_token=Secret(refresh, "NW_ZALO_REFRESH_TOKEN"),
            app_id=APP_ID,
            secret_key=Secret(SECRET_KEY, "NW_ZALO_SECRET_KEY"),
            api_base_url=zalo.base_url,
            oauth_base_url=zalo.base_url,
            token_file=token_file,
        ),
        session,
    )


async def test_refreshed_tokens_survive_a_restart_through_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "data" / "zalo-tokens.json"
    payload = zns_payload(make_notice(), TEMPLATE_OPENED)
    async with zalo_api() as zalo, aiohttp.ClientSession() as session:
        zalo.access_token = "expired-elsewhere"
        first = _channel(session, zalo, token_file)
        assert isinstance(await first.send(PHONE, payload, "NW-1/0/zalo/p"), Delivered)
        assert len(zalo.token_calls) == 1
        assert token_file.stat().st_mode & 0o777 == 0o600  # it holds tokens
        kept = json.loads(token_file.read_text("utf-8"))
        assert kept["access_token"] == zalo.access_token
        assert kept["refresh_token"] == zalo.refresh_token
        assert REFRESH_TOKEN not in token_file.read_text("utf-8")  # the spent one: a hash

        # A restart: the environment still holds the spent pair; the file the new one.
        restarted = _channel(session, zalo, token_file)
        assert isinstance(await restarted.send(PHONE, payload, "NW-1/1/zalo/p"), Delivered)
        assert len(zalo.token_calls) == 1  # the kept access token was good
        assert zalo.calls[-1].access_token == kept["access_token"]
        zalo.access_token = "expired-again"
        assert isinstance(await restarted.send(PHONE, payload, "NW-1/2/zalo/p"), Delivered)
        assert zalo.token_calls[-1].form["refresh_token"] == kept["refresh_token"]
        assert json.loads(token_file.read_text("utf-8"))["refresh_token"] == zalo.refresh_token

        # A new refresh token in the environment (the app authorized again) wins over the file.
        zalo.refresh_token = "re-authorized-refresh-token"
        zalo.access_token = "expired-once-more"
        fresh = _channel(session, zalo, token_file, refresh="re-authorized-refresh-token")
        assert isinstance(await fresh.send(PHONE, payload, "NW-1/3/zalo/p"), Delivered)
        assert zalo.token_calls[-1].form["refresh_token"] == "re-authorized-refresh-token"
