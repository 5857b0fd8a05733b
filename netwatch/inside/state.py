"""The latest word of every commune agent, as the centre heard it: the pages and the metrics read
it; the bus feed (or a test) writes it through the ``InsideSink`` interface."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from netwatch.agent.model import AgentHeartbeat, InsideRound


class InsideSink(Protocol):
    """Anything that consumes what agents report: this state, the health judge, metrics.

    Called on the event loop, in the order the centre received the messages; must not block.
    ``received_at`` is the centre's clock when the message arrived: a round received long
    after its ``at`` is backfill (it waited in the agent's buffer while the lines were down).
    """

    def inside_round(self, round_: InsideRound, received_at: datetime) -> None:
        """Take one agent round (live or backfilled; each round once, in the agent's order)."""

    def heartbeat(self, beat: AgentHeartbeat, received_at: datetime) -> None:
        """Take one live heartbeat."""


@dataclass(frozen=True, slots=True)
class AgentView:
    """What the centre knows of one commune's agent."""

    commune: str
    agent: str
    heard_at: datetime | None = None  # the last message of any kind received live
    heartbeat: AgentHeartbeat | None = None  # the last heartbeat
    last_round: InsideRound | None = None  # the newest round by seq
    last_round_received_at: datetime | None = None
    rounds_total: int = 0  # rounds received
    backfilled_total: int = 0  # of them, received more than two intervals after they ran


class InsideState:
    """The latest per commune agent (an ``InsideSink``). ``live_window_s``: a round received
    within this many seconds of its ``at`` counts as live, later as backfill."""

    def __init__(self, live_window_s: float = 60.0) -> None:
        self._live_window_s = live_window_s
        self._agents: dict[str, AgentView] = {}

    def _view(self, commune: str, agent: str) -> AgentView:
        view = self._agents.get(commune)
        if view is None or view.agent != agent:
            # A commune has one agent; a new id (a box replaced) starts a new view.
            view = AgentView(commune=commune, agent=agent)
        return view

    def is_backfill(self, round_: InsideRound, received_at: datetime) -> bool:
        """Whether a round arrived late: it waited on the box while the lines were down."""
        return (received_at - round_.at).total_seconds() > self._live_window_s

    def inside_round(self, round_: InsideRound, received_at: datetime) -> None:
        """Keep the newest round; count every one."""
        view = self._view(round_.commune, round_.agent)
        backfill = self.is_backfill(round_, received_at)
        newer = view.last_round is None or round_.seq > view.last_round.seq
        self._agents[round_.commune] = replace(
            view,
            heard_at=view.heard_at if backfill else received_at,
            last_round=round_ if newer else view.last_round,
            last_round_received_at=received_at if newer else view.last_round_received_at,
            rounds_total=view.rounds_total + 1,
            backfilled_total=view.backfilled_total + (1 if backfill else 0),
        )

    def heartbeat(self, beat: AgentHeartbeat, received_at: datetime) -> None:
        """Keep the last heartbeat."""
        view = self._view(beat.commune, beat.agent)
        self._agents[beat.commune] = replace(view, heard_at=received_at, heartbeat=beat)

    def agents(self) -> Mapping[str, AgentView]:
        """Every agent heard of, by commune code."""
        return self._agents

    def get(self, commune: str) -> AgentView | None:
        """One commune's agent, None when it was never heard."""
        return self._agents.get(commune)
