"""The monthly report as a page: every figure formatted once here, the templates only lay it out.

The same body serves the admin page (/admin/reports/monthly, inside the provincial IT view) and
the file Chromium prints to PDF (`print_html`, a page of its own with no navigation, so the mail
job can render it without a request). Breaches are marked by a text mark (⚠ and the breached
threshold's words), never by colour alone (WCAG 1.4.1). Times are Vietnam's.

Print (`@media print`): A4 landscape, navigation, forms and download links hidden, table headers
repeated on every page (`thead` as a header group), rows never split, a page break before each
ISP's section, so the part one sends an ISP starts on a page of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

from markupsafe import Markup

from netwatch.reports import (
    CircuitReport,
    Figure,
    GroupReport,
    Lang,
    MonthlyReport,
    TicketFigures,
)
from netwatch.reports.model import Breach
from netwatch.web.i18n import TIMEZONE_NOTE, fmt_number, fmt_percent, fmt_time
from netwatch.web.i18n import Lang as PageLang
from netwatch.web.templating import render
from netwatch.web.words import Words

# On top of the shared stylesheet. Small type and tight cells: a province's circuit table is
# 14 columns wide, and on A4 landscape (277 mm usable) it fits at 8.5 pt.
REPORT_CSS = Markup(
    # Cells break lines between words only (the body's `anywhere` would let the browser shrink
    # a column to one letter and stack a commune's name letter by letter); headers of number
    # columns wrap between words too. The table scrolls sideways on a phone instead.
    "table.report td,table.report th{font-size:.85rem;padding:.25rem .4rem;"
    "overflow-wrap:normal}"
    "table.report thead th{white-space:normal;vertical-align:bottom}"
    "table.report small{display:block;font-size:.8rem;font-weight:400}"
    "table.report td.num,table.report th.num{text-align:right}"
    ".breach{font-weight:700;color:#9c0019}"
    ".legend{font-size:.9rem}"
    "form.picker{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end}"
    "form.picker label{display:block;font-weight:600}"
    "nav.downloads ul{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;padding:0;list-style:none}"
    "section.isp{margin-top:1.5rem}"
    "@media print{"
    "@page{size:A4 landscape;margin:10mm}"
    "body{font-size:9pt}"
    "header.site,nav,.skip,form.picker,form.inline{display:none}"
    ".scroll{overflow:visible}"
    "table.report{width:100%}"
    "table.report td,table.report th{font-size:8.5pt;padding:1pt 3pt}"
    "thead{display:table-header-group}"
    "tr{break-inside:avoid}"
    "h2,h3{break-after:avoid}"
    "section.isp{break-before:page}"
    "}"
)


class W:
    """The page's words, Vietnamese first."""

    TITLE: Final[Words] = {"vi": "Báo cáo tháng {month}", "en": "Monthly report {month}"}
    NAV: Final[Words] = {"vi": "Báo cáo tháng", "en": "Monthly report"}
    PERIOD: Final[Words] = {
        "vi": "Từ 00:00 ngày {start} đến 00:00 ngày {end} (giờ Việt Nam).",
        "en": "From 00:00 on {start} to 00:00 on {end} (Vietnam time).",
    }
    GENERATED: Final[Words] = {"vi": "Lập lúc {at}.", "en": "Generated at {at}."}
    INCOMPLETE: Final[Words] = {
        "vi": "Tháng chưa kết thúc: phần còn lại của tháng được tính là không rõ trạng thái.",
        "en": "The month is not over: what is left of it counts as unknown.",
    }
    SCOPE: Final[Words] = {"vi": "Phạm vi: {scope}.", "en": "Scope: {scope}."}
    ALL: Final[Words] = {"vi": "tất cả mạch", "en": "every circuit"}
    PROVINCE: Final[Words] = {"vi": "Tỉnh", "en": "Province"}
    ISP: Final[Words] = {"vi": "Nhà mạng", "en": "ISP"}
    MONTH: Final[Words] = {"vi": "Tháng", "en": "Month"}
    ANY: Final[Words] = {"vi": "Tất cả", "en": "All"}
    SHOW: Final[Words] = {"vi": "Xem báo cáo", "en": "Show the report"}
    DOWNLOADS: Final[Words] = {"vi": "Tải về", "en": "Download"}
    CSV: Final[Words] = {"vi": "Bảng tính CSV", "en": "CSV spreadsheet"}
    XLSX: Final[Words] = {"vi": "Tệp Excel (XLSX)", "en": "Excel file (XLSX)"}
    PDF: Final[Words] = {"vi": "Bản in PDF", "en": "PDF for printing"}
    THRESHOLDS: Final[Words] = {"vi": "Ngưỡng áp dụng", "en": "Thresholds applied"}
    LEGEND: Final[Words] = {
        "vi": "Dấu ⚠ đánh dấu chỉ số vi phạm ngưỡng; cột “Vi phạm” ghi rõ ngưỡng bị vi phạm. "
        "Độ khả dụng = 1 − thời gian mất kết nối / thời gian đo được (không tính thời gian "
        "không rõ trạng thái và thời gian bảo trì được loại trừ theo hợp đồng).",
        "en": "⚠ marks a figure that breaks its threshold; the “Breaches” column names it. "
        "Availability = 1 − downtime / known time (unknown time, and maintenance the contract "
        "excludes, are not counted).",
    }
    BREACH_MARK: Final[Words] = {"vi": "⚠ ", "en": "⚠ "}
    SUMMARY: Final[Words] = {"vi": "Tổng hợp", "en": "Summary"}
    TOTAL: Final[Words] = {"vi": "Tổng cộng", "en": "Total"}
    BY_ISP: Final[Words] = {"vi": "Theo nhà mạng", "en": "By ISP"}
    BY_PROVINCE: Final[Words] = {"vi": "Theo tỉnh", "en": "By province"}
    CIRCUITS_OF: Final[Words] = {"vi": "Các mạch của {isp}", "en": "Circuits of {isp}"}
    TICKETS_OF: Final[Words] = {"vi": "Phiếu sự cố của {isp}", "en": "Tickets of {isp}"}
    NO_CIRCUITS: Final[Words] = {
        "vi": "Không có mạch nào trong phạm vi này.",
        "en": "No circuit in this scope.",
    }
    # Column heads.
    NAME: Final[Words] = {"vi": "Tên", "en": "Name"}
    CIRCUITS: Final[Words] = {"vi": "Số mạch", "en": "Circuits"}
    IN_BREACH: Final[Words] = {"vi": "Mạch vi phạm", "en": "Circuits in breach"}
    COMMUNE: Final[Words] = {"vi": "Xã", "en": "Commune"}
    CIRCUIT: Final[Words] = {"vi": "Đường truyền / mã mạch", "en": "Link / circuit id"}
    BANDWIDTH: Final[Words] = {"vi": "Băng thông (Mbit/s)", "en": "Bandwidth (Mbit/s)"}
    AVAILABILITY: Final[Words] = {"vi": "Độ khả dụng", "en": "Availability"}
    DOWNTIME: Final[Words] = {"vi": "Mất kết nối (phút)", "en": "Downtime (min)"}
    UNKNOWN: Final[Words] = {"vi": "Không rõ (giờ)", "en": "Unknown (h)"}
    EXCLUDED: Final[Words] = {"vi": "Bảo trì loại trừ (giờ)", "en": "Maintenance excluded (h)"}
    INCIDENTS: Final[Words] = {"vi": "Sự cố", "en": "Incidents"}
    LATENCY: Final[Words] = {"vi": "Độ trễ TB / p95 (ms)", "en": "Latency mean / p95 (ms)"}
    LOSS: Final[Words] = {"vi": "Mất gói", "en": "Loss"}
    UTILIZATION: Final[Words] = {"vi": "Mức sử dụng p95", "en": "p95 utilization"}
    TICKETS: Final[Words] = {"vi": "Phiếu", "en": "Tickets"}
    TTA: Final[Words] = {"vi": "Tiếp nhận TB (phút)", "en": "Mean to acknowledge (min)"}
    TTR: Final[Words] = {"vi": "Khắc phục TB (phút)", "en": "Mean to restore (min)"}
    BREACHES: Final[Words] = {"vi": "Vi phạm", "en": "Breaches"}
    NONE: Final[Words] = {"vi": "không", "en": "none"}
    TICKET: Final[Words] = {"vi": "Mã phiếu", "en": "Ticket"}
    OPENED: Final[Words] = {"vi": "Mở lúc", "en": "Opened"}
    ACKNOWLEDGED: Final[Words] = {"vi": "Tiếp nhận lúc", "en": "Acknowledged"}
    RESTORED: Final[Words] = {"vi": "Khắc phục lúc", "en": "Restored"}
    TO_ACK: Final[Words] = {"vi": "Thời gian tiếp nhận (phút)", "en": "To acknowledge (min)"}
    TO_RESTORE: Final[Words] = {"vi": "Thời gian khắc phục (phút)", "en": "To restore (min)"}
    # Refusals (the English side is the API's own message where there is one).
    BAD_MONTH: Final[Words] = {
        "vi": "“{text}” không phải là một tháng viết dạng YYYY-MM (ví dụ 2026-11) trong khoảng "
        "1976-01 đến 8998-12.",
        "en": "{text!r} is not a month written YYYY-MM (e.g. 2026-11) from 1976-01 to 8998-12.",
    }
    BAD_PROVINCE: Final[Words] = {
        "vi": "“{text}” không phải là mã tỉnh (chữ số, ví dụ 68).",
        "en": "{text!r} is not an official province code (digits, e.g. 68).",
    }
    NOT_BEGUN: Final[Words] = {
        "vi": "Tháng {month} chưa bắt đầu: báo cáo chỉ có cho tháng đã qua hoặc tháng này.",
        "en": "{month} has not begun yet: a report covers a past or the current month.",
    }
    NOTHING_MONITORED: Final[Words] = {
        "vi": "Tỉnh hoặc nhà mạng đã chọn không có mạch nào được NetWatch này giám sát ({detail}).",
        "en": "{detail}.",
    }
    BAD_FORMAT: Final[Words] = {
        "vi": "Định dạng “{text}” không có: chọn html, csv, xlsx hoặc pdf.",
        "en": "There is no format {text!r}: use html, csv, xlsx or pdf.",
    }
    NO_CHROMIUM: Final[Words] = {
        "vi": "Không tạo được bản PDF: máy chủ chưa cài Chromium (gói chromium của Debian). "
        "Vẫn có thể in trang này từ trình duyệt (Ctrl+P, khổ A4 ngang) hoặc tải tệp Excel.",
        "en": "The PDF cannot be made: Chromium is not installed on the server (Debian's "
        "chromium package). Print this page from the browser (Ctrl+P, A4 landscape) or "
        "download the Excel file instead.",
    }
    PDF_FAILED: Final[Words] = {
        "vi": "Không tạo được bản PDF ({detail}). Hãy thử lại sau ít phút, hoặc in trang này "
        "từ trình duyệt.",
        "en": "The PDF could not be made ({detail}). Try again in a few minutes, or print this "
        "page from the browser.",
    }


@dataclass(frozen=True, slots=True)
class Shown:
    """A figure as shown: its text, and whether it breaks its threshold (then marked ⚠)."""

    text: str
    breach: bool = False


@dataclass(frozen=True, slots=True)
class GroupRow:
    """An ISP, a province or the total."""

    name: str
    circuits: int
    availability: Shown
    downtime_min: str
    unknown_h: str
    excluded_h: str
    incidents: int
    latency: Shown
    loss: Shown
    tickets: int
    tta_min: str
    ttr_min: str
    in_breach: int
    breaches: str


@dataclass(frozen=True, slots=True)
class CircuitRow:
    """One circuit."""

    commune: str
    link: str
    circuit: str
    province: str
    bandwidth: str
    availability: Shown
    downtime_min: str
    unknown_h: str
    excluded_h: str
    incidents: int
    latency: Shown
    loss: Shown
    utilization: Shown  # of the contracted bandwidth; "—" without any SNMP bucket
    tickets: int
    tta_min: str
    ttr_min: str
    breaches: str


@dataclass(frozen=True, slots=True)
class TicketRow:
    """A ticket opened in the month about one of an ISP's circuits."""

    id: str
    circuit: str
    opened: str
    acknowledged: str
    restored: str
    tta_min: str
    ttr_min: str


@dataclass(frozen=True, slots=True)
class Section:
    """An ISP's circuits and tickets (a printed page of its own)."""

    isp: str
    heading: str
    tickets_heading: str
    circuits: tuple[CircuitRow, ...]
    tickets: tuple[TicketRow, ...]


@dataclass(frozen=True, slots=True)
class Download:
    """A link to the report as a file."""

    label: str
    href: str
    format: str


@dataclass(frozen=True, slots=True)
class ReportPage:
    """Everything the report's body shows, in one language."""

    title: str
    period: str
    generated: str
    complete: bool
    scope: str
    thresholds: tuple[tuple[str, str], ...]
    total: GroupRow
    by_isp: tuple[GroupRow, ...]
    by_province: tuple[GroupRow, ...]
    sections: tuple[Section, ...]
    w: Mapping[str, str]  # every word of W in the page's language


def _words(lang: PageLang) -> dict[str, str]:
    return {
        name: value[lang]
        for name, value in vars(W).items()
        if isinstance(value, dict) and lang in value
    }


def _dash(value: float | None, lang: PageLang, decimals: int) -> str:
    return "—" if value is None else fmt_number(value, lang, decimals)


def _breached(found: Sequence[Breach], figure: Figure) -> bool:
    return any(b.figure is figure for b in found)


def _latency(row: CircuitReport | GroupReport, lang: PageLang) -> Shown:
    s = row.latency_s
    if s.mean is None:
        return Shown("—")
    p95 = "—" if s.p95 is None else fmt_number(s.p95 * 1000, lang, 1)
    text = f"{fmt_number(s.mean * 1000, lang, 1)} / {p95}"
    return Shown(text, _breached(row.breaches, Figure.MEAN_LATENCY))


def _loss(row: CircuitReport | GroupReport, lang: PageLang) -> Shown:
    mean = row.loss_ratio.mean
    return Shown(fmt_percent(mean, lang, 2), _breached(row.breaches, Figure.LOSS))


def _utilization(c: CircuitReport, lang: PageLang) -> Shown:
    ratio = c.utilization_p95_ratio
    return Shown(fmt_percent(ratio, lang, 1), _breached(c.breaches, Figure.P95_UTILIZATION))


def _availability(row: CircuitReport | GroupReport, lang: PageLang) -> Shown:
    ratio = row.times.availability_ratio
    return Shown(fmt_percent(ratio, lang, 3), _breached(row.breaches, Figure.AVAILABILITY))


def _breach_words(found: Sequence[Breach], lang: PageLang) -> str:
    return "; ".join(b.threshold.label.text(Lang(lang)) for b in found) or W.NONE[lang]


def _minutes(seconds: float | None, lang: PageLang) -> str:
    return _dash(None if seconds is None else seconds / 60.0, lang, 1)


def _group(g: GroupReport, lang: PageLang, name: str | None = None) -> GroupRow:
    t = g.ticket_summary
    return GroupRow(
        name=name or g.name,
        circuits=g.circuits,
        availability=_availability(g, lang),
        downtime_min=fmt_number(g.times.downtime_min, lang, 1),
        unknown_h=fmt_number(g.times.unknown_s / 3600.0, lang, 1),
        excluded_h=fmt_number(g.times.excluded_s / 3600.0, lang, 1),
        incidents=g.incidents,
        latency=_latency(g, lang),
        loss=_loss(g, lang),
        tickets=t.count,
        tta_min=_minutes(t.mean_time_to_acknowledge_s, lang),
        ttr_min=_minutes(t.mean_time_to_restore_s, lang),
        in_breach=g.circuits_in_breach,
        breaches=_breach_words(g.breaches, lang),
    )


def _circuit(c: CircuitReport, lang: PageLang) -> CircuitRow:
    t = c.ticket_summary
    return CircuitRow(
        commune=c.commune_name,
        link=c.link_id,
        circuit=c.circuit,
        province=c.province_name,
        bandwidth=fmt_number(c.bandwidth_mbps, lang, 0),
        availability=_availability(c, lang),
        downtime_min=fmt_number(c.times.downtime_min, lang, 1),
        unknown_h=fmt_number(c.times.unknown_s / 3600.0, lang, 1),
        excluded_h=fmt_number(c.times.excluded_s / 3600.0, lang, 1),
        incidents=c.incidents,
        latency=_latency(c, lang),
        loss=_loss(c, lang),
        utilization=_utilization(c, lang),
        tickets=t.count,
        tta_min=_minutes(t.mean_time_to_acknowledge_s, lang),
        ttr_min=_minutes(t.mean_time_to_restore_s, lang),
        breaches=_breach_words(c.breaches, lang),
    )


def _ticket(t: TicketFigures, circuit: str, lang: PageLang) -> TicketRow:
    return TicketRow(
        id=t.id,
        circuit=circuit,
        opened=fmt_time(t.opened_at, lang),
        acknowledged=fmt_time(t.acknowledged_at, lang),
        restored=fmt_time(t.restored_at, lang),
        tta_min=_minutes(t.time_to_acknowledge_s, lang),
        ttr_min=_minutes(t.time_to_restore_s, lang),
    )


def _sections(report: MonthlyReport, lang: PageLang) -> tuple[Section, ...]:
    out = []
    for isp in report.by_isp:
        circuits = [c for c in report.circuits if c.isp == isp.key]
        # An upstream outage's ticket is listed once, by when it was opened.
        tickets: dict[str, tuple[datetime, TicketRow]] = {}
        for c in circuits:
            for t in c.tickets:
                tickets.setdefault(t.id, (t.opened_at, _ticket(t, c.circuit, lang)))
        out.append(
            Section(
                isp=isp.key,
                heading=W.CIRCUITS_OF[lang].format(isp=isp.name),
                tickets_heading=W.TICKETS_OF[lang].format(isp=isp.name),
                circuits=tuple(_circuit(c, lang) for c in circuits),
                tickets=tuple(row for _, row in sorted(tickets.values(), key=lambda p: p[0])),
            )
        )
    return tuple(out)


def report_page(report: MonthlyReport, lang: PageLang) -> ReportPage:
    """The report formatted for the page in `lang`."""
    month = report.month
    scope = [
        part
        for part in (
            report.province
            and next((g.name for g in report.by_province if g.key == report.province), None),
            report.isp and next((g.name for g in report.by_isp if g.key == report.isp), None),
        )
        if part
    ]
    return ReportPage(
        title=W.TITLE[lang].format(month=f"{month.month:02d}/{month.year}"),
        period=W.PERIOD[lang].format(start=f"{month.start:%d/%m/%Y}", end=f"{month.end:%d/%m/%Y}"),
        generated=W.GENERATED[lang].format(at=fmt_time(report.generated_at, lang)),
        complete=report.complete,
        scope=W.SCOPE[lang].format(scope=", ".join(scope) if scope else W.ALL[lang]),
        thresholds=tuple(
            (t.label.text(Lang(lang)), t.source.text(Lang(lang))) for t in report.thresholds
        ),
        total=_group(report.total, lang, W.TOTAL[lang]),
        by_isp=tuple(_group(g, lang) for g in report.by_isp),
        by_province=tuple(_group(g, lang) for g in report.by_province),
        sections=_sections(report, lang),
        w=_words(lang),
    )


def file_query(report: MonthlyReport, lang: PageLang, format: str) -> str:
    """The query string asking for this report as a file."""
    params = [("month", str(report.month))]
    params += [(k, v) for k, v in (("province", report.province), ("isp", report.isp)) if v]
    params += [("format", format), ("lang", lang)]
    return urlencode(params)


def downloads(report: MonthlyReport, lang: PageLang, path: str) -> tuple[Download, ...]:
    """Links to the CSV, XLSX and PDF files of this report at `path` (the admin page's)."""
    return tuple(
        Download(words[lang], f"{path}?{file_query(report, lang, fmt)}", fmt)
        for fmt, words in (("csv", W.CSV), ("xlsx", W.XLSX), ("pdf", W.PDF))
    )


def print_html(report: MonthlyReport, lang: PageLang) -> str:
    """The report as a standalone page for printing to PDF: no navigation, no forms."""
    page = report_page(report, lang)
    return render(
        "monthly/print.html",
        {
            "lang": lang,
            "title": f"{page.title} — NetWatch",
            "r": page,
            "picker": None,
            "downloads": (),
            "report_css": REPORT_CSS,
            "TIMEZONE_NOTE": TIMEZONE_NOTE,
            "robots_noindex": True,
        },
    )
