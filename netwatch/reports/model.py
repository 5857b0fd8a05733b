"""The monthly report as typed values: what a page, a CSV, a PDF or an XLSX file renders.

Every figure is kept in base units (seconds, ratios) with the seconds it comes from, so a
renderer only formats and a reader can recompute each ratio. Labels come in Vietnamese and
English (`Label`); renderers pick one with `Lang`. How each figure is computed is in
netwatch.reports.compute and docs/reports.md.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from netwatch.inventory.models import LOCAL_TZ


class Lang(enum.Enum):
    """The language a report is rendered in: Vietnamese first, English on request."""

    VI = "vi"
    EN = "en"


@dataclass(frozen=True, slots=True)
class Label:
    """A text in Vietnamese and English."""

    vi: str
    en: str

    def text(self, lang: Lang) -> str:
        """The text in `lang`."""
        return self.vi if lang is Lang.VI else self.en


# --- thresholds -------------------------------------------------------------------------------
# QCVN 34:2022/BTTTT (national technical regulation on the quality of fixed broadband Internet
# access) names itself the basis for users to supervise ISPs: availability >= 99.5 % and mean
# latency (domestic) <= 50 ms. Loss and utilization have no figure there we rely on: the report
# holds them to NetWatch's own default degraded thresholds (inventory.models.Thresholds).
QCVN_34 = Label("QCVN 34:2022/BTTTT", "QCVN 34:2022/BTTTT")
NETWATCH_DEFAULT = Label(
    "ngưỡng mặc định của NetWatch (thresholds)", "NetWatch's default threshold (thresholds)"
)
AVAILABILITY_MIN_RATIO = 0.995  # QCVN 34:2022: availability >= 99.5 %
MEAN_LATENCY_MAX_S = 0.050  # QCVN 34:2022: mean latency <= 50 ms
LOSS_MAX_RATIO = 0.02  # NetWatch default thresholds.loss_pct (2 %)
# NetWatch default thresholds.utilization_pct (85 %): the capacity rule of alerts.health holds a
# link congested from that ratio on (>=), so the report's p95 breaks it at the limit too.
UTILIZATION_P95_MAX_RATIO = 0.85


class Figure(enum.Enum):
    """A figure a breach can be about."""

    AVAILABILITY = "availability"
    MEAN_LATENCY = "mean_latency"
    LOSS = "loss"
    P95_UTILIZATION = "p95_utilization"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A limit a figure is held to, the way it is held (min or max) and where it comes from."""

    figure: Figure
    limit: float  # a ratio, or seconds for latency
    at_least: bool  # True: the figure must be >= limit; False: <= limit
    source: Label
    label: Label
    at_limit: bool = False  # the limit itself breaks it (a max held like alerts' capacity rule)

    def breached_by(self, value: float | None) -> bool:
        """Whether a value breaks the limit (an unknown value breaks nothing)."""
        if value is None:
            return False
        if self.at_least:
            return value < self.limit
        return value >= self.limit if self.at_limit else value > self.limit


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(
        Figure.AVAILABILITY,
        AVAILABILITY_MIN_RATIO,
        True,
        QCVN_34,
        Label("Độ khả dụng dưới 99,5 %", "Availability below 99.5 %"),
    ),
    Threshold(
        Figure.MEAN_LATENCY,
        MEAN_LATENCY_MAX_S,
        False,
        QCVN_34,
        Label("Độ trễ trung bình trên 50 ms", "Mean latency above 50 ms"),
    ),
    Threshold(
        Figure.LOSS,
        LOSS_MAX_RATIO,
        False,
        NETWATCH_DEFAULT,
        Label("Tỷ lệ mất gói trên 2 %", "Packet loss above 2 %"),
    ),
    Threshold(
        Figure.P95_UTILIZATION,
        UTILIZATION_P95_MAX_RATIO,
        False,
        NETWATCH_DEFAULT,
        Label(
            "Mức sử dụng (p95) từ 85 % băng thông hợp đồng trở lên",
            "p95 utilization at or above 85 % of the contracted bandwidth",
        ),
        at_limit=True,
    ),
)
THRESHOLD_OF = {t.figure: t for t in THRESHOLDS}


@dataclass(frozen=True, slots=True)
class Breach:
    """A figure that broke its threshold."""

    figure: Figure
    value: float
    threshold: Threshold


def breaches_of(values: dict[Figure, float | None]) -> tuple[Breach, ...]:
    """The breaches among some figures, in the order of THRESHOLDS."""
    out = []
    for threshold in THRESHOLDS:
        value = values.get(threshold.figure)
        if value is not None and threshold.breached_by(value):
            out.append(Breach(threshold.figure, value, threshold))
    return tuple(out)


# --- the period -------------------------------------------------------------------------------
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
FIRST_YEAR = 1976  # Vietnam has kept UTC+7 since 1975 (the tz database's Asia/Ho_Chi_Minh)
LAST_YEAR = 8998  # the month after still ends before the store's last moment (8999)


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month in Asia/Ho_Chi_Minh: from local midnight of the 1st to that of the next
    month's 1st (Vietnam keeps UTC+7 all year, so every day has 86,400 seconds)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"'{self}' is not a month written YYYY-MM, e.g. 2026-11")
        # The store keeps moments from 1970 to 8999 (netwatch.store.models).
        if not FIRST_YEAR <= self.year <= LAST_YEAR:
            raise ValueError(f"'{self}' is outside {FIRST_YEAR}-01 to {LAST_YEAR}-12")

    @classmethod
    def parse(cls, text: str) -> Month:
        """'2026-11' -> Month(2026, 11); ValueError (its message says why) for anything else."""
        found = _MONTH.match(text.strip())
        if found is None:
            raise ValueError(f"{text!r} is not a month written YYYY-MM, e.g. 2026-11")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, at: datetime) -> Month:
        """The local month an instant falls in."""
        local = at.astimezone(LOCAL_TZ)
        return cls(local.year, local.month)

    @property
    def start(self) -> datetime:
        """Local midnight of the 1st (timezone-aware)."""
        return datetime(self.year, self.month, 1, tzinfo=LOCAL_TZ)

    @property
    def end(self) -> datetime:
        """Local midnight of the next month's 1st."""
        return self.next().start

    def next(self) -> Month:
        """The month after."""
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        """The month before."""
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def seconds(self) -> float:
        """How long the month is."""
        return (self.end - self.start).total_seconds()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


# --- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Times:
    """How a period was spent, in seconds; the parts add up to period_s.

    excluded_s is maintenance taken out of the period (the ISP's contract excludes it); the
    remaining time is unknown (NetWatch not running or not yet judging, the future), or known:
    down (unavailable), degraded (slow, lossy, congested: available) or ok.
    """

    period_s: float
    excluded_s: float
    unknown_s: float
    down_s: float
    degraded_s: float
    ok_s: float

    @property
    def known_s(self) -> float:
        """The denominator of availability: seconds with a known state, not excluded."""
        return self.down_s + self.degraded_s + self.ok_s

    @property
    def availability_ratio(self) -> float | None:
        """1 - down / known; None when nothing of the period is known."""
        known = self.known_s
        return 1.0 - self.down_s / known if known > 0 else None

    @property
    def downtime_min(self) -> float:
        """Down time in minutes."""
        return self.down_s / 60.0

    def __add__(self, other: Times) -> Times:
        return Times(
            self.period_s + other.period_s,
            self.excluded_s + other.excluded_s,
            self.unknown_s + other.unknown_s,
            self.down_s + other.down_s,
            self.degraded_s + other.degraded_s,
            self.ok_s + other.ok_s,
        )


NO_TIME = Times(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Outage:
    """One down stretch of a circuit as the month sees it: only its part inside the month (and
    outside excluded maintenance) counts; it may have begun before or go on after."""

    start: datetime  # of its in-month part
    end: datetime  # of its in-month part (the report's moment for one still going on)
    counted_s: float  # down seconds counted in this month
    began_before: bool  # started in the previous month
    continues_after: bool  # still down at the month's end (or at the report's moment)


@dataclass(frozen=True, slots=True)
class Samples:
    """A figure over 5-minute buckets: how many buckets had it, their mean and 95th percentile
    (nearest rank); None without any bucket."""

    count: int
    mean: float | None
    p95: float | None

    @classmethod
    def of_codes(cls, counts: Mapping[int, int], unit: float) -> Samples:
        """The mean and p95 of bucket values stored as integer codes of `unit` (how many
        buckets had each code): exact, whatever the number of buckets."""
        total = sum(counts.values())
        if total == 0:
            return cls(0, None, None)
        mean = sum(code * n for code, n in counts.items()) * unit / total
        rank = max(1, math.ceil(0.95 * total))
        seen = 0
        for code in sorted(counts):
            seen += counts[code]
            if seen >= rank:
                return cls(total, mean, code * unit)
        raise AssertionError("unreachable: the ranks add up to total")


@dataclass(frozen=True, slots=True)
class TicketFigures:
    """A ticket opened in the month about a circuit, and how fast it was handled."""

    id: str
    kind: str  # link_fault, capacity, upstream_outage, ...
    status: str  # open, acknowledged, resolved
    opened_at: datetime
    acknowledged_at: datetime | None
    restored_at: datetime | None  # incident seen gone for good (or resolved by hand)
    resolved_at: datetime | None

    @property
    def time_to_acknowledge_s(self) -> float | None:
        """From opening to acknowledgement; None if never acknowledged."""
        if self.acknowledged_at is None:
            return None
        return max(0.0, (self.acknowledged_at - self.opened_at).total_seconds())

    @property
    def time_to_restore_s(self) -> float | None:
        """From opening to restoration; None while not restored."""
        if self.restored_at is None:
            return None
        return max(0.0, (self.restored_at - self.opened_at).total_seconds())


@dataclass(frozen=True, slots=True)
class TicketSummary:
    """Tickets of a circuit or a group: distinct tickets, mean and longest handling times."""

    count: int
    acknowledged: int
    restored: int
    mean_time_to_acknowledge_s: float | None
    max_time_to_acknowledge_s: float | None
    mean_time_to_restore_s: float | None
    max_time_to_restore_s: float | None

    @classmethod
    def of(cls, tickets: list[TicketFigures]) -> TicketSummary:
        """The summary of distinct tickets."""
        tta = [t.time_to_acknowledge_s for t in tickets if t.time_to_acknowledge_s is not None]
        ttr = [t.time_to_restore_s for t in tickets if t.time_to_restore_s is not None]
        return cls(
            count=len(tickets),
            acknowledged=len(tta),
            restored=len(ttr),
            mean_time_to_acknowledge_s=math.fsum(tta) / len(tta) if tta else None,
            max_time_to_acknowledge_s=max(tta) if tta else None,
            mean_time_to_restore_s=math.fsum(ttr) / len(ttr) if ttr else None,
            max_time_to_restore_s=max(ttr) if ttr else None,
        )


UTILIZATION_MISSING = Label(
    "Không có số liệu: trong tháng không có lần đo SNMP nào cho biết lưu lượng của kênh (giao "
    "diện WAN không được thăm dò SNMP, bộ định tuyến không trả lời, hoặc số liệu đã quá thời "
    "hạn lưu)",
    "No data: no SNMP poll in the month gave the circuit's traffic rates (its WAN interface is "
    "not polled by SNMP, the router did not answer, or the data is past its retention)",
)


@dataclass(frozen=True, slots=True)
class CircuitReport:
    """One circuit (a commune's WAN link) over the month."""

    link: str  # "24848/vnpt-tslcd"
    link_id: str  # "vnpt-tslcd"
    circuit: str  # the ISP's circuit id
    commune: str
    commune_name: str
    province: str  # official code, "68"
    province_name: str
    isp: str
    isp_name: str
    path: str  # tslcd, internet
    bandwidth_mbps: float  # contracted
    maintenance_excluded: bool  # the ISP's contract setting
    maintenance_s: float  # in maintenance windows this month (excluded or not)
    times: Times
    outages: tuple[Outage, ...]
    latency_s: Samples  # 5-minute median RTTs
    loss_ratio: Samples  # 5-minute loss ratios (buckets with no echo answered are downtime)
    # 95th percentile (nearest rank) of the month's 5-minute buckets of the highest SNMP
    # utilization, max(in, out) bits/s over bandwidth_mbps (netwatch.utilization); None: no
    # bucket, and utilization_missing says why.
    utilization_p95_ratio: float | None
    utilization_missing: Label | None  # why there is no utilization figure
    tickets: tuple[TicketFigures, ...]
    ticket_summary: TicketSummary
    breaches: tuple[Breach, ...]

    @property
    def incidents(self) -> int:
        """Down stretches with time counted in this month."""
        return len(self.outages)


class GroupKind(enum.Enum):
    """What an aggregate groups."""

    ISP = "isp"
    PROVINCE = "province"
    TOTAL = "total"


GROUP_LABELS = {
    GroupKind.ISP: Label("Nhà mạng", "ISP"),
    GroupKind.PROVINCE: Label("Tỉnh", "Province"),
    GroupKind.TOTAL: Label("Tổng cộng", "Total"),
}


@dataclass(frozen=True, slots=True)
class GroupReport:
    """Circuits taken together (an ISP, a province, all): computed from their figures, time-
    weighted (docs/reports.md), never an average of percentages."""

    kind: GroupKind
    key: str  # ISP id, province code, "" for the total
    name: str
    circuits: int
    times: Times
    incidents: int
    latency_s: Samples  # over all the circuits' buckets
    loss_ratio: Samples
    ticket_summary: TicketSummary  # distinct tickets (an upstream outage's counts once)
    circuits_in_breach: int
    breaches: tuple[Breach, ...]


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    """A month's report for some circuits, with its groups and the thresholds it applied."""

    month: Month
    generated_at: datetime
    complete: bool  # the month had ended when the report was made
    province: str | None  # the filters asked for
    isp: str | None
    circuits: tuple[CircuitReport, ...]
    by_isp: tuple[GroupReport, ...]
    by_province: tuple[GroupReport, ...]
    total: GroupReport
    thresholds: tuple[Threshold, ...] = THRESHOLDS
