"""A machine's two clocks as the tests move them (a fake we own): the wall clock and the
monotonic one. `advance` moves both, as time passing does; `jump` moves the wall clock alone,
as an NTP step or an operator's `date -s` does."""

from __future__ import annotations

from datetime import datetime, timedelta


class TwoClocks:
    """Wall (`now`, also `wall`) and monotonic (`mono`) time, starting at `start`."""

    def __init__(self, start: datetime, mono_s: float = 1000.0) -> None:
        self.at = start
        self.mono_s = mono_s

    def now(self) -> datetime:
        """The wall clock."""
        return self.at

    wall = now

    def mono(self) -> float:
        """The monotonic clock, seconds."""
        return self.mono_s

    def advance(self, seconds: float) -> None:
        """Time passes: both clocks move."""
        self.at += timedelta(seconds=seconds)
        self.mono_s += seconds

    def jump(self, by: timedelta) -> None:
        """The wall clock is set: the monotonic one does not move."""
        self.at += by
