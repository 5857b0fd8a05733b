"""HTTP(S) probe against real HTTPS servers with a trustme test CA and a real DNS server."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta

import pytest

from probes.http import (
    HttpCheck,
    HttpFailure,
    HttpPhase,
    HttpProber,
    HttpResult,
    format_http_result,
)
from tests.probes.http_peers import (
    PAGE,
    PAGE_TEXT,
    PeerPki,
    Peers,
    make_pki,
    server_context,
    temp_dir,
)

# Ports 18400-18419 belong to this module (helper range 18400-18499).
GOOD, EXPIRING, EXPIRED, UNTRUSTED, STUCK, CLOSED, PLAIN = range(18400, 18407)
DNS_PORT = 18410
RESOLVER = f"127.0.0.1:{DNS_PORT}"


@dataclass(frozen=True, slots=True)
class Lab:
    """What the tests talk to."""

    peers: Peers
    pki: PeerPki


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with temp_dir() as directory, Peers() as peers:
        pki = make_pki(directory)
        peers.start_https(GOOD, server_context(pki.good))
        peers.start_https(EXPIRING, server_context(pki.expiring))
        peers.start_https(EXPIRED, server_context(pki.expired))
        peers.start_https(UNTRUSTED, server_context(pki.untrusted))
        peers.start_https(PLAIN, None)
        peers.start_stuck(STUCK)
        peers.start_dns(DNS_PORT)
        yield Lab(peers, pki)
        assert peers.errors == []


@pytest.fixture
async def prober() -> AsyncIterator[HttpProber]:
    async with HttpProber() as p:
        yield p


def check(lab: Lab, url: str, **kw: object) -> HttpCheck:
    kw.setdefault("ca_file", lab.pki.ca_file)
    kw.setdefault("dns_resolver", RESOLVER)
    kw.setdefault("timeout_s", 10.0)
    return HttpCheck(url, **kw)  # type: ignore[arg-type]


def assert_phases_consistent(r: HttpResult) -> None:
    phases = [r.dns_s, r.connect_s, r.tls_s, r.first_byte_s, r.transfer_s]
    present = [p for p in phases if p is not None]
    assert all(p >= 0 for p in present)
    # Phases are contiguous spans of one monotonic clock: they never exceed the total and
    # leave only bookkeeping between them (generous bound: not a speed assertion).
    assert sum(present) <= r.total_s + 1e-6
    assert r.total_s - sum(present) < max(0.05, 0.5 * r.total_s)


async def test_ok_through_configured_resolver(lab: Lab, prober: HttpProber) -> None:
    url = f"https://portal.test:{GOOD}/ok"
    r = await prober.probe(check(lab, url, expect_text=PAGE_TEXT))

    assert r.failure is None, r.detail
    assert r.ok
    assert (r.failed_phase, r.detail, r.url) == (None, "", url)
    assert r.status == 200
    assert r.redirects == 0
    assert r.body_bytes == len(PAGE)
    assert r.content_ok is True
    assert r.started_at.tzinfo is not None
    assert r.started_at.utcoffset() == timedelta(0)
    for phase in (r.dns_s, r.connect_s, r.tls_s, r.first_byte_s, r.transfer_s):
        assert phase is not None
    assert_phases_consistent(r)
    # trustme's default certificates expire on 3000-01-01.
    assert r.cert_not_after is not None
    assert r.cert_not_after.year == 3000
    assert r.cert_days_left is not None
    assert r.cert_days_left > 300_000


async def test_soon_expiring_certificate_days_left(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{EXPIRING}/ok"))

    assert r.failure is None, r.detail
    assert r.cert_not_after == lab.pki.expiring_not_after
    assert r.cert_days_left is not None
    assert math.isclose(r.cert_days_left, 10.0, abs_tol=0.01)


async def test_expired_certificate_is_tls_error(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{EXPIRED}/ok"))

    assert (r.failure, r.failed_phase) == (HttpFailure.TLS_ERROR, HttpPhase.TLS)
    assert "expired" in r.detail
    assert r.connect_s is not None
    assert r.tls_s is None
    assert r.status is None


async def test_untrusted_ca_is_tls_error(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{UNTRUSTED}/ok"))

    assert (r.failure, r.failed_phase) == (HttpFailure.TLS_ERROR, HttpPhase.TLS)
    assert "verify failed" in r.detail


async def test_other_ca_file_trusts_the_other_server(lab: Lab, prober: HttpProber) -> None:
    """One prober holds a context per CA file; each check uses its own."""
    other = check(lab, f"https://portal.test:{UNTRUSTED}/ok", ca_file=lab.pki.other_ca_file)
    good = check(lab, f"https://portal.test:{GOOD}/ok")

    assert (await prober.probe(other)).failure is None
    assert (await prober.probe(good)).failure is None
    assert (await prober.probe(other)).failure is None


async def test_hostname_mismatch_is_tls_error(lab: Lab, prober: HttpProber) -> None:
    c = check(lab, f"https://wrong.test:{GOOD}/ok", resolve={"wrong.test": "127.0.0.1"})
    r = await prober.probe(c)

    assert (r.failure, r.failed_phase) == (HttpFailure.TLS_ERROR, HttpPhase.TLS)
    assert "wrong.test" in r.detail


async def test_ip_literal_has_no_dns_phase(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://127.0.0.1:{GOOD}/ok", dns_resolver=None))

    assert r.failure is None, r.detail
    assert r.dns_s is None
    assert r.connect_s is not None
    assert r.tls_s is not None


async def test_static_resolve_override_skips_dns(lab: Lab, prober: HttpProber) -> None:
    c = check(lab, f"https://Portal.Test:{GOOD}/ok", resolve={"PORTAL.test": "127.0.0.1"})
    r = await prober.probe(c)

    assert r.failure is None, r.detail
    assert r.dns_s is None


async def test_system_resolver(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://localhost:{GOOD}/ok", dns_resolver=None))

    assert r.failure is None, r.detail
    assert r.dns_s is not None
    assert_phases_consistent(r)


async def test_cname_through_resolver(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://alias.test:{GOOD}/ok"))

    assert r.failure is None, r.detail


async def test_nxdomain_is_dns_error(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://missing.test:{GOOD}/ok"))

    assert (r.failure, r.failed_phase) == (HttpFailure.DNS_ERROR, HttpPhase.DNS)
    assert "NXDOMAIN" in r.detail
    assert r.connect_s is None


async def test_silent_resolver_is_timeout_in_dns(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://silent.test:{GOOD}/ok", timeout_s=0.5))

    assert (r.failure, r.failed_phase) == (HttpFailure.TIMEOUT, HttpPhase.DNS)
    assert r.total_s < 5  # bounded by the probe's timeout, not by the resolver


async def test_closed_port_is_connection_refused(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{CLOSED}/ok"))

    assert (r.failure, r.failed_phase) == (HttpFailure.CONNECTION_REFUSED, HttpPhase.CONNECT)
    assert r.dns_s is not None
    assert r.connect_s is None


async def test_stuck_tls_times_out_in_tls_phase(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{STUCK}/ok", timeout_s=0.5))

    assert (r.failure, r.failed_phase) == (HttpFailure.TIMEOUT, HttpPhase.TLS)
    assert "tls" in r.detail
    assert r.connect_s is not None
    assert r.tls_s is None
    assert r.total_s < 5


async def test_slow_first_byte(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/slow?s=0.4"))

    assert r.failure is None, r.detail
    assert r.first_byte_s is not None
    # The server sleeps 0.4 s before its first byte: the wait lands in first_byte, nowhere else.
    assert r.first_byte_s >= 0.4
    assert r.first_byte_s > max(r.dns_s or 0, r.connect_s or 0, r.tls_s or 0, r.transfer_s or 0)
    assert_phases_consistent(r)


async def test_slow_server_times_out_in_http_phase(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/slow?s=30", timeout_s=0.5))

    assert (r.failure, r.failed_phase) == (HttpFailure.TIMEOUT, HttpPhase.HTTP)
    assert r.tls_s is not None
    assert r.first_byte_s is None
    assert r.status is None
    assert r.total_s < 5


async def test_unexpected_status(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/503"))

    assert (r.failure, r.failed_phase) == (HttpFailure.HTTP_STATUS, HttpPhase.HTTP)
    assert r.status == 503
    assert "503" in r.detail


async def test_expected_non_200_status(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/503", expect_status=[503]))

    assert r.failure is None
    assert r.status == 503


async def test_redirect_chain_followed_and_counted(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(
        check(lab, f"https://portal.test:{GOOD}/redirect/3", expect_text=PAGE_TEXT)
    )

    assert r.failure is None, r.detail
    assert r.redirects == 4  # /redirect/3 -> 2 -> 1 -> 0 -> /ok
    assert r.status == 200
    assert r.content_ok is True
    assert_phases_consistent(r)


async def test_redirect_limit(lab: Lab, prober: HttpProber) -> None:
    c = check(lab, f"https://portal.test:{GOOD}/redirect/3", max_redirects=2)
    r = await prober.probe(c)

    assert (r.failure, r.failed_phase) == (HttpFailure.TOO_MANY_REDIRECTS, HttpPhase.HTTP)
    assert r.redirects == 2
    assert r.status == 302


async def test_redirect_loop(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/loop"))

    assert r.failure is HttpFailure.TOO_MANY_REDIRECTS
    assert r.redirects == 5


async def test_expected_redirect_is_not_followed(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/loop", expect_status=(302,)))

    assert r.failure is None
    assert (r.status, r.redirects) == (302, 0)


async def test_absolute_redirect_resolves_new_host(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://127.0.0.1:{GOOD}/abs-redirect"))

    assert r.failure is None, r.detail
    assert r.redirects == 1
    assert r.dns_s is not None  # only the second hop (portal.test) needed DNS


async def test_chunked_body(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/chunked", expect_text=PAGE_TEXT))

    assert r.failure is None, r.detail
    assert r.body_bytes == len(PAGE)
    assert r.content_ok is True


async def test_body_to_eof(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/to-eof", expect_text=PAGE_TEXT))

    assert r.failure is None, r.detail
    assert r.body_bytes == len(PAGE)


async def test_wrong_text_is_content_mismatch(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/wrong", expect_text=PAGE_TEXT))

    assert (r.failure, r.failed_phase) == (HttpFailure.CONTENT_MISMATCH, HttpPhase.CONTENT)
    assert r.content_ok is False
    assert r.status == 200
    assert r.body_bytes > 0


async def test_truncated_body_is_protocol_error(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/eof"))

    assert (r.failure, r.failed_phase) == (HttpFailure.PROTOCOL_ERROR, HttpPhase.HTTP)
    assert "10 of 1000" in r.detail


async def test_not_http_is_protocol_error(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/garbage"))

    assert (r.failure, r.failed_phase) == (HttpFailure.PROTOCOL_ERROR, HttpPhase.HTTP)


async def test_head_request(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"https://portal.test:{GOOD}/ok", method="head"))

    assert r.failure is None, r.detail
    assert r.body_bytes == 0


async def test_plain_http(lab: Lab, prober: HttpProber) -> None:
    r = await prober.probe(check(lab, f"http://portal.test:{PLAIN}/ok", expect_text=PAGE_TEXT))

    assert r.failure is None, r.detail
    assert r.tls_s is None
    assert r.cert_not_after is None
    assert r.cert_days_left is None
    assert r.first_byte_s is not None


async def test_fresh_connection_per_probe(lab: Lab, prober: HttpProber) -> None:
    server = lab.peers.https[GOOD]
    before = server.connections
    c = check(lab, f"https://portal.test:{GOOD}/ok")
    for _ in range(3):
        assert (await prober.probe(c)).failure is None
    assert server.connections - before == 3


def test_check_validation() -> None:
    with pytest.raises(ValueError, match="scheme must be http or https"):
        HttpCheck("ftp://portal.test/")
    with pytest.raises(ValueError, match="only GET and HEAD"):
        HttpCheck("https://portal.test/", method="DELETE")
    with pytest.raises(ValueError, match="is not an IP address"):
        HttpCheck("https://portal.test/", resolve={"portal.test": "portal.test"})
    with pytest.raises(ValueError, match="must be an IP address"):
        HttpCheck("https://portal.test/", dns_resolver="dns.example")
    with pytest.raises(ValueError, match="expect_text needs a body"):
        HttpCheck("https://portal.test/", method="HEAD", expect_text="x")
    with pytest.raises(ValueError, match="timeout_s"):
        HttpCheck("https://portal.test/", timeout_s=0)
    with pytest.raises(ValueError, match="codes must be 100-599"):
        HttpCheck("https://portal.test/", expect_status=(99,))


def test_check_is_frozen_and_hashable() -> None:
    a = HttpCheck("https://portal.test/", resolve={"portal.test": "127.0.0.1"}, expect_status=[200])  # type: ignore[arg-type]
    b = HttpCheck(
        "https://portal.test/", resolve={"portal.test": "127.0.0.1"}, expect_status=(200,)
    )
    assert a == b
    assert hash(a) == hash(b)
    assert a.expect_status == (200,)
    with pytest.raises(AttributeError):
        a.url = "https://other.test/"  # type: ignore[misc]


async def test_format_http_result(lab: Lab, prober: HttpProber) -> None:
    ok = await prober.probe(check(lab, f"https://portal.test:{EXPIRING}/ok", expect_text=PAGE_TEXT))
    text = format_http_result(ok)
    assert "OK" in text
    assert "content      ok" in text
    assert "days left" in text
    assert "+07" in text  # shown in Asia/Ho_Chi_Minh

    failed = await prober.probe(check(lab, f"https://portal.test:{STUCK}/ok", timeout_s=0.3))
    text = format_http_result(failed)
    assert "FAILED  timeout in tls" in text
    assert failed.started_at.tzinfo is UTC


async def test_source_binding_connects_from_that_address(lab: Lab, prober: HttpProber) -> None:
    url = f"https://portal.test:{GOOD}/peer"
    bound = await prober.probe(check(lab, url, expect_text="peer=127.0.0.9"), source="127.0.0.9")
    unbound = await prober.probe(check(lab, url, expect_text="peer=127.0.0.1"))

    assert bound.ok, bound.detail
    assert bound.dns_s is not None  # resolved through the resolver, from the same source
    assert unbound.ok, unbound.detail
    missing = await prober.probe(check(lab, f"https://127.0.0.1:{GOOD}/ok"), source="10.91.99.1")
    assert (missing.failure, missing.failed_phase) == (HttpFailure.CONNECT_ERROR, HttpPhase.CONNECT)


async def test_interface_binding(lab: Lab, prober: HttpProber) -> None:
    url = f"https://127.0.0.1:{GOOD}/ok"
    on_lo = await prober.probe(check(lab, url), interface="lo")
    nowhere = await prober.probe(check(lab, url), interface="nwh-nosuch0")

    assert on_lo.ok, on_lo.detail
    assert (nowhere.failure, nowhere.failed_phase) == (HttpFailure.CONNECT_ERROR, HttpPhase.CONNECT)
    assert "No such device" in nowhere.detail
