r"""`netwatch report`: a month's report as a file, or mailed to provincial IT, from the shell.

    netwatch report pdf  --config netwatch.yaml --month 2026-11 [--province 68] [--isp vnpt] \
                         --out r.pdf
    netwatch report xlsx --config netwatch.yaml --month 2026-11 --out r.xlsx
    netwatch report csv  --config netwatch.yaml --month 2026-11 --out r.csv
    netwatch report mail --config netwatch.yaml --month 2026-10

The files are the page's and the API's (same computation, same renderers). `mail` enqueues the
month's mail in the outbox of the store named by --data-dir / --database-url (once per month and
recipient, as the mail of the 1st); the running NetWatch's outbox worker delivers it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from netwatch.cli import add_store_arguments

FILE_FORMATS = ("pdf", "xlsx", "csv")


async def _report_command(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from netwatch.inventory import ConfigError, load_inventory
    from netwatch.notify.clock import SystemClock
    from netwatch.reportmail import ReportMailer
    from netwatch.reports import Lang, Month, ReportError, monthly_report, report_csv
    from netwatch.reports.pdf import ChromiumMissingError, PdfError, print_pdf
    from netwatch.reports.xlsx import report_xlsx
    from netwatch.store import open_store
    from netwatch.store.rollups import Rollups
    from netwatch.web.monthly.page import print_html

    try:
        month = Month.parse(args.month)
    except ValueError as exc:
        print(f"netwatch report: --month: {exc}", file=sys.stderr)
        return 2
    try:
        inventory = load_inventory(Path(args.config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    store = await open_store(args.database_url or None, data_dir=Path(args.data_dir))
    try:
        now = datetime.now(UTC)
        rollups = Rollups(store)
        if args.action == "mail":
            mailer = ReportMailer(inventory, store, rollups, SystemClock())
            outcome = await mailer.mail(month, now)
            print(
                f"report {month}: {outcome.enqueued} mail(s) enqueued, {outcome.already} "
                f"already there{', PDF attached' if outcome.pdf else ''}"
            )
            return 0
        province = f"{args.province:02d}" if args.province is not None else None
        try:
            report = await monthly_report(
                store, rollups, inventory, month, now, province=province, isp=args.isp
            )
        except ReportError as exc:
            print(f"netwatch report: {exc.message}", file=sys.stderr)
            return 1
        lang = Lang(args.lang)
        if args.action == "pdf":
            try:
                data = await print_pdf(print_html(report, args.lang), timeout_s=args.timeout)
            except (ChromiumMissingError, PdfError) as exc:
                print(f"netwatch report: {exc}", file=sys.stderr)
                return 1
        elif args.action == "xlsx":
            data = report_xlsx(report, lang)
        else:
            data = report_csv(report, lang)
        await asyncio.to_thread(Path(args.out).write_bytes, data)
        print(f"wrote {args.out}: {len(report.circuits)} circuits, {len(data)} bytes")
        return 0
    finally:
        await store.close()


def _report(args: argparse.Namespace) -> int:
    return asyncio.run(_report_command(args))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `report` subcommand (pdf, xlsx, csv, mail)."""
    report = sub.add_parser(
        "report", help="a month's per-circuit report as PDF, XLSX or CSV, or mailed"
    )
    report.set_defaults(handler=_report)
    actions = report.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name in FILE_FORMATS:
        action = actions.add_parser(name, help=f"write the report as {name.upper()}")
        action.add_argument("--out", required=True, help="the file to write")
        action.add_argument("--province", type=int, help="only this province (official code)")
        action.add_argument("--isp", help="only this ISP (its id in the config)")
        action.add_argument("--lang", choices=("vi", "en"), default="vi")
        if name == "pdf":
            action.add_argument(
                "--timeout", type=float, default=120.0, help="seconds Chromium may take"
            )
    actions.add_parser("mail", help="mail the month's report to provincial IT (through the outbox)")
    for action in actions.choices.values():
        action.add_argument("--config", required=True, help="config file or folder")
        action.add_argument("--month", required=True, help="YYYY-MM, in Vietnam time")
        add_store_arguments(action)
