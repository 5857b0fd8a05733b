"""The lab's own servers (portal, DNS, load generator, test CA) on loopback: no privileges."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import aiohttp
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from netwatch.lab.dns import build_response
from netwatch.lab.load import blast
from netwatch.lab.pki import issue_lab_tls
from netwatch.lab.portal import PortalControl, PortalMode, read_control, serve, write_control
from tests.servers import reserved_port
from tests.waiting import async_wait_until

ZONE = "lab.netwatch.vn"
RECORDS = {"dichvucong.lab.netwatch.vn": "10.89.250.10"}


def _ask(name: str, rdtype: str = "A") -> dns.message.Message:
    wire = build_response(dns.message.make_query(name, rdtype).to_wire(), ZONE, RECORDS)
    assert wire is not None
    return dns.message.from_wire(wire)


def test_dns_answers_the_portal_name() -> None:
    reply = _ask("dichvucong.lab.netwatch.vn")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert [str(r) for r in reply.answer[0]] == ["10.89.250.10"]


def test_dns_nodata_nxdomain_refused() -> None:
    nodata = _ask("dichvucong.lab.netwatch.vn", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert not nodata.answer
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    assert _ask("nothing.lab.netwatch.vn").rcode() == dns.rcode.NXDOMAIN
    assert _ask("dichvucong.gov.vn").rcode() == dns.rcode.REFUSED
    assert build_response(b"\x00garbage", ZONE, RECORDS) is None


def test_control_file_defaults_to_healthy(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    assert read_control(path) == PortalControl()
    write_control(path, PortalControl(PortalMode.SLOW, 2.5))
    assert read_control(path) == PortalControl(PortalMode.SLOW, 2.5)
    path.write_text("{not json")
    assert read_control(path) == PortalControl()


async def test_portal_serves_tls_from_the_lab_ca(tmp_path: Path) -> None:
    tls = issue_lab_tls(tmp_path, "dichvucong.lab.netwatch.vn", "127.0.0.1")
    control = tmp_path / "control.json"
    port = reserved_port()  # serve() takes a port; it does not report one it picked
    url = f"https://127.0.0.1:{port}/"
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve("127.0.0.1", port, tls.server_cert, tls.server_key, control, stop)
    )
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    try:
        await _wait_listening(port)
        async with aiohttp.ClientSession() as session:
            async with session.get(url, ssl=context) as resp:
                assert resp.status == 200
                assert "Cổng Dịch vụ công quốc gia" in await resp.text()
            write_control(control, PortalControl(PortalMode.ERROR))
            async with session.get(url, ssl=context) as resp:
                assert resp.status == 503
            # A client that does not trust the lab CA is refused.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with session.get(url):
                    pass
    finally:
        stop.set()
        await server


async def _wait_listening(port: int, timeout_s: float = 10.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""

    async def accepts() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    await async_wait_until(accepts, timeout_s, 0.05, f"something listening on {port}")


def test_load_generator_paces_its_packets() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        port = sink.getsockname()[1]
        sent = blast("127.0.0.1", port, rate_mbps=4.8, duration_s=0.5, source="127.0.0.1")
        sink.setblocking(False)
        received = 0
        while True:
            try:
                received += len(sink.recv(65536))
            except BlockingIOError:
                break
    # 4.8 Mbit/s for 0.5 s is 250 packets of 1200 bytes.
    assert 150 <= sent <= 260
    assert received == sent * 1200
