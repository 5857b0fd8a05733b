"""Wall-clock time that notices jumps: durations in this process follow the monotonic clock.

Issue 15, finding 17: ticket timers and outbox leases compared wall-clock times, so an NTP step
or an operator's `date -s` fired escalations (forward) or held notifications back (backward),
and re-sent items still leased to this process. The rule (docs/alerting.md, "Clock jumps"):

- Timestamps that people read or that are stored (a ticket opened at, an event at) stay
  wall-clock: that is what they compare with their own watch.
- Every duration measured inside one process (escalation and reminder delays, the recovery
  clock, an outbox lease, a retry's backoff) must advance with the monotonic clock. `SteadyClock`
  tells wall time as of its last check plus the monotonic time since, and `check()` reports by
  how much the wall clock moved beyond that (a jump). The alerting loop then moves every running
  timer by the jump (the ticket book's and the outbox's pending times), so no deadline falls due
  and no lease ends because of it, and only then follows the new wall time.
- A gradual NTP slew (at most 500 ppm) stays under `tolerance_s` and is simply followed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

DEFAULT_TOLERANCE_S = 2.0  # a slew of 500 ppm needs over an hour to get here between checks


class SteadyClock:
    """Wall time advanced by the monotonic clock between checks; jumps reported, not followed."""

    def __init__(
        self,
        wall: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
    ) -> None:
        self._wall = wall or (lambda: datetime.now(UTC))
        self._monotonic = monotonic or time.monotonic
        self._tolerance = timedelta(seconds=tolerance_s)
        self._anchor_wall = self._wall()
        self._anchor_mono = self._monotonic()

    def now(self) -> datetime:
        """The anchor's wall time plus the monotonic time since (timezone-aware)."""
        return self._anchor_wall + timedelta(seconds=self._monotonic() - self._anchor_mono)

    def check(self) -> timedelta | None:
        """How far the wall clock jumped since the last check (None: it did not).

        A jump is reported once; the caller moves its running timers by it, then calls
        `follow()` so that `now()` tells the new wall time. Drift under the tolerance is
        followed at once.
        """
        wall, steady = self._wall(), self.now()
        moved = wall - steady
        if abs(moved) <= self._tolerance:
            self._anchor(wall)
            return None
        return moved

    def follow(self) -> None:
        """Tell the wall clock's time from now on (after the timers were moved)."""
        self._anchor(self._wall())

    def _anchor(self, wall: datetime) -> None:
        self._anchor_wall, self._anchor_mono = wall, self._monotonic()
