"""Plain outside tools (fping, snmpget, ip, a TLS socket) that tests use to check the lab."""

from __future__ import annotations

import socket
import ssl
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from netwatch.lab import Lab


@dataclass(frozen=True, slots=True)
class PingResult:
    """Echoes sent to one address and the RTTs of those answered."""

    sent: int
    rtts_ms: tuple[float, ...]

    @property
    def loss_ratio(self) -> float:
        """Share of echoes lost."""
        return 1 - len(self.rtts_ms) / self.sent

    @property
    def rtt_median_ms(self) -> float:
        """Median RTT of the answered echoes."""
        return statistics.median(self.rtts_ms)


def ping(
    addresses: list[str], count: int, period_ms: int = 10, timeout_ms: int = 500
) -> dict[str, PingResult]:
    """fping every address `count` times from the root namespace."""
    proc = subprocess.run(
        ["fping", "-q", "-C", str(count), "-p", str(period_ms), "-t", str(timeout_ms), *addresses],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    results: dict[str, PingResult] = {}
    for line in proc.stderr.splitlines():
        if " : " not in line:
            continue
        address, values = line.split(" : ", 1)
        rtts = tuple(float(v) for v in values.split() if v != "-")
        results[address.strip()] = PingResult(count, rtts)
    assert set(results) == set(addresses), proc.stderr
    return results


def snmpget(lab: Lab, address: str, *oids: str, version: str = "2c") -> list[str]:
    """Values of `oids` read with net-snmp's snmpget (v2c community or v3 authPriv)."""
    secrets = lab.secrets
    if version == "2c":
        auth = ["-v2c", "-c", secrets.community]
    else:
        auth = [
            "-v3", "-l", "authPriv", "-u", secrets.user,
            "-a", "SHA", "-A", secrets.auth_key, "-x", "AES", "-X", secrets.priv_key,
        ]  # fmt: skip
    proc = subprocess.run(
        ["snmpget", "-Oqvte", "-r", "2", "-t", "1", *auth, address, *oids],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    """Run iproute2 and return the finished process (not checked)."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def resolve(lab: Lab, name: str) -> str:
    """The A record of `name` from the lab DNS."""
    answer = dns.query.udp(
        dns.message.make_query(name, "A"), lab.plan.portal.dns_address, timeout=2
    )
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.A:
            return str(rrset[0])
    raise AssertionError(f"no A record for {name}: {answer}")


def https_get(
    address: str, hostname: str, ca_file: Path, timeout_s: float = 10.0
) -> tuple[int, str]:
    """GET / over TLS validated against `ca_file` for `hostname`; (status, body)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    request = f"GET / HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode()
    with (
        socket.create_connection((address, 443), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        tls.sendall(request)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("utf-8")


def interface_rx_bytes(namespace: str, ifname: str) -> int:
    """Bytes received on an interface, read from sysfs inside its namespace."""
    proc = subprocess.run(
        ["ip", "netns", "exec", namespace, "cat", f"/sys/class/net/{ifname}/statistics/rx_bytes"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return int(proc.stdout)
