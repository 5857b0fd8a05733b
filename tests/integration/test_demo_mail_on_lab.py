"""`make demo`'s pieces together: the ISP's side from a real notification to the status page.

As scripts/demo.sh does it, each piece a real process: the mail catcher (`netwatch mailbox
serve`), a lab whose inventory mails through it (`netwatch lab up --smtp --public-url`), a
commune down, and `netwatch run` on that inventory as it was written. The catcher receives the
opening mail; the signed link it lists opens the ISP's ticket page; the engineer acknowledges
through the page's form; the commune's public status page then says the ISP is on it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from netwatch.lab import Lab
from netwatch.lab.config import PROVINCIAL_IT_MAIL
from netwatch.mailbox import CaughtMail, read_mailbox
from tests.integration.scenarios import _wait_for
from tests.integration.test_run_on_lab import _env
from tests.lab.fixtures import lab_skip_reason
from tests.servers import reserved_port
from tests.web.conftest import Client

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(360)]

LAB_INDEX = 16  # 10.104.0.0/16, namespaces nwl16-*
COMMUNES = 4
DOWN = "05518"  # Phường Sông Công: its only line (VNPT) down, as in the demo
VNPT_NOC = "noc@vnpt.example.invalid"  # the lab's VNPT contact, level 1
HTML = {"Accept": "text/html"}
ANY_PORTS = ("--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0")


def _netwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "netwatch.cli", *args]


def _text(html: str) -> str:
    """The visible text, tags removed and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@contextmanager
def _process(
    command: Sequence[str], log: Path, env: dict[str, str] | None = None, *, read: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """A process writing to `log` (stdout piped instead when `read`); SIGINT when done."""
    with log.open("w") as output:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE if read else output,
            stderr=output,
            text=True,
            env=env,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


@dataclass(frozen=True, slots=True)
class Demo:
    """The demo's pieces, running."""

    lab: Lab
    mailbox: Path
    mailbox_page: str
    netwatch: Client
    netwatch_log: Path


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    reason = lab_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    folder = tmp_path / "mailbox"
    state = tmp_path / "lab"
    with ExitStack() as stack:
        # 1. The catcher first, on ports of its own choosing: it says which.
        catcher = stack.enter_context(
            _process(
                _netwatch("mailbox", "serve", "--dir", str(folder), *ANY_PORTS),
                tmp_path / "mailbox.log",
                read=True,
            )
        )
        assert catcher.stdout is not None
        ready = catcher.stdout.readline()
        found = re.match(r"mailbox ready: SMTP 127\.0\.0\.1:(\d+), page (\S+), ", ready)
        assert found, (ready, (tmp_path / "mailbox.log").read_text())
        smtp_port, page = int(found.group(1)), found.group(2)

        # 2. The lab, its inventory mailing through the catcher with links to NetWatch's port.
        port = reserved_port()  # the lab's mails link to it before NetWatch starts
        public_url = f"http://127.0.0.1:{port}"
        lab = Lab(LAB_INDEX, state)

        def down() -> None:
            result = lab.down()
            assert result.leftovers.clean, result.leftovers

        stack.callback(down)  # also after a failed `up`: down works without state
        up = subprocess.run(
            _netwatch(
                *("lab", "up", "--index", str(LAB_INDEX), "--state-dir", str(state)),
                *("--communes", str(COMMUNES), "--smtp", f"127.0.0.1:{smtp_port}"),
                *("--public-url", public_url),
            ),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert up.returncode == 0, up.stderr
        assert lab.commune_down(int(DOWN)).problem is None

        # 3. NetWatch on that inventory, unchanged, with the lab's secrets in its environment.
        env = {**os.environ, **_env(lab.paths.env_file)}
        log = tmp_path / "netwatch.log"
        command = _netwatch("run", "--config", str(lab.paths.config_file))
        command += ["--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data")]
        netwatch = stack.enter_context(_process(command, log, env))
        client = Client(public_url)

        def serving() -> bool | None:
            assert netwatch.poll() is None, log.read_text()[-3000:]
            try:
                return client.get("/healthz").status == 200 or None
            except OSError:
                return None

        _wait_for(serving, "NetWatch answering /healthz", timeout_s=60, every_s=0.2)
        yield Demo(lab, folder, page, client, log)


def _opening_mail(folder: Path, to: str) -> CaughtMail | None:
    return next(
        (m for m in read_mailbox(folder) if m.to == to and m.event == "opened"),
        None,
    )


def test_from_the_isps_mail_to_the_status_page(demo: Demo) -> None:
    mail = _wait_for(
        lambda: _opening_mail(demo.mailbox, VNPT_NOC),
        f"the opening mail of {DOWN}'s ticket in the catcher",
        timeout_s=180,
    )
    assert "Phường Sông Công" in mail.subject
    assert "VNPT" in mail.subject
    [link] = mail.ticket_links
    assert link.startswith(f"{demo.netwatch.base}/t/{mail.ticket_id}?exp=")

    # Listed: by `netwatch mailbox list`, and on the catcher's page as a link.
    listed = subprocess.run(
        _netwatch("mailbox", "list", "--dir", str(demo.mailbox)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode == 0, listed.stderr
    assert f"  to {VNPT_NOC} [opened]" in listed.stdout
    assert f"  {link}\n" in listed.stdout
    catcher = Client(demo.mailbox_page.rstrip("/")).get("/")
    assert catcher.status == 200
    assert f'href="{link.replace("&", "&amp;")}"' in catcher.text

    # The commune's page before: a ticket, nobody on it yet.
    status_path = f"/status/xa/{DOWN}"

    def status_text(*wanted: str) -> str | None:
        page = demo.netwatch.get(status_path)
        text = _text(page.text)
        return text if page.status == 200 and all(w in text for w in wanted) else None

    before = _wait_for(
        lambda: status_text(f"Phiếu {mail.ticket_id}"), "the ticket on the status page", 60
    )
    assert "Chưa tiếp nhận" in before
    assert "Nhà mạng đã tiếp nhận xử lý." not in before

    # The ISP engineer opens the link from the mail, as it is.
    parts = urllib.parse.urlsplit(link)
    ticket_page = demo.netwatch.get(f"{parts.path}?{parts.query}", headers=HTML)
    assert ticket_page.status == 200, ticket_page.text[:500]
    text = _text(ticket_page.text)
    assert f"Phiếu sự cố {mail.ticket_id}" in text
    assert "Phường Sông Công" in text
    assert "Đang mở — chưa tiếp nhận" in text
    assert f'action="/t/{mail.ticket_id}/acknowledge"' in ticket_page.text

    # ... and acknowledges through the page's form (the hidden exp and sig of the link).
    query = dict(urllib.parse.parse_qsl(parts.query))
    acked = demo.netwatch.post(
        f"/t/{mail.ticket_id}/acknowledge",
        form={"exp": query["exp"], "sig": query["sig"], "name": "Trần Văn Bình (VNPT)"},
        headers=HTML,
    )
    assert acked.status == 200  # after the 303 back to the page
    assert "Đã ghi nhận: phiếu đã được tiếp nhận." in acked.text
    assert "Đã tiếp nhận — đang xử lý" in _text(acked.text)

    # The public status page now says the ISP is on it (a role, never the engineer's name).
    after = _wait_for(
        lambda: status_text("Nhà mạng đã tiếp nhận xử lý."),
        "the acknowledgement on the status page",
        60,
    )
    assert "Đã tiếp nhận lúc" in after
    assert "Trần Văn Bình" not in after
    # Provincial IT has an address in the demo's inventory too (capacity and portal tickets).
    assert PROVINCIAL_IT_MAIL in demo.lab.paths.config_file.read_text()
