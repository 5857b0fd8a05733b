"""GET /api/v1/reports/monthly against a real NetWatch: JSON, CSV for Excel, clear refusals.

The month is tests/reports/scenario.py's November, whose every figure tests/reports checks on
both databases; here the API's shape, labels, encoding and errors.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from netwatch.inventory import Inventory, load_inventory
from netwatch.reports import Month
from netwatch.reports.xlsx import MEDIA_TYPE as XLSX_MEDIA_TYPE
from tests.reports.scenario import CONFIG, ENV, A, B, C, write_month
from tests.web.conftest import Server

URL = "/api/v1/reports/monthly"


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    """The scenario's configuration (two provinces, VNPT and Viettel) for the server."""
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_inventory(path, environ=ENV)


@pytest.fixture
def month(server: Server) -> Server:
    """The server with November 2026 written into its store."""
    server.with_store(write_month)
    return server


def test_the_json_report_of_a_month(month: Server) -> None:
    reply = month.client.get(f"{URL}?month=2026-11")
    assert reply.status == 200
    report = reply.json()
    assert report["month"] == "2026-11"
    assert report["start_local"] == "2026-11-01T00:00:00+07:00"
    assert report["end_local"] == "2026-12-01T00:00:00+07:00"
    assert report["complete"] is True
    assert [c["link"] for c in report["circuits"]] == [A, B, C]
    a = report["circuits"][0]
    assert a["circuit"] == "LDG-TSLCD-0001"
    assert a["times"] == {
        "period_s": 2_592_000,
        "excluded_s": 21_600,
        "unknown_s": 21_600,
        "known_s": 2_548_800,
        "down_s": 17_130,
        "degraded_s": 3_600,
        "ok_s": 2_528_070,
        "downtime_min": 285.5,
        "availability_ratio": pytest.approx(1 - 17_130 / 2_548_800, abs=1e-15),
    }
    assert a["incidents"] == 4
    assert a["outages"][0] == {
        "start": "2026-10-31T17:00:00Z",
        "end": "2026-10-31T17:30:00Z",
        "start_local": "2026-11-01T00:00:00+07:00",
        "end_local": "2026-11-01T00:30:00+07:00",
        "counted_s": 1_800,
        "began_before": True,
        "continues_after": False,
    }
    assert a["breaches"] == [
        {
            "figure": "availability",
            "value": pytest.approx(1 - 17_130 / 2_548_800, abs=1e-15),
            "limit": 0.995,
            "label": "Độ khả dụng dưới 99,5 %",
            "source": "QCVN 34:2022/BTTTT",
        }
    ]
    assert a["utilization_p95_ratio"] == 0.19
    assert a["utilization_missing"] is None
    c = report["circuits"][2]
    assert c["utilization_p95_ratio"] is None
    assert c["utilization_missing"].startswith("Không có số liệu: trong tháng không có lần đo SNMP")
    assert [t["id"] for t in a["tickets"]] == ["NW-T1", "NW-T2"]
    assert a["tickets"][0]["time_to_acknowledge_s"] == 1_050
    assert a["tickets"][0]["time_to_restore_s"] == 7_950
    assert [g["key"] for g in report["by_isp"]] == ["viettel", "vnpt"]
    assert [(g["key"], g["name"]) for g in report["by_province"]] == [
        ("68", "Lâm Đồng"),
        ("96", "Cà Mau"),
    ]
    assert report["total"]["times"]["down_s"] == 17_130 + 4_845
    assert report["total"]["ticket_summary"]["count"] == 3
    assert [t["figure"] for t in report["thresholds"]] == [
        "availability",
        "mean_latency",
        "loss",
        "p95_utilization",
    ]

    english = month.client.get(f"{URL}?month=2026-11&lang=en").json()
    assert english["circuits"][0]["breaches"][0]["label"] == "Availability below 99.5 %"
    assert english["lang"] == "en"


def test_the_csv_report_opens_in_excel_with_vietnamese_intact(month: Server) -> None:
    reply = month.client.get(f"{URL}?month=2026-11&province=68&isp=vnpt&format=csv")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"] == (
        'attachment; filename="netwatch-2026-11-68-vnpt.csv"'
    )
    assert reply.text.startswith("\ufeff")  # the byte order mark Excel needs
    rows = list(csv.reader(io.StringIO(reply.text.removeprefix("\ufeff"))))
    header = rows[0]
    assert header[:5] == ["Phạm vi", "Mã tỉnh", "Tỉnh", "Mã nhà mạng", "Nhà mạng"]
    table = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert [r["Phạm vi"] for r in table] == ["Mạch", "Nhà mạng", "Tỉnh", "Tổng cộng"]
    circuit = table[0]
    assert circuit["Xã"] == "Xã Lạc Dương"
    assert circuit["Mã mạch"] == "LDG-TSLCD-0001"
    assert circuit["Trừ thời gian bảo trì"] == "có"
    assert circuit["Mất kết nối (giây)"] == "17130"
    assert circuit["Không rõ trạng thái (giây)"] == "21600"
    assert circuit["Thời gian mất kết nối (phút)"] == "285.50"
    assert circuit["Độ khả dụng (%)"] == "99.3279"
    assert circuit["Số sự cố"] == "4"
    assert circuit["Độ trễ trung bình (ms)"] == "36.0"
    assert circuit["Độ trễ p95 (ms)"] == "30.0"
    assert circuit["Tỷ lệ mất gói (%)"] == "0.50"
    assert circuit["Mức sử dụng p95 (%)"] == "19.0"
    assert circuit["Ghi chú mức sử dụng"] == ""
    assert circuit["Thời gian khắc phục TB (phút)"] == "93.75"
    assert circuit["Vi phạm"] == "Độ khả dụng dưới 99,5 %"
    assert table[1]["Nhà mạng"] == "VNPT"
    assert table[2]["Tỉnh"] == "Lâm Đồng"

    english = month.client.get(f"{URL}?month=2026-11&format=csv&lang=en")
    header = next(csv.reader(io.StringIO(english.text.removeprefix("\ufeff"))))
    assert header[:3] == ["Scope", "Province code", "Province"]


def test_the_xlsx_report_is_a_workbook_with_numbers_as_numbers(month: Server) -> None:
    bearer = {"Authorization": f"Bearer {month.client.api_token}"}
    with month.browser() as http:
        reply = http.get(f"{URL}?month=2026-11&isp=vnpt&format=xlsx", headers=bearer)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == XLSX_MEDIA_TYPE
    assert reply.headers["content-disposition"] == (
        'attachment; filename="netwatch-2026-11-vnpt.xlsx"'
    )
    book = load_workbook(io.BytesIO(reply.content))
    assert book.sheetnames[:4] == ["Mạch", "Nhà mạng", "Tỉnh", "Tổng cộng"]
    header = [c.value for c in book["Mạch"][1]]
    first = dict(zip(header, [c.value for c in book["Mạch"][2]], strict=True))
    assert first["Mã mạch"] == "LDG-TSLCD-0001"
    assert first["Mất kết nối (giây)"] == 17_130
    assert first["Độ khả dụng (%)"] == pytest.approx(1 - 17_130 / 2_548_800, abs=1e-12)


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ("month=2026-13", 422, "month: '2026-13' is not a month written YYYY-MM, e.g. 2026-11"),
        ("month=november", 422, "month: 'november' is not a month written YYYY-MM, e.g. 2026-11"),
        ("month=0001-01", 422, "month: '0001-01' is outside 1976-01 to 8998-12"),
        (
            "month=2026-11&province=Lâm Đồng",
            422,
            "province: 'Lâm Đồng' is not an official province code (digits, e.g. 68)",
        ),
        (
            "month=2026-11&province=1",
            404,
            "province 01 has no commune monitored by this NetWatch (provinces: 68, 96)",
        ),
        (
            "month=2026-11&province=01&isp=vnpt",
            404,
            "province 01 has no commune monitored by this NetWatch (provinces: 68, 96)",
        ),
        (
            "month=2026-11&isp=fpt",
            404,
            "ISP 'fpt' has no circuit monitored here (ISPs: viettel, vnpt)",
        ),
        (
            "month=2026-11&province=96&isp=viettel",
            404,
            "ISP 'viettel' has no circuit monitored here in province 96 (ISPs: viettel, vnpt)",
        ),
    ],
)
def test_bad_requests_get_clear_4xx(server: Server, query: str, status: int, detail: str) -> None:
    reply = server.client.get(f"{URL}?{query}")
    assert (reply.status, reply.json()["detail"]) == (status, detail)


def test_a_month_not_begun_is_refused_and_the_default_is_last_month(server: Server) -> None:
    now = datetime.now(UTC)
    coming = Month.of(now).next()
    reply = server.client.get(f"{URL}?month={coming}")
    assert (reply.status, reply.json()["detail"]) == (
        422,
        f"{coming} has not begun yet: a report covers a past or the current month",
    )
    assert server.client.get(f"{URL}?format=xml").status == 422
    default = server.client.get(URL).json()
    assert default["month"] == str(Month.of(now).previous())
    current = server.client.get(f"{URL}?month={Month.of(now)}").json()
    assert current["complete"] is False


def test_the_buckets_are_kept_as_long_as_the_config_says(server: Server) -> None:
    # reports.history_days' default: a month of latency stays for the report of the 1st.
    assert server.runtime.history.retention_s == 62 * 86_400


def test_the_report_is_in_the_openapi_document(server: Server) -> None:
    doc = server.client.get("/openapi.json").json()
    operation = doc["paths"][URL]["get"]
    assert operation["tags"] == ["reports"]
    assert {p["name"] for p in operation["parameters"]} == {
        "month",
        "province",
        "isp",
        "format",
        "lang",
    }
