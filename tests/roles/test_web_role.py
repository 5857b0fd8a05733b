"""Web workers (`netwatch run --role web`), the real CLI as subprocesses on a real nats-server:
they serve the core's very pages from the same observations, hand ISP actions to the leading
core over the bus (503 when none leads), keep answering when the core is SIGKILLed (and say
that alerting is paused), and share one port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from nats.js import JetStreamContext

from alerts.tickets import Actor, ActorKind, Refusal
from netwatch.bus.commands import (
    TicketAction,
    TicketReply,
    decode_ticket_action,
    decode_ticket_reply,
    encode_ticket_action,
    encode_ticket_reply,
)
from netwatch.bus.server import NatsServer
from netwatch.bus.wire import WireError
from netwatch.history import BUCKET_S
from netwatch.inventory import load_inventory
from netwatch.plan import compile_plan
from netwatch.roles.web import reuse_port_socket, warmup_s, warmup_start
from netwatch.signing import LinkSigner
from tests.roles.feeding import Feed
from tests.roles.procs import alive, get, netwatch, read_token, spawned, write_config
from tests.servers import reserved_port
from tests.waiting import WaitTimeoutError, async_wait_until, wait_until

pytestmark = pytest.mark.timeout(240)

SECRET = "web-role-link-secret-f535cbcdfb4dce9fc3e42332"
ENV = {"NETWATCH_DATABASE_URL": "", "NETWATCH_LINK_SECRET": SECRET}
EXTRA = (
    "tickets: {recovery_min: 0.05, line_back_s: null, remind_every_min: null}\n"
    "notifications:\n"
    "  public_url: https://netwatch.example\n"
    "  link_secret: {env: NETWATCH_LINK_SECRET}\n"
    "  smtp: {host: 127.0.0.1, port: 1, from_address: nw@netwatch.example, starttls: false}\n"
)
PAUSED_VI = "Hệ thống cảnh báo đang tạm ngưng từ"
PAUSED_EN = "Alerting has been paused since"


@dataclass
class Proc:
    name: str
    base: str
    pid: int
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _start(
    stack: ExitStack, tmp_path: Path, role: str, name: str, config: Path, url: str, port: int
) -> Proc:
    argv = netwatch(
        "run", "--role", role, "--config", str(config), "--nats", url, "--name", name,
        "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    log = tmp_path / f"{name}.log"
    proc = stack.enter_context(spawned(argv, log, ENV))
    return Proc(name, f"http://127.0.0.1:{port}", proc.pid, log)


async def _serving(*procs: Proc) -> None:
    for p in procs:
        await async_wait_until(
            lambda p=p: asyncio.to_thread(lambda: get(p.base, "/healthz")[0] == 200),
            timeout_s=60,
            interval_s=0.2,
            message=f"{p.name} serving",
        )


async def _page(proc: Proc, path: str) -> str:
    status, body = await asyncio.to_thread(get, proc.base, path)
    assert status == 200, (proc.name, path, status, body[:300])
    return body


# How long a running episode has lasted is counted to each process's own snapshot time (taken
# at most 10 s apart): the one part of a page that may differ between two of them.
_RUNNING = re.compile(r"\d+ (giây|phút|giờ|seconds?|minutes?|hours?)")


async def _same_page(core: Proc, web: Proc, path: str) -> str:
    """Wait until both serve the same page for `path` (each applies the stream at its pace),
    byte for byte but for the running durations."""
    last: list[tuple[str, str]] = []

    async def same() -> str | None:
        a, b = await _page(core, path), await _page(web, path)
        last[:] = [(a, b)]
        return a if _RUNNING.sub("N", a) == _RUNNING.sub("N", b) else None

    try:
        return await async_wait_until(same, timeout_s=30, interval_s=0.3, message=path)
    except AssertionError:
        a, b = last[0] if last else ("", "")
        raise AssertionError(f"{path} differs:\ncore: {a[-1500:]}\nweb: {b[-1500:]}") from None


def _post(base: str, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    reply = httpx.post(base + path, json=body, timeout=15)
    return reply.status_code, reply.json()


def test_ticket_commands_round_trip_and_reject_garbage() -> None:
    at = datetime(2026, 12, 5, 3, 4, 5, tzinfo=UTC)
    action = TicketAction("T-1", "note", Actor(ActorKind.ISP, "VNPT Lâm Đồng"), at, "Đã cử")
    assert decode_ticket_action(encode_ticket_action(action)) == action
    for reply in (TicketReply(), TicketReply(Refusal.ALREADY_ACKNOWLEDGED)):
        assert decode_ticket_reply(encode_ticket_reply(reply)) == reply
    for garbage in (b"", b"\x81", b"\x81\xa1v\x01", encode_ticket_reply(TicketReply())):
        with pytest.raises(WireError):
            decode_ticket_action(garbage)
    with pytest.raises(WireError):
        decode_ticket_reply(encode_ticket_action(action))


async def test_a_web_worker_serves_the_cores_pages_and_hands_actions_to_the_leader(
    tmp_path: Path, bus: tuple[NatsServer, JetStreamContext]
) -> None:
    server, js = bus
    config = write_config(tmp_path / "netwatch.yaml", extra=EXTRA)
    feed = Feed.of(js, config, ENV)
    with ExitStack() as stack:
        core = _start(stack, tmp_path, "core", "core-a", config, server.url, reserved_port())
        await _serving(core)  # the first to start migrates the empty database
        reader = await asyncio.to_thread(read_token, "--data-dir", str(tmp_path / "data"), env=ENV)
        web = _start(stack, tmp_path, "web", "w1", config, server.url, reserved_port())
        await _serving(web)
        assert (await asyncio.to_thread(get, web.base, "/healthz/leader"))[0] == 503

        for _ in range(2):
            await feed.round(up=True)
        for _ in range(4):
            await feed.round(up=False)
        status, body = await async_wait_until(
            lambda: asyncio.to_thread(
                lambda: (
                    (r := get(core.base, "/api/v1/tickets", reader))[0] == 200
                    and json.loads(r[1])
                    and r
                )
            ),
            timeout_s=30,
            interval_s=0.2,
            message="a ticket opened",
        )
        [ticket] = json.loads(body)
        ticket_id = str(ticket["id"])

        # The same observations, the same judgments: the same pages, byte for byte.
        for path in ("/status", "/status/xa/24848", "/status/xa/24848?lang=en"):
            page = await _same_page(core, web, path)
        assert ticket_id in page
        assert PAUSED_EN not in page

        # An ISP acknowledges on the web worker: the leading core applies it.
        link = LinkSigner.from_notifications(
            load_inventory(config, environ={"NETWATCH_LINK_SECRET": SECRET}).notifications  # type: ignore[arg-type]
        ).sign(ticket_id, datetime.now(UTC))
        ack = {"exp": link.exp, "sig": link.sig, "text": "Đã cử kỹ thuật viên"}
        status, answer = await asyncio.to_thread(
            _post, web.base, f"/t/{ticket_id}/acknowledge", ack
        )
        assert (status, answer["state"]) == (200, "acknowledged"), answer
        status, body = await asyncio.to_thread(
            get, core.base, f"/api/v1/tickets/{ticket_id}", reader
        )
        events = [(e["kind"], e["actor"], e["text"]) for e in json.loads(body)["events"]]
        assert ("acknowledged", "isp:VNPT", "Đã cử kỹ thuật viên") in events, events
        assert f"ticket action from a web worker ticket={ticket_id} action=acknowledge" in (
            core.text()
        )
        # The core's refusal comes back as it would locally.
        status, answer = await asyncio.to_thread(
            _post, web.base, f"/t/{ticket_id}/acknowledge", ack
        )
        assert status == 409, answer
        assert "already acknowledged" in str(answer["detail"]), answer

        # Maintenance windows are the store's: the web worker writes the shared SQLite file
        # (the core writing it too), the core reads them.
        made = await asyncio.to_thread(
            subprocess.run,
            netwatch("token", "create", "ops", "--data-dir", str(tmp_path / "data")),
            capture_output=True, text=True, check=True, env={**os.environ, **ENV},
        )  # fmt: skip
        token = made.stdout.split()[0]
        window = {
            "scope": {"commune": "24848"},
            "start": "2030-01-01T08:00:00",
            "end": "2030-01-01T09:00:00",
            "reason": "Nâng cấp thiết bị",
        }
        reply = await asyncio.to_thread(
            lambda: httpx.post(
                web.base + "/api/v1/maintenance",
                json=window,
                headers={"Authorization": f"Bearer {token}"},
                timeout=15,
            )
        )
        assert reply.status_code == 201, reply.text
        status, body = await asyncio.to_thread(get, core.base, "/api/v1/maintenance", reader)
        assert "Nâng cấp thiết bị" in body, (status, body)

        # The core dies: the web worker keeps answering, says alerting is paused, and takes
        # no ticket action (503, as a standby instance).
        os.kill(core.pid, signal.SIGKILL)
        page = await async_wait_until(
            lambda: asyncio.to_thread(
                lambda: (
                    (p := get(web.base, "/status/xa/24848"))[0] == 200
                    and PAUSED_VI in p[1]
                    and p[1]
                )
            ),
            timeout_s=40,
            interval_s=0.5,
            message="the web worker saying that alerting is paused",
        )
        assert re.search(PAUSED_VI + r" \d\d:\d\d \d\d/\d\d/\d{4}; phiếu sự cố", page)
        english = await _page(web, "/status?lang=en")
        assert PAUSED_EN in english
        assert PAUSED_VI in await _page(web, "/admin/login")  # every admin page says it too
        note = {"exp": link.exp, "sig": link.sig, "text": "còn ai không?"}
        status, answer = await asyncio.to_thread(_post, web.base, f"/t/{ticket_id}/note", note)
        assert status == 503, answer
        # Probe workers still publish: the web worker still follows the stream.
        before = await _page(web, "/status/xa/24848")
        for _ in range(3):
            await feed.round(up=True)
        await async_wait_until(
            lambda: asyncio.to_thread(lambda: get(web.base, "/status/xa/24848")[1] != before),
            timeout_s=30,
            interval_s=0.3,
            message="the web worker following the stream without a core",
        )
        assert alive(web.pid)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "netwatch.yaml", extra=EXTRA)


def _listeners(port: int) -> list[set[int]]:
    """Per listening socket on `port`, the processes holding it (ss, as root or the owner); an
    empty set for a socket only an exiting process's last threads still hold."""
    out = subprocess.run(
        ["ss", "-Htlnp", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    return [{int(pid) for pid in re.findall(r"pid=(\d+)", line)} for line in out.splitlines()]


def _serving_pids(port: int) -> set[int]:
    """The processes holding established connections on `port` (ss, as root or the owner)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def test_the_warm_up_covers_ten_icmp_rounds_and_starts_on_a_chart_bucket(config: Path) -> None:
    plan = compile_plan(load_inventory(config, environ={"NETWATCH_LINK_SECRET": SECRET}))
    now = datetime(2026, 12, 5, 3, 32, 10, tzinfo=UTC)
    start = warmup_start(now, plan)
    assert warmup_s(plan) == max(10 * plan.icmp_interval_s, 3 * plan.snmp_interval_s)
    assert now - start >= timedelta(seconds=warmup_s(plan))
    assert now - start < timedelta(seconds=warmup_s(plan) + BUCKET_S)
    assert start.timestamp() % BUCKET_S == 0


def test_the_listening_socket_is_shared_and_answers_without_delayed_acks() -> None:
    """Connections of the web workers' socket get TCP_NODELAY (asyncio sets it only for
    IPPROTO_TCP sockets): without it every page waited out a 40 ms delayed ACK."""
    port = reserved_port()
    with reuse_port_socket("127.0.0.1", port) as one, reuse_port_socket("127.0.0.1", port) as two:
        for sock in (one, two):
            assert sock.proto == socket.IPPROTO_TCP
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_two_web_workers_share_one_port(
    tmp_path: Path, config: Path, nats_server: NatsServer
) -> None:
    port = reserved_port()
    with ExitStack() as stack:
        workers = [
            _start(stack, tmp_path, "web", name, config, nats_server.url, port)
            for name in ("a", "b")
        ]
        for w in workers:
            try:
                wait_until(
                    lambda w=w: f"web worker started name={w.name}" in w.text(),
                    timeout_s=60,
                    message=f"web worker {w.name} started",
                )
            except WaitTimeoutError:
                pytest.fail(f"web worker {w.name} did not start; its log:\n{w.text()[-4000:]}")
        assert all(alive(w.pid) for w in workers), "both bound the port"
        # New connections are spread over both: hold 24 open, each answered once.
        held = []
        try:
            for _ in range(24):
                conn = socket.create_connection(("127.0.0.1", port), timeout=10)
                held.append(conn)
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert conn.recv(65536).startswith(b"HTTP/1.1 200"), "answered"
            serving = _serving_pids(port)
            assert serving == {w.pid for w in workers}, (
                serving,
                [w.text()[-2000:] for w in workers],
            )
        finally:
            for conn in held:
                conn.close()
        # One dies: the other answers every request.
        os.kill(workers[0].pid, signal.SIGKILL)
        # The leader thread turns zombie before the other threads let go of the listening
        # socket; a connection the kernel hands that socket meanwhile is reset with it.
        wait_until(
            lambda: _listeners(port) == [{workers[1].pid}],
            timeout_s=10,
            message="only b listens",
        )
        answers = [get(workers[1].base, "/status")[0] for _ in range(10)]
        assert answers == [200] * 10, f"{answers}; b's log:\n{workers[1].text()[-3000:]}"
