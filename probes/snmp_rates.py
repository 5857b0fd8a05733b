"""Interface rates from two SNMP samples: bits/s, utilization, errors/s, wraps, resets, reboots.

Pure functions, no I/O. The rule is "no rate rather than a wrong one": an interval that holds a
reboot, a counter reset or a discontinuity yields None with a reason, never a spike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from probes.snmp_types import InterfaceSample, Reading, RouterSample, SnmpFailure

# sysUpTime is TimeTicks (hundredths of a second, 32 bits): it wraps after ~497 days.
UPTIME_WRAP_S = 2**32 / 100
# How far sysUpTime may lag the poller's clock before we call it a restart: answers of two polls
# are timed by our monotonic clock, the agent reads its uptime a little earlier or later.
UPTIME_SLACK_S = 5.0
UPTIME_SLACK_RATIO = 0.02
# A 32-bit counter that went backwards is taken as one wrap only if the corrected rate stays
# under this multiple of the contracted bandwidth, and the corrected delta is under half the
# counter's range (a larger one is far more likely a reset than a wrap).
WRAP_HEADROOM_RATIO = 1.25


class RateGap(enum.Enum):
    """Why an interval has no rate."""

    FAILED_SAMPLE = "a sample of the interval failed"
    BAD_INTERVAL = "samples are not in time order"
    REBOOT = "reboot"  # sysUpTime went backwards or is shorter than the interval
    DISCONTINUITY = "counter discontinuity"  # ifCounterDiscontinuityTime changed
    COUNTER_RESET = "counter reset"
    IMPLAUSIBLE_WRAP = "implausible 32-bit wrap"
    MISSING_COUNTER = "counter not available"
    WIDTH_CHANGED = "counter width changed"
    NEW_INTERFACE = "interface not in previous sample"


@dataclass(frozen=True, slots=True)
class InterfaceRates:
    """Rates of one interface over one interval; None values come with a reason."""

    if_index: int
    interval_s: float
    in_bps: float | None
    out_bps: float | None
    in_utilization_ratio: float | None  # in_bps / contracted bandwidth
    out_utilization_ratio: float | None
    in_errors_per_s: float | None
    out_errors_per_s: float | None
    in_discards_per_s: float | None
    out_discards_per_s: float | None
    oper_up: bool | None
    reason: RateGap | None  # why in_bps or out_bps is None (None when both are known)


def _uptime_reset(prev_s: float, cur_s: float, interval_s: float) -> bool:
    slack_s = UPTIME_SLACK_S + UPTIME_SLACK_RATIO * interval_s
    advanced_s = cur_s - prev_s
    if advanced_s < 0:
        # A TimeTicks wrap advances by exactly the interval once 2**32 ticks are added back.
        return abs(advanced_s + UPTIME_WRAP_S - interval_s) > slack_s
    # Uptime shorter than the interval: the agent started after the previous answer.
    return cur_s + slack_s < interval_s


def reboot_between(prev: RouterSample, cur: RouterSample) -> bool:
    """True when sysUpTime shows the agent restarted between the two samples."""
    if prev.uptime_s is None or cur.uptime_s is None:
        return False
    return _uptime_reset(prev.uptime_s, cur.uptime_s, cur.monotonic_s - prev.monotonic_s)


def counter_delta(
    prev: Reading, cur: Reading, bits: int, max_delta: float | None = None
) -> int | RateGap:
    """Increase of a counter between two readings, correcting at most one plausible wrap."""
    if isinstance(prev, SnmpFailure) or isinstance(cur, SnmpFailure):
        return RateGap.MISSING_COUNTER
    delta = cur - prev
    if delta >= 0:
        return delta
    if bits == 64:
        # 2**64 octets take 46 years at 100 Gbit/s: a 64-bit counter going back was reset.
        return RateGap.COUNTER_RESET
    wrapped = delta + 2**32
    if wrapped >= 2**31:
        return RateGap.COUNTER_RESET
    if max_delta is not None and wrapped > max_delta:
        return RateGap.IMPLAUSIBLE_WRAP
    return wrapped


def _per_s(delta: int | RateGap, interval_s: float) -> float | None:
    return None if isinstance(delta, RateGap) else delta / interval_s


def _gap(if_index: int, interval_s: float, oper_up: bool | None, reason: RateGap) -> InterfaceRates:
    return InterfaceRates(
        if_index, interval_s, None, None, None, None, None, None, None, None, oper_up, reason
    )


def _interface_rates(
    old: InterfaceSample, new: InterfaceSample, interval_s: float, bandwidth_bps: float | None
) -> InterfaceRates:
    if old.counter_bits != new.counter_bits:
        return _gap(new.if_index, interval_s, new.oper_up, RateGap.WIDTH_CHANGED)
    if (
        isinstance(old.discontinuity_ticks, int)
        and isinstance(new.discontinuity_ticks, int)
        and old.discontinuity_ticks != new.discontinuity_ticks
    ):
        return _gap(new.if_index, interval_s, new.oper_up, RateGap.DISCONTINUITY)
    bits = new.counter_bits
    max_octets = None
    if bandwidth_bps:
        max_octets = bandwidth_bps * WRAP_HEADROOM_RATIO * interval_s / 8
    d_in = counter_delta(old.in_octets, new.in_octets, bits, max_octets)
    d_out = counter_delta(old.out_octets, new.out_octets, bits, max_octets)
    # Error and discard counters are Counter32 in ifTable whatever the octet counters' width.
    d_errors = (
        counter_delta(old.in_errors, new.in_errors, 32),
        counter_delta(old.out_errors, new.out_errors, 32),
        counter_delta(old.in_discards, new.in_discards, 32),
        counter_delta(old.out_discards, new.out_discards, 32),
    )
    if RateGap.COUNTER_RESET in (d_in, d_out, *d_errors):
        # An interface's counters are reset together ("clear counters", driver re-init): one
        # that certainly went back to zero means a 32-bit octet counter that went backwards by a
        # wrap-sized step was reset too, not wrapped.
        return _gap(new.if_index, interval_s, new.oper_up, RateGap.COUNTER_RESET)
    in_bps = None if isinstance(d_in, RateGap) else d_in * 8 / interval_s
    out_bps = None if isinstance(d_out, RateGap) else d_out * 8 / interval_s
    reason = d_in if isinstance(d_in, RateGap) else d_out if isinstance(d_out, RateGap) else None
    in_errors_per_s, out_errors_per_s, in_discards_per_s, out_discards_per_s = (
        _per_s(d, interval_s) for d in d_errors
    )
    return InterfaceRates(
        if_index=new.if_index,
        interval_s=interval_s,
        in_bps=in_bps,
        out_bps=out_bps,
        in_utilization_ratio=in_bps / bandwidth_bps
        if in_bps is not None and bandwidth_bps
        else None,
        out_utilization_ratio=(
            out_bps / bandwidth_bps if out_bps is not None and bandwidth_bps else None
        ),
        in_errors_per_s=in_errors_per_s,
        out_errors_per_s=out_errors_per_s,
        in_discards_per_s=in_discards_per_s,
        out_discards_per_s=out_discards_per_s,
        oper_up=new.oper_up,
        reason=reason,
    )


def compute_rates(
    prev: RouterSample, cur: RouterSample, bandwidth_bps: Mapping[int, float]
) -> tuple[list[InterfaceRates], bool]:
    """Per-interface rates between two samples of one router, and whether it rebooted.

    bandwidth_bps maps ifIndex to the link's contracted bandwidth (utilization denominator and
    the bound of a plausible 32-bit wrap); interfaces missing from it get no utilization.
    """
    interval_s = cur.monotonic_s - prev.monotonic_s
    if prev.failure is not None or cur.failure is not None:
        whole = RateGap.FAILED_SAMPLE
    elif interval_s <= 0:
        whole = RateGap.BAD_INTERVAL
    elif reboot_between(prev, cur):
        whole = RateGap.REBOOT
    else:
        whole = None
    if whole is not None:
        gaps = [_gap(i.if_index, interval_s, i.oper_up, whole) for i in cur.interfaces]
        return gaps, whole is RateGap.REBOOT
    before = {i.if_index: i for i in prev.interfaces}
    rates: list[InterfaceRates] = []
    for new in cur.interfaces:
        old = before.get(new.if_index)
        if old is None:
            rates.append(_gap(new.if_index, interval_s, new.oper_up, RateGap.NEW_INTERFACE))
            continue
        rates.append(_interface_rates(old, new, interval_s, bandwidth_bps.get(new.if_index)))
    return rates, False
