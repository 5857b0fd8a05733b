"""A tiny authoritative DNS responder (UDP, dnspython) for the lab's zone.

It answers A queries for the names it is given, NODATA for other types of those names,
NXDOMAIN for other names in the zone, and REFUSED outside it: enough for a real resolver path.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL_S = 30


def build_response(wire: bytes, zone: str, records: Mapping[str, str]) -> bytes | None:
    """The answer to one query in wire format, or None when the query cannot be parsed."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    response = dns.message.make_response(query)
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    origin = dns.name.from_text(zone)
    names = {dns.name.from_text(n): a for n, a in records.items()}
    if not question.name.is_subdomain(origin):
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    response.flags |= dns.flags.AA
    soa = dns.rrset.from_text(
        origin, TTL_S, "IN", "SOA", f"ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 {TTL_S}"
    )
    address = names.get(question.name)
    if address is None:
        if question.name != origin:
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(soa)
    elif question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        response.answer.append(dns.rrset.from_text(question.name, TTL_S, "IN", "A", address))
    else:
        response.authority.append(soa)
    return response.to_wire()


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, zone: str, records: Mapping[str, str]) -> None:
        self._zone = zone
        self._records = dict(records)
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop hands over a datagram transport for a datagram endpoint.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        reply = build_response(data, self._zone, self._records)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)


async def serve(
    host: str, port: int, zone: str, records: Mapping[str, str], stop: asyncio.Event
) -> None:
    """Answer on host:port (UDP) until `stop` is set."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Responder(zone, records), local_addr=(host, port)
    )
    try:
        await stop.wait()
    finally:
        transport.close()


async def _main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    records = dict(item.split("=", 1) for item in args.record)
    await serve(args.host, args.port, args.zone, records, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `python -m netwatch.lab.dns --host IP --zone Z --record name=IP ...`."""
    parser = argparse.ArgumentParser(description="NetWatch lab authoritative DNS (UDP)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--zone", required=True)
    parser.add_argument("--record", action="append", default=[], help="name=IPv4 (A record)")
    args = parser.parse_args(argv)
    asyncio.run(_main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
