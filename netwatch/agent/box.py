"""`netwatch agent`: the process on the commune box (docs/agent.md).

It starts the box's leaf nats-server (netwatch.agent.leaf) and then runs four loops against it,
all over loopback:

* **config**: asks the centre for the commune's AgentConfig on ``nw.agent.v1.<c>.cfg`` at start
  and every ``config_refresh_s``; a good answer is kept on disk (``config.msgpack``, atomic);
  an unreachable centre or an answer that is not this agent's config leaves the last good one
  running; with no config at all yet it asks again every ``config_retry_s`` and measures nothing;
* **rounds**: every ``interval_s`` of the config, the injected ``Measure(config, seq, at)``,
  the round encoded (netwatch.agent.wire) into the buffer stream (``nwa.buf``, msg id
  ``<agent>:<seq>``); seq is persisted before use and never repeats;
* **forward**: netwatch.agent.forward, the buffer to the centre in order and exactly once;
* **heartbeat**: every 10 s an AgentHeartbeat, live (core NATS, never buffered).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import inspect
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from netwatch import __version__
from netwatch.agent.buffer import (
    BUFFER_STREAM,
    BUFFER_SUBJECT,
    BoxState,
    BufferStats,
    atomic_write,
    buffer_stats,
    ensure_buffer,
)
from netwatch.agent.forward import MSG_ID_HEADER, Forwarder, TokenBucket
from netwatch.agent.leaf import JS_DOMAIN, LeafServer, running_leaf
from netwatch.agent.model import (
    HEARTBEAT_INTERVAL_S,
    AgentConfig,
    AgentHeartbeat,
    InsideRound,
    config_subject,
    heartbeat_subject,
    obs_subject,
)
from netwatch.agent.settings import AgentSettings
from netwatch.agent.wire import AgentWireError, decode_config, encode_heartbeat, encode_round
from netwatch.bus.cancel import raise_if_cancelled

__all__ = ["AgentBusyError", "Box", "Measure", "default_measure", "run_agent"]

log = logging.getLogger("netwatch.agent")

Measure = Callable[[AgentConfig, int, datetime], Awaitable[InsideRound]]

CONFIG_FILE: Final = "config.msgpack"
_REQUEST_TIMEOUT_S: Final = 5.0
_STOP_LOOPS_S: Final = 5.0


def default_measure() -> Measure:
    """The real measurement (netwatch.agent.measure), imported only when the agent runs."""
    from netwatch.agent.measure import Measurer

    measurer: Measure = Measurer()
    return measurer


class AgentBusyError(RuntimeError):
    """Another agent runs on the same data directory (two would corrupt the buffer)."""


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AgentBusyError(
                f"another netwatch agent runs on {data_dir} (systemctl status netwatch-agent)"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def config_problem(config: AgentConfig, settings: AgentSettings) -> str | None:
    """Why a decoded config cannot be this agent's (None: it can)."""
    if config.commune != settings.commune:
        return f"it is commune {config.commune!r}'s, this agent measures {settings.commune!r}"
    if config.agent != settings.agent:
        return f"it names agent {config.agent!r}, this agent is {settings.agent!r}"
    if not (config.interval_s > 0 and math.isfinite(config.interval_s)):
        return f"interval_s {config.interval_s!r} is not a positive number"
    if config.echoes < 1:
        return f"echoes {config.echoes!r} is below 1"
    if not config.revision:
        return "it has no revision"
    return None


@dataclass(slots=True)
class Box:
    """The agent, wired to its leaf server; ``run(stop)`` until ``stop`` is set."""

    settings: AgentSettings
    measure: Measure
    heartbeat_s: float = HEARTBEAT_INTERVAL_S
    config_retry_s: float = 10.0
    measure_timeout_min_s: float = 60.0  # a round may take 3 intervals, and at least this
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    config: AgentConfig | None = None
    last_seq: int = 0
    config_requests: int = 0  # asked the centre this often since start
    leaf: LeafServer | None = None
    _state: BoxState | None = None
    _config_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _started: float = field(default_factory=time.monotonic)
    _forwarder: Forwarder | None = None
    _abandoned: set[asyncio.Future[InsideRound]] = field(default_factory=set)

    @property
    def data_dir(self) -> Path:
        """Where the box keeps its state, its last good config and its nats-server's store."""
        return self.settings.data_dir

    def _load_config(self) -> None:
        path = self.data_dir / CONFIG_FILE
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            log.info("no config on disk yet: asking the centre")
            return
        except OSError as exc:
            log.error("cannot read the last good config %s: %s", path, exc)
            return
        try:
            config = decode_config(payload)
        except AgentWireError as exc:
            log.error("the config on disk does not decode (%s): asking the centre", exc)
            return
        problem = config_problem(config, self.settings)
        if problem:
            log.error("the config on disk is not this agent's: %s", problem)
            return
        self._use(config)
        log.info("running the last good config from disk revision=%s", config.revision)

    def _use(self, config: AgentConfig) -> None:
        self.config = config
        self._config_ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Start the leaf server and the loops; return once ``stop`` is set (all stopped)."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _data_dir_lock(self.data_dir):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        self._state = BoxState.load(self.data_dir)
        self._load_config()
        async with running_leaf(self.settings) as leaf:
            self.leaf = leaf
            nc = await nats.connect(
                leaf.url,
                token=leaf.token,
                name=f"netwatch-agent {self.settings.agent}",
                inbox_prefix=f"_INBOX_{self.settings.commune}",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
            )
            try:
                js = nc.jetstream(domain=JS_DOMAIN, timeout=_REQUEST_TIMEOUT_S)
                await ensure_buffer(js, self.settings.buffer_max_bytes)
                await self._recover_seq(js)
                self._forwarder = Forwarder(
                    js=js,
                    state=self._state,
                    subject=obs_subject(self.settings.commune),
                    bucket=TokenBucket(self.settings.forward_rate_bps),
                )
                await self._run_loops(nc, js, stop)
            finally:
                with contextlib.suppress(Exception):
                    await nc.close()
                self.leaf = None

    async def _run_loops(self, nc: Client, js: JetStreamContext, stop: asyncio.Event) -> None:
        assert self._forwarder is not None
        loops = [
            asyncio.create_task(self._config_loop(nc), name="config"),
            asyncio.create_task(self._round_loop(js), name="rounds"),
            asyncio.create_task(self._forwarder.run(), name="forward"),
            asyncio.create_task(self._heartbeat_loop(nc, js), name="heartbeat"),
        ]
        if self.leaf is not None:
            loops.append(asyncio.create_task(self._leaf_watch(self.leaf), name="leaf"))
        stopping = asyncio.create_task(stop.wait(), name="stop")
        try:
            done, _ = await asyncio.wait([*loops, stopping], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopping:
                    task.result()  # a loop only ends by an error: let it out
                    raise RuntimeError(f"agent loop {task.get_name()} ended")
        finally:
            everything: list[asyncio.Future[Any]] = [*loops, stopping, *self._abandoned]
            for future in everything:
                future.cancel()
            # Bounded: a loop stuck in something that ignores cancellation is left behind rather
            # than keeping the agent (and its nats-server) from stopping.
            _, stuck = await asyncio.wait([*loops, stopping], timeout=_STOP_LOOPS_S)
            for left in stuck:
                log.warning("agent loop %s did not stop in %.0f s", left.get_name(), _STOP_LOOPS_S)

    @staticmethod
    async def _leaf_watch(leaf: LeafServer) -> None:
        status = await leaf.exited()
        raise RuntimeError(
            f"the box's nats-server exited (status {status}); see {leaf.nats_dir}/nats-server.log"
        )

    async def _recover_seq(self, js: JetStreamContext) -> None:
        """Never reuse a seq: also not when state.json was lost but the buffer was not."""
        assert self._state is not None
        try:
            last = await js.get_msg(BUFFER_STREAM, subject=BUFFER_SUBJECT)
        except nats.js.errors.NotFoundError:
            last = None
        if last is not None and last.headers:
            _, _, tail = str(last.headers.get(MSG_ID_HEADER, "")).rpartition(":")
            if tail.isdigit() and int(tail) >= self._state.next_seq:
                log.warning("state.json behind the buffer: seq continues after %s", tail)
                self._state.next_seq = int(tail) + 1
                self._state.save()
        self.last_seq = self._state.next_seq - 1

    # --- config ---------------------------------------------------------------------------

    async def _config_loop(self, nc: Client) -> None:
        retry = min(1.0, self.config_retry_s)  # the leaf link may take a moment at start
        while True:
            await self.fetch_config(nc)
            if self.config:
                await asyncio.sleep(self.settings.config_refresh_s)
            else:
                await asyncio.sleep(retry)
                retry = min(retry * 2, self.config_retry_s)

    async def fetch_config(self, nc: Client) -> bool:
        """Ask the centre once; True when a new config is now running."""
        current = self.config.revision if self.config else ""
        subject = config_subject(self.settings.commune)
        self.config_requests += 1
        try:
            reply = await nc.request(subject, current.encode(), timeout=_REQUEST_TIMEOUT_S)
        except (nats.errors.Error, TimeoutError) as exc:
            raise_if_cancelled()
            log.info(
                "centre did not answer the config request (%s): %s",
                type(exc).__name__,
                "keeping the last good config"
                if self.config
                else "no config yet, measuring nothing",
            )
            return False
        refusal = (reply.headers or {}).get("Nats-Service-Error")
        if refusal:
            log.warning("the centre refused the config request (%s): keeping the old one", refusal)
            return False
        if not reply.data:
            return False  # nothing new
        try:
            config = decode_config(reply.data)
        except AgentWireError as exc:
            log.warning("the centre's config answer does not decode (%s): keeping the old one", exc)
            return False
        problem = config_problem(config, self.settings)
        if problem:
            log.warning(
                "the centre's config is not this agent's (%s): keeping the old one", problem
            )
            return False
        if self.config and config.revision == self.config.revision:
            return False
        atomic_write(self.data_dir / CONFIG_FILE, reply.data)
        old = self.config.revision if self.config else None
        self._use(config)
        log.info("config from the centre revision=%s (was %s)", config.revision, old)
        return True

    # --- rounds ---------------------------------------------------------------------------

    async def _round_loop(self, js: JetStreamContext) -> None:
        assert self._state is not None
        await self._config_ready.wait()
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            config = self.config
            assert config is not None
            seq = self._state.take_seq()
            at = self.clock()
            await self._one_round(js, config, seq, at)
            next_at += config.interval_s
            now = loop.time()
            if next_at < now:
                missed = math.ceil((now - next_at) / config.interval_s)
                log.warning("round %d took too long: %d round(s) skipped", seq, missed)
                next_at += missed * config.interval_s
            await asyncio.sleep(next_at - now)

    async def _one_round(
        self, js: JetStreamContext, config: AgentConfig, seq: int, at: datetime
    ) -> None:
        timeout = max(3 * config.interval_s, self.measure_timeout_min_s)
        # A task of its own, waited for with a timeout but never joined after it: a measurement
        # that hangs and ignores cancellation must neither stop the rounds nor the shutdown.
        task = asyncio.ensure_future(self.measure(config, seq, at))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            task.cancel()
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
            raise
        if not done:
            task.cancel()
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
            log.error(
                "round %d: the measurement took over %.0f s: abandoned (%d still hanging)",
                seq,
                timeout,
                len(self._abandoned),
            )
            return
        try:
            round_ = task.result()
        except Exception:
            log.exception("round %d: the measurement failed", seq)
            return
        if (round_.commune, round_.agent, round_.seq) != (
            self.settings.commune,
            self.settings.agent,
            seq,
        ):
            log.error(
                "round %d: the measurement returned %s/%s seq %d: not buffered",
                seq,
                round_.commune,
                round_.agent,
                round_.seq,
            )
            return
        payload = encode_round(round_)
        headers = {MSG_ID_HEADER: f"{self.settings.agent}:{seq}"}
        for attempt in range(3):
            try:
                await js.publish(
                    BUFFER_SUBJECT, payload, timeout=_REQUEST_TIMEOUT_S, headers=headers
                )
                break
            except (nats.errors.Error, TimeoutError) as exc:
                raise_if_cancelled()
                log.warning("round %d: buffering failed (attempt %d): %s", seq, attempt + 1, exc)
                await asyncio.sleep(0.5)
        else:
            log.error("round %d lost: the buffer did not take it", seq)
            return
        self.last_seq = seq
        if self._forwarder is not None:
            self._forwarder.wake.set()

    # --- heartbeat ------------------------------------------------------------------------

    async def heartbeat(self, js: JetStreamContext) -> AgentHeartbeat:
        """The agent's health now."""
        assert self._state is not None
        stats: BufferStats | None = None
        try:
            stats = await buffer_stats(js, self._state.forwarded)
        except (nats.errors.Error, TimeoutError):
            raise_if_cancelled()
        pending_drops = 0
        if stats is not None:
            pending_drops = max(0, stats.first_seq - 1 - self._state.forwarded)
        return AgentHeartbeat(
            commune=self.settings.commune,
            agent=self.settings.agent,
            version=__version__,
            at=self.clock(),
            config_revision=self.config.revision if self.config else None,
            last_seq=self.last_seq,
            buffer_messages=stats.messages if stats else 0,
            buffer_bytes=stats.bytes if stats else 0,
            buffer_oldest_at=stats.oldest_at if stats else None,
            dropped_total=self._state.dropped_total + pending_drops,
            uptime_s=time.monotonic() - self._started,
        )

    async def _heartbeat_loop(self, nc: Client, js: JetStreamContext) -> None:
        subject = heartbeat_subject(self.settings.commune)
        while True:
            beat = await self.heartbeat(js)
            try:
                await nc.publish(subject, encode_heartbeat(beat))
            except nats.errors.Error as exc:
                log.debug("heartbeat not sent: %s", exc)
            await asyncio.sleep(self.heartbeat_s)


async def run_agent(settings: AgentSettings, measure: Measure | None = None) -> None:
    """Run the agent until SIGTERM or SIGINT; everything it started is stopped on return."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    box = Box(settings, measure or default_measure())
    log.info(
        "netwatch agent %s starting commune=%s agent=%s centre=%s data_dir=%s",
        __version__,
        settings.commune,
        settings.agent,
        ",".join(settings.centre),
        settings.data_dir,
    )
    try:
        await box.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        close = getattr(box.measure, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result
    log.info("netwatch agent stopped")
