"""The HTTP edge (netwatch.web.edge) on a real uvicorn over loopback, with raw sockets.

Issue 15, findings 1, 2, 6 (HSTS) and 15: bodies limited while they stream and the API's token
checked before its body is read; slow and idle clients closed; the security headers. Every
"refused before the body" test never sends the body at all: an answer that arrives proves the
server did not wait for (or buffer) it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from netwatch.inventory import Inventory
from netwatch.web.edge import EdgeOptions
from tests.waiting import wait_until
from tests.web.edge_server import Edge, serving

CLOSE_BOUND_S = 30.0
TEST_EDGE = EdgeOptions(body_timeout_s=1.0, header_timeout_s=1.0)


@pytest.fixture
def edge(tmp_path: Path, inventory: Inventory) -> Iterator[Edge]:
    """NetWatch behind the edge with short body and header timeouts."""
    with serving(tmp_path, inventory, TEST_EDGE) as running:
        yield running


@dataclass(frozen=True)
class Answer:
    """A raw HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def read_answer(sock: socket.socket) -> Answer:
    """Read one HTTP/1.1 answer with a Content-Length (the edge's own always have one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the answer's body"
        body += chunk
    return Answer(status, headers, body[:length])


def closed_by_server(sock: socket.socket, *, trickle: bytes = b"", every_s: float = 0.2) -> bool:
    """True when the server closes the connection within CLOSE_BOUND_S; while waiting, send
    `trickle` every `every_s` (a slow client), or nothing (an idle one)."""
    deadline = time.monotonic() + CLOSE_BOUND_S
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
            continue
        if trickle:
            try:
                sock.sendall(trickle)
            except OSError:
                return True
    return False


def _post_head(path: str, length: int | None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    chunked = "" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"POST {path} HTTP/1.1\r\nHost: netwatch\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{size}{chunked}{extra}\r\n"
    ).encode()


# --- finding 1: bodies --------------------------------------------------------------------------


def test_a_body_announced_too_long_is_refused_before_a_byte_of_it(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(_post_head("/t/T-1/note", 300 * 1024 * 1024))  # and never the body
        answer = read_answer(sock)
    assert answer.status == 413
    assert b"request body too large: at most 64 KiB" in answer.body
    assert answer.headers["connection"] == "close"


def test_a_streamed_body_is_cut_at_the_limit(edge: Edge) -> None:
    """Chunked, no length announced: the edge counts what arrives and answers 413 while the
    client is still sending; far less than the whole body went out."""
    chunk = b"x" * 16384
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    total = 64 * 1024 * 1024
    sent = 0
    with edge.connect() as sock:
        sock.sendall(_post_head("/t/T-1/note", None))
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except OSError:
                break
            sent += len(chunk)
        answer = read_answer(sock)
    assert answer.status == 413
    assert sent < total // 4, f"the server read {sent} bytes before answering"


def test_api_writes_are_refused_before_their_body_without_a_valid_token(edge: Edge) -> None:
    """A body within the limit, announced and never sent: the token decides first."""
    cases = {
        "": (401, "missing API token"),
        "Authorization: Bearer nw_forged.forged\r\n": (401, "invalid API token"),
        f"Authorization: Bearer {edge.token(('read',))}\r\n": (403, "lacks the 'write' scope"),
    }
    for header, (status, detail) in cases.items():
        with edge.connect() as sock:
            sock.sendall(_post_head("/api/v1/maintenance", 60_000, header))
            answer = read_answer(sock)
        assert (answer.status, detail in answer.body.decode()) == (status, True), answer
    # A good token goes on to the route, which reads the body.
    body = (
        b'{"scope": {"commune": "24848"}, "start": "2026-12-01T08:00", "end": "x", "reason": "r"}'
    )
    with edge.connect() as sock:
        head = _post_head(
            "/api/v1/maintenance", len(body), f"Authorization: Bearer {edge.token()}\r\n"
        )
        sock.sendall(head.replace(b"x-www-form-urlencoded", b"json") + body)
        assert read_answer(sock).status == 422  # "x" is no end: the route read the body


# --- finding 2: slow clients --------------------------------------------------------------------


def test_a_body_promised_and_not_sent_gets_408_and_the_connection_closes(edge: Edge) -> None:
    token = edge.token()
    with edge.connect() as sock:
        head = _post_head("/api/v1/tickets/T-1/notes", 100, f"Authorization: Bearer {token}\r\n")
        sock.sendall(head + b'{"text": ')  # ten of the hundred bytes, then nothing
        answer = read_answer(sock)
        assert answer.status == 408
        assert b"not received within 1 s" in answer.body
        assert closed_by_server(sock)


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_idle_and_trickling_clients_are_closed(
    tmp_path: Path, inventory: Inventory, http: str
) -> None:
    with serving(tmp_path, inventory, TEST_EDGE, http) as edge:
        with edge.connect() as sock:
            assert closed_by_server(sock), "an idle connection stayed open"
        with edge.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: netwatch\r\n")
            assert closed_by_server(sock, trickle=b"X-Slow: 1\r\n"), "a trickling client stayed"
        with edge.connect() as sock:  # a request still works between the two deadlines
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: netwatch\r\n\r\n")
            assert read_answer(sock).status == 200


def test_a_slow_client_after_a_first_answer_is_cut_off_too(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: netwatch\r\n\r\n")
        assert read_answer(sock).status == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert closed_by_server(sock, trickle=b"X-Slow: 1\r\n"), "a trickling client stayed"


def test_connections_beyond_the_limit_get_503(tmp_path: Path, inventory: Inventory) -> None:
    options = replace(TEST_EDGE, max_connections=3, header_timeout_s=60.0)
    with serving(tmp_path, inventory, options) as edge:
        idle = [edge.connect(), edge.connect()]
        try:
            with edge.connect() as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: netwatch\r\n\r\n")
                assert read_answer(sock).status == 503
        finally:
            for sock in idle:
                sock.close()

        def answered() -> bool:
            return httpx.get(edge.base + "/healthz").status_code == 200

        wait_until(answered, 20, 0.1, "served again once the idle connections left")


# --- findings 6 (HSTS) and 15: headers ----------------------------------------------------------


def _csp_hashes(policy: str) -> set[str]:
    return set(re.findall(r"'sha256-([^']+)'", policy))


def test_every_answer_has_the_security_headers_and_csp_allows_exactly_the_pages_script(
    edge: Edge,
) -> None:
    for path in ("/status", "/status/xa/24848", "/api/v1/links", "/healthz", "/nowhere"):
        answer = httpx.get(edge.base + path)
        headers = answer.headers
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        # The edge sends no-referrer where a page says nothing (the status pages say same-origin).
        assert headers["referrer-policy"] in ("no-referrer", "same-origin"), path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
        assert "strict-transport-security" not in headers, "HSTS over plain http"
        inline = re.findall(r"<script[^>]*>(.*?)</script>", answer.text, re.S)
        for script in inline:
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert digest in _csp_hashes(policy), f"{path}: an inline script the CSP refuses"
    page = httpx.get(edge.base + "/status/xa/24848").text
    assert re.search(r"<script data-refresh-ms=\"\d+\">", page), "the page reload is gone"


def test_no_swagger_ui_from_a_cdn_and_the_schema_stays(edge: Edge) -> None:
    assert httpx.get(edge.base + "/docs").status_code == 404
    assert httpx.get(edge.base + "/redoc").status_code == 404
    schema = httpx.get(edge.base + "/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/maintenance" in schema.json()["paths"]


def test_hsts_over_https_from_a_trusted_proxy_only(tmp_path: Path, inventory: Inventory) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with serving(tmp_path, inventory, TEST_EDGE) as edge:  # the default: loopback trusted
        hsts = httpx.get(edge.base + "/healthz", headers=https).headers
        assert hsts["strict-transport-security"].startswith("max-age=31536000")
    elsewhere = replace(TEST_EDGE, trusted_proxies="10.11.12.13")  # a proxy we are not
    with serving(tmp_path, inventory, elsewhere) as edge:
        headers = httpx.get(edge.base + "/healthz", headers=https).headers
        assert "strict-transport-security" not in headers, "an untrusted X-Forwarded-Proto"
