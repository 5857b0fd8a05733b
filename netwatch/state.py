"""The latest observation of every target, for the API and the status page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alerts.subject import SubjectKey
from netwatch.observations import (
    IcmpObservation,
    Observation,
    PortalObservation,
    RoundReport,
    SnmpObservation,
)


class LatestState:
    """Keeps the newest observation per target key; an ObservationSink."""

    def __init__(self) -> None:
        self.icmp: dict[SubjectKey, IcmpObservation] = {}
        self.snmp: dict[SubjectKey, SnmpObservation] = {}
        self.portals: dict[SubjectKey, PortalObservation] = {}
        self.rounds: dict[str, RoundReport] = {}

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
        """Remember the last round of each kind."""
        self.rounds[report.kind] = report

    def last_round_at(self, kind: str) -> datetime | None:
        """When the last round of this kind started."""
        report = self.rounds.get(kind)
        return report.started_at if report is not None else None
