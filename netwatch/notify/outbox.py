"""The outbox delivery worker: claims due items, sends them, retries with capped backoff.

Guarantees and their limits (at-least-once, not exactly-once):

- An item is marked sent only after its channel confirmed it (SMTP accepted DATA, the webhook
  answered 2xx, Telegram answered ok, Zalo answered error 0). A receiver that is down only
  delays delivery: the item is retried with exponential backoff, jitter and a cap, and is never
  dropped for a retryable error.
- Exactly-once delivery is impossible across a network: if NetWatch dies (or the store is
  unreachable) between the receiver's confirmation and `mark_sent`, the store's claim lease
  expires and the item is sent once more. Each channel makes that duplicate recognisable:
  e-mail keeps the same Message-ID (derived from the ticket and event), so mail clients and
  servers show it once; webhooks carry the same ``X-NetWatch-Delivery`` id for receivers to
  de-duplicate on; Zalo ZNS messages carry the item's key as ``tracking_id``; Telegram has no
  idempotency key, so a chat line may appear twice in that window (rare, harmless).
- What was marked sent is never sent again: a new worker on the same store only sees due items.
- A receiver that takes the request but does not answer in time (a webhook slower than its
  timeout) has maybe got it, and maybe acted on it: such an attempt is retried with the same
  id, but only `RetryPolicy.max_unanswered` times in a row (3); then the item is given up with
  a warning (`notify.gave_up_unanswered`) rather than sent again for days. A receiver that is
  down (refused, unreachable, no connection in time, 5xx) is retried as long as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from netwatch.notify.channels import Channel, Delivered, Failed, FailureReason, SendOutcome
from netwatch.notify.clock import Clock
from netwatch.store.types import OutboxItem

_log = logging.getLogger(__name__)
PASS_FAILURE_SUMMARY_S = 60.0  # a pass failing in a row says so this often (after its traceback)


class OutboxStore(Protocol):
    """Where outbox items persist (the database; in tests, memory).

    `claim_due` returns items whose next attempt is due and hides them from other claimers for
    a lease (so two workers never send one item at the same time, and the items of a worker that
    died come back when the lease runs out). `mark_sent` and `mark_failed` end a claim.
    """

    async def claim_due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Claim up to `limit` items due at `now`, oldest first."""
        ...

    async def mark_sent(self, item_id: int, at: datetime) -> None:
        """The channel confirmed delivery: never send this item again."""
        ...

    async def mark_failed(
        self, item_id: int, at: datetime, next_attempt_at: datetime | None, error: str
    ) -> None:
        """Count a failed attempt; retry at `next_attempt_at`, or give up when it is None."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter and a cap."""

    base_delay_s: float = 10.0
    factor: float = 2.0
    max_delay_s: float = 600.0  # a receiver back after an outage gets its mail within this
    jitter_ratio: float = 0.5  # delay drawn from [(1 - jitter) * d, d]: spreads retry bursts
    max_attempts: int | None = 600  # at the cap, about 4 days; None: retry forever
    max_unanswered: int | None = 3  # attempts in a row sent but not answered; None: no bound

    def __post_init__(self) -> None:
        if self.base_delay_s <= 0 or self.factor < 1 or self.max_delay_s < self.base_delay_s:
            raise ValueError("RetryPolicy needs 0 < base_delay_s <= max_delay_s and factor >= 1")
        if not 0 <= self.jitter_ratio < 1:
            raise ValueError("RetryPolicy.jitter_ratio must be in [0, 1)")

    def nominal_delay_s(self, attempts: int) -> float:
        """The delay before the next attempt after `attempts` failures, before jitter."""
        exponent = min(max(attempts - 1, 0), 64)  # bounded: 2.0 ** 1000 would overflow
        return min(self.max_delay_s, self.base_delay_s * self.factor**exponent)

    def delay_s(self, attempts: int, rng: random.Random, retry_after_s: float | None) -> float:
        """The jittered delay; never shorter than the receiver's own retry-after hint."""
        nominal = self.nominal_delay_s(attempts)
        delay = nominal * (1.0 - self.jitter_ratio * rng.random())
        return max(delay, retry_after_s or 0.0)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass over the due items did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0
    store_errors: int = 0  # attempts whose result the store did not take (retried after the lease)


_UNANSWERED_RUN = re.compile(rf"^{FailureReason.UNANSWERED.value}: (\d+) in a row;")


def _unanswered_in_a_row(last_error: str | None) -> int:
    """How many attempts in a row before this one went unanswered (the worker wrote it)."""
    found = _UNANSWERED_RUN.match(last_error or "")
    return int(found.group(1)) if found else 0


class OutboxWorker:
    """Delivers due outbox items through named channels; one per process, built at start-up."""

    def __init__(
        self,
        store: OutboxStore,
        channels: Mapping[str, Channel],
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        batch_size: int = 50,
        concurrency: int = 8,
        send_timeout_s: float = 120.0,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._channels = dict(channels)
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._batch_size = batch_size
        self._concurrency = asyncio.Semaphore(concurrency)
        self._send_timeout_s = send_timeout_s
        # Jitter only needs spread, not secrecy; a seeded Random makes tests repeatable.
        self._rng = rng or random.Random()  # noqa: S311
        self._failing: set[str] = set()  # channels whose last attempt failed: log changes only
        self._wake = asyncio.Event()
        # Passes failing in a row (the store is down): the traceback once, then a line a minute.
        self._pass_failures = 0
        self._pass_failure_told = 0.0

    def wake(self) -> None:
        """Ask a running `run` loop to look for due items now (e.g. after enqueueing)."""
        self._wake.set()

    def _pass_failed(self, exc: Exception) -> None:
        """A pass the store failed: its traceback when passes start failing, then one line a
        minute while they go on (a traceback every 5 s filled the log during an outage)."""
        now = time.monotonic()
        if self._pass_failures == 0:
            _log.exception("notify.outbox_pass_failed")
            self._pass_failure_told = now
        elif now - self._pass_failure_told >= PASS_FAILURE_SUMMARY_S:
            _log.warning(
                "notify.outbox_pass_still_failing failures=%d error=%s: %s",
                self._pass_failures + 1,
                type(exc).__name__,
                exc,
            )
            self._pass_failure_told = now
        self._pass_failures += 1

    async def deliver_due(self) -> DeliveryReport:
        """Claim the items due now and try each once; returns what happened."""
        items = await self._store.claim_due(self._clock.now(), self._batch_size)
        if not items:
            return DeliveryReport()
        results = await asyncio.gather(*(self._deliver(item) for item in items))
        return DeliveryReport(
            claimed=len(items),
            delivered=results.count("delivered"),
            retrying=results.count("retrying"),
            gave_up=results.count("gave_up"),
            store_errors=results.count("store_error"),
        )

    async def run(self, stop: asyncio.Event, poll_interval_s: float = 5.0) -> None:
        """Deliver until `stop` is set; between passes wait for `wake`, `stop` or the poll."""
        while not stop.is_set():
            self._wake.clear()
            try:
                report = await self.deliver_due()
            except Exception as exc:
                # The store is down: nothing was claimed or the claim lease brings it back.
                self._pass_failed(exc)
                report = DeliveryReport()
            else:
                if self._pass_failures:
                    _log.warning("notify.outbox_pass_recovered failures=%d", self._pass_failures)
                    self._pass_failures = 0
            if report.claimed >= self._batch_size:
                continue  # more may be due right now
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
            try:
                await asyncio.wait(
                    waiters, timeout=poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in waiters:
                    task.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    async def _deliver(self, item: OutboxItem) -> str:
        async with self._concurrency:
            outcome = await self._send(item)
        try:
            return await self._record(item, outcome)
        except Exception:
            # The store failed to record the attempt: the claim lease runs out and the item is
            # tried again (a delivered one then goes twice: the at-least-once case above).
            _log.exception("notify.record_failed channel=%s item=%d", item.channel, item.id)
            return "store_error"

    async def _record(self, item: OutboxItem, outcome: SendOutcome) -> str:
        at = self._clock.now()
        if isinstance(outcome, Delivered):
            await self._store.mark_sent(item.id, at)
            if item.channel in self._failing:
                self._failing.discard(item.channel)
                _log.info("notify.channel_recovered channel=%s", item.channel)
            _log.info(
                "notify.delivered channel=%s item=%d attempts=%d detail=%s",
                item.channel,
                item.id,
                item.attempts,
                outcome.detail,
            )
            return "delivered"
        attempts = item.attempts  # this one included (a claim counts an attempt)
        error = f"{outcome.reason.value}: {outcome.detail}"
        unanswered = 0
        if outcome.reason is FailureReason.UNANSWERED:
            unanswered = _unanswered_in_a_row(item.last_error) + 1
            # What the next attempt counts on (first: a long detail is cut at its end).
            error = f"{outcome.reason.value}: {unanswered} in a row; {outcome.detail}"
        limit = self._policy.max_unanswered
        if unanswered and limit is not None and unanswered >= limit:
            await self._store.mark_failed(item.id, at, None, error)
            _log.warning(
                "notify.gave_up_unanswered channel=%s item=%d attempts=%d unanswered=%d: the "
                "receiver took the request but never answered in time; probably delivered "
                "(the same delivery id each time), not sent again",
                item.channel,
                item.id,
                attempts,
                unanswered,
            )
            return "gave_up"
        give_up = not outcome.retryable or (
            self._policy.max_attempts is not None and attempts >= self._policy.max_attempts
        )
        if unanswered and not give_up:
            _log.warning(
                "notify.unanswered channel=%s item=%d unanswered=%d of %s: sent, no answer in "
                "time; tried again with the same delivery id",
                item.channel,
                item.id,
                unanswered,
                limit,
            )
        if give_up:
            await self._store.mark_failed(item.id, at, None, error)
            _log.warning(
                "notify.gave_up channel=%s item=%d attempts=%d reason=%s detail=%s",
                item.channel,
                item.id,
                attempts,
                outcome.reason.value,
                outcome.detail,
            )
            return "gave_up"
        delay_s = self._policy.delay_s(attempts, self._rng, outcome.retry_after_s)
        await self._store.mark_failed(item.id, at, at + timedelta(seconds=delay_s), error)
        if item.channel not in self._failing:
            self._failing.add(item.channel)
            _log.warning(
                "notify.channel_failing channel=%s reason=%s detail=%s",
                item.channel,
                outcome.reason.value,
                outcome.detail,
            )
        else:
            _log.debug(
                "notify.retry_scheduled channel=%s item=%d attempts=%d delay_s=%.1f",
                item.channel,
                item.id,
                attempts,
                delay_s,
            )
        return "retrying"

    async def _send(self, item: OutboxItem) -> SendOutcome:
        channel = self._channels.get(item.channel)
        if channel is None:
            return Failed(FailureReason.UNKNOWN_CHANNEL, False, f"no channel {item.channel!r}")
        try:
            async with asyncio.timeout(self._send_timeout_s):
                return await channel.send(item.recipient, item.payload, item.dedup_key)
        except TimeoutError:
            return Failed(FailureReason.TIMEOUT, True, f"send took over {self._send_timeout_s} s")
        except Exception as exc:
            # A bug in a channel must not lose the message: keep it and retry later.
            _log.exception("notify.channel_crashed channel=%s item=%d", item.channel, item.id)
            return Failed(FailureReason.UNEXPECTED, True, type(exc).__name__)
