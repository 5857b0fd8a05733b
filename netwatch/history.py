"""A short per-link history for the status page's 24-hour chart, without Prometheus.

`LinkHistory` is an ObservationSink: it folds each link's ICMP rounds into 5-minute buckets
(median of the rounds' median RTTs, highest RTT, loss over all echoes) and keeps the last 288
buckets (24 h) of every link in flat arrays: 5 bytes a bucket, ~14 MB for a national instance of
10,000 links, no Python object per bucket. Closed buckets are packed per link and hour and written
to the store in batches (`run`), so a restart does not blank the chart (`restore`); rows older than
the retention are pruned.

Packing of one bucket (little-endian): uint16 median RTT and uint16 highest RTT in units of
0.1 ms (65535: none; values above 6553.4 ms are clamped), uint8 loss in units of 0.5 % (255: no
round in the bucket). An hour row holds 3600 / bucket_s buckets back to back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median

from netwatch.observations import IcmpObservation, Observation, RoundReport
from netwatch.store.rollups import RollupRow, Rollups

log = logging.getLogger("netwatch.history")

BUCKET_S = 300
BUCKETS = 288  # 24 hours of 5-minute buckets
NO_RTT = 0xFFFF
NO_LOSS = 0xFF
RTT_UNIT_S = 0.0001  # 0.1 ms
LOSS_STEPS = 200  # 0.5 % units
_PACK = struct.Struct("<HHB")
BUCKET_BYTES = _PACK.size  # 5: median RTT (uint16), highest RTT (uint16), loss (uint8)
FLUSH_CHUNK = 1000  # hour rows packed between two yields to the event loop


@dataclass(frozen=True, slots=True)
class LinkSeries:
    """One link's buckets, oldest first; the last one is the bucket still filling."""

    link: str
    start: datetime  # start of the first bucket
    bucket_s: int
    rtt_median_s: tuple[float | None, ...]
    rtt_max_s: tuple[float | None, ...]
    loss_ratio: tuple[float | None, ...]  # None: no round in that bucket

    def bucket_start(self, i: int) -> datetime:
        """When bucket i starts."""
        return self.start + timedelta(seconds=i * self.bucket_s)


def _rtt_code(seconds: float | None) -> int:
    if seconds is None:
        return NO_RTT
    return min(NO_RTT - 1, max(0, round(seconds / RTT_UNIT_S)))


def _rtt_value(code: int) -> float | None:
    return None if code == NO_RTT else code * RTT_UNIT_S


def _loss_code(ratio: float | None) -> int:
    if ratio is None:
        return NO_LOSS
    return min(LOSS_STEPS, max(0, round(ratio * LOSS_STEPS)))


def _loss_value(code: int) -> float | None:
    return None if code == NO_LOSS else code / LOSS_STEPS


def pack_buckets(
    values: Sequence[tuple[float | None, float | None, float | None]],
) -> bytes:
    """An hour row's bytes from (median RTT, highest RTT, loss) per bucket (loss None: no
    round); for tools and tests that write history directly."""
    return b"".join(
        _PACK.pack(_rtt_code(rtt), _rtt_code(top), _loss_code(loss)) for rtt, top, loss in values
    )


def bucket_codes(buckets: bytes) -> Iterator[tuple[int, int, int]]:
    """The packed codes of an hour row's buckets, in order: (median RTT, highest RTT, loss) in
    units of RTT_UNIT_S and 1 / LOSS_STEPS; NO_RTT and NO_LOSS mark what is missing. Codes, not
    floats: a month of a national instance is ~86 million buckets (netwatch.reports)."""
    return _PACK.iter_unpack(buckets[: len(buckets) - len(buckets) % _PACK.size])


class LinkHistory:
    """Per-link 5-minute buckets of ICMP rounds over the last 24 hours; an ObservationSink."""

    def __init__(
        self,
        links: Sequence[str],
        *,
        bucket_s: int = BUCKET_S,
        buckets: int = BUCKETS,
        retention_s: float = 26 * 3600,
    ) -> None:
        if 3600 % bucket_s:
            raise ValueError("bucket_s must divide an hour")
        self.bucket_s = bucket_s
        self.buckets = buckets
        self.retention_s = retention_s
        self.per_hour = 3600 // bucket_s
        self._links = list(dict.fromkeys(links))
        self._index = {key: i for i, key in enumerate(self._links)}
        n = len(self._links)
        self._n = n
        # Slot-major rings: bucket number b lives in slot b % buckets, link i at slot * n + i,
        # so starting a new bucket clears one contiguous slice.
        self._rtt = array("H", [NO_RTT]) * (n * buckets)
        self._rtt_max = array("H", [NO_RTT]) * (n * buckets)
        self._loss = array("B", [NO_LOSS]) * (n * buckets)
        self._slot_bucket = array("q", [-1]) * buckets
        # The bucket being filled.
        self._open = -1
        self._sent = array("L", [0]) * n
        self._received = array("L", [0]) * n
        self._max = array("d", [-1.0]) * n
        self._medians: list[list[float]] = [[] for _ in range(n)]
        self._touched: set[int] = set()
        # (link index, hour number) whose row must be (re)written.
        self._dirty: set[tuple[int, int]] = set()

    def add_links(self, links: Sequence[str]) -> None:
        """Keep buckets for links a configuration reload added (empty until their first round).
        Links it removed stay until NetWatch restarts: no round feeds them any more."""
        new = [link for link in dict.fromkeys(links) if link not in self._index]
        if not new:
            return
        n, grown = self._n, self._n + len(new)

        def regrow(old: array[int], typecode: str, empty: int) -> array[int]:
            out = array(typecode, [empty]) * (grown * self.buckets)
            for slot in range(self.buckets):
                out[slot * grown : slot * grown + n] = old[slot * n : (slot + 1) * n]
            return out

        self._rtt = regrow(self._rtt, "H", NO_RTT)
        self._rtt_max = regrow(self._rtt_max, "H", NO_RTT)
        self._loss = regrow(self._loss, "B", NO_LOSS)
        self._sent.extend([0] * len(new))
        self._received.extend([0] * len(new))
        self._max.extend([-1.0] * len(new))
        self._medians.extend([] for _ in new)
        for link in new:
            self._index[link] = len(self._links)
            self._links.append(link)
        self._n = grown

    @property
    def links(self) -> tuple[str, ...]:
        """The links kept, '24848/vnpt-tslcd'."""
        return tuple(self._links)

    # -- ObservationSink -------------------------------------------------------------------
    def observe(self, batch: Sequence[Observation]) -> None:
        """Fold every link's ICMP round into its bucket."""
        for obs in batch:
            if not isinstance(obs, IcmpObservation) or obs.target.link is None:
                continue
            i = self._index.get(obs.target.link.id)
            if i is None:
                continue
            result = obs.result
            bucket = int(result.started_at.timestamp()) // self.bucket_s
            if bucket > self._open:
                self._advance(bucket)
            # A round of an older bucket (late, across a boundary) counts in the open one.
            self._sent[i] += result.sent
            self._received[i] += result.received
            if result.rtt_median_s is not None:
                self._medians[i].append(result.rtt_median_s)
            top = result.rtt_max_s if result.rtt_max_s is not None else result.rtt_median_s
            if top is not None and top > self._max[i]:
                self._max[i] = top
            self._touched.add(i)

    def round_done(self, report: RoundReport) -> None:
        """Nothing to do per round report."""

    # -- buckets -----------------------------------------------------------------------------
    def _open_values(self, i: int) -> tuple[int, int, int]:
        sent = self._sent[i]
        medians = self._medians[i]
        rtt = _rtt_code(median(medians)) if medians else NO_RTT
        top = _rtt_code(self._max[i]) if self._max[i] >= 0 else NO_RTT
        loss = _loss_code((sent - self._received[i]) / sent) if sent else NO_LOSS
        return rtt, top, loss

    def _clear_slot(self, bucket: int) -> int:
        slot = bucket % self.buckets
        lo, hi = slot * self._n, (slot + 1) * self._n
        self._rtt[lo:hi] = array("H", [NO_RTT]) * self._n
        self._rtt_max[lo:hi] = array("H", [NO_RTT]) * self._n
        self._loss[lo:hi] = array("B", [NO_LOSS]) * self._n
        self._slot_bucket[slot] = bucket
        return slot

    def _close(self) -> None:
        """Write the open bucket's values into the ring and mark its hour rows dirty."""
        if self._open < 0:
            return
        slot = self._open % self.buckets
        if self._slot_bucket[slot] != self._open:
            self._clear_slot(self._open)
        hour = self._open // self.per_hour
        for i in self._touched:
            rtt, top, loss = self._open_values(i)
            at = slot * self._n + i
            self._rtt[at], self._rtt_max[at], self._loss[at] = rtt, top, loss
            self._sent[i] = self._received[i] = 0
            self._max[i] = -1.0
            self._medians[i].clear()
            self._dirty.add((i, hour))
        self._touched.clear()

    def _advance(self, bucket: int) -> None:
        self._close()
        first = max(self._open + 1, bucket - self.buckets + 1)
        for b in range(first, bucket + 1):
            # Slots still holding an older bucket are cleared; those already holding this one
            # (restored from the store at start-up) are kept.
            if self._slot_bucket[b % self.buckets] != b:
                self._clear_slot(b)
        self._open = bucket

    # -- reading -----------------------------------------------------------------------------
    def series(self, link: str, now: datetime) -> LinkSeries | None:
        """The link's last `buckets` buckets up to now's (partial) bucket; None if unknown."""
        i = self._index.get(link)
        if i is None:
            return None
        current = int(now.timestamp()) // self.bucket_s
        first = current - self.buckets + 1
        rtts: list[float | None] = []
        tops: list[float | None] = []
        losses: list[float | None] = []
        for b in range(first, current + 1):
            if b == self._open and i in self._touched:
                rtt, top, loss = self._open_values(i)
            else:
                slot = b % self.buckets
                if self._slot_bucket[slot] != b:
                    rtt, top, loss = NO_RTT, NO_RTT, NO_LOSS
                else:
                    at = slot * self._n + i
                    rtt, top, loss = self._rtt[at], self._rtt_max[at], self._loss[at]
            rtts.append(_rtt_value(rtt))
            tops.append(_rtt_value(top))
            losses.append(_loss_value(loss))
        return LinkSeries(
            link=link,
            start=datetime.fromtimestamp(first * self.bucket_s, UTC),
            bucket_s=self.bucket_s,
            rtt_median_s=tuple(rtts),
            rtt_max_s=tuple(tops),
            loss_ratio=tuple(losses),
        )

    # -- persistence -------------------------------------------------------------------------
    def _hour_row(self, i: int, hour: int) -> RollupRow:
        parts = []
        for b in range(hour * self.per_hour, (hour + 1) * self.per_hour):
            slot = b % self.buckets
            if self._slot_bucket[slot] == b:
                at = slot * self._n + i
                parts.append(_PACK.pack(self._rtt[at], self._rtt_max[at], self._loss[at]))
            else:
                parts.append(_PACK.pack(NO_RTT, NO_RTT, NO_LOSS))
        return RollupRow(
            link=self._links[i],
            hour_start=datetime.fromtimestamp(hour * 3600, UTC),
            buckets=b"".join(parts),
        )

    def drain(self, *, include_open: bool = False) -> list[RollupRow]:
        """The hour rows changed since the last drain (the open bucket first closed if asked)."""
        if include_open:
            self._close()
        dirty, self._dirty = self._dirty, set()
        return [self._hour_row(i, hour) for i, hour in sorted(dirty)]

    def requeue(self, rows: Iterable[RollupRow]) -> None:
        """Rows that could not be written: write them (as they are by then) next time."""
        for row in rows:
            i = self._index.get(row.link)
            if i is not None:
                self._dirty.add((i, int(row.hour_start.timestamp()) // 3600))

    def restore(self, rows: Iterable[RollupRow], now: datetime) -> int:
        """Put stored buckets back into the ring (at start-up); returns how many buckets."""
        current = int(now.timestamp()) // self.bucket_s
        restored = 0
        for row in rows:
            i = self._index.get(row.link)
            if i is None:
                continue
            first = int(row.hour_start.timestamp()) // self.bucket_s
            for k in range(min(self.per_hour, len(row.buckets) // _PACK.size)):
                b = first + k
                if b <= current - self.buckets or b > current:
                    continue  # outside the ring
                rtt, top, loss = _PACK.unpack_from(row.buckets, k * _PACK.size)
                if loss == NO_LOSS:
                    continue
                slot = b % self.buckets
                if self._slot_bucket[slot] != b:
                    self._clear_slot(b)
                at = slot * self._n + i
                self._rtt[at], self._rtt_max[at], self._loss[at] = rtt, top, loss
                restored += 1
        return restored

    async def load(self, rollups: Rollups, now: datetime) -> int:
        """Restore the last day from the store; returns how many buckets came back."""
        since = datetime.fromtimestamp(
            (int(now.timestamp()) // 3600) * 3600 - self.buckets * self.bucket_s - 3600, UTC
        )
        rows = await rollups.load(since)
        count = self.restore(rows, now)
        log.info("link history restored buckets=%d rows=%d", count, len(rows))
        return count

    async def flush(self, rollups: Rollups, now: datetime, *, include_open: bool = False) -> int:
        """Write the changed hour rows; on failure they are kept for the next flush.

        The rows are packed a chunk at a time with the event loop free in between: a national
        bucket close dirties ~10,000 rows (~40 ms of packing)."""
        if include_open:
            self._close()
        dirty, self._dirty = sorted(self._dirty), set()
        rows: list[RollupRow] = []
        for n, (i, hour) in enumerate(dirty):
            if n and n % FLUSH_CHUNK == 0:
                await asyncio.sleep(0)
            rows.append(self._hour_row(i, hour))
        try:
            return await rollups.upsert(rows, now)
        except Exception:
            self.requeue(rows)
            raise

    async def run(self, rollups: Rollups, stop: asyncio.Event, *, flush_s: float = 60.0) -> None:
        """Flush closed buckets every flush_s and prune hourly until stopped; flush on stop."""
        pruned_hour = -1
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), flush_s)
            now = datetime.now(UTC)
            try:
                await self.flush(rollups, now, include_open=stop.is_set())
                hour = int(now.timestamp()) // 3600
                if hour != pruned_hour:
                    await rollups.prune(now - timedelta(seconds=self.retention_s))
                    pruned_hour = hour
            except Exception:
                log.exception("link history flush failed; retrying next time")
