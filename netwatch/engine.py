"""The probe engine: rounds per probe kind on their own schedule, feeding observation sinks."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from alerts.subject import SubjectKey
from netwatch.confirm import FastConfirmer, FastTrack, Judge, Mode, Thresholds
from netwatch.observations import (
    IcmpObservation,
    InterfaceReading,
    Kind,
    Observation,
    ObservationSink,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)
from netwatch.plan import Plan, PortalJob, SnmpJob
from probes.dns import probe_dns
from probes.http import HttpProber
from probes.icmp import IcmpPinger
from probes.snmp import SnmpPoller
from probes.snmp_rates import compute_rates
from probes.snmp_types import RouterSample, SnmpFailure

log = logging.getLogger("netwatch.engine")
_Job = TypeVar("_Job")
_Out = TypeVar("_Out")


@dataclass(slots=True)
class _RouterState:
    """What the engine remembers of one router between rounds."""

    if_indexes: dict[str, int] | None = None  # interface name -> ifIndex, resolved once
    resolve_after: float = 0.0  # monotonic time of the next resolution attempt
    wanted: list[int] = field(default_factory=list)  # ifIndexes polled each round
    bandwidth_bps: dict[int, float] = field(default_factory=dict)  # ifIndex -> contracted
    previous: RouterSample | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # a round and a confirmation poll


@dataclass(slots=True)
class EngineOptions:
    """Knobs that are not in the inventory (they are about this process, not the network)."""

    # None: spread each target's echoes over the round's interval (one every 6 s at 30 s and 5
    # echoes), so that a line cut at any moment loses its next echo within seconds and fast
    # confirmation starts then, not at the end of a bunched round (docs/alerting.md).
    icmp_spacing_s: float | None = None
    icmp_timeout_s: float = 2.0
    snmp_concurrency: int = 256
    http_concurrency: int = 16
    start_jitter_s: float = 2.0  # first rounds of the kinds start spread over this window
    resolve_retry_s: float = 300.0


@dataclass(slots=True)
class Engine:
    """Runs every probe kind's rounds until stopped; never overlaps a round with the next."""

    plan: Plan
    pinger: IcmpPinger | None
    snmp: SnmpPoller | None
    http: HttpProber | None
    sinks: Sequence[ObservationSink]
    options: EngineOptions = field(default_factory=EngineOptions)
    # Fast confirmation (netwatch/confirm.py): who judges the rounds, and which sinks hear the
    # fast rounds (the health monitor and the latest state; not the per-round metrics).
    judge: Judge | None = None
    fast_sinks: Sequence[ObservationSink] | None = None
    confirmer: FastConfirmer | None = None
    # How the confirmer gets a suspect link's router polled, instead of poll_router_now (a probe
    # worker asks the SNMP worker over the bus, or publishes its own poll as a fast one).
    router_poller: Callable[[SubjectKey], Awaitable[None]] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _routers: dict[SubjectKey, _RouterState] = field(default_factory=dict)
    _jobs: dict[SubjectKey, SnmpJob] = field(init=False)  # the plan's routers by key
    _portal_checks: dict[SubjectKey, asyncio.Task[None]] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._jobs = {job.key: job for job in self.plan.snmp}

    def start(self) -> None:
        """Start one scheduling loop per probe kind that has targets."""
        loops: list[tuple[Kind, float, Callable[[], Awaitable[list[Observation]]], int]] = []
        if self.pinger is not None and self.plan.icmp:
            loops.append(("icmp", self.plan.icmp_interval_s, self.icmp_round, len(self.plan.icmp)))
        if self.snmp is not None and self.plan.snmp:
            loops.append(("snmp", self.plan.snmp_interval_s, self.snmp_round, len(self.plan.snmp)))
        if self.http is not None and self.plan.portals:
            loops.append(
                ("http", self.plan.http_interval_s, self.http_round, len(self.plan.portals))
            )
        if (
            self.pinger is not None
            and self.plan.icmp
            and self.plan.confirm is not None
            and self.judge is not None
        ):
            self.confirmer = FastConfirmer(
                self.plan,
                self.judge,
                self.plan.confirm,
                feed=self._feed_fast,
                poll_router=self.router_poller
                or (self.poll_router_now if self.snmp is not None else None),
            )
            self._tasks.append(
                asyncio.create_task(self.confirmer.run(self.pinger), name="netwatch-confirm")
            )
        for kind, interval, run, targets in loops:
            offset = self._rng.uniform(0, self.options.start_jitter_s)
            task = asyncio.create_task(
                self._loop(kind, interval, offset, run, targets), name=f"netwatch-{kind}-rounds"
            )
            self._tasks.append(task)

    async def stop(self) -> None:
        """Cancel the loops and wait for them: no orphan tasks."""
        checks = list(self._portal_checks.values())
        for task in (*self._tasks, *checks):
            task.cancel()
        await asyncio.gather(*self._tasks, *checks, return_exceptions=True)
        self._tasks.clear()

    async def reload(self, plan: Plan) -> None:
        """Measure a reloaded plan: the rounds (and fast confirmation) start again on it, so
        added targets are probed from the next round and removed ones no more. The round in
        progress is dropped (the judged states do not depend on it: hysteresis counts rounds);
        a router polled before keeps its interface map and previous sample (its rates)."""
        running = bool(self._tasks)
        await self.stop()
        before, self.plan = self._jobs, plan
        self._jobs = {job.key: job for job in plan.snmp}
        for key in list(self._routers):
            if self._jobs.get(key) != before.get(key):
                # Removed, or polled differently (address, credentials, interfaces): its
                # interface map and previous sample mean nothing for the new job.
                del self._routers[key]
        if self.http is not None:
            self.http.prepare([job.check for job in plan.portals])
        self.confirmer = None
        if running:
            self.start()

    async def _loop(
        self,
        kind: Kind,
        interval_s: float,
        offset_s: float,
        run: Callable[[], Awaitable[list[Observation]]],
        targets: int,
    ) -> None:
        # Drift-free schedule: slot k starts at origin + k * interval. A round that overruns
        # makes the loop skip the slots it covered instead of stacking rounds.
        origin = time.monotonic() + offset_s
        wall_origin = datetime.now(UTC) + timedelta(seconds=offset_s)
        slot = 0
        while True:
            scheduled = origin + slot * interval_s
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.monotonic()
            started_at = datetime.now(UTC)
            try:
                batch = await run()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one round must not stop monitoring
                log.exception("round failed kind=%s", kind)
                batch = []
            for sink in self.sinks:
                sink.observe(batch)
            finished = time.monotonic()
            next_slot = slot + 1
            while origin + next_slot * interval_s < finished:
                next_slot += 1
            report = RoundReport(
                kind=kind,
                scheduled_at=wall_origin + timedelta(seconds=slot * interval_s),
                started_at=started_at,
                lag_s=max(0.0, started - scheduled),
                duration_s=finished - started,
                targets=targets,
                skipped_rounds=next_slot - slot - 1,
            )
            if report.skipped_rounds:
                log.warning(
                    "round overran kind=%s duration_s=%.1f interval_s=%.1f skipped=%d",
                    kind,
                    report.duration_s,
                    interval_s,
                    report.skipped_rounds,
                )
            for sink in self.sinks:
                sink.round_done(report)
            slot = next_slot

    def icmp_spacing_s(self) -> float:
        """The spacing of a normal round's sweeps: as set, or spread over the interval."""
        if self.options.icmp_spacing_s is not None:
            return self.options.icmp_spacing_s
        return spread_spacing_s(
            self.plan.icmp_interval_s, self.plan.icmp_echoes, self.options.icmp_timeout_s
        )

    async def icmp_round(self) -> list[Observation]:
        """Ping every target once per echo, SmokePing style."""
        assert self.pinger is not None
        targets = self.plan.icmp
        results = await self.pinger.round(
            [t.address for t in targets],
            echoes=self.plan.icmp_echoes,
            spacing_s=self.icmp_spacing_s(),
            timeout_s=self.options.icmp_timeout_s,
            on_sweep=self.confirmer.on_sweep if self.confirmer is not None else None,
        )
        return [IcmpObservation(t, r) for t, r in zip(targets, results, strict=True)]

    def _feed_fast(self, batch: Sequence[Observation]) -> None:
        for sink in self.fast_sinks if self.fast_sinks is not None else self.sinks:
            sink.observe(batch)

    async def poll_router_now(self, key: SubjectKey) -> None:
        """Poll one router outside its round (a suspect link's), feeding every sink."""
        obs = await self.poll_router(key)
        if obs is not None:
            for sink in self.sinks:
                sink.observe([obs])

    async def poll_router(self, key: SubjectKey) -> SnmpObservation | None:
        """Poll one router of the plan outside its round and hand back the observation,
        feeding no sink; None for a router not in the plan."""
        job = self._jobs.get(key)
        if job is None or self.snmp is None:
            return None
        return await self._poll_router(job)

    async def snmp_round(self) -> list[Observation]:
        """Poll every router once (one GET each), with bounded concurrency."""
        assert self.snmp is not None
        return await _bounded(self.plan.snmp, self.options.snmp_concurrency, self._poll_router)

    async def _poll_router(self, job: SnmpJob) -> SnmpObservation:
        state = self._routers.setdefault(job.key, _RouterState())
        async with state.lock:  # rates need consecutive samples: one poll at a time
            return await self._poll_router_locked(job, state)

    async def _poll_router_locked(self, job: SnmpJob, state: _RouterState) -> SnmpObservation:
        assert self.snmp is not None
        if job.interfaces and time.monotonic() >= state.resolve_after:
            await self._resolve(job, state)
        indexes = state.if_indexes or {}
        sample = await self.snmp.poll(job.target, state.wanted)
        rebooted = False
        rates_by_index = {}
        rates_since = None
        if sample.failure is None and state.previous is not None and state.previous.failure is None:
            rates, rebooted = compute_rates(state.previous, sample, state.bandwidth_bps)
            rates_by_index = {r.if_index: r for r in rates}
            rates_since = state.previous.taken_at
        if sample.failure is None:
            state.previous = sample
            if rebooted:
                # ifIndex numbering may change across a reboot (RFC 2863 3.1.5): resolve again.
                state.resolve_after = 0.0
        samples = {s.if_index: s for s in sample.interfaces}
        readings = []
        for iface in job.interfaces:
            index = indexes.get(iface.interface)
            s = samples.get(index) if index is not None else None
            r = rates_by_index.get(index) if index is not None else None
            readings.append(
                InterfaceReading(
                    link_key=iface.link.key,
                    if_index=index,
                    oper_up=s.oper_up if s is not None else None,
                    in_bps=r.in_bps if r is not None else None,
                    out_bps=r.out_bps if r is not None else None,
                    in_utilization_ratio=r.in_utilization_ratio if r is not None else None,
                    out_utilization_ratio=r.out_utilization_ratio if r is not None else None,
                    in_octets=_int(s.in_octets) if s is not None else None,
                    out_octets=_int(s.out_octets) if s is not None else None,
                    in_errors=_int(s.in_errors) if s is not None else None,
                    out_errors=_int(s.out_errors) if s is not None else None,
                    in_discards=_int(s.in_discards) if s is not None else None,
                    out_discards=_int(s.out_discards) if s is not None else None,
                )
            )
        return SnmpObservation(job, sample, tuple(readings), rebooted, rates_since)

    async def _resolve(self, job: SnmpJob, state: _RouterState) -> None:
        """Map the job's interface names to ifIndexes; done once, again after a reboot, and
        retried later while the router is unreachable or some names are not found on it."""
        assert self.snmp is not None
        names = [i.interface for i in job.interfaces]
        resolved = await self.snmp.resolve_interfaces(job.target, names)
        retry_at = time.monotonic() + self.options.resolve_retry_s
        if isinstance(resolved, SnmpFailure):
            state.resolve_after = retry_at
            log.info("interface names not resolved router=%s reason=%s", job.key, resolved.value)
            return
        missing = [n for n in names if n not in resolved]
        if missing:
            log.warning("router interfaces not found router=%s names=%s", job.key, missing)
        # Nothing to do until the next reboot, unless a name was missing: then look again later.
        state.resolve_after = retry_at if missing else float("inf")
        state.if_indexes = dict(resolved)
        state.wanted = sorted(set(resolved.values()))
        state.bandwidth_bps = {
            resolved[i.interface]: i.link.bandwidth_bps
            for i in job.interfaces
            if i.interface in resolved
        }

    async def http_round(self) -> list[Observation]:
        """Time every portal (fresh connection each) and resolve its name."""
        assert self.http is not None
        batch: list[Observation] = await _bounded(
            self.plan.portals, self.options.http_concurrency, self._probe_portal
        )
        self._confirm_portals(batch)
        return batch

    async def _probe_portal(self, job: PortalJob) -> PortalObservation:
        dns = None
        if job.dns_name is not None and job.dns_resolver is not None:
            dns = await probe_dns(job.dns_name, job.dns_resolver)
        assert self.http is not None
        result = await self.http.probe(job.check)
        return PortalObservation(job, result, dns)

    def _confirm_portals(self, batch: Sequence[Observation]) -> None:
        """Fast confirmation for portals: one whose probe disagrees with its judged state is
        probed again every confirmation interval until hysteresis confirms or clears it."""
        if self.judge is None or self.plan.confirm is None:
            return
        for obs in batch:
            if not isinstance(obs, PortalObservation):
                continue
            key = obs.job.key
            th = self.judge.thresholds(key)
            if th is None or key in self._portal_checks:
                continue
            bad_state = self.judge.is_bad(key)
            if _portal_bad(obs, th.rtt_s) != bad_state:
                task = asyncio.create_task(
                    self._fast_portal(obs.job, bad_state, th), name=f"netwatch-confirm-{key}"
                )
                self._portal_checks[key] = task
                task.add_done_callback(functools.partial(self._portal_checked, key))

    def _portal_checked(self, key: SubjectKey, _task: asyncio.Task[None]) -> None:
        self._portal_checks.pop(key, None)

    async def _fast_portal(self, job: PortalJob, was_bad: bool, th: Thresholds) -> None:
        assert self.judge is not None
        assert self.plan.confirm is not None
        track = FastTrack(Mode.EXIT if was_bad else Mode.ENTER)
        done: bool | None = None
        while done is None:
            await asyncio.sleep(self.plan.confirm.interval_s)
            obs = await self._probe_portal(job)
            self._feed_fast([obs])
            done = track.step(_portal_bad(obs, th.rtt_s), self.judge.is_bad(job.key), th)


async def _bounded(
    jobs: Iterable[_Job], limit: int, run: Callable[[_Job], Awaitable[_Out]]
) -> list[_Out]:
    """`run` for every job, at most `limit` at once; the results in the jobs' order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: _Job) -> _Out:
        async with gate:
            return await run(job)

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def _portal_bad(obs: PortalObservation, slow_s: float) -> bool:
    h = obs.http
    return h.failure is not None or (h.total_s is not None and h.total_s > slow_s)


def spread_spacing_s(interval_s: float, echoes: int, timeout_s: float) -> float:
    """Echo spacing that spreads a round over its interval and still ends before the next one:
    interval / echoes, less where the last echo's timeout (and a second for sending a national
    sweep) would run into the next round."""
    if echoes <= 1:
        return 0.0
    fits = (interval_s - timeout_s - 1.0) / (echoes - 1)
    return max(0.0, min(interval_s / echoes, fits))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
