"""The report as an XLSX workbook, read back with openpyxl: sheets, typed cells, formats, the
frozen header, Vietnamese (or English) headers, figures equal to the computed report's."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from netwatch.inventory import Inventory, load_inventory
from netwatch.reports import Lang, Month, MonthlyReport, monthly_report
from netwatch.reports.xlsx import report_xlsx
from netwatch.store import Store
from netwatch.store.rollups import Rollups
from tests.reports.scenario import CONFIG, ENV, NOW, A, B, C, nov, write_month


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_inventory(path, environ=ENV)


async def _november(store: Store, inventory: Inventory) -> MonthlyReport:
    await write_month(store)
    return await monthly_report(store, Rollups(store), inventory, Month(2026, 11), NOW)


def _wall(at: datetime) -> datetime:
    """A local moment as Excel keeps it: wall-clock time without a zone."""
    return at.replace(tzinfo=None)


def _records(sheet: Worksheet) -> list[dict[str, object]]:
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def _cell(sheet: Worksheet, row: int, header: str) -> object:
    """The cell object (with its number format) under a header, in a data row (1 = first)."""
    names = [c.value for c in sheet[1]]
    return sheet.cell(row=row + 1, column=names.index(header) + 1)


async def test_the_workbook_has_typed_cells_in_vietnamese(
    store: Store, inventory: Inventory
) -> None:
    report = await _november(store, inventory)
    book = load_workbook(io.BytesIO(report_xlsx(report)))
    assert book.sheetnames == ["Mạch", "Nhà mạng", "Tỉnh", "Tổng cộng", "Phiếu sự cố", "Thông tin"]
    circuits = book["Mạch"]
    assert circuits.freeze_panes == "A2"
    rows = _records(circuits)
    assert [r["Đường truyền"] for r in rows] == [A.split("/")[1], B.split("/")[1], "vnpt"]
    a = rows[0]
    assert a["Mã mạch"] == "LDG-TSLCD-0001"
    assert a["Xã"] == "Xã Lạc Dương"
    assert a["Mất kết nối (giây)"] == 17_130
    assert a["Thời gian đo được (giây)"] == 2_548_800
    assert a["Số sự cố"] == 4
    # A ratio with a percent format: Excel shows 99.3279 % whatever the regional settings.
    assert a["Độ khả dụng (%)"] == pytest.approx(1 - 17_130 / 2_548_800, abs=1e-12)
    availability = _cell(circuits, 1, "Độ khả dụng (%)")
    assert availability.number_format == "0.0000%"  # type: ignore[attr-defined]
    assert availability.data_type == "n"  # type: ignore[attr-defined]
    assert a["Độ trễ trung bình (ms)"] == pytest.approx(36.0)
    assert _cell(circuits, 1, "Độ trễ trung bình (ms)").number_format == "#,##0.0"  # type: ignore[attr-defined]
    assert _cell(circuits, 1, "Mất kết nối (giây)").number_format == "#,##0"  # type: ignore[attr-defined]
    assert a["Vi phạm"] == "Độ khả dụng dưới 99,5 %"
    assert rows[2]["Mã mạch"] == "CMU-0007"
    assert rows[2]["Độ khả dụng (%)"] == 1.0
    assert "Phạm vi" not in rows[0]  # every row of this sheet is a circuit
    assert circuits.column_dimensions["A"].width >= 8

    isps = _records(book["Nhà mạng"])
    assert [(r["Mã nhà mạng"], r["Số mạch"]) for r in isps] == [("viettel", 1), ("vnpt", 2)]
    vnpt = isps[1]
    assert vnpt["Mất kết nối (giây)"] == 17_130
    assert vnpt["Độ khả dụng (%)"] == pytest.approx(1 - 17_130 / 3_844_800, abs=1e-12)
    assert "Mã xã" not in vnpt
    assert "Mã tỉnh" not in vnpt
    provinces = _records(book["Tỉnh"])
    assert [(r["Mã tỉnh"], r["Tỉnh"]) for r in provinces] == [("68", "Lâm Đồng"), ("96", "Cà Mau")]
    (total,) = _records(book["Tổng cộng"])
    assert total["Mất kết nối (giây)"] == 17_130 + 4_845
    assert total["Số phiếu sự cố"] == 3

    tickets = book["Phiếu sự cố"]
    listed = _records(tickets)
    assert [t["Mã phiếu"] for t in listed] == ["NW-T1", "NW-T2", "NW-T2", "NW-T4"]
    t1 = listed[0]
    # Dates as dates, in Vietnam's wall-clock time (Excel has no time zones).
    assert t1["Mở lúc"] == _wall(nov(5, 10, 3))
    assert t1["Tiếp nhận lúc"] == _wall(nov(5, 10, 20, 30))
    assert t1["Thời gian tiếp nhận (phút)"] == pytest.approx(17.5)
    assert _cell(tickets, 1, "Mở lúc").number_format == "yyyy-mm-dd hh:mm:ss"  # type: ignore[attr-defined]
    assert tickets.freeze_panes == "A2"

    about = {r["Mục"]: r["Giá trị"] for r in _records(book["Thông tin"]) if r["Mục"]}
    assert about["Tháng"] == "2026-11"
    assert about["Từ"] == _wall(nov(1))  # openpyxl reads a date cell back as datetime
    assert about["Lập lúc (giờ Việt Nam)"] == _wall(NOW)
    assert isinstance(about["Đến (không kể)"], date)


async def test_the_workbook_in_english(store: Store, inventory: Inventory) -> None:
    report = await _november(store, inventory)
    book = load_workbook(io.BytesIO(report_xlsx(report, Lang.EN)))
    assert book.sheetnames == ["Circuits", "ISP", "Province", "Total", "Tickets", "About"]
    rows = _records(book["Circuits"])
    assert rows[0]["Circuit id"] == "LDG-TSLCD-0001"
    assert rows[0]["Breaches"] == "Availability below 99.5 %"
    assert [r["Link"] for r in rows] == ["vnpt-tslcd", "viettel-inet", "vnpt"]
    assert C.endswith(rows[2]["Link"])  # type: ignore[arg-type]
