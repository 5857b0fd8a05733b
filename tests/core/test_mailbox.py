"""The demo's mail catcher: a real aiosmtpd server on loopback, real SMTP clients, real HTTP."""

from __future__ import annotations

import asyncio
import re
import signal
import smtplib
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from netwatch.cli import main
from netwatch.inventory.models import LOCAL_TZ
from netwatch.mailbox import read_mailbox, running_mailbox, save_message, ticket_links
from netwatch.notify.channels import Delivered, SmtpChannel, SmtpConfig
from netwatch.notify.messages import EmailContent, NoticeEvent

LINK = (
    "http://127.0.0.1:8080/t/NW-20261122-0007?exp=1795000000&sig=0123456789abcdef0123456789abcdef"
)
SUBJECT = "[NetWatch NW-20261122-0007] Sự cố đường truyền: Phường Sông Công — VNPT (lab)"


def _message(to: str = "noc@vnpt.example.invalid") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "netwatch@lab.example.invalid"
    message["To"] = to
    message["Subject"] = SUBJECT
    message["X-NetWatch-Ticket"] = "NW-20261122-0007"
    message["X-NetWatch-Event"] = "opened"
    # The same link in the Vietnamese and the English half, as NetWatch writes it.
    message.set_content(
        f"Phiếu NW-20261122-0007 — mở phiếu\n\nXem bằng chứng, tiếp nhận:\n{LINK}\n\n"
        f"--- English ---\n\nSee the evidence, acknowledge:\n{LINK}\n",
        charset="utf-8",
    )
    return message


def _send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_a_mail_sent_by_smtp_is_kept_listed_and_shown_with_its_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mailbox"
    async with running_mailbox(folder) as box:
        assert box.smtp_port > 0
        assert box.http_url is not None
        before = datetime.now(UTC)
        await asyncio.to_thread(_send, box.smtp_port, _message())
        [mail] = read_mailbox(folder)
        assert mail.to == "noc@vnpt.example.invalid"
        assert mail.subject == SUBJECT  # decoded: Vietnamese with its diacritics
        assert (mail.ticket_id, mail.event) == ("NW-20261122-0007", "opened")
        assert mail.ticket_links == (LINK,)  # once, though the body has it twice
        assert before - timedelta(seconds=1) <= mail.received_at <= datetime.now(UTC)

        status, page = await asyncio.to_thread(_get, box.http_url)
        assert status == 200
        assert '<html lang="vi">' in page
        assert "noc@vnpt.example.invalid" in page
        assert "Phường Sông Công" in page
        escaped = LINK.replace("&", "&amp;")
        assert f'<a href="{escaped}" rel="noreferrer">' in page  # clickable
        status, one = await asyncio.to_thread(_get, f"{box.http_url}mail/{mail.name}")
        assert status == 200
        assert "--- English ---" in one
        for bad in ("mail/..%2Fsecret.eml", "mail/nothing.eml", f"mail/{mail.name}x"):
            assert (await asyncio.to_thread(_get, box.http_url + bad))[0] == 404, bad

    assert main(["mailbox", "list", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    local = mail.received_at.astimezone(LOCAL_TZ).strftime("%H:%M:%S %d/%m/%Y")
    assert out == [
        f"{local} (UTC+7)  to noc@vnpt.example.invalid [opened]",
        f"  {SUBJECT}",
        f"  {LINK}",
    ]


async def test_what_netwatch_itself_sends_arrives_whole(tmp_path: Path) -> None:
    # NetWatch's own SMTP channel, as the demo's NetWatch uses it: plain SMTP on loopback.
    async with running_mailbox(tmp_path, http=None) as box:
        assert box.http_url is None
        channel = SmtpChannel(
            SmtpConfig("127.0.0.1", box.smtp_port, "netwatch@lab.example.invalid", starttls=False)
        )
        content = EmailContent(
            subject=SUBJECT,
            text=f"Xem bằng chứng, tiếp nhận, ghi chú hoặc đóng phiếu:\n{LINK}\n",
            ticket_id="NW-20261122-0007",
            event_id=1,
            event=NoticeEvent.OPENED,
            date=datetime.now(UTC),
        )
        outcome = await channel.send("cntt@tinh.example.invalid", content.to_payload(), "d-1")
        assert isinstance(outcome, Delivered), outcome
        [mail] = read_mailbox(tmp_path)
        assert (mail.to, mail.subject, mail.ticket_links) == (
            "cntt@tinh.example.invalid",
            SUBJECT,
            (LINK,),
        )


def test_the_folder_lists_only_whole_mails_oldest_first(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    second = save_message(tmp_path, _message("b@x.example.invalid").as_bytes(), now)
    first = save_message(tmp_path, _message("a@x.example.invalid").as_bytes(), now - timedelta(1))
    (tmp_path / f".{first.name}.tmp").write_bytes(b"half a mess")  # one being written
    (tmp_path / "notes.eml").write_text("not the catcher's")
    assert [m.name for m in read_mailbox(tmp_path)] == [first.name, second.name]
    assert read_mailbox(tmp_path / "absent") == []


def test_ticket_links_are_the_signed_ones_only() -> None:
    text = (
        "status http://127.0.0.1:8080/status/xa/05518\n"
        f"ticket {LINK}.\n"
        "unsigned http://127.0.0.1:8080/t/NW-1\n"
        "https://netwatch.tinh.gov.vn/t/NW-2?exp=1&sig=ab"
    )
    assert ticket_links(text) == (LINK, "https://netwatch.tinh.gov.vn/t/NW-2?exp=1&sig=ab")


def test_serve_says_where_it_listens_keeps_mail_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "netwatch.cli", "mailbox", "serve", "--dir", str(tmp_path)]
    command += ["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            ready = proc.stdout.readline() if proc.stdout else ""
            found = re.match(r"mailbox ready: SMTP 127\.0\.0\.1:(\d+), page (\S+), folder", ready)
            assert found, (ready, proc.stderr.read() if proc.stderr else "")
            _send(int(found.group(1)), _message())
            status, page = _get(found.group(2))
            assert status == 200
            assert "noc@vnpt.example.invalid" in page
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
    assert code == 0
    assert len(read_mailbox(tmp_path)) == 1


def test_serve_on_a_taken_port_says_so(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "netwatch.cli", "mailbox", "serve", "--dir", str(tmp_path)]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*command, "--smtp", f"127.0.0.1:{port}", "--no-http"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.startswith("netwatch mailbox: ")
