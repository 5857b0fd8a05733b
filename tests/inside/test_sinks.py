"""Sinks installed by name (netwatch/inside/sinks.py): installing again replaces, in place."""

from __future__ import annotations

from datetime import UTC, datetime

from netwatch.agent.model import AgentHeartbeat, InsideRound
from netwatch.inside.sinks import NamedSink, install_sink, uninstall_sink
from netwatch.inside.state import InsideSink, InsideState

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


class Recorder:
    def __init__(self, name: str, heard: list[str]) -> None:
        self.name = name
        self.heard = heard

    def inside_round(self, round_: InsideRound, received_at: datetime) -> None:
        self.heard.append(f"{self.name}:round:{round_.seq}")

    def heartbeat(self, beat: AgentHeartbeat, received_at: datetime) -> None:
        self.heard.append(f"{self.name}:hb:{beat.last_seq}")


def _round(seq: int) -> InsideRound:
    return InsideRound("24848", "24848-agent", seq, T0, "r", None, (), (), ())


def _beat(seq: int) -> AgentHeartbeat:
    return AgentHeartbeat("24848", "24848-agent", "v", T0, "r", seq, 0, 0, None, 0, 1.0)


def _deliver(sinks: list[InsideSink], seq: int) -> None:
    for sink in sinks:
        sink.inside_round(_round(seq), T0)
        sink.heartbeat(_beat(seq), T0)


def test_installing_again_replaces_in_place_and_keeps_the_order() -> None:
    heard: list[str] = []
    state = InsideState()
    sinks: list[InsideSink] = [state]
    install_sink(sinks, "pages", Recorder("pages-1", heard))
    sinks.append(Recorder("judge", heard))
    _deliver(sinks, 1)
    assert heard == ["pages-1:round:1", "pages-1:hb:1", "judge:round:1", "judge:hb:1"]
    heard.clear()
    for n in range(2, 5):  # three rebuilds of the pages
        install_sink(sinks, "pages", Recorder(f"pages-{n}", heard))
    assert len(sinks) == 3
    assert sinks[0] is state
    assert isinstance(sinks[1], NamedSink)
    _deliver(sinks, 2)
    assert heard == ["pages-4:round:2", "pages-4:hb:2", "judge:round:2", "judge:hb:2"]
    state_view = state.get("24848")
    assert state_view is not None
    assert state_view.rounds_total == 2


def test_uninstalling_removes_only_that_name() -> None:
    heard: list[str] = []
    sinks: list[InsideSink] = []
    install_sink(sinks, "a", Recorder("a", heard))
    install_sink(sinks, "b", Recorder("b", heard))
    uninstall_sink(sinks, "a")
    uninstall_sink(sinks, "missing")
    _deliver(sinks, 1)
    assert heard == ["b:round:1", "b:hb:1"]
