#!/usr/bin/env python3
"""HTTPS probe CPU: NetWatch's HttpProber vs blackbox_exporter's http_2xx (and aiohttp+trace).

5,000 probes (fresh TCP+TLS each), 50 concurrent, against a local HTTPS server running in its
own process (its CPU is not counted). NetWatch's prober runs in a fresh subprocess that reports
its own CPU over the probe loop (interpreter start-up and imports excluded); blackbox_exporter's
CPU is read from /proc/PID/stat around a keep-alive client driving /probe (its start-up excluded
the same way). Each client first does a short warm-up that is not counted. Repetitions are
interleaved and the medians reported; the last line is machine-readable:

    RESULT https ratio=<netwatch/blackbox CPU per probe> netwatch_ms_per_probe=..
        blackbox_ms_per_probe=..   (one line)

Loopback only (ports 18480-18489). Needs the Debian package prometheus-blackbox-exporter
(``apt-get install prometheus-blackbox-exporter``); without it only NetWatch is measured.

    .venv/bin/python benchmarks/bench_https.py [--probes 5000] [--concurrency 50] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
SERVER_PORT = 18480
BLACKBOX_PORT = 18481
WARMUP_PROBES = 200
BODY = ("<html><body><h1>Cổng Dịch vụ công quốc gia</h1>" + "x" * 2000 + "</body></html>").encode()

# --------------------------------------------------------------------------- server process


class _ServerProtocol(asyncio.Protocol):
    """Answer one GET per connection with a fixed page, then close (Connection: close)."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" in self.buf and self.transport is not None:
            self.transport.write(self.response)
            self.transport.close()


def serve(cert: str, key: str, port: int) -> None:
    """Run the HTTPS server until killed (one process; its CPU is not measured)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    # Clients under test must pay a full handshake every time: no tickets, no session cache.
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY)
    ) + BODY

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _ServerProtocol(response),
            "127.0.0.1",
            port,
            ssl=ctx,
            backlog=1024,
            reuse_address=True,
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------- client processes


async def _measure(
    probe: Callable[[], Awaitable[tuple[str, float]]], n: int, conc: int
) -> dict[str, object]:
    """A warm-up, then ``n`` probes ``conc`` at a time: this process's CPU, wall and outcomes.

    ``probe`` does one probe and returns its outcome ("ok" or why not) and its total seconds.
    """
    failures: collections.Counter[str] = collections.Counter()
    totals: list[float] = []

    async def run(count: int, record: bool) -> None:
        left = count

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                outcome, total_s = await probe()
                if record:
                    failures[outcome] += 1
                    totals.append(total_s)

        await asyncio.gather(*(worker() for _ in range(conc)))

    await run(WARMUP_PROBES, record=False)
    c0, w0 = time.process_time(), time.perf_counter()
    await run(n, record=True)
    c1, w1 = time.process_time(), time.perf_counter()
    return {
        "cpu_s": c1 - c0,
        "wall_s": w1 - w0,
        "ok": failures.pop("ok", 0),
        "failures": dict(failures),
        "median_total_ms": statistics.median(totals) * 1000,
    }


async def _netwatch_client(url: str, ca: str, n: int, conc: int) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from probes.http import HttpCheck, HttpProber

    check = HttpCheck(url, ca_file=ca, timeout_s=10.0, expect_status=(200,))
    async with HttpProber() as prober:
        prober.prepare([check])

        async def probe() -> tuple[str, float]:
            r = await prober.probe(check)
            return (r.failure.value if r.failure else "ok"), r.total_s

        return await _measure(probe, n, conc)


async def _aiohttp_client(url: str, ca: str, n: int, conc: int) -> dict[str, object]:
    """aiohttp with a TraceConfig collecting phase times; a fresh connection per request."""
    import aiohttp

    # The same trust store as HttpProber builds: system CAs plus the test CA.
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=ca)
    trace = aiohttp.TraceConfig()

    def marker(name: str) -> Any:
        async def hook(_session: object, ctx_: Any, _params: object) -> None:
            ctx_.trace_request_ctx.marks[name] = time.monotonic()

        return hook

    for signal, name in (
        (trace.on_request_start, "start"),
        (trace.on_connection_create_start, "connect_start"),
        (trace.on_connection_create_end, "connect_end"),
        (trace.on_request_headers_sent, "sent"),
        (trace.on_response_chunk_received, "chunk"),
        (trace.on_request_end, "end"),
    ):
        signal.append(marker(name))

    connector = aiohttp.TCPConnector(ssl=ctx, force_close=True, limit=conc)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[trace]
    ) as session:

        async def probe() -> tuple[str, float]:
            marks: dict[str, float] = {}
            t0 = time.monotonic()
            try:
                async with session.get(
                    url, trace_request_ctx=_Marks(marks), allow_redirects=True
                ) as resp:
                    await resp.read()
                    status = resp.status
                outcome = "ok" if status == 200 else f"status {status}"
            except Exception as exc:  # a benchmark counts, it does not judge
                outcome = type(exc).__name__
            return outcome, time.monotonic() - t0

        return await _measure(probe, n, conc)


class _Marks:
    """trace_request_ctx: where the TraceConfig hooks write their time stamps."""

    def __init__(self, marks: dict[str, float]) -> None:
        self.marks = marks


def client_main(kind: str, url: str, ca: str, n: int, conc: int) -> None:
    """Entry point of a client subprocess: print one JSON line."""
    fn = _netwatch_client if kind == "netwatch" else _aiohttp_client
    print(json.dumps(asyncio.run(fn(url, ca, n, conc))), flush=True)


# --------------------------------------------------------------------------- orchestration


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def run_python_client(kind: str, url: str, ca: str, n: int, conc: int) -> dict[str, object]:
    """Run a client in a fresh interpreter and return what it measured."""
    out = subprocess.run(
        [sys.executable, str(HERE), "--client", kind, url, ca, str(n), str(conc)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _drive_blackbox(probe_url: str, count: int, conc: int) -> collections.Counter[str]:
    import aiohttp

    outcomes: collections.Counter[str] = collections.Counter()
    left = count
    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.get(probe_url) as resp:
                    text = await resp.text()
                outcomes["ok" if "\nprobe_success 1" in text else "fail"] += 1

        await asyncio.gather(*(worker() for _ in range(conc)))
    return outcomes


def run_blackbox(pid: int, target: str, n: int, conc: int) -> dict[str, object]:
    """Drive a running blackbox_exporter; its CPU over the measured probes only."""
    probe_url = f"http://127.0.0.1:{BLACKBOX_PORT}/probe?module=http_2xx&target={target}"
    asyncio.run(_drive_blackbox(probe_url, WARMUP_PROBES, conc))
    c0, w0 = _cpu_of(pid), time.perf_counter()
    outcomes = asyncio.run(_drive_blackbox(probe_url, n, conc))
    c1, w1 = _cpu_of(pid), time.perf_counter()
    return {
        "cpu_s": c1 - c0,
        "wall_s": w1 - w0,
        "ok": outcomes.pop("ok", 0),
        "failures": dict(outcomes),
    }


def main() -> int:
    """Orchestrate server, clients and repetitions; print the table and the RESULT line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--probes", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--key-type", choices=["rsa", "ecdsa"], default="rsa")
    ap.add_argument("--no-aiohttp", action="store_true", help="skip the aiohttp+trace client")
    args = ap.parse_args()

    import trustme

    blackbox_bin = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    work = Path(tempfile.mkdtemp(prefix="netwatch-bench-https-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ca = trustme.CA(key_type=getattr(trustme.KeyType, args.key_type.upper()))
        leaf = ca.issue_cert(
            "127.0.0.1", "portal.test", key_type=getattr(trustme.KeyType, args.key_type.upper())
        )
        ca_file, cert_file, key_file = work / "ca.pem", work / "cert.pem", work / "key.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        leaf.cert_chain_pems[0].write_to_path(str(cert_file))
        leaf.private_key_pem.write_to_path(str(key_file))

        server = subprocess.Popen(
            [sys.executable, str(HERE), "--serve", str(cert_file), str(key_file), str(SERVER_PORT)],
            stdout=subprocess.DEVNULL,
        )
        procs.append(server)
        _wait_port(SERVER_PORT)
        url = f"https://127.0.0.1:{SERVER_PORT}/"

        bb_pid = None
        if blackbox_bin:
            (work / "blackbox.yml").write_text(
                "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n"
                "      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
                "      valid_status_codes: [200]\n"
                f"      tls_config:\n        ca_file: {ca_file}\n"
            )
            bb = subprocess.Popen(
                [
                    blackbox_bin,
                    f"--config.file={work / 'blackbox.yml'}",
                    f"--web.listen-address=127.0.0.1:{BLACKBOX_PORT}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(bb)
            _wait_port(BLACKBOX_PORT)
            bb_pid = bb.pid
        else:
            print(
                "prometheus-blackbox-exporter not found: measuring NetWatch only", file=sys.stderr
            )

        clients = ["netwatch"] + ([] if bb_pid is None else ["blackbox"])
        clients += [] if args.no_aiohttp else ["aiohttp"]
        runs: dict[str, list[dict[str, object]]] = {c: [] for c in clients}
        for rep in range(args.reps):
            # Rotate the order so no client always runs first (or after the same neighbour).
            order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
            for kind in order:
                if kind == "blackbox":
                    assert bb_pid is not None
                    r = run_blackbox(bb_pid, url, args.probes, args.concurrency)
                else:
                    r = run_python_client(kind, url, str(ca_file), args.probes, args.concurrency)
                runs[kind].append(r)
                per = float(r["cpu_s"]) / args.probes * 1000  # type: ignore[arg-type]
                print(
                    f"rep {rep + 1} {kind:9s} cpu={float(r['cpu_s']):.2f}s "  # type: ignore[arg-type]
                    f"per_probe={per:.3f}ms wall={float(r['wall_s']):.2f}s "  # type: ignore[arg-type]
                    f"ok={r['ok']} failures={r['failures']}",
                    flush=True,
                )

        labels = {
            "netwatch": "NetWatch HttpProber",
            "blackbox": "blackbox_exporter http_2xx (exporter CPU)",
            "aiohttp": "aiohttp + TraceConfig, force_close",
        }
        print()
        print(
            f"HTTPS, {args.probes} probes, fresh TCP+TLS, {args.concurrency} concurrent, "
            f"{args.key_type} server key, medians of {args.reps}"
        )
        print(f"{'client':45s} {'CPU s':>7s} {'ms/probe':>9s} {'wall s':>7s} {'ok':>6s}")
        median_ms: dict[str, float] = {}
        for kind in clients:
            cpu = statistics.median(float(r["cpu_s"]) for r in runs[kind])  # type: ignore[arg-type]
            wall = statistics.median(float(r["wall_s"]) for r in runs[kind])  # type: ignore[arg-type]
            ok = min(int(r["ok"]) for r in runs[kind])  # type: ignore[call-overload]
            median_ms[kind] = cpu / args.probes * 1000
            print(f"{labels[kind]:45s} {cpu:7.2f} {median_ms[kind]:9.3f} {wall:7.2f} {ok:6d}")
        print()
        if "blackbox" in median_ms:
            ratio = median_ms["netwatch"] / median_ms["blackbox"]
            print(
                f"RESULT https ratio={ratio:.2f} netwatch_ms_per_probe={median_ms['netwatch']:.3f} "
                f"blackbox_ms_per_probe={median_ms['blackbox']:.3f}"
            )
        else:
            print(
                f"RESULT https ratio=nan netwatch_ms_per_probe={median_ms['netwatch']:.3f} "
                "blackbox_ms_per_probe=nan"
            )
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(main())
