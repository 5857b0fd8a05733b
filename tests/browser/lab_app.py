"""A real NetWatch on a lab, for the browser tests of the ISP and IT pages (not a fixture module).

`NetWatchOnLab.start(lab, tmp)` runs NetWatch (short rounds, alerting every second) under uvicorn
on a loopback port chosen first, so the links in its notifications point at it; its e-mail goes
to an aiosmtpd mailbox on loopback. Each test module builds its own lab (its own index) and calls
this from a module-scoped fixture.
"""

from __future__ import annotations

import email
import email.message
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from playwright.sync_api import Page

from netwatch.inventory import Inventory, load_inventory
from netwatch.inventory.models import Commune, Intervals, Link, Notifications, Smtp, TicketRules
from netwatch.inventory.secrets import Secret
from netwatch.lab import Lab
from netwatch.store import IssuedToken, open_store
from tests.browser.harness import run_async
from tests.lab_netwatch import quick_app
from tests.servers import listening_socket, smtp_server, uvicorn_thread
from tests.waiting import wait_until

LINK_SECRET = "browser-test-link-secret-0123456789"


def lab_env(path: Path) -> dict[str, str]:
    """The lab's secret environment (NAME=value lines)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip().strip("'\"") for k, v in pairs}


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    """Poll until predicate() holds; fail naming what did not happen."""
    wait_until(predicate, timeout_s, 0.25, what)


def submit(tab: Page, fields: Mapping[str, str], button: str, done: str) -> None:
    """Fill `fields` (selector: text), press the button named exactly `button`, and wait for the
    form's post/redirect/get to come back to the page with its notice (?done=`done`)."""
    for selector, text in fields.items():
        tab.fill(selector, text)
    tab.get_by_role("button", name=button, exact=True).click()
    tab.wait_for_url(re.compile(rf"done={done}"))


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message."""

    messages: list[email.message.Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message."""
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def bodies(self) -> list[str]:
        """The text of every message (all parts)."""
        out = []
        for message in list(self.messages):
            for part in message.walk():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    out.append(payload.decode("utf-8", "replace"))
        return out


@dataclass
class NetWatchOnLab:
    """NetWatch running against a lab, its mailbox, and how to reach both."""

    lab: Lab
    inventory: Inventory
    app: FastAPI
    base: str
    data_dir: Path
    mailbox: Mailbox
    _running: ExitStack  # the uvicorn thread, then the SMTP server
    _reader: str | None = None  # the tests' national read token, made on first use

    @classmethod
    def start(cls, lab: Lab, tmp: Path, *, recovery_min: float = 10) -> NetWatchOnLab:
        """Start NetWatch (and its mailbox) against the lab; stop() undoes it."""
        mailbox = Mailbox()
        running = ExitStack()
        smtp_port = running.enter_context(smtp_server(mailbox))
        # Bound (port 0) before the config is written: its public URL names the port.
        sock = listening_socket()
        running.callback(sock.close)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        inventory = load_inventory(lab.paths.config_file, environ=lab_env(lab.paths.env_file))
        inventory = inventory.model_copy(
            update={
                "intervals": Intervals(icmp_s=2, icmp_echoes=4, snmp_s=2, http_s=5),
                "tickets": TicketRules(
                    recovery_min=recovery_min, reopen_window_min=0, remind_every_min=None
                ),
                "notifications": Notifications(
                    public_url=base,
                    link_secret=Secret(LINK_SECRET, "TEST_LINK_SECRET"),
                    smtp=Smtp(
                        host="127.0.0.1",
                        port=smtp_port,
                        from_address="netwatch@lab.test",
                        starttls=False,
                    ),
                ),
            }
        )
        data_dir = tmp / "data"
        data_dir.mkdir()
        app = quick_app(lab.paths.config_file, inventory=inventory, data_dir=data_dir)
        with running:
            running.enter_context(uvicorn_thread(app, sock))
            return cls(lab, inventory, app, base, data_dir, mailbox, running.pop_all())

    def stop(self) -> None:
        """Stop NetWatch and the mailbox."""
        self._running.close()

    def get_json(self, path: str) -> Any:
        """GET a JSON document from NetWatch (the API with a national read token)."""
        if self._reader is None:
            self._reader = self.create_token("tests-reader", ("read",))
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self._reader}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read().decode())

    def open_tickets(self) -> list[dict[str, Any]]:
        """The open (not resolved) tickets, as the API lists them."""
        tickets: list[dict[str, Any]] = self.get_json(
            "/api/v1/tickets?state=open&state=acknowledged"
        )
        return tickets

    def link_state(self, commune: str, link: str) -> str | None:
        """The judged state of one link, as the API says it."""
        links = self.get_json(f"/api/v1/communes/{commune}")["links"]
        state: str | None = next(x["state"] for x in links if x["link"] == link)
        return state

    @contextmanager
    def link_down(self, commune_index: int) -> Iterator[tuple[Commune, Link]]:
        """A commune's first link, judged healthy first, then taken down in the lab until the
        block ends (the lab is restored then)."""
        commune = self.inventory.communes[commune_index]
        link = commune.links[0]
        wait_for(lambda: self.link_state(commune.code, link.id) == "ok", "a healthy baseline", 60)
        result = self.lab.commune_down(int(commune.code), link.id)
        assert result.problem is None, result
        try:
            yield commune, link
        finally:
            self.lab.restore()

    def ticket_links(self) -> list[str]:
        """Every ISP ticket link NetWatch has mailed, oldest first."""
        pattern = re.compile(re.escape(self.base) + r"/t/[^\s\"<>]+")
        found: list[str] = []
        for body in self.mailbox.bodies():
            for url in pattern.findall(body):
                if url not in found:
                    found.append(url)
        return found

    def create_token(self, name: str, scopes: tuple[str, ...] = ("write",)) -> str:
        """An API token made in NetWatch's own store (as `netwatch token create` does)."""

        async def make() -> IssuedToken:
            store = await open_store(None, data_dir=self.data_dir, migrate=False)
            try:
                return await store.create_token(name, list(scopes), datetime.now(UTC))
            finally:
                await store.close()

        return run_async(make).token

    def status_of(self, url: str) -> int:
        """The HTTP status of a GET (no browser)."""
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
