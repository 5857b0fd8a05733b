"""The latest observation of every target, for the API and the status page; the latest round of
every probe kind over the probe workers' shards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.subject import SubjectKey
from netwatch.observations import (
    IcmpObservation,
    Observation,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)


@dataclass(frozen=True, slots=True)
class SlotReport:
    """One probe kind's last slot over every shard (docs/bus.md, probe workers): each shard runs
    its own schedule, so a slot is the latest report of each shard. With one shard (the single
    process) it is that shard's report."""

    kind: str
    started_at: datetime  # the oldest shard's last round start: everything is at least this fresh
    newest_at: datetime  # the newest shard's last round start
    lag_s: float  # the worst shard's
    duration_s: float  # the slowest shard's
    targets: int  # every shard's
    skipped_rounds: int  # slots skipped by the shards in their last rounds
    shards: int  # shards that have reported

    @classmethod
    def of(cls, reports: Sequence[RoundReport]) -> SlotReport:
        """The combined view of the shards' latest reports (at least one)."""
        return cls(
            kind=reports[0].kind,
            started_at=min(r.started_at for r in reports),
            newest_at=max(r.started_at for r in reports),
            lag_s=max(r.lag_s for r in reports),
            duration_s=max(r.duration_s for r in reports),
            targets=sum(r.targets for r in reports),
            skipped_rounds=sum(r.skipped_rounds for r in reports),
            shards=len(reports),
        )


# A shard silent for this many of its kind's intervals has stopped: forgotten (ShardRounds,
# netwatch.metrics). Three: a worker restarting with the national configuration takes ~1.
STALE_ROUNDS = 3


class ShardRounds:
    """The round reports of one kind from every shard, and when a slot is complete.

    Shards run their own schedules (offset within the interval), so a slot is not a time but a
    turn: it is complete once every shard seen so far has reported since the last complete one.
    A shard that reports twice first completes it too, so a shard that stopped delays nothing by
    more than one of the others' rounds. With one shard every report completes a slot. A shard
    whose last round started `STALE_ROUNDS` intervals before the newest report is forgotten (a
    worker stopped for good, or the deployment went from N to fewer shards): its old figures
    leave the slot.
    """

    def __init__(self, interval_s: float | None = None) -> None:
        self.last: dict[int, RoundReport] = {}  # by shard: its latest report
        self._turn: set[int] = set()  # shards that reported since the last complete slot
        self._stale = timedelta(seconds=STALE_ROUNDS * interval_s) if interval_s else None

    def add(self, report: RoundReport) -> bool:
        """Keep the report; True when it completes a slot."""
        if self._stale is not None:
            before = report.started_at - self._stale
            for shard in [s for s, r in self.last.items() if r.started_at < before]:
                del self.last[shard]
                self._turn.discard(shard)
        again = report.shard in self._turn
        self.last[report.shard] = report
        self._turn.add(report.shard)
        if again:
            self._turn = {report.shard}  # this report also opens the next turn
            return True
        if self._turn >= self.last.keys():
            self._turn = set()
            return True
        return False

    def slot(self) -> SlotReport | None:
        """The combined view of every shard's latest report (None before any)."""
        return SlotReport.of(list(self.last.values())) if self.last else None


class LatestState:
    """Keeps the newest observation per target key; an ObservationSink."""

    def __init__(self, intervals: Mapping[str, float] | None = None) -> None:
        self._intervals = dict(intervals or {})  # by kind, to forget stopped shards
        self.icmp: dict[SubjectKey, IcmpObservation] = {}
        self.snmp: dict[SubjectKey, SnmpObservation] = {}
        self.portals: dict[SubjectKey, PortalObservation] = {}
        self.shard_rounds: dict[str, ShardRounds] = {}  # by kind
        # By kind: the last complete slot, replaced once a slot (the status pages rebuild when
        # it is another object), not once per shard's report.
        self.rounds: dict[str, SlotReport] = {}

    def observe(self, batch: Sequence[Observation]) -> None:
        """Replace what each observation's target had."""
        for obs in batch:
            if isinstance(obs, IcmpObservation):
                self.icmp[obs.target.key] = obs
            elif isinstance(obs, SnmpObservation):
                self.snmp[obs.job.key] = obs
            else:
                self.portals[obs.job.key] = obs

    def round_done(self, report: RoundReport) -> None:
        """Keep each shard's last round of each kind; the slot's view once it is complete."""
        shards = self.shard_rounds.get(report.kind)
        if shards is None:
            shards = ShardRounds(self._intervals.get(report.kind))
            self.shard_rounds[report.kind] = shards
        if shards.add(report):
            slot = shards.slot()
            assert slot is not None
            self.rounds[report.kind] = slot

    def last_round_at(self, kind: str) -> datetime | None:
        """When the last complete slot of this kind started: its oldest shard's round start
        (what every figure shown is at least as fresh as)."""
        slot = self.rounds.get(kind)
        return slot.started_at if slot is not None else None
