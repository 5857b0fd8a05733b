"""The embedded nats-server: starts ready, stops clean, never outlives NetWatch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import nats
import pytest
import trustme

from netwatch.bus.auth import CA_ENV, TOKEN_ENV, connect_options, new_token, write_token
from netwatch.bus.server import (
    NatsServer,
    NatsServerError,
    NatsServerOptions,
    find_nats_server,
    nats_server_version,
    running_nats_server,
)
from tests.waiting import wait_until


def _gone(pid: int) -> bool:
    """No such process (or only its zombie, waiting for a reaper that is not us)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_the_venv_has_the_pinned_server() -> None:
    binary = find_nats_server()
    assert binary.parent == Path(sys.executable).parent
    assert nats_server_version(binary).startswith("2.15.")


def _connect_raw(url: str, token: str | None) -> str:
    """What the server answers a client's CONNECT (with this token) and PING, over a plain
    socket: nats-py leaks the socket of a refused connection to the garbage collector."""
    host, _, port = url.removeprefix("nats://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"INFO ")
        connect = {"verbose": False, "pedantic": False, "protocol": 1}
        if token is not None:
            connect["auth_token"] = token
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        return reader.readline().decode().strip()


async def test_a_server_with_a_token_refuses_clients_without_it(tmp_path: Path) -> None:
    token = new_token()
    options = NatsServerOptions(data_dir=tmp_path, token=token)
    async with running_nats_server(options) as server:
        assert stat.S_IMODE(server.config_file.stat().st_mode) == 0o600  # it holds the token
        for wrong in (None, "not-the-token"):
            answer = await asyncio.to_thread(_connect_raw, server.url, wrong)
            assert answer == "-ERR 'Authorization Violation'"
        assert await asyncio.to_thread(_connect_raw, server.url, token) == "PONG"
        environ = {TOKEN_ENV: token}
        nc = await nats.connect(server.url, allow_reconnect=False, **connect_options(environ))
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()


def test_connect_options_come_from_the_environment(tmp_path: Path) -> None:
    assert connect_options({}) == {}
    assert connect_options({TOKEN_ENV: " t0k3n \n"}) == {"token": "t0k3n"}
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = connect_options({CA_ENV: str(ca_file)})["tls"]
    assert isinstance(tls, ssl.SSLContext)
    assert tls.verify_mode is ssl.CERT_REQUIRED
    path = write_token(tmp_path, "abc")
    assert path.read_text() == "abc\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_starts_ready_with_jetstream_and_stops_leaving_nothing(tmp_path: Path) -> None:
    async with running_nats_server(NatsServerOptions(data_dir=tmp_path)) as server:
        assert server.url.startswith("nats://127.0.0.1:")
        nc = await nats.connect(server.url, allow_reconnect=False)
        try:
            await nc.jetstream().account_info()  # JetStream answers
        finally:
            await nc.close()
        varz = await asyncio.to_thread(_get_json, f"{server.monitor_url}/varz")
        assert varz["jetstream"]["config"]["max_storage"] == 2 * 1024**3
        assert varz["version"].startswith("2.15.")
        config = server.config_file.read_text()
        assert 'listen: "127.0.0.1:-1"' in config
        assert (tmp_path / "nats" / "jetstream").is_dir()
        pid = server.pid
        assert not _gone(pid)
    assert _gone(pid)
    assert not list((tmp_path / "nats").glob("*.ports"))  # removed by a clean shutdown
    assert "Server Exiting" in server.log_file.read_text()


async def test_a_taken_port_fails_with_the_servers_reason(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        opts = NatsServerOptions(data_dir=tmp_path, port=port)
        with pytest.raises(NatsServerError, match="address already in use"):
            async with running_nats_server(opts):
                pytest.fail("started on a taken port")


async def test_the_server_outlives_a_stop_timeout_only_until_sigkill(tmp_path: Path) -> None:
    # A server that ignores SIGTERM (stopped with SIGSTOP) is killed after stop_timeout_s.
    opts = NatsServerOptions(data_dir=tmp_path, stop_timeout_s=0.5)
    async with running_nats_server(opts) as server:
        os.kill(server.pid, signal.SIGSTOP)
    assert _gone(server.pid)


_ORPHAN = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from netwatch.bus.server import NatsServerOptions, running_nats_server

    async def main():
        async with running_nats_server(NatsServerOptions(data_dir=Path(sys.argv[1]))) as s:
            print(s.pid, flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def test_the_server_dies_with_its_parent_even_by_sigkill(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # printed once the server is ready
        assert line.strip().isdigit(), f"no server pid from the parent: {line!r}"
        server_pid = int(line)
        assert not _gone(server_pid)
        parent.kill()
        parent.wait(timeout=10)
        wait_until(lambda: _gone(server_pid), timeout_s=15, message="nats-server gone")
    finally:
        parent.kill()
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()


async def test_restarts_on_the_same_store_keep_the_streams(tmp_path: Path) -> None:
    opts = NatsServerOptions(data_dir=tmp_path)
    async with running_nats_server(opts) as server:
        nc = await nats.connect(server.url, allow_reconnect=False)
        await nc.jetstream().add_stream(name="KEEP", subjects=["keep.>"])
        await nc.jetstream().publish("keep.a", b"1")
        await nc.close()
    async with running_nats_server(opts) as again:
        nc = await nats.connect(again.url, allow_reconnect=False)
        try:
            info = await nc.jetstream().stream_info("KEEP")  # ready means JetStream recovered
            assert info.state.messages == 1
        finally:
            await nc.close()


async def test_fixture_server_is_reachable(nats_server: NatsServer) -> None:
    reader, writer = await asyncio.open_connection(
        *nats_server.url.removeprefix("nats://").split(":")
    )
    assert (await reader.readline()).startswith(b"INFO ")
    writer.close()
    await writer.wait_closed()
