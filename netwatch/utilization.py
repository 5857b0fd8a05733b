"""Per-link utilization history for the monthly report's p95 utilization, without Prometheus.

`LinkUtilization` is an ObservationSink: from every SNMP poll with rates it takes each WAN
link's busier direction, max(in, out) bits/s over the link's contracted bandwidth, and keeps
the highest such ratio of each 5-minute bucket (a reading counts in the bucket of the poll that
closed its interval). Only the current hour is held in memory: 12 uint16 a link, ~240 KB for a
national instance of 10,000 links. Hour rows are packed per link and written to the store's
link_utilization table in batches (`run`) by the process that writes link_rollups (never a web
worker), pruned with the same retention (`reports.history_days`); at start-up the current
hour's rows are read back (`load`) so a restart does not blank the hour.

Packing of one bucket: little-endian uint16 ratio in units of 0.0001 (0.01 %); 65535: no
reading in the bucket; a ratio above 6.5534 (a contract far below the port's speed) is clamped.
An hour row holds 3600 / bucket_s buckets back to back: 24 bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from netwatch.observations import Observation, RoundReport, SnmpObservation
from netwatch.store.rollups import RollupRow, Rollups

log = logging.getLogger("netwatch.utilization")

BUCKET_S = 300
NO_UTIL = 0xFFFF
UTIL_STEPS = 10_000  # codes per ratio 1.0: units of 0.01 %
_PACK = struct.Struct("<H")
UTIL_BYTES = _PACK.size  # 2 a bucket


def util_code(ratio: float | None) -> int:
    """The packed code of a utilization ratio (None: no reading)."""
    if ratio is None:
        return NO_UTIL
    return min(NO_UTIL - 1, max(0, round(ratio * UTIL_STEPS)))


def util_value(code: int) -> float | None:
    """The ratio of a packed code (None: no reading); a division, so code 8500 is exactly the
    float 0.85 a threshold is written as."""
    return None if code == NO_UTIL else code / UTIL_STEPS


def pack_utilization(values: Sequence[float | None]) -> bytes:
    """An hour row's bytes from the ratio of each bucket (None: no reading); for tools and
    tests that write utilization directly."""
    return b"".join(_PACK.pack(util_code(v)) for v in values)


def utilization_codes(buckets: bytes) -> array[int]:
    """The codes of an hour row's buckets, in order (NO_UTIL marks a bucket without reading)."""
    codes = array("H")
    codes.frombytes(buckets[: len(buckets) - len(buckets) % UTIL_BYTES])
    if sys.byteorder == "big":
        codes.byteswap()
    return codes


class LinkUtilization:
    """The current hour's 5-minute highest-utilization buckets of every link; an
    ObservationSink. Closed hours go to the store, not to memory."""

    def __init__(
        self,
        links: Sequence[str],
        *,
        bucket_s: int = BUCKET_S,
        retention_s: float = 62 * 86400.0,
    ) -> None:
        if 3600 % bucket_s:
            raise ValueError("bucket_s must divide an hour")
        self.bucket_s = bucket_s
        self.retention_s = retention_s
        self.per_hour = 3600 // bucket_s
        self._links = list(dict.fromkeys(links))
        self._index = {key: i for i, key in enumerate(self._links)}
        # Link-major: link i's buckets of the current hour at [i * per_hour, (i + 1) * per_hour).
        self._codes = array("H", [NO_UTIL]) * (len(self._links) * self.per_hour)
        self._hour = -1  # the hour held (hours since the epoch); -1: none yet
        self._dirty: set[int] = set()  # links whose current-hour row must be (re)written
        # Rows of hours already left, packed, until a flush writes them (a minute's worth,
        # or more while the store is down).
        self._closed: dict[tuple[str, datetime], RollupRow] = {}

    def add_links(self, links: Sequence[str]) -> None:
        """Keep buckets for links a configuration reload added. Links it removed stay until
        NetWatch restarts: no poll feeds them any more."""
        new = [link for link in dict.fromkeys(links) if link not in self._index]
        for link in new:
            self._index[link] = len(self._links)
            self._links.append(link)
        if new:
            self._codes.extend(array("H", [NO_UTIL]) * (len(new) * self.per_hour))

    @property
    def links(self) -> tuple[str, ...]:
        """The links kept, '24848/vnpt-tslcd'."""
        return tuple(self._links)

    # -- ObservationSink -------------------------------------------------------------------
    def observe(self, batch: Sequence[Observation]) -> None:
        """Fold every WAN interface's rates into its link's bucket."""
        for obs in batch:
            if not isinstance(obs, SnmpObservation) or obs.rates_since is None:
                continue
            bucket = int(obs.sample.taken_at.timestamp()) // self.bucket_s
            hour = bucket // self.per_hour
            if hour > self._hour:
                self._leave_hour(hour)
            elif hour < self._hour:
                # A poll late across an hour boundary counts in the current hour's first bucket.
                bucket = self._hour * self.per_hour
            k = bucket - self._hour * self.per_hour
            ifaces = obs.job.interfaces
            for n, reading in enumerate(obs.interfaces):
                # Readings follow the job's interfaces; a poll from the bus may come from a
                # probe whose plan differs (a reload under way): then found by key.
                if n < len(ifaces) and ifaces[n].link.key == reading.link_key:
                    link = ifaces[n].link
                else:
                    found = [f.link for f in ifaces if f.link.key == reading.link_key]
                    if not found:
                        continue
                    link = found[0]
                if not link.bandwidth_bps:
                    continue
                rates = [r for r in (reading.in_bps, reading.out_bps) if r is not None]
                if not rates:
                    continue
                i = self._index.get(link.id)
                if i is None:
                    continue
                code = util_code(max(rates) / link.bandwidth_bps)
                at = i * self.per_hour + k
                held = self._codes[at]
                if held == NO_UTIL or code > held:
                    self._codes[at] = code
                    self._dirty.add(i)

    def round_done(self, report: RoundReport) -> None:
        """Nothing to do per round report."""

    # -- the current hour --------------------------------------------------------------------
    def _rows(self, links: Iterable[int]) -> list[RollupRow]:
        """The current hour's rows of some links: slices of the whole hour's bytes (one copy
        of ~240 KB at national scale, then 24 bytes a row)."""
        codes = self._codes
        if sys.byteorder == "big":
            codes = array("H", codes)
            codes.byteswap()
        raw = codes.tobytes()
        size = self.per_hour * UTIL_BYTES
        hour_start = datetime.fromtimestamp(self._hour * 3600, UTC)
        return [
            RollupRow(self._links[i], hour_start, raw[i * size : (i + 1) * size]) for i in links
        ]

    def _leave_hour(self, hour: int) -> None:
        """Pack the rows of the hour held for the next flush; start `hour` empty."""
        for row in self._rows(self._dirty):
            self._closed[(row.link, row.hour_start)] = row
        self._dirty.clear()
        self._codes = array("H", [NO_UTIL]) * len(self._codes)
        self._hour = hour

    def bucket(self, link: str, at: datetime) -> float | None:
        """The highest ratio of the bucket holding `at`, if it is in the hour held."""
        i = self._index.get(link)
        b = int(at.timestamp()) // self.bucket_s
        if i is None or b // self.per_hour != self._hour:
            return None
        return util_value(self._codes[i * self.per_hour + b % self.per_hour])

    # -- persistence -------------------------------------------------------------------------
    def drain(self) -> list[RollupRow]:
        """The hour rows changed since the last drain: closed hours', then the current's."""
        rows = list(self._closed.values())
        self._closed = {}
        rows.extend(self._rows(sorted(self._dirty)))
        self._dirty.clear()
        return rows

    def requeue(self, rows: Iterable[RollupRow]) -> None:
        """Rows that could not be written: write them next time (the current hour's as it is
        by then)."""
        for row in rows:
            i = self._index.get(row.link)
            if i is not None and int(row.hour_start.timestamp()) // 3600 == self._hour:
                self._dirty.add(i)
            else:
                self._closed.setdefault((row.link, row.hour_start), row)

    def restore(self, rows: Iterable[RollupRow], now: datetime) -> int:
        """Put the stored buckets of now's hour back (at start-up); returns how many."""
        hour = int(now.timestamp()) // 3600
        if hour > self._hour:
            self._leave_hour(hour)
        restored = 0
        for row in rows:
            i = self._index.get(row.link)
            if i is None or int(row.hour_start.timestamp()) // 3600 != self._hour:
                continue
            for k, code in enumerate(utilization_codes(row.buckets)[: self.per_hour]):
                at = i * self.per_hour + k
                held = self._codes[at]
                if code != NO_UTIL and (held == NO_UTIL or code > held):
                    self._codes[at] = code
                    restored += 1
        return restored

    async def load(self, table: Rollups, now: datetime) -> int:
        """Restore the current hour from the store; returns how many buckets came back."""
        since = datetime.fromtimestamp((int(now.timestamp()) // 3600) * 3600, UTC)
        rows = await table.load(since)
        count = self.restore(rows, now)
        log.info("link utilization restored buckets=%d rows=%d", count, len(rows))
        return count

    async def flush(self, table: Rollups, now: datetime) -> int:
        """Write the changed hour rows; on failure they are kept for the next flush."""
        rows = self.drain()
        try:
            return await table.upsert(rows, now)
        except Exception:
            self.requeue(rows)
            raise

    async def run(self, table: Rollups, stop: asyncio.Event, *, flush_s: float = 60.0) -> None:
        """Flush every flush_s and prune hourly until stopped; flush on stop (also when the stop
        came before this task first ran: the hour restored at start-up and what was heard since
        are not lost)."""
        pruned_hour = -1
        while True:
            stopping = stop.is_set()
            if not stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), flush_s)
            now = datetime.now(UTC)
            try:
                await self.flush(table, now)
                hour = int(now.timestamp()) // 3600
                if hour != pruned_hour:
                    await table.prune(now - timedelta(seconds=self.retention_s))
                    pruned_hour = hour
            except Exception:
                log.exception("link utilization flush failed; retrying next time")
            if stopping or stop.is_set():
                return
