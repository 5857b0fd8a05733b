"""DNS probe against a real DNS server on loopback UDP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

try:
    from tests.probes.http_peers import Peers
except ImportError:  # tests/probes is not a package: pytest put this folder on sys.path
    from http_peers import Peers  # type: ignore[no-redef,import-not-found,unused-ignore]

from probes.dns import DnsFailure, parse_resolver, probe_dns, resolve_host

# Ports 18420-18429 belong to this module (helper range 18400-18499).
DNS_PORT = 18420
CLOSED_UDP_PORT = 18421
RESOLVER = "127.0.0.1"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[Peers]:
    with Peers() as peers:
        peers.start_dns(DNS_PORT)
        yield peers
        assert peers.errors == []


@pytest.mark.usefixtures("dns_server")
class TestProbeDns:
    """probe_dns against every kind of answer the server gives."""

    async def test_a_record(self) -> None:
        r = await probe_dns("portal.test", RESOLVER, port=DNS_PORT)

        assert r.failure is None, r.detail
        assert r.ok
        assert r.addresses == ("127.0.0.1",)
        assert (r.name, r.resolver, r.rtype) == ("portal.test", RESOLVER, "A")
        assert r.rtt_s is not None
        assert r.rtt_s >= 0
        assert r.started_at.utcoffset() == timedelta(0)

    async def test_several_addresses(self) -> None:
        r = await probe_dns("multi.test", RESOLVER, port=DNS_PORT)

        assert sorted(r.addresses) == ["127.0.0.1", "127.0.0.2"]

    async def test_cname_chain(self) -> None:
        r = await probe_dns("alias.test", RESOLVER, port=DNS_PORT)

        assert r.failure is None, r.detail
        assert r.addresses == ("127.0.0.1",)

    async def test_aaaa(self) -> None:
        r = await probe_dns("v6only.test", RESOLVER, port=DNS_PORT, rtype="aaaa")

        assert r.addresses == ("::1",)
        assert r.rtype == "AAAA"

    async def test_truncated_answer_is_asked_again_over_tcp(self) -> None:
        # The server sets TC over UDP for this name and answers it only over TCP.
        r = await probe_dns("big.test", RESOLVER, port=DNS_PORT)

        assert r.failure is None, r.detail
        assert sorted(r.addresses) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        assert r.rtt_s is not None

    async def test_nxdomain(self) -> None:
        r = await probe_dns("missing.test", RESOLVER, port=DNS_PORT)

        assert r.failure is DnsFailure.NXDOMAIN
        assert r.addresses == ()
        assert r.rtt_s is not None  # an answer came, so its time is known

    async def test_no_answer(self) -> None:
        r = await probe_dns("portal.test", RESOLVER, port=DNS_PORT, rtype="AAAA")

        assert r.failure is DnsFailure.NO_ANSWER
        assert r.addresses == ()

    async def test_servfail(self) -> None:
        r = await probe_dns("servfail.test", RESOLVER, port=DNS_PORT)

        assert r.failure is DnsFailure.SERVFAIL
        assert r.detail == "SERVFAIL"

    async def test_other_error_rcode_reported_as_servfail(self) -> None:
        r = await probe_dns("notimp.test", RESOLVER, port=DNS_PORT)

        assert r.failure is DnsFailure.SERVFAIL
        assert r.detail == "NOTIMP"

    async def test_refused(self) -> None:
        r = await probe_dns("refused.test", RESOLVER, port=DNS_PORT)

        assert r.failure is DnsFailure.REFUSED

    async def test_silent_server_times_out(self) -> None:
        r = await probe_dns("silent.test", RESOLVER, port=DNS_PORT, timeout_s=0.3)

        assert r.failure is DnsFailure.TIMEOUT
        assert r.rtt_s is None

    async def test_resolve_host_falls_back_to_aaaa(self) -> None:
        r = await resolve_host("v6only.test", RESOLVER, port=DNS_PORT)

        assert r.failure is None, r.detail
        assert (r.rtype, r.addresses) == ("AAAA", ("::1",))

    async def test_resolve_host_prefers_a(self) -> None:
        r = await resolve_host("portal.test", RESOLVER, port=DNS_PORT)

        assert (r.rtype, r.addresses) == ("A", ("127.0.0.1",))


async def test_closed_port_is_transport_error() -> None:
    r = await probe_dns("portal.test", RESOLVER, port=CLOSED_UDP_PORT, timeout_s=2.0)

    assert r.failure is DnsFailure.TRANSPORT_ERROR
    assert r.rtt_s is None
    assert r.detail


async def test_unsupported_rtype() -> None:
    with pytest.raises(ValueError, match="only A and AAAA"):
        await probe_dns("portal.test", RESOLVER, rtype="MX")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[fd00::53]", ("fd00::53", 53)),
    ],
)
def test_parse_resolver(text: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dns.example", "must be an IP address"),
        ("127.0.0.1:0", "out of range"),
        ("[::1", "missing"),
        ("[::1]5353", "expected ':port'"),
    ],
)
def test_parse_resolver_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_resolver(text)


@pytest.mark.usefixtures("dns_server")
async def test_query_from_a_bound_source_and_interface() -> None:
    bound = await probe_dns("whoami.test", RESOLVER, port=DNS_PORT, source="127.0.0.7")
    unbound = await probe_dns("whoami.test", RESOLVER, port=DNS_PORT)
    on_lo = await resolve_host("whoami.test", RESOLVER, port=DNS_PORT, interface="lo")
    nowhere = await probe_dns("portal.test", RESOLVER, port=DNS_PORT, interface="nwd-nosuch0")

    assert bound.addresses == ("127.0.0.7",), bound.detail
    assert unbound.addresses == ("127.0.0.1",), unbound.detail
    assert on_lo.ok, on_lo.detail
    assert nowhere.failure is DnsFailure.TRANSPORT_ERROR
