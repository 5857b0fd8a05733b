"""The agent's Measurer against real peers on loopback (the lab test is test_measure_on_lab.py).

Loopback stands in for the commune: 127.0.0.1 is the "gateway", each path has its own source
address in 127/8, the HTTPS portal and its DNS server are the probe tests' real peers, and a
throughput source is a small aiohttp server. A fake clock drives the throughput rhythm.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from netwatch.agent.measure import Measurer
from netwatch.agent.model import (
    AgentConfig,
    DeviceConfig,
    PathConfig,
    PortalConfig,
    ThroughputConfig,
)
from tests.probes.http_peers import Peers, make_pki, server_context, temp_dir

# Ports 18460-18469 belong to this module (helper range 18400-18499).
HTTPS_PORT = 18460
DNS_PORT = 18461
BULK_PORT = 18462
BULK_BYTES = 1_000_000

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: raw ICMP sockets")


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[Peers, str]]:
    with temp_dir() as directory, Peers() as running:
        pki = make_pki(directory)
        running.start_https(HTTPS_PORT, server_context(pki.good))
        running.start_dns(DNS_PORT)
        yield running, Path(pki.ca_file).read_text(encoding="ascii")
        assert running.errors == []


@pytest.fixture
async def bulk() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:
        del request
        return web.Response(body=b"x" * BULK_BYTES)

    app = web.Application()
    app.router.add_get("/bulk", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", BULK_PORT).start()
    try:
        yield f"http://127.0.0.1:{BULK_PORT}/bulk"
    finally:
        await runner.cleanup()


def config(ca_pem: str, **changes: object) -> AgentConfig:
    portal = PortalConfig(
        id="dvcqg",
        url=f"https://portal.test:{HTTPS_PORT}/peer",
        expect_status=(200,),
        expect_text=None,
        ca_pem=ca_pem,
        dns_resolver=f"127.0.0.1:{DNS_PORT}",
        timeout_s=5.0,
    )
    fields: dict[str, object] = {
        "commune": "24848",
        "agent": "24848-agent",
        "revision": "r1",
        "interval_s": 10.0,
        "echoes": 2,
        "lan_gateway": "127.0.0.1",
        "paths": (
            PathConfig("vnpt-tslcd", "127.0.0.2", None, "127.0.0.1"),
            PathConfig("viettel-internet", "127.0.0.3", "lo", "127.0.0.1"),
        ),
        "portals": (portal,),
        "devices": (
            DeviceConfig("Kiosk 1", "kiosk", "127.0.0.1"),
            DeviceConfig("Máy in", "printer", "127.0.0.4"),
        ),
    }
    fields.update(changes)
    return AgentConfig(**fields)  # type: ignore[arg-type]


async def test_round_measures_gateway_paths_portals_and_devices(
    peers: tuple[Peers, str],
) -> None:
    _, ca_pem = peers
    measurer = Measurer()
    at = datetime.now(UTC)
    try:
        # Each path must reach the portal from its own source: the page names the client.
        paths = config(ca_pem).paths
        cfg = config(
            ca_pem,
            portals=tuple(
                PortalConfig(
                    id=f"peer-{p.source}",
                    url=f"https://portal.test:{HTTPS_PORT}/peer",
                    expect_status=(200,),
                    expect_text=f"peer={p.source}",
                    ca_pem=ca_pem,
                    dns_resolver=f"127.0.0.1:{DNS_PORT}",
                    timeout_s=5.0,
                )
                for p in paths
            ),
        )
        result = await measurer(cfg, 7, at)
    finally:
        measurer.close()

    assert (result.commune, result.agent, result.seq, result.at) == ("24848", "24848-agent", 7, at)
    assert result.config_revision == "r1"
    assert result.gateway is not None
    assert result.gateway.answered
    assert result.lan_up is True
    assert [p.link for p in result.paths] == ["vnpt-tslcd", "viettel-internet"]
    assert all(p.ping.received == 2 for p in result.paths)
    assert [(d.name, d.ping.answered) for d in result.devices] == [
        ("Kiosk 1", True),
        ("Máy in", True),
    ]
    # Every portal over every path; a portal expecting path X's source passes only over X.
    verdicts = {(t.portal, t.link): t.ok for t in result.portals}
    assert verdicts == {
        ("peer-127.0.0.2", "vnpt-tslcd"): True,
        ("peer-127.0.0.2", "viettel-internet"): False,
        ("peer-127.0.0.3", "vnpt-tslcd"): False,
        ("peer-127.0.0.3", "viettel-internet"): True,
    }
    ok = next(t for t in result.portals if t.ok)
    assert None not in (ok.dns_s, ok.connect_s, ok.tls_s, ok.first_byte_s)
    assert ok.status == 200
    wrong = next(t for t in result.portals if not t.ok)
    assert (wrong.failure, wrong.failed_phase) == ("content_mismatch", "content")
    assert result.throughput == ()  # off by default


async def test_a_path_whose_source_is_gone_fails_alone(peers: tuple[Peers, str]) -> None:
    _, ca_pem = peers
    measurer = Measurer()
    cfg = config(
        ca_pem,
        paths=(
            PathConfig("vnpt-tslcd", "127.0.0.2", None, "127.0.0.1"),
            PathConfig("viettel-internet", "10.91.99.9", None, "127.0.0.1"),  # not on this host
        ),
    )
    try:
        result = await measurer(cfg, 1, datetime.now(UTC))
    finally:
        measurer.close()
    good, gone = result.paths
    assert good.ping.answered
    assert (gone.ping.answered, gone.ping.failure) == (False, "send_error")
    by_link = {t.link: t for t in result.portals}
    assert by_link["vnpt-tslcd"].ok
    assert not by_link["viettel-internet"].ok
    assert by_link["viettel-internet"].failed_phase == "dns"  # the query could not leave


async def test_throughput_is_paced_capped_and_at_most_every_every_s(
    peers: tuple[Peers, str], bulk: str
) -> None:
    _, ca_pem = peers
    clock = FakeClock()
    measurer = Measurer(clock=clock)
    throughput = ThroughputConfig(
        enabled=True, url=bulk, max_bytes=200_000, every_s=600.0, rate_limit_bps=1_600_000
    )
    cfg = config(ca_pem, throughput=throughput, portals=(), devices=())
    try:
        first = await measurer(cfg, 1, datetime.now(UTC))
        clock.now += 60  # next round: not due yet
        second = await measurer(cfg, 2, datetime.now(UTC))
        clock.now += 600  # due again
        third = await measurer(cfg, 3, datetime.now(UTC))
    finally:
        measurer.close()

    assert [t.link for t in first.throughput] == ["vnpt-tslcd", "viettel-internet"]
    for sample in first.throughput:
        assert sample.error is None
        assert sample.bytes == 200_000  # never more than max_bytes
        assert sample.bps is not None
        # The reader paces itself: never faster than the limit (200 kB at 1.6 Mbit/s >= 1 s).
        assert sample.bps <= throughput.rate_limit_bps * 1.05
    assert second.throughput == ()
    assert [t.link for t in third.throughput] == ["vnpt-tslcd", "viettel-internet"]
