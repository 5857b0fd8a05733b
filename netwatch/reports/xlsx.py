"""The report as an Excel workbook (openpyxl): typed cells from the same columns as the CSV.

A CSV file carries numbers as text with a dot, which Excel under Vietnamese regional settings
(a comma as the decimal mark) reads as text or as wrong numbers; a workbook carries numbers as
numbers, percentages as percentages and moments as dates, whatever the reader's settings. One
sheet per level (circuits, ISPs, provinces, the total), one of the month's tickets with their
times, and one saying what the report covers; headers in the report's language, the header row
frozen, columns sized to their contents.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from netwatch.inventory.models import LOCAL_TZ
from netwatch.reports.model import GROUP_LABELS, GroupKind, Label, Lang, MonthlyReport
from netwatch.reports.table import COLUMNS, XLSX_MEDIA_TYPE, Cell, Column, Row

MEDIA_TYPE = XLSX_MEDIA_TYPE
DATE_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
MAX_WIDTH = 48  # characters: a long note wraps instead of widening its column without end

CIRCUITS_SHEET = Label("Mạch", "Circuits")
TICKETS_SHEET = Label("Phiếu sự cố", "Tickets")
ABOUT_SHEET = Label("Thông tin", "About")

# Columns about one circuit: left out of the group sheets, where they would stay empty.
_CIRCUIT_ONLY = {
    "commune",
    "commune_name",
    "link",
    "circuit",
    "bandwidth_mbps",
    "maintenance_excluded",
    "maintenance_s",
    "utilization_p95_pct",
    "utilization_note",
}
_GROUP_KEYS = {
    GroupKind.ISP: ("isp", "isp_name"),
    GroupKind.PROVINCE: ("province", "province_name"),
    GroupKind.TOTAL: (),
}
_PLACE_COLUMNS = {"province", "province_name", "isp", "isp_name"}


def _columns_for(kind: GroupKind | None) -> list[Column]:
    """The columns of a sheet: a circuit's all but scope and count; a group's its key and its
    figures."""
    if kind is None:
        return [c for c in COLUMNS if c.name not in {"scope", "circuits"}]
    keys = _GROUP_KEYS[kind]
    return [
        c
        for c in COLUMNS
        if c.name != "scope"
        and c.name not in _CIRCUIT_ONLY
        and (c.name not in _PLACE_COLUMNS or c.name in keys)
    ]


def _number_format(column: Column) -> str | None:
    """Excel's format for a column's numbers (None: text or a whole count)."""
    if column.name.endswith("_pct"):
        return "0.00%" if column.name != "availability_pct" else "0.0000%"
    if column.decimals is None:
        return "0"
    if column.decimals == 0:
        return "#,##0"
    return "#,##0." + "0" * column.decimals


def _value(column: Column, cell: Cell) -> Cell:
    """A percentage column holds percent in the table; Excel wants the ratio and a % format."""
    if column.name.endswith("_pct") and isinstance(cell, int | float):
        return cell / 100.0
    return cell


def _local(at: datetime | None) -> datetime | None:
    """Excel has no time zones: a moment is written as Vietnam's wall-clock time."""
    return None if at is None else at.astimezone(LOCAL_TZ).replace(tzinfo=None)


def _size(sheet: Worksheet, widths: Sequence[int]) -> None:
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, max(8, width + 2))


def _header(sheet: Worksheet, labels: Sequence[str]) -> list[int]:
    sheet.append(list(labels))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"  # the header stays in view while scrolling
    return [min(len(label), 24) for label in labels]


def _table_sheet(
    sheet: Worksheet, columns: Sequence[Column], rows: Sequence[Row], lang: Lang
) -> None:
    widths = _header(sheet, [c.label.text(lang) for c in columns])
    for row in rows:
        values = [_value(c, c.cell(row, lang)) for c in columns]
        sheet.append(values)
        for i, (column, value) in enumerate(zip(columns, values, strict=True)):
            cell = sheet.cell(row=sheet.max_row, column=i + 1)
            if isinstance(value, int | float) and not isinstance(value, bool):
                number_format = _number_format(column)
                if number_format is not None:
                    cell.number_format = number_format
                shown = len(f"{value:,.{column.decimals or 0}f}") + 1
            else:
                shown = len(str(value)) if value is not None else 0
            widths[i] = max(widths[i], shown)
    _size(sheet, widths)


_TICKET_HEADERS = (
    Label("Mã phiếu", "Ticket"),
    Label("Loại", "Kind"),
    Label("Trạng thái", "Status"),
    Label("Đường truyền", "Link"),
    Label("Mã mạch", "Circuit id"),
    Label("Nhà mạng", "ISP"),
    Label("Mở lúc", "Opened"),
    Label("Tiếp nhận lúc", "Acknowledged"),
    Label("Khắc phục lúc", "Restored"),
    Label("Đóng lúc", "Resolved"),
    Label("Thời gian tiếp nhận (phút)", "Time to acknowledge (min)"),
    Label("Thời gian khắc phục (phút)", "Time to restore (min)"),
)


def _tickets_sheet(sheet: Worksheet, report: MonthlyReport, lang: Lang) -> None:
    widths = _header(sheet, [h.text(lang) for h in _TICKET_HEADERS])
    for c in report.circuits:
        for t in c.tickets:
            tta, ttr = t.time_to_acknowledge_s, t.time_to_restore_s
            sheet.append(
                [
                    t.id,
                    t.kind,
                    t.status,
                    c.link,
                    c.circuit,
                    c.isp_name,
                    _local(t.opened_at),
                    _local(t.acknowledged_at),
                    _local(t.restored_at),
                    _local(t.resolved_at),
                    None if tta is None else tta / 60.0,
                    None if ttr is None else ttr / 60.0,
                ]
            )
            row = sheet[sheet.max_row]
            for cell in row[6:10]:
                cell.number_format = DATE_TIME_FORMAT
            for cell in row[10:12]:
                cell.number_format = "#,##0.00"
            for i, value in enumerate(row[:6]):
                widths[i] = max(widths[i], len(str(value.value or "")))
            for i in range(6, 10):
                widths[i] = max(widths[i], len("2026-11-30 23:59:59"))
    _size(sheet, widths)


_ABOUT = (
    Label("Tháng", "Month"),
    Label("Từ", "From"),
    Label("Đến (không kể)", "To (excluded)"),
    Label("Lập lúc (giờ Việt Nam)", "Generated at (Vietnam time)"),
    Label("Tháng đã kết thúc", "Month complete"),
    Label("Tỉnh", "Province"),
    Label("Nhà mạng", "ISP"),
)


def _about_sheet(sheet: Worksheet, report: MonthlyReport, lang: Lang) -> None:
    yes, no = Label("có", "yes"), Label("không", "no")
    every = Label("tất cả", "all")
    values: list[object] = [
        str(report.month),
        report.month.start.date(),
        report.month.end.date(),
        _local(report.generated_at),
        (yes if report.complete else no).text(lang),
        report.province or every.text(lang),
        report.isp or every.text(lang),
    ]
    _header(sheet, [Label("Mục", "Item").text(lang), Label("Giá trị", "Value").text(lang)])
    for label, value in zip(_ABOUT, values, strict=True):
        sheet.append([label.text(lang), value])
    for row in sheet.iter_rows(min_row=3, max_row=4, min_col=2, max_col=2):
        row[0].number_format = DATE_FORMAT
    sheet.cell(row=5, column=2).number_format = DATE_TIME_FORMAT
    sheet.append([])
    sheet.append([Label("Ngưỡng", "Threshold").text(lang), Label("Nguồn", "Source").text(lang)])
    for threshold in report.thresholds:
        sheet.append([threshold.label.text(lang), threshold.source.text(lang)])
    _size(sheet, [40, 40])


def report_xlsx(report: MonthlyReport, lang: Lang = Lang.VI) -> bytes:
    """The workbook's bytes: circuits, ISPs, provinces, total, tickets, about."""
    book = Workbook()
    first = book.active
    assert first is not None  # a new workbook has one sheet
    first.title = CIRCUITS_SHEET.text(lang)
    _table_sheet(first, _columns_for(None), report.circuits, lang)
    for kind, rows in (
        (GroupKind.ISP, report.by_isp),
        (GroupKind.PROVINCE, report.by_province),
        (GroupKind.TOTAL, (report.total,)),
    ):
        sheet = book.create_sheet(GROUP_LABELS[kind].text(lang))
        _table_sheet(sheet, _columns_for(kind), rows, lang)
    _tickets_sheet(book.create_sheet(TICKETS_SHEET.text(lang)), report, lang)
    _about_sheet(book.create_sheet(ABOUT_SHEET.text(lang)), report, lang)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
