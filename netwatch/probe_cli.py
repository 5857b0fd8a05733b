"""`netwatch probe TARGET`: a one-off diagnostic of one target, printed as a table."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from probes.http import HttpCheck, HttpProber, format_http_result
from probes.icmp import IcmpUnavailableError, format_ping_table, ping_once
from probes.snmp import SnmpPoller, format_snmp_summary
from probes.snmp_types import SnmpTarget, SnmpV2c, SnmpV3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `probe` subcommand."""
    probe = sub.add_parser(
        "probe",
        help="probe one target now: ping an address, SNMP-poll a router or time a URL",
        description=(
            "TARGET is an IP address or host name (ping), or an http(s):// URL (timings). "
            "With --snmp, the address is polled by SNMP instead; the community or v3 keys come "
            "from the environment (NETWATCH_SNMP_COMMUNITY, NETWATCH_SNMP_AUTH_KEY, "
            "NETWATCH_SNMP_PRIV_KEY). Exit code 0 when the target answered as expected."
        ),
    )
    probe.add_argument("target")
    probe.add_argument("-c", "--count", type=int, default=10, help="echoes to send (ping)")
    probe.add_argument("--interval", type=float, default=0.2, help="seconds between echoes")
    probe.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")
    probe.add_argument("--snmp", choices=["2c", "3"], help="poll the target by SNMP")
    probe.add_argument("--snmp-user", default="netwatch", help="SNMPv3 user")
    probe.add_argument("--snmp-port", type=int, default=161)
    probe.add_argument("--ca-file", help="extra CA certificate for https:// targets")
    probe.add_argument("--dns-resolver", help="resolver address for the URL's host name")
    probe.add_argument("--expect-text", help="text the page must contain")
    probe.set_defaults(handler=_probe)


def _probe(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    target: str = args.target
    if target.startswith(("http://", "https://")):
        try:
            check = HttpCheck(
                url=target,
                timeout_s=args.timeout,
                ca_file=args.ca_file,
                dns_resolver=args.dns_resolver,
                expect_text=args.expect_text,
            )
        except ValueError as exc:
            print(f"netwatch probe: {exc}", file=sys.stderr)
            return 2
        async with HttpProber() as prober:
            result = await prober.probe(check)
        print(format_http_result(result))
        return 0 if result.failure is None else 1
    if args.snmp:
        try:
            credentials: SnmpV2c | SnmpV3
            if args.snmp == "2c":
                credentials = SnmpV2c(os.environ.get("NETWATCH_SNMP_COMMUNITY", "public"))
            else:
                credentials = SnmpV3(
                    user=args.snmp_user,
                    auth_protocol="sha",
                    auth_key=os.environ.get("NETWATCH_SNMP_AUTH_KEY", ""),
                    priv_protocol="aes" if os.environ.get("NETWATCH_SNMP_PRIV_KEY") else None,
                    priv_key=os.environ.get("NETWATCH_SNMP_PRIV_KEY"),
                )
            snmp_target = SnmpTarget(
                target, credentials, port=args.snmp_port, timeout_s=args.timeout
            )
        except ValueError as exc:
            print(f"netwatch probe: {exc}", file=sys.stderr)
            return 2
        async with await SnmpPoller.open() as poller:
            summary = await poller.system_summary(snmp_target)
        print(format_snmp_summary(summary))
        return 0 if summary.failure is None else 1
    try:
        result_ping = await ping_once(
            target, count=args.count, interval_s=args.interval, timeout_s=args.timeout
        )
    except (IcmpUnavailableError, ValueError) as exc:
        print(f"netwatch probe: {exc}", file=sys.stderr)
        return 2
    print(format_ping_table([result_ping]))
    return 0 if result_ping.received > 0 else 1
