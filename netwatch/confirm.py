"""Fast confirmation: a subject that looks bad (or good again) is probed at a short interval until
hysteresis confirms or clears it, while the rest of the country keeps its schedule.

The idea is Zabbix's and Nagios' retry interval, with three differences that matter here:

* The normal ICMP round spreads each target's echoes over the whole interval (one echo every
  6 s at 30 s and 5 echoes), and the pinger reports each sweep as soon as its echoes are
  answered or past their timeout. A cut line is suspected one echo after it broke, not at the end
  of the round that saw it.
* What root cause will need is probed with the suspect, in the same fast rounds: the link's
  upstream node, the commune's other links and NetWatch's own reference targets. An upstream
  outage is then confirmed in the same fast round as the first link behind it (one ticket for
  the node, never one per link first), and a monitor that lost its own uplink sees its
  references fail with its links.
* A line with a router is also polled by SNMP at once and again ``snmp_after_s`` later, so the
  rounds of a lossy or slow line are judged against a utilization reading taken while they were
  bad: congestion, not an ISP fault, when the line is full.

Bounded: at most ``capacity`` subjects are in fast mode at once, where capacity also keeps the
fast echoes under ``max_pps``; the pinger's own rate limit is shared with the normal rounds. In a
national outage the first suspects (and every upstream node and reference target, which have
seats of their own) are confirmed fast; the rest are confirmed by their normal rounds.

This module knows nothing of alerts/: it asks a ``Judge`` whether a subject is currently in a
bad state and what its thresholds are. The health monitor is that judge.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from alerts.health import loss_over
from alerts.subject import SubjectKey
from netwatch.observations import IcmpObservation, Observation
from netwatch.plan import ConfirmOptions, IcmpTarget, Plan
from probes.icmp import IcmpPinger, PingResult

log = logging.getLogger("netwatch.confirm")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What makes one round of one subject bad, and its hysteresis (counted in rounds)."""

    rtt_s: float  # math.inf: RTT does not matter (nodes)
    loss_ratio: float
    enter_rounds: int
    enter_window: int
    exit_rounds: int


class Judge(Protocol):
    """Who decides what the rounds mean (the health monitor); subjects are ICMP target keys."""

    def is_bad(self, key: SubjectKey) -> bool:
        """True while the subject is in a bad state after hysteresis."""
        ...

    def thresholds(self, key: SubjectKey) -> Thresholds | None:
        """The subject's thresholds; None: not judged (front-office devices)."""
        ...


class Mode(enum.Enum):
    """Why a subject is in fast mode."""

    ENTER = "enter"  # good, looked bad: confirm or clear
    EXIT = "exit"  # bad, looked good: confirm the recovery or go back to the schedule


class FastTrack:
    """One subject in fast mode: its rounds so far, and when they are enough (the one stop rule
    of every fast confirmation, links, nodes and portals alike)."""

    __slots__ = ("bad", "good", "mode", "rounds")

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.rounds = 0
        self.good = 0  # good fast rounds in a row
        self.bad = 0  # bad fast rounds in a row

    def step(self, bad_round: bool, bad_state: bool, th: Thresholds) -> bool | None:
        """Count one fast round (``bad_state``: the judged state after it). None: go on;
        True: done, the state changed; False: done without a change."""
        self.rounds += 1
        self.good = 0 if bad_round else self.good + 1
        self.bad = self.bad + 1 if bad_round else 0
        if self.mode is Mode.ENTER:
            if bad_state:
                return True
            # With fewer than enter_rounds bad rounds left possible in the window: noise.
            if self.good >= max(1, th.enter_window - th.enter_rounds + 1):
                return False
        else:
            if not bad_state:
                return True
            # Still bad: back to the schedule. Two rounds in a row, not one: a line coming back
            # up often loses the first echoes of its first fast round.
            if self.bad >= 2:
                return False
        if self.rounds >= th.enter_window + th.exit_rounds:
            return False
        return None


@dataclass(frozen=True, slots=True)
class ConfirmStats:
    """Counters for NetWatch's own metrics and the tests."""

    admitted: int
    refused: int  # suspects left to the normal schedule: no seat free
    confirmed: int  # fast episodes that ended in a state change
    cleared: int  # fast episodes that ended without one
    rounds: int
    echoes: int
    in_fast: int
    capacity: int


class FastConfirmer:
    """Watches the normal rounds' sweeps and runs the fast rounds (one asyncio task)."""

    def __init__(
        self,
        plan: Plan,
        judge: Judge,
        options: ConfirmOptions,
        *,
        feed: Callable[[Sequence[Observation]], None],
        poll_router: Callable[[SubjectKey], Awaitable[None]] | None = None,
    ) -> None:
        self._judge = judge
        self.options = options
        self.capacity = options.capacity
        self._feed = feed
        self._poll_router = poll_router
        self._cooldown_s = plan.icmp_interval_s  # a bad subject's fast rounds were bad: wait
        targets = plan.icmp
        self._targets = targets
        self._keys = [t.key for t in targets]
        self._thresholds = [judge.thresholds(t.key) for t in targets]
        inf_ns = 1 << 62
        self._rtt_ns = [
            inf_ns if th is None or math.isinf(th.rtt_s) else int(th.rtt_s * 1e9)
            for th in self._thresholds
        ]
        self._watched = [th is not None for th in self._thresholds]
        self._is_node = [t.role in ("upstream", "reference") for t in targets]
        # Seats kept for nodes: links never take the last ones.
        nodes = sum(self._is_node)
        self._node_seats = min(nodes, self.capacity // 4)
        self._companions = _companions(targets)
        router_of = {job.commune: job.key for job in plan.snmp}
        self._routers = {
            i: router_of[t.link.commune]
            for i, t in enumerate(targets)
            if t.link is not None and t.link.commune in router_of
        }
        self._fast: dict[int, FastTrack] = {}
        self._cooldown: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._admitted = self._refused = self._confirmed = self._cleared = 0
        self._rounds = self._echoes = 0
        self._links_in_fast = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._polling: set[SubjectKey] = set()  # routers with a confirmation poll under way

    # -- what the normal rounds tell ----------------------------------------------------------

    def on_sweep(self, sweep: int, table: list[int]) -> None:
        """One sweep of the normal round: suspects are its lost or slow echoes of good
        subjects, and its good echoes of bad ones."""
        del sweep
        is_bad = self._judge.is_bad
        keys, watched, rtt_ns = self._keys, self._watched, self._rtt_ns
        fast = self._fast
        for i, value in enumerate(table):
            if not watched[i] or i in fast:
                continue
            looks_bad = value < 0 or value > rtt_ns[i]
            bad = is_bad(keys[i])
            if looks_bad and not bad:
                self.suspect(i, Mode.ENTER)
            elif bad and not looks_bad:
                self.suspect(i, Mode.EXIT)

    def suspect(self, index: int, mode: Mode) -> bool:
        """Put one target (an index into plan.icmp) in fast mode, with its companions when it
        is a link that looks bad. False when refused (no seat, or cooling down)."""
        now = time.monotonic()
        if index in self._fast:
            return True
        if mode is Mode.EXIT and self._cooldown.get(index, 0.0) > now:
            return False
        if not self._seat(index):
            self._refused += 1
            return False
        self._enter(index, mode)
        if mode is Mode.ENTER and not self._is_node[index]:
            for other in self._companions.get(index, ()):
                if other not in self._fast and self._watched[other] and self._seat(other):
                    bad = self._judge.is_bad(self._keys[other])
                    self._enter(other, Mode.EXIT if bad else Mode.ENTER)
        # Either way the line's router is asked at once and again: a line coming back may lose
        # a few echoes on the way, and such a round waits for a reading taken after it.
        router = self._routers.get(index)
        if router is not None and self._poll_router is not None and router not in self._polling:
            self._polling.add(router)
            self._spawn(self._poll_twice(router))
        self._wake.set()
        return True

    def _seat(self, index: int) -> bool:
        if len(self._fast) >= self.capacity:
            return False
        if self._is_node[index]:
            return True
        return self._links_in_fast < self.capacity - self._node_seats

    def _enter(self, index: int, mode: Mode) -> None:
        self._fast[index] = FastTrack(mode)
        self._admitted += 1
        if not self._is_node[index]:
            self._links_in_fast += 1

    def _leave(self, index: int, *, changed: bool) -> None:
        track = self._fast.pop(index)
        if not self._is_node[index]:
            self._links_in_fast -= 1
        if changed:
            self._confirmed += 1
        else:
            self._cleared += 1
            if track.mode is Mode.EXIT:
                # Still bad: back on the schedule for a round before looking again, or a lossy
                # line would take a seat at every sweep that got an answer.
                self._cooldown[index] = time.monotonic() + self._cooldown_s

    async def _poll_twice(self, router: SubjectKey) -> None:
        assert self._poll_router is not None
        try:
            await self._poll_router(router)  # opens an interval that starts with the suspicion
            await asyncio.sleep(self.options.snmp_after_s)
            await self._poll_router(router)  # a reading taken while the rounds were bad
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("confirmation poll failed router=%s", router)
        finally:
            self._polling.discard(router)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the fast rounds ----------------------------------------------------------------------

    async def run(self, pinger: IcmpPinger) -> None:
        """Run fast rounds while anything is suspect; idle otherwise. Cancel to stop."""
        try:
            while True:
                if not self._fast:
                    self._wake.clear()
                    await self._wake.wait()
                started = time.monotonic()
                await self.fast_round(pinger)
                delay = started + self.options.interval_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def fast_round(self, pinger: IcmpPinger) -> None:
        """One fast round over the subjects in fast mode: fed to the sinks, then each subject
        either stays or leaves (confirmed, cleared, or out of rounds)."""
        indexes = list(self._fast)
        if not indexes:
            return
        targets = [self._targets[i] for i in indexes]
        o = self.options
        results = await pinger.round(
            [t.address for t in targets],
            echoes=o.echoes,
            spacing_s=o.spacing_s,
            timeout_s=o.timeout_s,
        )
        self._rounds += 1
        self._echoes += len(targets) * o.echoes
        self._feed([IcmpObservation(t, r) for t, r in zip(targets, results, strict=True)])
        self._advance(indexes, results)

    def _advance(self, indexes: list[int], results: list[PingResult]) -> None:
        is_bad = self._judge.is_bad
        for index, result in zip(indexes, results, strict=True):
            track = self._fast.get(index)
            th = self._thresholds[index]
            if track is None or th is None:
                continue
            bad_round = (
                result.received == 0
                or loss_over(result.sent, result.received, th.loss_ratio)
                or (result.rtt_median_s is not None and result.rtt_median_s > th.rtt_s)
            )
            done = track.step(bad_round, is_bad(self._keys[index]), th)
            if done is not None:
                self._leave(index, changed=done)

    def stats(self) -> ConfirmStats:
        """A snapshot of the counters."""
        return ConfirmStats(
            admitted=self._admitted,
            refused=self._refused,
            confirmed=self._confirmed,
            cleared=self._cleared,
            rounds=self._rounds,
            echoes=self._echoes,
            in_fast=len(self._fast),
            capacity=self.capacity,
        )

    def in_fast_mode(self) -> dict[SubjectKey, Mode]:
        """The subjects in fast mode now, by target key."""
        return {self._keys[i]: track.mode for i, track in self._fast.items()}


def _companions(targets: Sequence[IcmpTarget]) -> dict[int, tuple[int, ...]]:
    """For each link target: what root cause needs beside it (its upstream node, the other
    links of its commune, the reference targets), as indexes into ``targets``."""
    by_key = {t.key: i for i, t in enumerate(targets)}
    references = tuple(i for i, t in enumerate(targets) if t.role == "reference")
    links_of: dict[str, list[int]] = {}
    for i, t in enumerate(targets):
        if t.link is not None:
            links_of.setdefault(t.link.commune, []).append(i)
    out: dict[int, tuple[int, ...]] = {}
    for i, t in enumerate(targets):
        if t.link is None:
            continue
        near: list[int] = []
        if t.link.upstream is not None:
            node = by_key.get(SubjectKey.upstream(t.link.upstream))
            if node is not None:
                near.append(node)
        near.extend(references)
        near.extend(j for j in links_of[t.link.commune] if j != i)
        out[i] = tuple(near)
    return out
