"""A commune's line goes down in the lab: one ticket, an e-mail and a signed webhook; recovery
closes it and says so. Real peers: the lab, aiosmtpd, an HTTP receiver, the SQLite store."""

from __future__ import annotations

import email
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from netwatch.inventory import load_inventory
from netwatch.inventory.models import Contact, Intervals, TicketRules
from netwatch.inventory.secrets import Secret
from netwatch.lab import Lab
from netwatch.notify.channels import WebhookVerdict, verify_webhook
from tests.integration.lab_notify import lab_notifications
from tests.integration.test_run_on_lab import _env, serving
from tests.lab.fixtures import built_lab
from tests.lab_netwatch import quick_app
from tests.servers import smtp_server
from tests.waiting import wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab]
LAB_INDEX = 9  # 10.97.0.0/16, namespaces nwl9-* (each lab module has its own: they run in parallel)
WEBHOOK_SECRET = "webhook-shared-secret"


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with smtp_server(box) as port:
        yield box, port


@pytest.fixture
def webhooks() -> Iterator[tuple[list[tuple[bytes, dict[str, str]]], int]]:
    received: list[tuple[bytes, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, dict(self.headers)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # asked for its port below
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, 3, tmp_path_factory.mktemp("tickets-lab"))


def _wait(predicate: Callable[[], bool], timeout_s: float = 90.0) -> None:
    wait_until(predicate, timeout_s, 0.5, "condition")


def _subject(message: email.message.Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def test_link_down_opens_one_ticket_mails_and_signs_then_resolves(
    lab: Lab,
    tmp_path: Path,
    database_url: str | None,
    mailbox: tuple[Mailbox, int],
    webhooks: tuple[list[tuple[bytes, dict[str, str]]], int],
) -> None:
    box, smtp_port = mailbox
    received, hook_port = webhooks
    inventory = load_inventory(lab.paths.config_file, environ=_env(lab.paths.env_file))
    hook_url = f"http://127.0.0.1:{hook_port}/netwatch"
    noc = Contact(level=1, name="NOC VNPT", email="noc@vnpt.test", webhook=hook_url)
    isps = {k: v.model_copy(update={"contacts": (noc,)}) for k, v in inventory.isps.items()}
    inventory = inventory.model_copy(
        update={
            "intervals": Intervals(icmp_s=2, icmp_echoes=5, snmp_s=2, http_s=5),
            "isps": isps,
            "tickets": TicketRules(recovery_min=0.2, reopen_window_min=0, remind_every_min=None),
            "notifications": lab_notifications(
                smtp_port, webhook_secret=Secret(WEBHOOK_SECRET, "TEST_WEBHOOK")
            ),
        }
    )
    code = inventory.communes[2].code
    name = inventory.communes[2].name
    app = quick_app(
        lab.paths.config_file, inventory=inventory, data_dir=tmp_path, database_url=database_url
    )
    with serving(app) as client:
        # A healthy baseline first: every link of the commune judged ok.
        def healthy() -> bool:
            status, body = client.get(f"/api/v1/communes/{code}")
            return status == 200 and all(x["state"] == "ok" for x in json.loads(body)["links"])

        _wait(healthy, 60)
        assert box.messages == []
        lab.commune_down(int(code))
        faulted = time.monotonic()

        def mailed() -> bool:
            return any("24" in _subject(m) or name in _subject(m) for m in box.messages)

        _wait(mailed)
        assert time.monotonic() - faulted < 60  # within a minute of the fault
        _wait(lambda: len(received) >= 1)
        try:
            opened = [m for m in box.messages if name in _subject(m)]
            assert len(opened) >= 1
            first = opened[0]
            body = first.get_payload(decode=True)
            assert isinstance(body, bytes)
            text = body.decode()
            assert "Mất kết nối" in text or "mất kết nối" in text
            assert "giờ Việt Nam" in text
            assert "--- English ---" in text
            raw, headers = received[0]
            verdict = verify_webhook(
                WEBHOOK_SECRET,
                raw,
                headers.get("X-NetWatch-Signature"),
                headers.get("X-NetWatch-Timestamp"),
                datetime.now(UTC),
            )
            assert verdict is WebhookVerdict.VALID
            payload = json.loads(raw)
            assert code in json.dumps(payload, ensure_ascii=False)

            status, tickets_json = client.get("/api/v1/incidents")
            assert status == 200
            keys = [i["key"] for i in json.loads(tickets_json)]
            assert any(k.startswith(f"link:{code}/") for k in keys)
        finally:
            lab.restore()

        def closed_mail() -> bool:
            thread_root = first["Message-ID"]
            return any(
                m["In-Reply-To"] == thread_root and m is not first for m in box.messages
            ) and any("resolve" in (m["Message-ID"] or "") for m in box.messages)

        _wait(closed_mail)
        # One ticket per link per episode: every mail belongs to one thread per link.
        roots = {m["In-Reply-To"] or m["Message-ID"] for m in box.messages}
        links_down = len(inventory.communes[2].links)
        assert len(roots) == links_down
