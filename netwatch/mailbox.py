"""The demo's mail catcher: an SMTP server on loopback that keeps every message as an .eml file.

`make demo` points the lab's notifications at it (`netwatch lab up --smtp`), so a newcomer gets
what an ISP engineer or provincial IT would: `netwatch mailbox list` prints each mail with the
signed ticket link it carries, and the catcher's page (http://127.0.0.1:8025/ in the demo) lists
them with the links clickable. It delivers nothing anywhere: a message accepted is a file
written, and that is all (no relay). Each file is written under a temporary name and renamed,
so a reader never sees half a message.

The SMTP side is aiosmtpd (the `demo` extra; `dev` has it too); reading the folder needs only the
standard library, so `netwatch mailbox list` works in an installation without it.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import re
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from netwatch.inventory.models import LOCAL_TZ

if TYPE_CHECKING:
    from aiohttp import web
    from aiosmtpd.smtp import SMTP, Envelope, Session

DEFAULT_DIR = Path("data/demo/mailbox")  # where `make demo` keeps them
DEFAULT_SMTP = "127.0.0.1:2525"
DEFAULT_HTTP = "127.0.0.1:8025"
# What the SMTP greeting calls this server. Given explicitly: aiosmtpd's default is
# socket.getfqdn(), which may ask the machine's DNS resolver, and the catcher talks to nobody.
SERVER_NAME = "netwatch-mailbox"
# A signed ISP ticket link (netwatch/signing.py): {public_url}/t/{id}?exp={unix}&sig={hex}.
TICKET_LINK = re.compile(r"https?://[^\s/?#]+/t/[^\s/?#]+\?exp=\d+&sig=[0-9a-f]+")
# File names the catcher writes: the UTC receive time (sortable), then a random suffix.
_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6})Z-[0-9a-f]{6}\.eml$")


@dataclass(frozen=True, slots=True)
class CaughtMail:
    """One message the catcher kept, read back from its file."""

    name: str  # the file name, also the message's id on the page
    received_at: datetime  # when the catcher accepted it (aware, UTC)
    sender: str
    to: str
    subject: str
    ticket_id: str | None  # X-NetWatch-Ticket
    event: str | None  # X-NetWatch-Event: opened, reminder, escalated, acknowledged, ...
    text: str  # the plain-text body
    ticket_links: tuple[str, ...]  # signed ISP links in the body, each once, in order


def ticket_links(text: str) -> tuple[str, ...]:
    """The signed ticket links in a text, each once (a mail has it in Vietnamese and English)."""
    return tuple(dict.fromkeys(TICKET_LINK.findall(text)))


def save_message(folder: Path, content: bytes, received_at: datetime) -> Path:
    """Write one received message into the folder (atomically); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%f")
    path = folder / f"{stamp}Z-{secrets.token_hex(3)}.eml"
    tmp = folder / f".{path.name}.tmp"
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return path


def read_mail(path: Path) -> CaughtMail | None:
    """A kept message, or None when the file is not one the catcher wrote."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    received_at = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return CaughtMail(
        name=path.name,
        received_at=received_at,
        sender=str(message.get("From", "")),
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "")),
        ticket_id=_header(message, "X-NetWatch-Ticket"),
        event=_header(message, "X-NetWatch-Event"),
        text=text,
        ticket_links=ticket_links(text),
    )


def _header(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    return str(value) if value is not None else None


def read_mailbox(folder: Path) -> list[CaughtMail]:
    """Every kept message, oldest first (an absent folder is an empty mailbox)."""
    if not folder.is_dir():
        return []
    mails = (read_mail(path) for path in sorted(folder.glob("*.eml")))
    return [mail for mail in mails if mail is not None]


def local_time(at: datetime) -> str:
    """A time as people read it in the demo: Asia/Ho_Chi_Minh, with the offset."""
    return at.astimezone(LOCAL_TZ).strftime("%H:%M:%S %d/%m/%Y (UTC+7)")


# --- SMTP -----------------------------------------------------------------------------------


class CatchingHandler:
    """aiosmtpd handler: every message goes into the folder, nowhere else."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd looks for
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Keep the message exactly as it came (the bytes after DATA)."""
        content = envelope.original_content or b""
        await asyncio.to_thread(save_message, self.folder, content, datetime.now(UTC))
        return "250 OK: kept in the NetWatch demo mailbox"


# --- the page -------------------------------------------------------------------------------

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem}"
    "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccc;"
    "padding:.4rem;text-align:left;vertical-align:top}a{overflow-wrap:anywhere}"
    "pre{white-space:pre-wrap;background:#f4f4f4;padding:1rem}"
)


def _page(title: str, body: str, *, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def list_page(mails: Sequence[CaughtMail]) -> str:
    """The catcher's front page: every mail, newest first, its ticket links clickable."""
    intro = (
        "<h1>Hộp thư demo của NetWatch <small>(demo mailbox)</small></h1>"
        "<p>Mọi thư NetWatch gửi trong bản demo đều đến đây, không đi đâu khác. Mở liên kết phiếu "
        "như kỹ sư nhà mạng: xem bằng chứng, bấm <b>Tiếp nhận</b>, rồi xem trang trạng thái của "
        "xã đổi theo.<br><i>Every mail the demo sends lands here. Open a ticket link as the "
        "ISP engineer would, acknowledge, then watch the commune's status page change.</i></p>"
    )
    if not mails:
        return _page(
            "Hộp thư demo",
            intro + "<p>Chưa có thư nào (no mail yet). Trang tự tải lại sau 10 giây.</p>",
            refresh_s=10,
        )
    rows = []
    for mail in reversed(mails):
        links = "<br>".join(
            f'<a href="{escape(url)}" rel="noreferrer">{escape(url)}</a>'
            for url in mail.ticket_links
        )
        rows.append(
            f"<tr><td>{escape(local_time(mail.received_at))}</td><td>{escape(mail.to)}</td>"
            f'<td><a href="/mail/{escape(mail.name)}">{escape(mail.subject)}</a>'
            f"<br><small>{escape(mail.event or '')}</small></td><td>{links or '—'}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>Nhận lúc (received)</th><th>Gửi đến (to)</th>"
        "<th>Tiêu đề (subject)</th><th>Liên kết phiếu (ISP ticket link)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    count = f"<p>{len(mails)} thư (mails). Trang tự tải lại sau 10 giây.</p>"
    return _page("Hộp thư demo", intro + count + table, refresh_s=10)


def mail_page(mail: CaughtMail) -> str:
    """One mail in full: headers that matter and the plain text."""
    links = "".join(
        f'<li><a href="{escape(url)}" rel="noreferrer">{escape(url)}</a></li>'
        for url in mail.ticket_links
    )
    body = (
        '<p><a href="/">← Hộp thư (mailbox)</a></p>'
        f"<h1>{escape(mail.subject)}</h1>"
        f"<p>Từ (from): {escape(mail.sender)}<br>Đến (to): {escape(mail.to)}<br>"
        f"Nhận lúc (received): {escape(local_time(mail.received_at))}</p>"
        + (f"<h2>Liên kết phiếu (ticket link)</h2><ul>{links}</ul>" if links else "")
        + f"<pre>{escape(mail.text)}</pre>"
    )
    return _page(mail.subject, body)


def web_app(folder: Path) -> web.Application:
    """The catcher's page: `/` lists the mails, `/mail/{name}` shows one."""
    from aiohttp import web

    async def index(request: web.Request) -> web.Response:
        mails = await asyncio.to_thread(read_mailbox, folder)
        return web.Response(text=list_page(mails), content_type="text/html")

    async def one(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        # Only names the catcher writes: nothing outside the folder can be asked for.
        path = folder / name
        mail = (
            await asyncio.to_thread(read_mail, path)
            if _NAME.match(name) and path.is_file()
            else None
        )
        if mail is None:
            raise web.HTTPNotFound(text="no such mail")
        return web.Response(text=mail_page(mail), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/mail/{name}", one)
    return app


# --- running it -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningMailbox:
    """A catcher that listens: where to send mail, and where its page is."""

    folder: Path
    smtp_host: str
    smtp_port: int
    http_url: str | None  # None: no page


def _port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


@asynccontextmanager
async def running_mailbox(
    folder: Path,
    smtp: tuple[str, int] = ("127.0.0.1", 0),
    http: tuple[str, int] | None = ("127.0.0.1", 0),
) -> AsyncIterator[RunningMailbox]:
    """Listen for SMTP (and serve the page) on the given addresses; port 0 picks a free one."""
    from aiohttp import web
    from aiosmtpd.smtp import SMTP

    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    handler = CatchingHandler(folder)
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        server = await loop.create_server(
            lambda: SMTP(handler, hostname=SERVER_NAME, loop=loop), smtp[0], smtp[1]
        )
        stack.push_async_callback(server.wait_closed)
        stack.callback(server.close)
        http_url = None
        if http is not None:
            runner = web.AppRunner(web_app(folder), access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, http[0], http[1]).start()
            port: int = runner.addresses[0][1]
            http_url = f"http://{http[0]}:{port}/"
        yield RunningMailbox(folder, smtp[0], _port_of(server), http_url)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PORT, got {text!r}")
    return host.strip("[]"), int(port)


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_mailbox(args.dir, args.smtp, None if args.no_http else args.http) as box:
        page = f", page {box.http_url}" if box.http_url else ""
        # One line that says it is ready: scripts and tests wait for it (and read the ports).
        print(
            f"mailbox ready: SMTP {box.smtp_host}:{box.smtp_port}{page}, folder {box.folder}",
            flush=True,
        )
        await stop.wait()
    return 0


def _serve_command(args: argparse.Namespace) -> int:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        print(
            "netwatch mailbox serve needs aiosmtpd: pip install 'netwatch[demo]'", file=sys.stderr
        )
        return 2
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"netwatch mailbox: {exc}", file=sys.stderr)
        return 1


def _list_command(args: argparse.Namespace) -> int:
    mails = read_mailbox(args.dir)
    if not mails:
        print(f"No mail in {args.dir} yet (chưa có thư).")
        return 0
    for mail in mails:
        event = f" [{mail.event}]" if mail.event else ""
        print(f"{local_time(mail.received_at)}  to {mail.to}{event}")
        print(f"  {mail.subject}")
        for url in mail.ticket_links:
            print(f"  {url}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `mailbox` subcommand (serve, list)."""
    mailbox = sub.add_parser(
        "mailbox",
        help="the demo's mail catcher: keep every mail NetWatch sends, list their ticket links",
    )
    actions = mailbox.add_subparsers(dest="mailbox_command", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="accept mail by SMTP and keep it as .eml files (no relay); Ctrl-C stops"
    )
    for flag, default, what in (
        ("--smtp", DEFAULT_SMTP, "where to accept SMTP (default: {}; port 0 picks a free one)"),
        ("--http", DEFAULT_HTTP, "where to serve the page listing the mails (default: {})"),
    ):
        serve.add_argument(
            flag,
            type=_address,
            default=_address(default),
            metavar="ADDRESS:PORT",
            help=what.format(default),
        )
    serve.add_argument("--no-http", action="store_true", help="no page, only the folder")
    serve.set_defaults(handler=_serve_command)
    listing = actions.add_parser(
        "list", help="print every kept mail: time, recipient, subject, signed ticket links"
    )
    listing.set_defaults(handler=_list_command)
    for action in (serve, listing):
        action.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help=f"the folder of .eml files (default: ./{DEFAULT_DIR})",
        )
