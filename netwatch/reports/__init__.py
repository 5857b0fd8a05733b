"""Monthly per-circuit reports that provincial IT sends to an ISP (issue 13; docs/reports.md).

`monthly_report` computes a typed `MonthlyReport` from the store (state history, maintenance,
rollups, tickets) and the inventory; `report_csv` and `table` render it. The web layer uses
this package, never the reverse.
"""

from __future__ import annotations

from netwatch.reports.compute import (
    Circuit,
    ReportError,
    circuit_report,
    circuits_of,
    latest_complete_month,
    monthly_report,
)
from netwatch.reports.model import (
    THRESHOLDS,
    Breach,
    CircuitReport,
    Figure,
    GroupKind,
    GroupReport,
    Label,
    Lang,
    Month,
    MonthlyReport,
    Outage,
    Samples,
    Threshold,
    TicketFigures,
    TicketSummary,
    Times,
)
from netwatch.reports.table import COLUMNS, Column, report_csv, table

__all__ = [
    "COLUMNS",
    "THRESHOLDS",
    "Breach",
    "Circuit",
    "CircuitReport",
    "Column",
    "Figure",
    "GroupKind",
    "GroupReport",
    "Label",
    "Lang",
    "Month",
    "MonthlyReport",
    "Outage",
    "ReportError",
    "Samples",
    "Threshold",
    "TicketFigures",
    "TicketSummary",
    "Times",
    "circuit_report",
    "circuits_of",
    "latest_complete_month",
    "monthly_report",
    "report_csv",
    "table",
]
