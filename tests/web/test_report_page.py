"""The monthly report in the provincial IT view (/admin/reports/monthly) against a real
NetWatch holding tests/reports/scenario.py's November: the page (Vietnamese first, English),
its breach marks, summaries and print stylesheet, the CSV, XLSX and PDF files, refusals."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from netwatch.inventory import Inventory, load_inventory
from netwatch.reports import Month, monthly_report
from netwatch.reports.pdf import print_pdf
from netwatch.reports.xlsx import MEDIA_TYPE as XLSX_MEDIA_TYPE
from netwatch.store.rollups import Rollups
from netwatch.web.monthly.page import print_html
from tests.reports.scenario import CONFIG, ENV, NOW, write_month
from tests.web.conftest import Server, admin_login

PAGE = "/admin/reports/monthly"


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


@pytest.fixture
def it_staff(month: Server) -> Iterator[httpx.Client]:
    """Provincial IT, logged in."""
    issued = month.with_store(lambda s: s.create_token("cntt", ["write"], datetime.now(UTC)))
    with month.browser(follow_redirects=False) as client:
        assert admin_login(client, issued.token, PAGE).status_code == 303
        yield client


def _text(html: str) -> str:
    """The page's text, tags dropped (cells joined by a space)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_page_needs_a_login(month: Server) -> None:
    with month.browser(follow_redirects=False) as anonymous:
        reply = anonymous.get(f"{PAGE}?month=2026-11")
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/admin/login?next=")


def test_the_report_page_shows_summaries_circuits_and_marked_breaches(
    it_staff: httpx.Client,
) -> None:
    reply = it_staff.get(f"{PAGE}?month=2026-11")
    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "no-store"
    html = reply.text
    text = _text(html)
    assert "<h1>Báo cáo tháng 11/2026</h1>" in html
    assert "Từ 00:00 ngày 01/11/2026 đến 00:00 ngày 01/12/2026 (giờ Việt Nam)" in text
    # The navigation names the page as current.
    assert 'href="/admin/reports/monthly" aria-current="page"' in html
    # The month form, with the month chosen and the configuration's provinces and ISPs.
    assert 'type="month" id="month" name="month" required value="2026-11"' in html
    assert '<option value="68">Lâm Đồng (68)</option>' in html
    assert '<option value="vnpt">VNPT</option>' in html
    # Downloads.
    for fmt in ("csv", "xlsx", "pdf"):
        assert f'href="{PAGE}?month=2026-11&amp;format={fmt}&amp;lang=vi"' in html
    # Thresholds and their sources.
    assert "Độ khả dụng dưới 99,5 % (QCVN 34:2022/BTTTT)" in text
    # Circuit A breaks availability: marked with ⚠ (text, not colour only) and named.
    row_a = re.search(r"<tr>(?:(?!</tr>).)*LDG-TSLCD-0001(?:(?!</tr>).)*</tr>", html)
    assert row_a is not None
    a = _text(row_a.group(0))
    assert '<span class="breach">⚠ 99,328 %</span>' in row_a.group(0)
    assert "285,5" in a  # downtime minutes
    assert "36,0 / 30,0" in a  # latency mean / p95 ms
    assert "Độ khả dụng dưới 99,5 %" in a
    # Circuit B: mean latency 64 ms breaks 50 ms; loss 2.5 % breaks 2 %.
    row_b = re.search(r"<tr>(?:(?!</tr>).)*VTL-INET-0042(?:(?!</tr>).)*</tr>", html)
    assert row_b is not None
    assert '<span class="breach">⚠ 64,0 / 100,0</span>' in row_b.group(0)
    assert '<span class="breach">⚠ 2,50 %</span>' in row_b.group(0)
    # And its p95 utilization is exactly the 85 % threshold, which it breaks (>=); A's 19 % not.
    assert '<span class="breach">⚠ 85,0 %</span>' in row_b.group(0)
    assert "Mức sử dụng (p95) từ 85 % băng thông hợp đồng trở lên" in _text(row_b.group(0))
    assert '<td class="num">19,0 %</td>' in row_a.group(0)
    # C breaks nothing: no mark in its row.
    row_c = re.search(r"<tr>(?:(?!</tr>).)*CMU-0007(?:(?!</tr>).)*</tr>", html)
    assert row_c is not None
    assert "⚠" not in row_c.group(0)
    assert "100,000 %" in row_c.group(0)
    assert '<td class="num">—</td>' in row_c.group(0)  # no utilization bucket
    # Summaries: VNPT time-weighted 99.554 % (not the average of its circuits' percentages),
    # within the threshold, so unmarked; Lâm Đồng's 99.57 % too.
    assert '<th scope="row">VNPT</th><td class="num">2</td><td class="num">99,554 %</td>' in html
    assert "Theo nhà mạng" in text
    assert "Theo tỉnh" in text
    assert "Cà Mau" in text
    # Each ISP's section, with its tickets at Vietnam times (an upstream one listed once).
    assert "Các mạch của VNPT" in text
    assert "Phiếu sự cố của Viettel" in text
    assert "10:03 05/11/2026" in text  # NW-T1 opened, local time
    assert html.count('<th scope="row">NW-T2</th>') == 2  # once for VNPT, once for Viettel
    # Print: A4 landscape, headers on each page, a page per ISP, no navigation.
    assert "@page{size:A4 landscape" in html
    assert "thead{display:table-header-group}" in html
    assert "section.isp{break-before:page}" in html
    assert "header.site,nav" in html


def test_filters_and_english(it_staff: httpx.Client) -> None:
    reply = it_staff.get(f"{PAGE}?month=2026-11&province=68&isp=viettel&lang=en")
    assert reply.status_code == 200
    text = _text(reply.text)
    assert "Monthly report 11/2026" in text
    assert "Scope: Lâm Đồng, Viettel." in text
    assert "VTL-INET-0042" in text
    assert "LDG-TSLCD-0001" not in text
    assert "⚠ 64.0 / 100.0" in text
    assert "Mean latency above 50 ms" in text
    # The form's "all" choice sends empty fields: the whole report.
    everything = it_staff.get(f"{PAGE}?month=2026-11&province=&isp=")
    assert "LDG-TSLCD-0001" in everything.text
    assert "CMU-0007" in everything.text


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("month=2026-13", 422, "“2026-13” không phải là một tháng viết dạng YYYY-MM"),
        ("month=2026-11&province=Lâm", 422, "“Lâm” không phải là mã tỉnh"),
        ("month=2026-11&isp=fpt", 404, "ISP &#39;fpt&#39; has no circuit monitored here"),
        ("month=2999-01", 422, "Tháng 2999-01 chưa bắt đầu"),
        ("month=2026-11&format=doc", 422, "Định dạng “doc” không có"),
    ],
)
def test_bad_choices_get_a_page_saying_what_is_wrong(
    it_staff: httpx.Client, query: str, status: int, words: str
) -> None:
    reply = it_staff.get(f"{PAGE}?{query}")
    assert reply.status_code == status
    assert words in reply.text


def test_the_files_from_the_page(it_staff: httpx.Client) -> None:
    csv_reply = it_staff.get(f"{PAGE}?month=2026-11&isp=vnpt&format=csv")
    assert csv_reply.status_code == 200
    assert csv_reply.headers["content-disposition"] == (
        'attachment; filename="netwatch-2026-11-vnpt.csv"'
    )
    assert "LDG-TSLCD-0001" in csv_reply.content.decode("utf-8-sig")
    xlsx_reply = it_staff.get(f"{PAGE}?month=2026-11&format=xlsx&lang=en")
    assert xlsx_reply.headers["content-type"] == XLSX_MEDIA_TYPE
    book = load_workbook(io.BytesIO(xlsx_reply.content))
    assert book.sheetnames[0] == "Circuits"


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium package is not installed"
)


@needs_chromium
def test_the_pdf_is_the_printed_page(it_staff: httpx.Client) -> None:
    reply = it_staff.get(f"{PAGE}?month=2026-11&format=pdf", timeout=120)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/pdf"
    assert reply.headers["content-disposition"] == 'attachment; filename="netwatch-2026-11.pdf"'
    pdf = reply.content
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    # Summaries on one or two pages, then a page (or more) for each of the two ISPs.
    assert 3 <= pages <= 6, pages
    # A4 landscape: 842 x 595 points.
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert box is not None
    width, height = float(box.group(1)), float(box.group(2))
    assert (round(width), round(height)) == (842, 595)


@needs_chromium
def test_the_printed_html_has_the_circuits_and_figures(month: Server) -> None:
    """What Chromium prints (pdftotext is not on these machines, so the HTML is checked)."""
    report = month.with_store(
        lambda s: monthly_report(s, Rollups(s), month.inventory, Month(2026, 11), NOW)
    )
    html = print_html(report, "vi")
    text = _text(html)
    for circuit in ("LDG-TSLCD-0001", "VTL-INET-0042", "CMU-0007"):
        assert circuit in text
    assert "⚠ 99,328 %" in text
    assert "285,5" in text
    assert "<nav" not in html  # nothing to click on paper
    assert "<form" not in html
    pdf = asyncio.run(print_pdf(html))
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 3  # summaries, Viettel, VNPT


@needs_chromium
async def test_print_pdf_gives_up_when_chromium_runs_over(tmp_path: Path) -> None:
    from netwatch.reports.pdf import PdfError

    slow = tmp_path / "slow-chromium"
    slow.write_text("#!/bin/sh\nsleep 30\n", encoding="utf-8")
    slow.chmod(0o755)
    with pytest.raises(PdfError, match=r"took over 0\.5 s"):
        await print_pdf("<!DOCTYPE html><title>x</title>", chromium=slow, timeout_s=0.5)


def test_without_chromium_the_pdf_is_a_clear_503(
    it_staff: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NETWATCH_CHROMIUM names the browser to print with; one that is not there is "missing".
    monkeypatch.setenv("NETWATCH_CHROMIUM", "/nonexistent/chromium")
    reply = it_staff.get(f"{PAGE}?month=2026-11&format=pdf")
    assert reply.status_code == 503
    assert "máy chủ chưa cài Chromium" in reply.text
