"""Real SNMP peers on loopback for the poller's tests: net-snmp snmpd, snmpsim, a junk answerer.

Ports come from the SNMP poller's range 16100-16199 (tests run beside other helpers' suites).
Each pytest-xdist worker takes its own block of 20 (gw0 16100-16119, gw1 16120-16139, ...):
the agents are module- and session-scoped fixtures, so every worker starts its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v2c

from tests.processes import stop
from tests.waiting import WaitTimeoutError, wait_until


def _worker_offset() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker[2:]) if worker[2:].isdigit() else 0
    if number > 4:
        raise RuntimeError("the SNMP tests have ports for at most 5 xdist workers (-n 5)")
    return 20 * number


_BASE = 16100 + _worker_offset()
SNMPD_PORT = _BASE + 10
SNMPD_RESTART_PORT = _BASE + 11
SNMPSIM_PORT = _BASE + 12
JUNK_PORT = _BASE + 13
WRONG_TYPES_PORT = _BASE + 14
CLOSED_PORT = _BASE + 15  # nothing ever listens here
TRAFFIC_SINK_PORT = _BASE + 16  # UDP sent here only to make lo's counters move

COMMUNITY = "nws-test-community"
# (user, net-snmp auth, auth key, net-snmp priv, priv key, poller auth, poller priv)
V3_USERS = (
    ("nwsha", "SHA", "nws-auth-key-1", "AES", "nws-priv-key-1", "sha", "aes"),
    ("nwsha256", "SHA-256", "nws-auth-key-2", "AES-256", "nws-priv-key-2", "sha256", "aes256"),
)
SNMPSIM_VERSIONS = ("snmpsim==1.2.2", "pysmi==2.0.0", "pysnmp==7.1.30")
SNMPSIM_VENV = Path("/tmp/netwatch-snmpsim-venv")
RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "snmprec"


def _wait_udp_agent(
    port: int, community: str, deadline_s: float, proc: subprocess.Popen[bytes]
) -> None:
    """Block until an agent answers a v2c GET of sysUpTime.0 (net-snmp's own snmpget)."""

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"SNMP agent exited with {proc.returncode} before answering")
        done = subprocess.run(
            ["snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0", "-On",
             f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
            capture_output=True,
            env=_netsnmp_env(),
            check=False,
        )  # fmt: skip
        return done.returncode == 0

    try:
        wait_until(answers, deadline_s, 0.2, f"SNMP agent on 127.0.0.1:{port} answering")
    except WaitTimeoutError:
        raise RuntimeError(
            f"SNMP agent on 127.0.0.1:{port} did not answer within {deadline_s} s"
        ) from None


def _netsnmp_env() -> dict[str, str]:
    # No MIB loading (noise, and IF-MIB text is not installed); client state never in /var/lib/snmp.
    env = dict(os.environ, MIBS="", MIBDIRS="/nonexistent")
    env["SNMP_PERSISTENT_DIR"] = str(Path(tempfile.gettempdir()) / "netwatch-snmp-client")
    return env


@dataclass
class Snmpd:
    """A net-snmp snmpd on 127.0.0.1 with its own config and persistent dir (never /var/lib/snmp)."""

    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        """The snmpd.conf this agent runs with."""
        return self.workdir / "snmpd.conf"

    def write_config(self) -> None:
        """A v2c community and the v3 authPriv users, reachable from loopback only."""
        lines = [
            f"agentAddress udp:127.0.0.1:{self.port}",
            f"rocommunity {COMMUNITY} 127.0.0.1",
            "sysName nws-test-agent",
            "sysLocation loopback",
        ]
        for user, auth, auth_key, priv, priv_key, _, _ in V3_USERS:
            lines.append(f'createUser {user} {auth} "{auth_key}" {priv} "{priv_key}"')
            lines.append(f"rouser {user} authpriv")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start snmpd in the foreground of a child process and wait until it answers."""
        persistent = self.workdir / "persist"
        persistent.mkdir(exist_ok=True)
        env = _netsnmp_env()
        env["SNMP_PERSISTENT_DIR"] = str(persistent)
        self.proc = subprocess.Popen(
            ["snmpd", "-f", "-C", "-c", str(self.config), "-Lf", str(self.workdir / "snmpd.log"),
             "-I", "-smux", "--persistentDir=" + str(persistent),
             "-p", str(self.workdir / "snmpd.pid")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_udp_agent(self.port, COMMUNITY, 15.0, self.proc)

    def stop(self) -> None:
        """Stop snmpd (SIGTERM, then SIGKILL) and reap it."""
        if self.proc is None:
            return
        stop(self.proc)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again: sysUpTime starts over, as after a router reboot."""
        self.stop()
        self.start()


@contextlib.contextmanager
def running_snmpd(port: int) -> Iterator[Snmpd]:
    """An snmpd for the duration of the block; its directory is removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="nws-snmpd-"))
    agent = Snmpd(workdir, port)
    try:
        agent.write_config()
        agent.start()
        yield agent
    finally:
        agent.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def ensure_snmpsim_venv() -> Path:
    """Build (once, cached in /tmp) a venv with snmpsim from the SYSTEM Python; fail loudly.

    snmpsim, started as root, drops privileges to nobody before it indexes the recordings, so its
    interpreter must be readable by nobody: the system Python, not a pyenv build under /root.
    """
    responder = SNMPSIM_VENV / "bin" / "snmpsim-command-responder"
    complete = SNMPSIM_VENV / ".netwatch-complete"
    lock_path = Path(str(SNMPSIM_VENV) + ".lock")
    with lock_path.open("w") as lock:
        # Several test processes may race to build it: one builds, the others wait for it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if complete.exists() and complete.read_text() == " ".join(SNMPSIM_VERSIONS):
            return responder
        shutil.rmtree(SNMPSIM_VENV, ignore_errors=True)
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        steps = [
            [python, "-m", "venv", str(SNMPSIM_VENV)],
            [str(SNMPSIM_VENV / "bin" / "pip"), "install", "--disable-pip-version-check", "-q",
             *SNMPSIM_VERSIONS],
        ]  # fmt: skip
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                shutil.rmtree(SNMPSIM_VENV, ignore_errors=True)
                raise RuntimeError(
                    f"building the snmpsim venv failed: {' '.join(step)}\n{done.stdout}\n{done.stderr}"
                )
        if not responder.exists():
            raise RuntimeError(f"snmpsim installed but {responder} is missing")
        complete.write_text(" ".join(SNMPSIM_VERSIONS))
        return responder


@contextlib.contextmanager
def running_snmpsim(port: int) -> Iterator[str]:
    """snmpsim serving tests/data/snmprec on 127.0.0.1:port; communities are the file names."""
    responder = ensure_snmpsim_venv()
    root = Path(tempfile.mkdtemp(prefix="nws-snmpsim-"))
    data, cache = root / "data", root / "cache"
    data.mkdir()
    cache.mkdir()
    for rec in RECORDINGS.glob("*.snmprec"):
        shutil.copy(rec, data / rec.name)
    cmd = [str(responder), f"--data-dir={data}", f"--agent-udpv4-endpoint=127.0.0.1:{port}",
           f"--cache-dir={cache}"]  # fmt: skip
    if os.geteuid() == 0:
        # As root snmpsim insists on dropping privileges: make its files readable by nobody.
        nobody = pwd.getpwnam("nobody")
        for path in (root, data, cache, *data.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        os.chown(cache, nobody.pw_uid, nobody.pw_gid)
        cmd += ["--process-user=nobody", "--process-group=nogroup"]
    log = (root / "snmpsim.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_udp_agent(port, "routeros", 60.0, proc)
        except RuntimeError as exc:
            log.flush()
            raise RuntimeError(
                f"{exc}\n{(root / 'snmpsim.log').read_text(errors='replace')}"
            ) from exc
        yield "127.0.0.1"
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


class _Answerer(asyncio.DatagramProtocol):
    """Answers every datagram with whatever reply() makes of it (one datagram or several)."""

    def __init__(self, reply: Callable[[bytes], bytes | list[bytes]]) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        assert self.transport is not None
        replies = self.reply(data)
        for reply in [replies] if isinstance(replies, bytes) else replies:
            self.transport.sendto(reply, addr)


def junk_reply(_request: bytes) -> bytes:
    """Bytes that are not BER at all (a length that runs past the end)."""
    return b"\x30\x82\xff\xffthis is not SNMP"


def _response(
    request: bytes,
    varbind: Callable[[tuple[int, ...]], tuple[object, object]],
    rid_change: int = 0,
) -> bytes:
    """A well-formed v2c Response to request, with varbind(oid) for each OID it asked for."""
    msg, _ = decoder.decode(request, asn1Spec=v2c.Message())
    req_pdu = v2c.apiMessage.get_pdu(msg)
    rsp = v2c.apiPDU.get_response(req_pdu)
    v2c.apiPDU.set_request_id(rsp, int(v2c.apiPDU.get_request_id(req_pdu)) + rid_change)
    v2c.apiPDU.set_varbinds(
        rsp, [varbind(tuple(oid)) for oid, _ in v2c.apiPDU.get_varbinds(req_pdu)]
    )
    v2c.apiMessage.set_pdu(msg, rsp)
    return bytes(encoder.encode(msg))


def wrong_types_reply(request: bytes) -> bytes:
    """A well-formed v2c Response to the request, but every value is an OCTET STRING."""
    return _response(request, lambda oid: (oid, v2c.OctetString(b"surprise")))


def shifted_oids_reply(request: bytes) -> bytes:
    """A v2c Response whose varbinds name other OIDs than the request asked for."""
    return _response(request, lambda oid: ((*oid, 99), v2c.Counter32(1)))


def broken_counter_reply(request: bytes) -> bytes:
    """A v2c Response to the request, right up to a Counter32 encoded as -1 (41 01 ff)."""
    good = _response(request, lambda oid: (oid, v2c.Counter32(0x7F)))
    assert good.count(b"\x41\x01\x7f") >= 1
    return good.replace(b"\x41\x01\x7f", b"\x41\x01\xff")


def stray_then_real_reply(request: bytes) -> list[bytes]:
    """First an answer to a request-id nobody asked for, then the real answer."""
    return [
        _response(request, lambda oid: (oid, v2c.Counter32(1)), rid_change=1),
        _response(request, lambda oid: (oid, v2c.TimeTicks(4200))),
    ]


@contextlib.asynccontextmanager
async def udp_answerer(
    port: int, reply: Callable[[bytes], bytes | list[bytes]]
) -> AsyncIterator[asyncio.DatagramTransport]:
    """A UDP server on 127.0.0.1:port answering each datagram with reply(datagram)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Answerer(reply), local_addr=("127.0.0.1", port)
    )
    try:
        yield transport
    finally:
        transport.close()
