"""The monthly report mailed to provincial IT on the 1st at 08:00 Vietnam time (issue 13).

When: APScheduler's cron trigger, `CronTrigger(day=1, hour=8, timezone="Asia/Ho_Chi_Minh")`,
says when each month's mail is due; this loop (not APScheduler's scheduler, whose own clock a
test cannot move) sleeps until then on an injected clock, so tests drive the 1st without waiting
for it. The job runs in the process that leads alerting (`is_leader`): every core runs the loop,
only the leader acts, and a core that takes over later in the morning sends what is still due.

What: last month's report (`latest_complete_month`), for every circuit of this NetWatch, mailed
to each of `provincial_it.contacts` with an e-mail address, with the XLSX and CSV files attached
(and the PDF when Chromium is installed: `netwatch.reports.pdf`), through the outbox and the
configured SMTP server (`notifications.smtp`).

Once: each mail's outbox dedup key is `report/<month>/email/<address>`. Before making a report
the job asks the store which of those keys exist, so a restart at 08:05 (or any time that
month) computes and sends nothing again; two leaders racing at a handover enqueue one item per
key (the key is unique). A failed send is the outbox's to retry, with the same files.
A NetWatch that was down at 08:00 on the 1st sends the mail when it is back within a day
(APScheduler's "misfire grace time", `MISFIRE_GRACE`); later, the mail of that month is not sent
by itself. Nor is the mail of a month this database recorded nothing of (its first state is
after the month's end: a NetWatch installed on the 1st, or a fresh test database) — a report of
a month nobody watched would say "unknown" for every circuit. `netwatch report mail --month`
sends any month on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from apscheduler.triggers.cron import CronTrigger

from netwatch.inventory import Inventory
from netwatch.notify.clock import Clock
from netwatch.notify.documents import DocumentEmail, MailAttachment
from netwatch.reports import (
    Month,
    MonthlyReport,
    latest_complete_month,
    monthly_report,
    report_csv,
)
from netwatch.reports.pdf import ChromiumMissingError, PdfError, print_pdf
from netwatch.reports.table import XLSX_MEDIA_TYPE
from netwatch.store import EnqueueOutcome, NewOutboxItem, Store
from netwatch.store.rollups import Rollups
from netwatch.store.types import JsonObject
from netwatch.web.i18n import fmt_percent
from netwatch.web.monthly.page import print_html

log = logging.getLogger("netwatch.reportmail")

TIMEZONE = "Asia/Ho_Chi_Minh"
EMAIL_CHANNEL = "email"
MAX_WAIT_S = 300.0  # look again at least this often: leadership and the clock may change
MISFIRE_GRACE = timedelta(hours=24)  # a mail missed at 08:00 is still sent this long after


def monthly_trigger() -> CronTrigger:
    """The 1st of every month at 08:00 in Vietnam."""
    return CronTrigger(day=1, hour=8, timezone=TIMEZONE)


def report_dedup_key(month: Month, address: str) -> str:
    """One mail per month and recipient, whatever restarts or leaders come."""
    return f"report/{month}/{EMAIL_CHANNEL}/{address.strip().lower()}"


def recipients(inventory: Inventory) -> list[str]:
    """Provincial IT's e-mail addresses, each once, in the contacts' order."""
    out: list[str] = []
    for contact in sorted(inventory.provincial_it.contacts, key=lambda c: c.level):
        if contact.email and contact.email.lower() not in (a.lower() for a in out):
            out.append(contact.email)
    return out


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """What one look at the schedule (or one request) did."""

    month: Month | None  # the report's month; None: nothing was due
    enqueued: int = 0
    already: int = 0  # recipients whose mail of that month was enqueued before
    pdf: bool = False  # the PDF was attached


def _text(report: MonthlyReport, page_url: str | None) -> str:
    """The mail's body: the figures a reader wants before opening a file, vi then en."""
    month = report.month
    total = report.total
    lines_vi = [
        f"Báo cáo chất lượng đường truyền tháng {month.month:02d}/{month.year} "
        f"của {total.circuits} mạch.",
        f"Độ khả dụng chung: {fmt_percent(total.times.availability_ratio, 'vi', 3)}; "
        f"số mạch vi phạm ngưỡng: {total.circuits_in_breach}; số sự cố: {total.incidents}; "
        f"số phiếu sự cố: {total.ticket_summary.count}.",
    ]
    lines_en = [
        f"Circuit quality report for {month} ({total.circuits} circuits).",
        f"Overall availability: {fmt_percent(total.times.availability_ratio, 'en', 3)}; "
        f"circuits in breach: {total.circuits_in_breach}; incidents: {total.incidents}; "
        f"tickets: {total.ticket_summary.count}.",
    ]
    for g in report.by_isp:
        availability_vi = fmt_percent(g.times.availability_ratio, "vi", 3)
        availability_en = fmt_percent(g.times.availability_ratio, "en", 3)
        lines_vi.append(
            f"- {g.name}: {g.circuits} mạch, độ khả dụng {availability_vi}, "
            f"{g.circuits_in_breach} mạch vi phạm."
        )
        lines_en.append(
            f"- {g.name}: {g.circuits} circuits, availability {availability_en}, "
            f"{g.circuits_in_breach} in breach."
        )
    files_vi = "Tệp đính kèm: bảng Excel (XLSX), bảng CSV và bản in PDF (nếu có)."
    files_en = "Attached: the Excel workbook (XLSX), the CSV table and the PDF (when available)."
    lines_vi.append(files_vi)
    lines_en.append(files_en)
    if page_url:
        lines_vi.append(f"Xem và in báo cáo: {page_url}")
        lines_en.append(f"See and print the report: {page_url}")
    lines_vi.append("Giờ Việt Nam (UTC+7). Thư được gửi tự động lúc 08:00 ngày 1 hằng tháng.")
    lines_en.append("Vietnam time (UTC+7). Sent automatically at 08:00 on the 1st of each month.")
    return "\n".join([*lines_vi, "", "---", "", *lines_en]) + "\n"


class ReportMailer:
    """Mails last month's report on the 1st at 08:00; built once per runtime."""

    def __init__(
        self,
        inventory: Inventory,
        store: Store,
        rollups: Rollups,
        clock: Clock,
        *,
        is_leader: Callable[[], bool] = lambda: True,
        wake: Callable[[], None] | None = None,
        pdf: bool = True,
        trigger: CronTrigger | None = None,
    ) -> None:
        self._inventory = inventory
        self._store = store
        self._rollups = rollups
        self._clock = clock
        self._is_leader = is_leader
        self._wake = wake
        self._pdf = pdf
        self._trigger = trigger if trigger is not None else monthly_trigger()
        self._told_no_mail = False
        self._told_unwatched: Month | None = None

    def due_at(self, month: Month) -> datetime:
        """When the mail made in `month` (about the month before) is due."""
        fire: datetime | None = self._trigger.get_next_fire_time(None, month.start)
        if fire is None:  # a cron trigger without an end always has a next time
            raise AssertionError("the monthly trigger has no next fire time")
        return fire

    def next_due(self, now: datetime) -> datetime:
        """The next time the trigger fires after `now` (or at it)."""
        fire: datetime | None = self._trigger.get_next_fire_time(None, now)
        if fire is None:
            raise AssertionError("the monthly trigger has no next fire time")
        return fire

    async def check(self) -> MailOutcome:
        """Mail last month's report when this month's time has come (and not passed by more
        than MISFIRE_GRACE) and it is not sent yet."""
        now = self._clock.now()
        due = self.due_at(Month.of(now))
        if not due <= now < due + MISFIRE_GRACE:
            return MailOutcome(None)
        month = latest_complete_month(now)
        first = await self._store.first_state_at()
        if first is None or first >= month.end:
            if self._told_unwatched != month:
                log.info("report mail not sent month=%s: nothing was recorded that month", month)
                self._told_unwatched = month
            return MailOutcome(None)
        return await self.mail(month, now)

    async def mail(self, month: Month, now: datetime) -> MailOutcome:
        """Enqueue `month`'s report to provincial IT (any past month, on demand too); each
        recipient at most once per month."""
        addresses = recipients(self._inventory)
        notifications = self._inventory.notifications
        if not addresses or notifications is None or notifications.smtp is None:
            if not self._told_no_mail:
                log.warning(
                    "report mail not sent month=%s: needs notifications.smtp and "
                    "provincial_it.contacts with an email",
                    month,
                )
                self._told_no_mail = True
            return MailOutcome(month)
        keys = {a: report_dedup_key(month, a) for a in addresses}
        present = await self._store.outbox_keys_present(list(keys.values()))
        missing = [a for a in addresses if keys[a] not in present]
        if not missing:
            return MailOutcome(month, already=len(addresses))
        report = await monthly_report(self._store, self._rollups, self._inventory, month, now)
        from netwatch.reports.xlsx import report_xlsx  # openpyxl: loaded on the first workbook

        attachments = [
            MailAttachment(f"netwatch-{month}.xlsx", XLSX_MEDIA_TYPE, report_xlsx(report)),
            MailAttachment(f"netwatch-{month}.csv", "text/csv", report_csv(report)),
        ]
        with_pdf = False
        if self._pdf:
            try:
                pdf = await print_pdf(print_html(report, "vi"))
            except ChromiumMissingError:
                log.info("report mail without pdf month=%s: chromium is not installed", month)
            except PdfError as exc:
                log.warning("report mail without pdf month=%s: %s", month, exc)
            else:
                attachments.append(MailAttachment(f"netwatch-{month}.pdf", "application/pdf", pdf))
                with_pdf = True
        page_url = f"{notifications.public_url.rstrip('/')}/admin/reports/monthly?month={month}"
        content = DocumentEmail(
            subject=(
                f"[NetWatch] Báo cáo chất lượng đường truyền tháng {month.month:02d}/{month.year}"
                f" / Monthly circuit report {month}"
            ),
            text=_text(report, page_url),
            key=f"report.{month}",
            date=now,
            attachments=tuple(attachments),
        )
        payload = cast(JsonObject, content.to_payload())
        outcomes = await self._store.enqueue_many(
            [NewOutboxItem(EMAIL_CHANNEL, a, payload, keys[a]) for a in missing], now
        )
        enqueued = sum(1 for o in outcomes if o is EnqueueOutcome.ENQUEUED)
        log.info("report mail enqueued month=%s recipients=%d pdf=%s", month, enqueued, with_pdf)
        if self._wake is not None:
            self._wake()
        return MailOutcome(month, enqueued, len(addresses) - enqueued, with_pdf)

    async def run(self, stop: asyncio.Event) -> None:
        """Look when the trigger fires (and at least every MAX_WAIT_S) until `stop`."""
        while not stop.is_set():
            if self._is_leader():
                try:
                    await self.check()
                except Exception:  # the store is down: the next look tries again
                    log.exception("report mail failed")
            now = self._clock.now()
            wait_s = (self.next_due(now + timedelta(seconds=1)) - now).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(1.0, min(MAX_WAIT_S, wait_s)))
