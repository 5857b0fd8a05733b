"""The report as one table (a row per circuit, then per ISP, per province, and the total), and
as CSV. The columns carry typed cells so the XLSX file (a later step) writes numbers as numbers
from the same table; CSV formats them with a dot as the decimal mark.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from netwatch.inventory.models import LOCAL_TZ
from netwatch.reports.model import (
    GROUP_LABELS,
    Breach,
    CircuitReport,
    GroupReport,
    Label,
    Lang,
    MonthlyReport,
    Samples,
    TicketSummary,
    Times,
)

Cell = str | float | int | None
Row = CircuitReport | GroupReport
# Excel reads a CSV file as UTF-8 only when it starts with a byte order mark; without it the
# Vietnamese diacritics come out as mojibake.
BOM = "\ufeff"
# The XLSX file's type (netwatch.reports.xlsx, imported only when a workbook is made: openpyxl
# costs every process ~5 MB of RSS, issue 10).
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CIRCUIT_LABEL = Label("Mạch", "Circuit")
YES = Label("có", "yes")
NO = Label("không", "no")


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its name (stable, for programs), label and the cell of a row."""

    name: str
    label: Label
    cell: Callable[[Row, Lang], Cell]
    decimals: int | None = None  # CSV: a number is written with this many decimals


def _times(row: Row) -> Times:
    return row.times


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else ratio * 100.0


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _min(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60.0


def _circuit(get: Callable[[CircuitReport], Cell]) -> Callable[[Row, Lang], Cell]:
    return lambda row, lang: get(row) if isinstance(row, CircuitReport) else None


def _scope(row: Row, lang: Lang) -> str:
    if isinstance(row, CircuitReport):
        return CIRCUIT_LABEL.text(lang)
    return GROUP_LABELS[row.kind].text(lang)


def _province(row: Row, lang: Lang) -> Cell:
    if isinstance(row, CircuitReport):
        return row.province
    return row.key if row.kind.value == "province" else None


def _province_name(row: Row, lang: Lang) -> Cell:
    if isinstance(row, CircuitReport):
        return row.province_name
    return row.name if row.kind.value == "province" else None


def _isp(row: Row, lang: Lang) -> Cell:
    if isinstance(row, CircuitReport):
        return row.isp
    return row.key if row.kind.value == "isp" else None


def _isp_name(row: Row, lang: Lang) -> Cell:
    if isinstance(row, CircuitReport):
        return row.isp_name
    return row.name if row.kind.value == "isp" else None


def _latency(row: Row) -> Samples:
    return row.latency_s


def _loss(row: Row) -> Samples:
    return row.loss_ratio


def _tickets(row: Row) -> TicketSummary:
    return row.ticket_summary


def _incidents(row: Row) -> int:
    return row.incidents


def _breaches(row: Row, lang: Lang) -> str:
    found: tuple[Breach, ...] = row.breaches
    return "; ".join(b.threshold.label.text(lang) for b in found)


def _utilization(row: Row, lang: Lang) -> Cell:
    if not isinstance(row, CircuitReport):
        return None
    if row.utilization_p95_ratio is not None:
        return row.utilization_p95_ratio * 100.0
    return None


def _utilization_note(row: Row, lang: Lang) -> Cell:
    if isinstance(row, CircuitReport) and row.utilization_missing is not None:
        return row.utilization_missing.text(lang)
    return None


COLUMNS: tuple[Column, ...] = (
    Column("scope", Label("Phạm vi", "Scope"), _scope),
    Column("province", Label("Mã tỉnh", "Province code"), _province),
    Column("province_name", Label("Tỉnh", "Province"), _province_name),
    Column("isp", Label("Mã nhà mạng", "ISP id"), _isp),
    Column("isp_name", Label("Nhà mạng", "ISP"), _isp_name),
    Column("commune", Label("Mã xã", "Commune code"), _circuit(lambda r: r.commune)),
    Column("commune_name", Label("Xã", "Commune"), _circuit(lambda r: r.commune_name)),
    Column("link", Label("Đường truyền", "Link"), _circuit(lambda r: r.link_id)),
    Column("circuit", Label("Mã mạch", "Circuit id"), _circuit(lambda r: r.circuit)),
    Column(
        "bandwidth_mbps",
        Label("Băng thông hợp đồng (Mbit/s)", "Contracted bandwidth (Mbit/s)"),
        _circuit(lambda r: r.bandwidth_mbps),
        decimals=1,
    ),
    Column(
        "circuits",
        Label("Số mạch", "Circuits"),
        lambda r, lang: r.circuits if isinstance(r, GroupReport) else 1,
    ),
    Column(
        "maintenance_excluded",
        Label("Trừ thời gian bảo trì", "Maintenance excluded"),
        lambda r, lang: (
            (YES if r.maintenance_excluded else NO).text(lang)
            if isinstance(r, CircuitReport)
            else None
        ),
    ),
    Column(
        "maintenance_s",
        Label("Thời gian bảo trì (giây)", "Maintenance (s)"),
        _circuit(lambda r: r.maintenance_s),
        decimals=0,
    ),
    Column(
        "period_s",
        Label("Thời gian tháng (giây)", "Period (s)"),
        lambda r, lang: _times(r).period_s,
        0,
    ),
    Column(
        "excluded_s",
        Label("Thời gian loại trừ (giây)", "Excluded (s)"),
        lambda r, lang: _times(r).excluded_s,
        0,
    ),
    Column(
        "unknown_s",
        Label("Không rõ trạng thái (giây)", "Unknown (s)"),
        lambda r, lang: _times(r).unknown_s,
        0,
    ),
    Column(
        "known_s",
        Label("Thời gian đo được (giây)", "Known (s)"),
        lambda r, lang: _times(r).known_s,
        0,
    ),
    Column("down_s", Label("Mất kết nối (giây)", "Down (s)"), lambda r, lang: _times(r).down_s, 0),
    Column(
        "degraded_s",
        Label("Suy giảm chất lượng (giây)", "Degraded (s)"),
        lambda r, lang: _times(r).degraded_s,
        0,
    ),
    Column(
        "downtime_min",
        Label("Thời gian mất kết nối (phút)", "Downtime (min)"),
        lambda r, lang: _times(r).downtime_min,
        2,
    ),
    Column(
        "availability_pct",
        Label("Độ khả dụng (%)", "Availability (%)"),
        lambda r, lang: _pct(_times(r).availability_ratio),
        4,
    ),
    Column("incidents", Label("Số sự cố", "Incidents"), lambda r, lang: _incidents(r)),
    Column(
        "latency_mean_ms",
        Label("Độ trễ trung bình (ms)", "Mean latency (ms)"),
        lambda r, lang: _ms(_latency(r).mean),
        1,
    ),
    Column(
        "latency_p95_ms",
        Label("Độ trễ p95 (ms)", "p95 latency (ms)"),
        lambda r, lang: _ms(_latency(r).p95),
        1,
    ),
    Column(
        "latency_buckets",
        Label("Số mẫu 5 phút (độ trễ)", "5-minute samples (latency)"),
        lambda r, lang: _latency(r).count,
    ),
    Column(
        "loss_pct",
        Label("Tỷ lệ mất gói (%)", "Packet loss (%)"),
        lambda r, lang: _pct(_loss(r).mean),
        2,
    ),
    Column(
        "utilization_p95_pct",
        Label("Mức sử dụng p95 (%)", "p95 utilization (%)"),
        _utilization,
        1,
    ),
    Column("utilization_note", Label("Ghi chú mức sử dụng", "Utilization note"), _utilization_note),
    Column("tickets", Label("Số phiếu sự cố", "Tickets"), lambda r, lang: _tickets(r).count),
    Column(
        "tickets_acknowledged",
        Label("Phiếu đã tiếp nhận", "Tickets acknowledged"),
        lambda r, lang: _tickets(r).acknowledged,
    ),
    Column(
        "mean_time_to_acknowledge_min",
        Label("Thời gian tiếp nhận TB (phút)", "Mean time to acknowledge (min)"),
        lambda r, lang: _min(_tickets(r).mean_time_to_acknowledge_s),
        2,
    ),
    Column(
        "max_time_to_acknowledge_min",
        Label("Thời gian tiếp nhận lâu nhất (phút)", "Longest time to acknowledge (min)"),
        lambda r, lang: _min(_tickets(r).max_time_to_acknowledge_s),
        2,
    ),
    Column(
        "mean_time_to_restore_min",
        Label("Thời gian khắc phục TB (phút)", "Mean time to restore (min)"),
        lambda r, lang: _min(_tickets(r).mean_time_to_restore_s),
        2,
    ),
    Column(
        "max_time_to_restore_min",
        Label("Thời gian khắc phục lâu nhất (phút)", "Longest time to restore (min)"),
        lambda r, lang: _min(_tickets(r).max_time_to_restore_s),
        2,
    ),
    Column("breaches", Label("Vi phạm", "Breaches"), _breaches),
)


def rows_of(report: MonthlyReport) -> list[Row]:
    """The table's rows: circuits, then ISPs, provinces, and the total."""
    return [*report.circuits, *report.by_isp, *report.by_province, report.total]


def table(report: MonthlyReport, lang: Lang) -> tuple[list[str], list[list[Cell]]]:
    """The header (labels in `lang`) and typed cells of every row."""
    header = [c.label.text(lang) for c in COLUMNS]
    return header, [[c.cell(row, lang) for c in COLUMNS] for row in rows_of(report)]


def _text(value: Cell, decimals: int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and decimals is not None:
        return f"{value:.{decimals}f}"
    return str(value)


def local_text(at: datetime) -> str:
    """A moment as people read it: local time, to the second."""
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def report_csv(report: MonthlyReport, lang: Lang = Lang.VI) -> bytes:
    """The table as CSV in UTF-8 with a byte order mark (Excel then reads Vietnamese right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header, rows = table(report, lang)
    writer.writerow(header)
    for row in rows:
        writer.writerow(_text(v, c.decimals) for v, c in zip(row, COLUMNS, strict=True))
    return (BOM + out.getvalue()).encode("utf-8")
