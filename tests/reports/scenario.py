"""November 2026 of three circuits, written straight into the store, every figure known.

Times are local (Asia/Ho_Chi_Minh). November has 30 days: 2,592,000 s.

A = 24848/vnpt-tslcd (VNPT, Lâm Đồng; the contract excludes maintenance, the default)
  down 31 Oct 23:00 → 1 Nov 00:30   crosses the month start: 1,800 s in November (3,600 in October)
  down  5 Nov 10:00:00 → 12:15:30   8,130 s
  unknown 10 Nov 08:00 → 14:00      NetWatch stopped: 21,600 s (also for B)
  lossy 12 Nov 09:00 → 10:00        3,600 s degraded
  maintenance 15 Nov 00:00 → 06:00 (store, link), cancelled at 02:00: 7,200 s excluded
  maintenance 20 Nov 01:00 → 03:00 (store, link); down 01:30 → 04:00: 3,600 s counted
  maintenance 25 Nov 22:00 → 26 Nov 00:00 (config, commune 24848); down 22:30 → 23:00: excluded
  down 30 Nov 23:00 → 1 Dec 01:00   crosses the month end: 3,600 s in November
  → excluded 21,600; unknown 21,600; down 17,130; degraded 3,600; ok 2,528,070; 4 incidents
  buckets 2 Nov 10:00-11:40: 19 x 30.0 ms + 1 x 150.0 ms (mean 36.0, p95 30.0); loss 2 x 5 %
  (mean 0.5 %); ignored: one in excluded maintenance (500 ms, 50 %), one with every echo lost,
  one in October (900 ms).
  utilization (100 Mbps) 2 Nov 10:00-11:35: 20 buckets of 1 % ... 20 % in a shuffled order (p95,
  the 19th of 20 by nearest rank: 19 %); ignored: one in excluded maintenance (99 %), one in
  October (99 %).

B = 24848/viettel-inet (Viettel, Lâm Đồng; the contract counts maintenance)
  slow 3 Nov 10:00 → 11:30          5,400 s degraded
  down 8 Nov 14:00:00 → 14:20:45    1,245 s
  unknown 10 Nov 08:00 → 14:00      21,600 s
  down 25 Nov 22:10 → 23:10         inside the config window, counted: 3,600 s
  → excluded 0; unknown 21,600; down 4,845; degraded 5,400; ok 2,560,155; 2 incidents;
    maintenance 7,200 s shown
  buckets 4 Nov 09:00-09:40: 9 x 60.0 ms + 25 Nov 22:00: 100.0 ms with 25 % loss
  (mean 64.0 ms, p95 100.0 ms; loss mean 2.5 %)
  utilization (50 Mbps) 4 Nov 09:00-10:35: 18 x 50 %, 1 x 85 %, 1 x 120 % (a burst over the
  contract): p95 85 %, exactly the threshold, which it breaks (>=); 25 Nov 22:00, in maintenance
  its contract counts: 30 %, counted → 21 buckets, the 20th: 85 %

C = 32248/vnpt (VNPT, Cà Mau): first judged ok on 16 Nov 00:00 → unknown 1,296,000, ok 1,296,000
  no utilization bucket: p95 None, utilization_missing says why

Tickets (opened in November unless said):
  T1 link A: opened 5 Nov 10:03:00, acknowledged 10:20:30 (1,050 s), incident gone 12:15:30
     (restored: 7,950 s), auto-resolved 12:25:30
  T2 upstream pop-lac-duong (links A and B): opened 8 Nov 14:05, never acknowledged, resolved by
     hand 15:00 (3,300 s)
  T3 link A: opened 31 Oct 23:03 (October's), resolved 1 Nov 00:40
  T4 link B: opened 30 Nov 23:00, acknowledged 23:30 (1,800 s), still open
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.model import IncidentKind, Route
from alerts.subject import SubjectKey
from alerts.tickets import Evidence, Ticket, TicketStatus
from netwatch.alerting import ticket_record
from netwatch.history import pack_buckets
from netwatch.store import NewMaintenance, StateChange, Store
from netwatch.store.models import LinkUtilizationRow
from netwatch.store.rollups import RollupRow, Rollups
from netwatch.utilization import pack_utilization

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
A = "24848/vnpt-tslcd"
B = "24848/viettel-inet"
C = "32248/vnpt"
LINK_SECRET = "test-link-secret-5d12125b938f682271d3f773a9c4"
CONFIG = """
isps:
  vnpt:
    name: VNPT
  viettel:
    name: Viettel
    contract:
      exclude_maintenance: false
notifications:
  public_url: https://netwatch.lamdong.example
  link_secret: {env: NETWATCH_LINK_SECRET}
upstreams:
  pop-lac-duong:
    name: POP VNPT Lạc Dương
    isp: vnpt
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: LDG-TSLCD-0001, bandwidth_mbps: 100, path: tslcd,
         address: 127.0.0.1, upstream: pop-lac-duong}
      - {id: viettel-inet, isp: viettel, circuit: VTL-INET-0042, bandwidth_mbps: 50,
         path: internet, address: 127.0.0.2}
  - code: 32248
    links:
      - {id: vnpt, isp: vnpt, circuit: CMU-0007, bandwidth_mbps: 40, path: tslcd,
         address: 127.0.0.3}
maintenance:
  - scope: {commune: 24848}
    start: 2026-11-25 22:00
    end: 2026-11-26 00:00
    reason: Nâng cấp thiết bị
"""
ENV = {"NETWATCH_LINK_SECRET": LINK_SECRET}
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=LOCAL)  # when the reports are asked for
MONTH_S = 30 * 86400


def at(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A local moment of 2026."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=LOCAL)


def nov(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A local moment of November 2026."""
    return at(11, day, hour, minute, second)


async def _states(store: Store, changes: Sequence[tuple[str, str, datetime]]) -> None:
    await store.record_transitions([StateChange(s, state, since) for s, state, since in changes])


async def write_history(store: Store) -> None:
    """The state history of A, B and C (with NetWatch stopped on 10 Nov)."""
    await _states(
        store,
        [
            (A, "ok", at(10, 20)),
            (B, "ok", at(10, 25)),
            (A, "down", at(10, 31, 23)),
            (A, "ok", nov(1, 0, 30)),
            (B, "slow", nov(3, 10)),
            (B, "ok", nov(3, 11, 30)),
            (A, "down", nov(5, 10)),
            (A, "ok", nov(5, 12, 15, 30)),
            (B, "down", nov(8, 14)),
            (B, "ok", nov(8, 14, 20, 45)),
        ],
    )
    assert await store.mark_all_unknown(nov(10, 8)) == 2  # a clean shutdown: A and B
    await _states(
        store,
        [
            (A, "ok", nov(10, 14)),
            (B, "ok", nov(10, 14)),
            (A, "lossy", nov(12, 9)),
            (A, "ok", nov(12, 10)),
            (C, "ok", nov(16)),
            (A, "down", nov(20, 1, 30)),
            (A, "ok", nov(20, 4)),
            (A, "down", nov(25, 22, 30)),
            (B, "down", nov(25, 22, 10)),
            (A, "ok", nov(25, 23)),
            (B, "ok", nov(25, 23, 10)),
            (A, "down", nov(30, 23)),
            (A, "ok", at(12, 1, 1)),
        ],
    )


async def write_maintenance(store: Store) -> None:
    """The two windows made through the API for A; the first is cancelled after 2 hours."""
    made = nov(1)

    def window(start: datetime, end: datetime) -> NewMaintenance:
        return NewMaintenance("link", A, start, end, "Thay cáp quang", "token:ops")

    cancelled = await store.add_maintenance(window(nov(15), nov(15, 6)), made)
    await store.cancel_maintenance(cancelled.id, nov(15, 2))
    await store.add_maintenance(window(nov(20, 1), nov(20, 3)), made)


def _hour_rows(
    link: str, start: datetime, values: Sequence[tuple[float | None, float | None]]
) -> list[RollupRow]:
    """Rows of consecutive 5-minute buckets from `start` (a whole hour): (RTT ms, loss)."""
    rows = []
    for first in range(0, len(values), 12):
        chunk = [
            (None if rtt is None else rtt / 1000, None if rtt is None else rtt / 1000, loss)
            for rtt, loss in values[first : first + 12]
        ]
        chunk += [(None, None, None)] * (12 - len(chunk))
        hour = (start + timedelta(hours=first // 12)).astimezone(UTC)
        rows.append(RollupRow(link, hour, pack_buckets(chunk)))
    return rows


async def write_rollups(store: Store) -> None:
    """The 5-minute buckets of A and B."""
    a_values: list[tuple[float | None, float | None]] = [(30.0, 0.0)] * 19 + [(150.0, 0.0)]
    a_values[3] = (30.0, 0.05)
    a_values[7] = (30.0, 0.05)
    b_values: list[tuple[float | None, float | None]] = [(60.0, 0.0)] * 9
    rows = [
        *_hour_rows(A, nov(2, 10), a_values),
        *_hour_rows(A, nov(20, 1), [(500.0, 0.5)]),  # in excluded maintenance
        *_hour_rows(A, nov(5, 10), [(None, 1.0)]),  # every echo lost: downtime, not loss
        *_hour_rows(A, at(10, 31, 23), [(900.0, 0.0)]),  # October's
        *_hour_rows(B, nov(4, 9), b_values),
        *_hour_rows(B, nov(25, 22), [(100.0, 0.25)]),  # in maintenance, which B's counts
    ]
    await Rollups(store).upsert(rows, NOW)


def _utilization_rows(link: str, start: datetime, values: Sequence[float]) -> list[RollupRow]:
    """Rows of consecutive 5-minute utilization buckets from `start` (a whole hour)."""
    rows = []
    for first in range(0, len(values), 12):
        chunk: list[float | None] = list(values[first : first + 12])
        chunk += [None] * (12 - len(chunk))
        hour = (start + timedelta(hours=first // 12)).astimezone(UTC)
        rows.append(RollupRow(link, hour, pack_utilization(chunk)))
    return rows


A_UTILIZATION = [0.07, 0.2, 0.01, 0.13, 0.19, 0.04, 0.16, 0.1, 0.02, 0.18]
A_UTILIZATION += [0.05, 0.11, 0.15, 0.03, 0.17, 0.08, 0.14, 0.06, 0.12, 0.09]
B_UTILIZATION = [0.5] * 7 + [1.2] + [0.5] * 6 + [0.85] + [0.5] * 5


async def write_utilization(store: Store) -> None:
    """The 5-minute utilization buckets of A and B (C has none)."""
    rows = [
        *_utilization_rows(A, nov(2, 10), A_UTILIZATION),
        *_utilization_rows(A, nov(20, 1), [0.99]),  # in excluded maintenance
        *_utilization_rows(A, at(10, 31, 23), [0.99]),  # October's
        *_utilization_rows(B, nov(4, 9), B_UTILIZATION),
        *_utilization_rows(B, nov(25, 22), [0.3]),  # in maintenance, which B's counts
    ]
    await Rollups(store, LinkUtilizationRow).upsert(rows, NOW)


def _ticket(
    ticket_id: str,
    key: SubjectKey,
    links: tuple[str, ...],
    opened: datetime,
    *,
    kind: IncidentKind = IncidentKind.LINK_FAULT,
    acknowledged: datetime | None = None,
    ok_since: datetime | None = None,
    resolved: datetime | None = None,
) -> Ticket:
    if resolved is not None:
        status = TicketStatus.RESOLVED
    elif acknowledged is not None:
        status = TicketStatus.ACKNOWLEDGED
    else:
        status = TicketStatus.OPEN
    return Ticket(
        id=ticket_id,
        key=key,
        episode_start=opened,
        route=Route.ISP,
        isp="vnpt",
        status=status,
        evidence=Evidence(
            kind=kind,
            state="down",
            worst_state="down",
            detail="",
            links=links,
            first_bad_at=opened - timedelta(minutes=3),
            bad_since=None if ok_since else opened,
        ),
        opened_at=opened,
        escalation_from=opened,
        last_notified_at=opened,
        level=1,
        acknowledged_at=acknowledged,
        resolved_at=resolved,
        ok_since=ok_since,
    )


TICKETS = (
    _ticket(
        "NW-T1",
        SubjectKey.parse(f"link:{A}"),
        (A,),
        nov(5, 10, 3),
        acknowledged=nov(5, 10, 20, 30),
        ok_since=nov(5, 12, 15, 30),
        resolved=nov(5, 12, 25, 30),
    ),
    _ticket(
        "NW-T2",
        SubjectKey.upstream("pop-lac-duong"),
        (A, B),
        nov(8, 14, 5),
        kind=IncidentKind.UPSTREAM_OUTAGE,
        resolved=nov(8, 15),
    ),
    _ticket(
        "NW-T3",
        SubjectKey.parse(f"link:{A}"),
        (A,),
        at(10, 31, 23, 3),
        ok_since=nov(1, 0, 30),
        resolved=nov(1, 0, 40),
    ),
    _ticket(
        "NW-T4",
        SubjectKey.parse(f"link:{B}"),
        (B,),
        nov(30, 23),
        acknowledged=nov(30, 23, 30),
    ),
)


async def write_tickets(store: Store) -> None:
    """The four tickets, stored as alerting stores them."""
    for ticket in TICKETS:  # one step each: T1 and T3 share their incident key
        await store.apply_ticket_changes([ticket_record(ticket, 600.0)], [], [], NOW)


async def write_month(store: Store) -> None:
    """Everything above."""
    await write_history(store)
    await write_maintenance(store)
    await write_rollups(store)
    await write_utilization(store)
    await write_tickets(store)
