"""Installing an ``InsideSink`` under a name, so that installing it again replaces it.

For a consumer built anew for each runtime value (after a configuration reload the runtime is
a new value sharing the same ``runtime.inside_sinks`` list the bus feed calls): a plain
``append`` would leave the old consumer in the list, called for every message forever, one
more per reload. ``install_sink`` keeps one sink per name, at the place the first one took (the
order of the sinks is the order they hear each message). The status pages need none (they read
``runtime.inside``, netwatch/web/status/inside.py); the metrics are built once per runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from netwatch.agent.model import AgentHeartbeat, InsideRound
from netwatch.inside.state import InsideSink


@dataclass(frozen=True, slots=True)
class NamedSink:
    """A sink installed under a name (what ``install_sink`` puts in the list)."""

    name: str
    sink: InsideSink

    def inside_round(self, round_: InsideRound, received_at: datetime) -> None:
        self.sink.inside_round(round_, received_at)

    def heartbeat(self, beat: AgentHeartbeat, received_at: datetime) -> None:
        self.sink.heartbeat(beat, received_at)


def install_sink(sinks: list[InsideSink], name: str, sink: InsideSink) -> NamedSink:
    """Put `sink` in `sinks` under `name`, in place of the sink installed under that name
    before (if any; else at the end)."""
    named = NamedSink(name, sink)
    for i, present in enumerate(sinks):
        if isinstance(present, NamedSink) and present.name == name:
            sinks[i] = named
            # Any other under the same name (none, unless added by hand) goes.
            sinks[i + 1 :] = [
                s for s in sinks[i + 1 :] if not (isinstance(s, NamedSink) and s.name == name)
            ]
            return named
    sinks.append(named)
    return named


def uninstall_sink(sinks: list[InsideSink], name: str) -> None:
    """Remove the sink installed under `name` (nothing when there is none)."""
    sinks[:] = [s for s in sinks if not (isinstance(s, NamedSink) and s.name == name)]
