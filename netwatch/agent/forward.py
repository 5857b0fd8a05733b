"""Carrying the buffer home: in order, exactly once, no faster than the line can spare.

The forwarder reads AGENT_BUFFER from ``forwarded + 1`` on (netwatch.agent.buffer), one round
at a time, and publishes it to the centre's stream (``nw.agent.v1.<commune>.obs``, through the
leaf node) with ``Nats-Msg-Id = "<agent>:<seq>"``. Only when the centre's PubAck is back does it
record the round as forwarded (on disk) and purge it from the buffer; until then it retries the
same round with the same id, so a round whose PubAck was lost is stored once (the centre's
duplicate window) and no round overtakes another.

A token bucket (bytes per second, ``forward_rate_bps``) spaces the rounds: after an outage the
backlog goes home at that rate and leaves the line that just came back to the officers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext

from netwatch.agent.buffer import BUFFER_STREAM, BUFFER_SUBJECT, BoxState
from netwatch.bus.cancel import raise_if_cancelled

__all__ = ["Forwarder", "TokenBucket"]

log = logging.getLogger("netwatch.agent.forward")

MSG_ID_HEADER: Final = "Nats-Msg-Id"


class TokenBucket:
    """A byte-rate limiter: ``take(n)`` returns once ``n`` bytes may go.

    It starts full (``burst`` bytes, one second's worth by default) and refills at ``rate``
    bytes per second; a message bigger than what is left runs the bucket into debt, and the
    next ``take`` waits the debt off, so the average over any stretch is at most ``rate``.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = rate if burst is None else burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    async def take(self, n: int) -> float:
        """Wait until ``n`` bytes may be sent; returns the seconds waited."""
        self._refill()
        waited = 0.0
        if self._tokens < 0:  # the last message's debt
            waited = -self._tokens / self.rate
            await self._sleep(waited)
            self._refill()
        self._tokens -= n
        return waited


@dataclass(slots=True)
class Forwarder:
    """Sends the buffer's rounds to the centre, one at a time, in order (module docstring)."""

    js: JetStreamContext  # the box's own JetStream (domain "agent"); publishes go to the centre
    state: BoxState
    subject: str  # nw.agent.v1.<commune>.obs
    bucket: TokenBucket
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set when a round is buffered
    publish_timeout_s: float = 5.0
    retry_min_s: float = 0.5
    retry_max_s: float = 5.0
    idle_poll_s: float = 2.0
    sent: int = 0
    _unreachable_since: float | None = None

    async def run(self) -> None:
        """Forward for ever (until cancelled)."""
        while True:
            try:
                sent = await self.step()
            except (nats.errors.Error, TimeoutError) as exc:  # the box's own server: rare
                raise_if_cancelled()
                log.warning("buffer unreadable, trying again: %s", exc or type(exc).__name__)
                await asyncio.sleep(self.retry_max_s)
                continue
            if not sent:
                self.wake.clear()
                try:
                    async with asyncio.timeout(self.idle_poll_s):
                        await self.wake.wait()
                except TimeoutError:
                    raise_if_cancelled()

    async def step(self) -> bool:
        """Forward the next round, if there is one (False: the buffer is empty)."""
        expected = self.state.forwarded + 1
        try:
            msg = await self.js.get_msg(
                BUFFER_STREAM, seq=expected, subject=BUFFER_SUBJECT, next=True
            )
        except nats.js.errors.NotFoundError:
            await self._nothing_after(expected)
            return False
        assert msg.seq is not None
        if msg.seq > expected:
            self._dropped(msg.seq - expected, up_to=msg.seq - 1)
        data = msg.data or b""
        headers = msg.headers or {}
        msg_id = headers.get(MSG_ID_HEADER)
        await self.bucket.take(len(data))
        await self._publish(data, msg_id)
        self.state.forwarded = msg.seq
        self.state.save()
        self.sent += 1
        await self.js.purge_stream(BUFFER_STREAM, seq=msg.seq + 1)  # everything before it
        return True

    async def _nothing_after(self, expected: int) -> None:
        state = (await self.js.stream_info(BUFFER_STREAM)).state
        if state.last_seq < self.state.forwarded:
            log.warning(
                "buffer stream is behind the forwarded mark (store lost?) last_seq=%d"
                " forwarded=%d: following the stream",
                state.last_seq,
                self.state.forwarded,
            )
            self.state.forwarded = state.last_seq
            self.state.save()
        elif state.first_seq > expected:  # gone before they went: expired by age, or the bound
            # (first_seq, not last_seq: a round buffered since get_msg is no drop)
            self._dropped(state.first_seq - expected, up_to=state.first_seq - 1)

    def _dropped(self, count: int, *, up_to: int) -> None:
        self.state.dropped_total += count
        self.state.forwarded = up_to
        self.state.save()
        log.warning(
            "buffer dropped %d rounds before they were forwarded (full or too old);"
            " dropped_total=%d",
            count,
            self.state.dropped_total,
        )

    async def _publish(self, data: bytes, msg_id: str | None) -> None:
        headers = {MSG_ID_HEADER: msg_id} if msg_id else None
        delay = self.retry_min_s
        while True:
            try:
                await self.js.publish(
                    self.subject, data, timeout=self.publish_timeout_s, headers=headers
                )
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                raise_if_cancelled()
                if self._unreachable_since is None:
                    self._unreachable_since = time.monotonic()
                    log.warning("centre unreachable, holding the buffer: %s", exc or type(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            if self._unreachable_since is not None:
                log.info(
                    "centre reachable again after %.0f s: sending the backlog",
                    time.monotonic() - self._unreachable_since,
                )
                self._unreachable_since = None
            return
