"""One round of the commune agent: the view from inside the commune centre (issue 11).

``Measurer()(config, seq, at)`` measures, all at once and within ``config.interval_s``:

* the router's LAN address (``lan_gateway``) and the front-office devices, pinged from the box;
* every WAN path apart: the path's ``target`` pinged from the path's ``source`` address (the
  router policy-routes that source by the path's link) or out of its ``interface``;
* every portal over every path as an officer's browser reaches it: DNS (the portal's resolver,
  asked from the path's source), TCP connect, TLS, first byte and total, the expected status and
  text, a fresh connection each time (``probes.http``);
* when enabled and due (at most once per ``every_s`` per path), a short download per path, at
  most ``max_bytes`` read at most at ``rate_limit_bps``, after the portals so it never inflates
  their timings.

Nothing here raises for a network fault: a path that is down is a ``Ping`` without replies and a
``PortalTiming`` with a failure. The round's budget is 90 % of the interval; every wait is bounded
by what is left of it, so a round never overlaps the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import urlsplit

from probes.dns import bound_socket
from probes.http import HttpCheck, HttpFailure, HttpPhase, HttpProber, HttpResult
from probes.icmp import IcmpPinger, IcmpUnavailableError, PingFailure, PingResult

from . import wire
from .model import (
    AgentConfig,
    DevicePing,
    InsideRound,
    PathConfig,
    PathPing,
    Ping,
    PortalConfig,
    PortalTiming,
    Throughput,
    ThroughputConfig,
)

__all__ = ["Measurer"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

BUDGET_FRACTION: Final = 0.9  # of the interval: the round's share, the rest is slack
_MAX_SPACING_S: Final = 1.0
_MAX_PING_TIMEOUT_S: Final = 2.0
_THROUGHPUT_RCVBUF: Final = 64 * 1024  # a small window: the sender cannot outrun our pacing
_READ_BYTES: Final = 16 * 1024
_HEAD_LIMIT: Final = 64 * 1024


class Measurer:
    """Measures one agent round; keeps what must outlive a round (throughput rhythm, CA files).

    ``clock`` is monotonic seconds (a fake in unit tests). Call ``close()`` when done to remove
    the CA files written for the portals' ``ca_pem``.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._prober = HttpProber()
        self._throughput_at: dict[str, float] = {}  # link -> when its last sample started
        self._ca_dir: Path | None = None
        self._ca_files: dict[str, str] = {}  # PEM digest -> file

    def close(self) -> None:
        """Forget the SSL contexts and remove the CA files."""
        self._prober = HttpProber()
        for path in self._ca_files.values():
            Path(path).unlink(missing_ok=True)
        self._ca_files.clear()
        if self._ca_dir is not None:
            with contextlib.suppress(OSError):
                self._ca_dir.rmdir()
            self._ca_dir = None

    async def __call__(self, config: AgentConfig, seq: int, at: datetime) -> InsideRound:
        """One round of ``config``'s measurements, numbered ``seq``, started at ``at``."""
        budget_s = max(1.0, config.interval_s * BUDGET_FRACTION)
        deadline = self._clock() + budget_s
        echoes = max(1, config.echoes)
        spacing_s = min(_MAX_SPACING_S, config.interval_s / (10 * echoes))
        ping_timeout_s = min(_MAX_PING_TIMEOUT_S, config.interval_s / 5)

        local_targets = [d.address for d in config.devices]
        if config.lan_gateway is not None:
            local_targets.append(config.lan_gateway)

        async def local() -> list[Ping]:
            return await _ping(local_targets, None, echoes, spacing_s, ping_timeout_s)

        async def path_ping(path: PathConfig) -> Ping:
            pings = await self._bounded(
                _ping([path.target], path, echoes, spacing_s, ping_timeout_s),
                deadline,
                lambda: [_no_answer(path.target)],
            )
            return pings[0]

        portal_jobs = [(portal, path) for portal in config.portals for path in config.paths]

        local_pings, path_pings, timings = await asyncio.gather(
            self._bounded(local(), deadline, lambda: [_no_answer(t) for t in local_targets]),
            asyncio.gather(*(path_ping(p) for p in config.paths)),
            asyncio.gather(*(self._portal(portal, path, deadline) for portal, path in portal_jobs)),
        )

        throughput = await self._throughput(config.throughput, config.paths, deadline)

        by_address = dict(zip(local_targets, local_pings, strict=True))
        return InsideRound(
            commune=config.commune,
            agent=config.agent,
            seq=seq,
            at=at,
            config_revision=config.revision,
            gateway=by_address[config.lan_gateway] if config.lan_gateway is not None else None,
            paths=tuple(
                PathPing(path.link, ping)
                for path, ping in zip(config.paths, path_pings, strict=True)
            ),
            portals=tuple(timings),
            devices=tuple(DevicePing(d.name, by_address[d.address]) for d in config.devices),
            throughput=throughput,
        )

    async def _bounded(
        self, work: Awaitable[_T], deadline: float, fallback: Callable[[], _T]
    ) -> _T:
        """``work``'s result, or ``fallback()`` if it is not done by ``deadline``."""
        try:
            async with asyncio.timeout(max(0.0, deadline - self._clock())):
                return await work
        except TimeoutError:
            return fallback()

    # --- portals ---------------------------------------------------------------------------

    def _ca_file(self, pem: str) -> str:
        """A file holding ``pem`` (HttpCheck trusts CA files), written once per content."""
        digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
        path = self._ca_files.get(digest)
        if path is None:
            if self._ca_dir is None:
                self._ca_dir = Path(tempfile.mkdtemp(prefix="netwatch-agent-ca-"))
            file = self._ca_dir / f"{digest}.pem"
            file.write_text(pem, encoding="ascii")
            path = self._ca_files[digest] = str(file)
        return path

    async def _portal(
        self, portal: PortalConfig, path: PathConfig, deadline: float
    ) -> PortalTiming:
        """One portal over one path, within the round's budget."""
        timeout_s = max(0.1, min(portal.timeout_s, deadline - self._clock()))
        try:
            check = HttpCheck(
                portal.url,
                timeout_s=timeout_s,
                expect_status=portal.expect_status,
                expect_text=portal.expect_text,
                ca_file=self._ca_file(portal.ca_pem) if portal.ca_pem else None,
                dns_resolver=portal.dns_resolver,
            )
        except (ValueError, OSError) as exc:
            _log.warning("agent portal %s not checkable: %s", portal.id, exc)
            return PortalTiming(
                portal.id, path.link, False, None, None, None, None, 0.0, None,
                HttpFailure.PROTOCOL_ERROR.value, HttpPhase.DNS.value,
            )  # fmt: skip
        try:
            # The SSL context is built (CA loaded) before the clock starts, not in tls_s.
            self._prober.ssl_context(check.ca_file)
            result = await self._prober.probe(check, source=path.source, interface=path.interface)
        except (ssl.SSLError, OSError) as exc:  # a CA file that does not load
            _log.warning("agent portal %s: %s", portal.id, exc)
            return PortalTiming(
                portal.id, path.link, False, None, None, None, None, 0.0, None,
                HttpFailure.TLS_ERROR.value, HttpPhase.TLS.value,
            )  # fmt: skip
        return _timing(portal.id, path.link, result)

    # --- throughput ------------------------------------------------------------------------

    async def _throughput(
        self, config: ThroughputConfig, paths: Sequence[PathConfig], deadline: float
    ) -> tuple[Throughput, ...]:
        """A short download over every path whose sample is due, paced, within the budget."""
        if not config.enabled or not config.url:
            return ()
        now = self._clock()
        due = [
            p
            for p in paths
            if (last := self._throughput_at.get(p.link)) is None or now - last >= config.every_s
        ]
        if not due or deadline - now < 0.5:
            return ()
        for path in due:
            self._throughput_at[path.link] = now
        url = config.url
        samples = await asyncio.gather(
            *(_download(url, path, config, deadline - now, self._prober) for path in due)
        )
        return tuple(samples)


def _timing(portal: str, link: str, r: HttpResult) -> PortalTiming:
    return PortalTiming(
        portal=portal,
        link=link,
        ok=r.ok,
        dns_s=r.dns_s,
        connect_s=r.connect_s,
        tls_s=r.tls_s,
        first_byte_s=r.first_byte_s,
        total_s=r.total_s,
        status=r.status,
        failure=None if r.failure is None else r.failure.value,
        failed_phase=None if r.failed_phase is None else r.failed_phase.value,
    )


def _no_answer(target: str, failure: PingFailure = PingFailure.NO_REPLY, sent: int = 0) -> Ping:
    return Ping(target, sent, 0, None, None, failure.value)


def _as_ping(r: PingResult) -> Ping:
    return Ping(
        target=r.address,
        sent=r.sent,
        received=r.received,
        rtt_median_s=r.rtt_median_s,
        rtt_max_s=r.rtt_max_s,
        failure=None if r.failure is None else r.failure.value,
    )


async def _ping(
    targets: list[str],
    path: PathConfig | None,
    echoes: int,
    spacing_s: float,
    timeout_s: float,
) -> list[Ping]:
    """One round to ``targets`` from the box (``path``: from that path's source/interface)."""
    if not targets:
        return []
    source = path.source if path is not None else None
    interface = path.interface if path is not None else None
    try:
        pinger = await IcmpPinger.open(rate_pps=1000, source=source, interface=interface)
    except (OSError, IcmpUnavailableError) as exc:
        # The path's address is gone from the box (or no ICMP permission): nothing can leave.
        where = f"link {path.link}" if path is not None else "the LAN"
        _log.warning("agent cannot ping over %s: %s", where, exc)
        return [_no_answer(t, PingFailure.SEND_ERROR) for t in targets]
    async with pinger:
        results = await pinger.round(
            targets, echoes=echoes, spacing_s=spacing_s, timeout_s=timeout_s
        )
    return [_as_ping(r) for r in results]


async def _download(
    url: str, path: PathConfig, config: ThroughputConfig, budget_s: float, prober: HttpProber
) -> Throughput:
    """GET ``url`` over ``path``: at most ``max_bytes`` of body, read at most at the rate limit."""
    started = time.monotonic()
    got = 0
    error: str | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(budget_s):
            parts = urlsplit(url)
            host = parts.hostname or ""
            https = parts.scheme == "https"
            port = parts.port or (443 if https else 80)
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, _, _, _, address = min(infos, key=lambda i: i[0] != socket.AF_INET)
            sock = bound_socket(
                family, socket.SOCK_STREAM, source=path.source, interface=path.interface
            )
            # A small receive window: TCP flow control holds the sender to our reading pace.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _THROUGHPUT_RCVBUF)
            try:
                await loop.sock_connect(sock, address)
            except BaseException:
                sock.close()
                raise
            reader, writer = await asyncio.open_connection(
                sock=sock,
                ssl=prober.ssl_context(None) if https else None,
                server_hostname=host if https else None,
            )
            target = parts.path or "/"
            if parts.query:
                target += f"?{parts.query}"
            writer.write(
                f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "User-Agent: NetWatch-agent\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _HEAD_LIMIT or not head.startswith(b"HTTP/1."):
                raise ValueError("not an HTTP response")
            status = int(head.split(b" ", 2)[1])
            if not 200 <= status < 300:
                raise ValueError(f"status {status}")
            started = time.monotonic()  # the sample is the body, not the handshakes
            while got < config.max_bytes:
                chunk = await reader.read(min(_READ_BYTES, config.max_bytes - got))
                if not chunk:
                    break
                got += len(chunk)
                # Pace: never ahead of rate_limit_bps since the body began.
                ahead = got * 8 / config.rate_limit_bps - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except TimeoutError:
        error = "timeout" if got == 0 else None  # cut at the budget: what was read counts
    except (OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        if writer is not None:
            writer.close()
    return Throughput(path.link, got, time.monotonic() - started, error)


async def _once(payload: bytes) -> bytes:
    config = wire.decode_config(payload)
    measurer = Measurer()
    try:
        result = await measurer(config, 1, datetime.now(UTC))
    finally:
        measurer.close()
    return wire.encode_round(result)


def main() -> int:
    """``python -m netwatch.agent.measure < config.msgpack > round.msgpack``: one round.

    The configuration is ``wire.encode_config`` bytes on stdin, the round ``wire.encode_round``
    bytes on stdout. For trying a box's paths by hand and for the lab tests, which run it inside
    the lab's agent box namespace (``ip netns exec nwl<k>-a<code> python -m ...``).
    """
    sys.stdout.buffer.write(asyncio.run(_once(sys.stdin.buffer.read())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
