"""The monthly per-circuit report in the API: JSON, CSV or an XLSX workbook (docs/reports.md).

A read token is needed, as for every /api/v1 route; the report covers what the caller may see
(`report_scope`: an ISP token gets its ISP's circuits, a province token its provinces').
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from netwatch.reports import (
    Breach,
    CircuitReport,
    GroupReport,
    Lang,
    Month,
    MonthlyReport,
    Outage,
    ReportError,
    Samples,
    Threshold,
    TicketFigures,
    TicketSummary,
    Times,
    latest_complete_month,
    monthly_report,
    report_csv,
)
from netwatch.reports.table import XLSX_MEDIA_TYPE
from netwatch.web.auth import ReadCaller
from netwatch.web.deps import RuntimeDep
from netwatch.web.reach import Reach
from netwatch.web.views import local_iso

router = APIRouter(prefix="/api/v1")


class TimesView(BaseModel):
    """How the month was spent, in seconds; availability_ratio = 1 - down_s / known_s."""

    period_s: float
    excluded_s: float  # maintenance taken out (the ISP's contract excludes it)
    unknown_s: float  # NetWatch not running or not judging yet, the future: not counted
    known_s: float  # down + degraded + ok: the denominator
    down_s: float
    degraded_s: float  # slow, lossy, congested: available, reported apart
    ok_s: float
    downtime_min: float
    availability_ratio: float | None  # None when nothing of the month is known


class SamplesView(BaseModel):
    """A figure over the month's 5-minute buckets: how many, mean, 95th percentile."""

    count: int
    mean: float | None
    p95: float | None


class OutageView(BaseModel):
    """One down stretch: its part in this month (outside excluded maintenance)."""

    start: datetime
    end: datetime
    start_local: str
    end_local: str
    counted_s: float
    began_before: bool  # started in the previous month
    continues_after: bool  # still down at the month's end (or now)


class TicketFiguresView(BaseModel):
    """A ticket opened in the month, and how fast it was handled."""

    id: str
    kind: str
    status: str
    opened_at: datetime
    opened_local: str
    acknowledged_at: datetime | None
    restored_at: datetime | None
    resolved_at: datetime | None
    time_to_acknowledge_s: float | None
    time_to_restore_s: float | None


class TicketSummaryView(BaseModel):
    """Distinct tickets with their mean and longest handling times."""

    count: int
    acknowledged: int
    restored: int
    mean_time_to_acknowledge_s: float | None
    max_time_to_acknowledge_s: float | None
    mean_time_to_restore_s: float | None
    max_time_to_restore_s: float | None


class ThresholdView(BaseModel):
    """A limit the report holds a figure to, and its source."""

    figure: str
    limit: float  # a ratio, or seconds for latency
    at_least: bool  # the figure must be >= limit (else <= limit)
    label: str
    source: str


class BreachView(BaseModel):
    """A figure that broke its threshold."""

    figure: str
    value: float
    limit: float
    label: str
    source: str


class CircuitView(BaseModel):
    """One circuit over the month."""

    link: str
    link_id: str
    circuit: str
    commune: str
    commune_name: str
    province: str
    province_name: str
    isp: str
    isp_name: str
    path: str
    bandwidth_mbps: float
    maintenance_excluded: bool
    maintenance_s: float
    times: TimesView
    incidents: int
    outages: list[OutageView]
    latency_s: SamplesView
    loss_ratio: SamplesView
    utilization_p95_ratio: float | None
    utilization_missing: str | None
    tickets: list[TicketFiguresView]
    ticket_summary: TicketSummaryView
    breaches: list[BreachView]


class GroupView(BaseModel):
    """Circuits taken together (an ISP, a province, all), time-weighted."""

    kind: str
    key: str
    name: str
    circuits: int
    times: TimesView
    incidents: int
    latency_s: SamplesView
    loss_ratio: SamplesView
    ticket_summary: TicketSummaryView
    circuits_in_breach: int
    breaches: list[BreachView]


class MonthlyReportView(BaseModel):
    """A month's report: circuits, groups, and the thresholds applied."""

    month: str
    start: datetime
    end: datetime
    start_local: str
    end_local: str
    generated_at: datetime
    complete: bool  # False: the month is not over, what is left of it counts as unknown
    province: str | None
    isp: str | None
    lang: str
    thresholds: list[ThresholdView]
    circuits: list[CircuitView]
    by_isp: list[GroupView]
    by_province: list[GroupView]
    total: GroupView


def _times(t: Times) -> TimesView:
    return TimesView(
        period_s=t.period_s,
        excluded_s=t.excluded_s,
        unknown_s=t.unknown_s,
        known_s=t.known_s,
        down_s=t.down_s,
        degraded_s=t.degraded_s,
        ok_s=t.ok_s,
        downtime_min=t.downtime_min,
        availability_ratio=t.availability_ratio,
    )


def _samples(s: Samples) -> SamplesView:
    return SamplesView(count=s.count, mean=s.mean, p95=s.p95)


def _outage(o: Outage) -> OutageView:
    return OutageView(
        start=o.start.astimezone(UTC),
        end=o.end.astimezone(UTC),
        start_local=local_iso(o.start) or "",
        end_local=local_iso(o.end) or "",
        counted_s=o.counted_s,
        began_before=o.began_before,
        continues_after=o.continues_after,
    )


def _ticket(t: TicketFigures) -> TicketFiguresView:
    return TicketFiguresView(
        id=t.id,
        kind=t.kind,
        status=t.status,
        opened_at=t.opened_at,
        opened_local=local_iso(t.opened_at) or "",
        acknowledged_at=t.acknowledged_at,
        restored_at=t.restored_at,
        resolved_at=t.resolved_at,
        time_to_acknowledge_s=t.time_to_acknowledge_s,
        time_to_restore_s=t.time_to_restore_s,
    )


def _summary(s: TicketSummary) -> TicketSummaryView:
    return TicketSummaryView(
        count=s.count,
        acknowledged=s.acknowledged,
        restored=s.restored,
        mean_time_to_acknowledge_s=s.mean_time_to_acknowledge_s,
        max_time_to_acknowledge_s=s.max_time_to_acknowledge_s,
        mean_time_to_restore_s=s.mean_time_to_restore_s,
        max_time_to_restore_s=s.max_time_to_restore_s,
    )


def _threshold(t: Threshold, lang: Lang) -> ThresholdView:
    return ThresholdView(
        figure=t.figure.value,
        limit=t.limit,
        at_least=t.at_least,
        label=t.label.text(lang),
        source=t.source.text(lang),
    )


def _breaches(found: tuple[Breach, ...], lang: Lang) -> list[BreachView]:
    return [
        BreachView(
            figure=b.figure.value,
            value=b.value,
            limit=b.threshold.limit,
            label=b.threshold.label.text(lang),
            source=b.threshold.source.text(lang),
        )
        for b in found
    ]


def _circuit(c: CircuitReport, lang: Lang) -> CircuitView:
    return CircuitView(
        link=c.link,
        link_id=c.link_id,
        circuit=c.circuit,
        commune=c.commune,
        commune_name=c.commune_name,
        province=c.province,
        province_name=c.province_name,
        isp=c.isp,
        isp_name=c.isp_name,
        path=c.path,
        bandwidth_mbps=c.bandwidth_mbps,
        maintenance_excluded=c.maintenance_excluded,
        maintenance_s=c.maintenance_s,
        times=_times(c.times),
        incidents=c.incidents,
        outages=[_outage(o) for o in c.outages],
        latency_s=_samples(c.latency_s),
        loss_ratio=_samples(c.loss_ratio),
        utilization_p95_ratio=c.utilization_p95_ratio,
        utilization_missing=c.utilization_missing.text(lang) if c.utilization_missing else None,
        tickets=[_ticket(t) for t in c.tickets],
        ticket_summary=_summary(c.ticket_summary),
        breaches=_breaches(c.breaches, lang),
    )


def _group(g: GroupReport, lang: Lang) -> GroupView:
    return GroupView(
        kind=g.kind.value,
        key=g.key,
        name=g.name,
        circuits=g.circuits,
        times=_times(g.times),
        incidents=g.incidents,
        latency_s=_samples(g.latency_s),
        loss_ratio=_samples(g.loss_ratio),
        ticket_summary=_summary(g.ticket_summary),
        circuits_in_breach=g.circuits_in_breach,
        breaches=_breaches(g.breaches, lang),
    )


def report_view(report: MonthlyReport, lang: Lang) -> MonthlyReportView:
    """The report as the API answers it (labels in `lang`)."""
    month = report.month
    return MonthlyReportView(
        month=str(month),
        start=month.start.astimezone(UTC),
        end=month.end.astimezone(UTC),
        start_local=local_iso(month.start) or "",
        end_local=local_iso(month.end) or "",
        generated_at=report.generated_at,
        complete=report.complete,
        province=report.province,
        isp=report.isp,
        lang=lang.value,
        thresholds=[_threshold(t, lang) for t in report.thresholds],
        circuits=[_circuit(c, lang) for c in report.circuits],
        by_isp=[_group(g, lang) for g in report.by_isp],
        by_province=[_group(g, lang) for g in report.by_province],
        total=_group(report.total, lang),
    )


def _month(text: str | None, now: datetime) -> Month:
    if text is None:
        return latest_complete_month(now)
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise HTTPException(422, f"month: {exc}") from None


def _province(text: str | None) -> str | None:
    if text is None:
        return None
    if not re.fullmatch(r"\d{1,2}", text.strip()):
        raise HTTPException(
            422, f"province: {text!r} is not an official province code (digits, e.g. 68)"
        )
    return f"{int(text):02d}"


_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}},
        "description": "The report (CSV with format=csv: UTF-8 with a byte order mark; an "
        "Excel workbook with format=xlsx)",
    },
    404: {"description": "The province or ISP has no circuit monitored here"},
    422: {"description": "Not a month, a month not begun yet, or a bad filter"},
}


@router.get(
    "/reports/monthly",
    response_model=MonthlyReportView,
    tags=["reports"],
    summary="A month's per-circuit report: availability, incidents, latency, loss, tickets",
    responses=_ERRORS,
)
async def get_monthly_report(
    runtime: RuntimeDep,
    caller: ReadCaller,
    month: Annotated[
        str | None,
        Query(
            description="The calendar month in Asia/Ho_Chi_Minh, YYYY-MM (a past month or the "
            "current one). Default: the last month that has ended."
        ),
    ] = None,
    province: Annotated[
        str | None, Query(description="Only this province's circuits (official code, e.g. 68)")
    ] = None,
    isp: Annotated[
        str | None, Query(description="Only this ISP's circuits (its id in the config)")
    ] = None,
    format: Annotated[
        Literal["json", "csv", "xlsx"],
        Query(description="json, csv, or xlsx (an Excel workbook with typed cells)"),
    ] = "json",
    lang: Annotated[
        Literal["vi", "en"], Query(description="Labels in Vietnamese (default) or English")
    ] = "vi",
) -> Any:
    """Per circuit, per ISP, per province and in total; every breach of QCVN 34:2022 (and of
    NetWatch's own loss threshold) marked. docs/reports.md says how each figure is computed."""
    now = datetime.now(UTC)
    wanted = _month(month, now)
    try:
        asked, isp, within = report_scope(caller.reach, _province(province), isp)
        report = await monthly_report(
            runtime.store,
            runtime.rollups,
            runtime.inventory,
            wanted,
            now,
            province=asked,
            isp=isp,
            within=within,
        )
    except ReportError as exc:
        raise HTTPException(404 if exc.not_found else 422, exc.message) from None
    language = Lang(lang)
    if format == "json":
        return report_view(report, language)
    return report_file(report, language, format)


def report_scope(
    reach: Reach, province: str | None, isp: str | None
) -> tuple[str | None, str | None, frozenset[int] | None]:
    """The report's filters as this caller may ask them: an ISP caller's report is its ISP's, a
    province caller's within its provinces; asking for another ISP or province is answered as
    if it were not monitored here (ReportError, 404), as the rest of the API does."""
    if reach.isp is not None:
        if isp is not None and isp != reach.isp:
            raise ReportError(f"ISP {isp!r} has no circuit monitored here", not_found=True)
        isp = reach.isp
    visible = reach.provinces
    if visible is not None and province is not None and int(province) not in visible:
        raise ReportError(
            f"province {province} has no commune monitored by this NetWatch", not_found=True
        )
    return province, isp, reach.provinces


def report_file_name(report: MonthlyReport, extension: str) -> str:
    """netwatch-2026-11[-68][-vnpt].csv: the month and the filters asked for."""
    parts = ["netwatch", str(report.month), *(p for p in (report.province, report.isp) if p)]
    return "-".join(parts) + f".{extension}"


def report_file(report: MonthlyReport, lang: Lang, format: Literal["csv", "xlsx"]) -> Response:
    """The report as a downloaded file (the API's and the admin page's)."""
    if format == "csv":
        body, media_type = report_csv(report, lang), "text/csv; charset=utf-8"
    else:
        from netwatch.reports.xlsx import report_xlsx  # openpyxl: loaded on the first workbook

        body, media_type = report_xlsx(report, lang), XLSX_MEDIA_TYPE
    name = report_file_name(report, format)
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
