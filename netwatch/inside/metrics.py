"""Prometheus families of the commune agents (issue 11): their own health and the view from
inside each commune centre, read from ``InsideState`` when Prometheus scrapes.

Nothing is kept here but label strings, escaped once per inventory (as netwatch.metrics does
for the probes' families) and each agent's expected configuration revision: the values are the
state's latest word of every agent, streamed through the metrics collector's fast exposition
(``MetricsCollector.add_families``). Only communes of the inventory with an ``agent:`` section
have series (labels stay bounded by the configuration, whatever an agent sends).

Per agent (labels ``province``, ``commune``, ``commune_name``, ``agent``):

- ``netwatch_agent_last_seen_timestamp_seconds``: the last live message (round or heartbeat);
- ``netwatch_agent_last_round_timestamp_seconds``: when the newest round received was measured;
- ``netwatch_agent_buffer_messages``, ``netwatch_agent_buffer_bytes``: rounds on the box not
  yet acknowledged by the centre (from the last heartbeat);
- ``netwatch_agent_buffer_oldest_age_seconds``: the oldest of them, its age when the heartbeat
  left the box (both times the box's clock: no clock skew; 0 when the buffer is empty);
- ``netwatch_agent_dropped_rounds_total``: rounds the full buffer dropped unsent (kept on the
  box's disk, so a counter across the box's restarts);
- ``netwatch_agent_rounds_received_total``, ``netwatch_agent_rounds_backfilled_total``: rounds
  the centre received since it started, and of them the late ones (from the box's buffer);
- ``netwatch_agent_uptime_seconds``; ``netwatch_agent_info{version}`` (1);
- ``netwatch_agent_config_current``: 1 when the agent runs the inventory's configuration
  (its revision is ``netwatch.inside.config.agent_config(...).revision``), else 0.

The inside measurements of the newest round, while it is at most ``STALE_ROUNDS`` agent
intervals old (a silent agent's last values then vanish rather than draw a flat line, and a
backfilled round never shows as now: Prometheus stamps samples with the scrape's time):

- per path (``province``, ``commune``, ``link``, ``isp``, ``path``, as the link's series
  name it, without ``commune_name``): ``netwatch_inside_path_up``,
  ``netwatch_inside_path_loss_ratio``, ``netwatch_inside_path_rtt_median_seconds``;
- per portal over each path (the path's labels and ``portal``):
  ``netwatch_inside_portal_up`` and ``netwatch_inside_portal_phase_seconds{phase}`` (dns,
  connect, tls, first_byte, total; a phase not reached has no sample; transfer is total minus
  first_byte);
- the router's LAN side: ``netwatch_inside_gateway_up``,
  ``netwatch_inside_gateway_rtt_median_seconds``;
- per front-office device (``province``, ``commune``, ``device``, ``kind``):
  ``netwatch_inside_device_up``;
- ``netwatch_inside_throughput_bytes_per_second`` per path, when a sample was taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from netwatch.agent.model import InsideRound, Ping, PortalConfig
from netwatch.inside.config import AgentConfigError, agent_config, portal_configs
from netwatch.inside.state import AgentView, InsideState
from netwatch.inventory import Inventory
from netwatch.metrics import Family, labelset
from netwatch.state import STALE_ROUNDS

log = logging.getLogger("netwatch.inside.metrics")

AGENT_LABELS = ("province", "commune", "commune_name", "agent")
# The inside series carry fewer labels than the agents' own (no names: join on commune, link,
# portal): ~33 lines per agent (2 paths, 2 portals), ~110,000 lines a national scrape.
PATH_LABELS = ("province", "commune", "link", "isp", "path")


@dataclass(frozen=True, slots=True)
class _Commune:
    """A commune with an agent, its label strings escaped once."""

    code: str
    agent: str
    agent_labels: str
    commune_labels: str  # province, commune
    paths: dict[str, str]  # link id -> the link's label set
    portals: dict[str, str]  # portal id -> 'portal="…"'
    devices: dict[str, str]  # device name -> its label set (with device, kind)


def _communes(inventory: Inventory) -> dict[str, _Commune]:
    out = {}
    for c in inventory.communes:
        if c.agent is None or c.agent_id is None:
            continue
        province = f"{c.province_code:02d}"
        out[c.code] = _Commune(
            code=c.code,
            agent=c.agent_id,
            agent_labels=labelset(AGENT_LABELS, (province, c.code, c.name, c.agent_id)),
            commune_labels=labelset(("province", "commune"), (province, c.code)),
            paths={
                k.id: labelset(PATH_LABELS, (province, c.code, k.id, k.isp, k.path))
                for k in c.links
            },
            portals={pid: labelset(("portal",), (pid,)) for pid in inventory.portals},
            devices={
                d.name: labelset(
                    ("province", "commune", "device", "kind"), (province, c.code, d.name, d.kind)
                )
                for d in c.devices
            },
        )
    return out


def _revisions(inventory: Inventory) -> dict[str, str]:
    """The configuration revision each agent should run (communes whose configuration cannot
    be built left out). ~0.7 ms an agent: 2.3 s for the country, so off the event loop."""
    out: dict[str, str] = {}
    portals: dict[str, PortalConfig] | None
    try:
        portals = portal_configs(inventory)
    except AgentConfigError:
        portals = None  # each commune's own attempt says which portal
    for c in inventory.communes:
        if c.agent is None:
            continue
        try:
            out[c.code] = agent_config(inventory, c.code, portals).revision
        except AgentConfigError as exc:
            log.error("agent configuration of %s not built: %s", c.code, exc)
    return out


def _ts(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def _rtt(ping: Ping) -> float | None:
    return ping.rtt_median_s if ping.answered else None


def _up(ping: Ping) -> float:
    return 1.0 if ping.answered else 0.0


def _loss(ping: Ping) -> float | None:
    return None if ping.sent <= 0 else (ping.sent - ping.received) / ping.sent


def _lines(name: str, pairs: Iterable[tuple[str, float | None]]) -> Iterator[str]:
    for labels, value in pairs:
        if value is not None:
            yield f"{name}{{{labels}}} {float(value)!r}\n"


class InsideMetrics:
    """The agents' families, rendered from the state at scrape time."""

    def __init__(
        self,
        state: InsideState,
        inventory: Inventory,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._state = state
        self._clock = clock
        self._communes: dict[str, _Commune] = {}
        self._revisions: dict[str, str] = {}
        self._inventory: Inventory | None = None
        self._interval_s = 30.0
        self.reload(inventory)

    def reload(self, inventory: Inventory) -> None:
        """Take a (re)loaded inventory: its agents and labels at once, the configuration
        revisions they should run in a worker thread when an event loop runs (a national
        inventory takes seconds; until they are known, the old ones stay, and an agent new to
        the inventory has no ``netwatch_agent_config_current``), else at once."""
        self._communes = _communes(inventory)
        self._interval_s = inventory.agents.interval_s
        self._inventory = inventory
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._revisions = _revisions(inventory)
            return
        done = loop.run_in_executor(None, _revisions, inventory)

        def take(future: asyncio.Future[dict[str, str]]) -> None:
            if future.cancelled() or future.exception() is not None:
                log.error("agents' configuration revisions not computed: %r", future)
            elif self._inventory is inventory:  # not overtaken by a later reload
                self._revisions = future.result()

        done.add_done_callback(take)

    def expected_revision(self, commune: str) -> str | None:
        """The configuration revision the commune's agent should run (None: no agent, or
        not known yet)."""
        return self._revisions.get(commune) if commune in self._communes else None

    def register(self, add_families: Callable[[Callable[[], Iterable[Family]]], None]) -> None:
        """Stream the families after the probes' (``MetricsCollector.add_families``)."""
        add_families(self.families)

    def _views(self) -> list[tuple[_Commune, AgentView]]:
        # A list taken at once: a message landing between two chunks never changes its size.
        out = []
        for code, view in list(self._state.agents().items()):
            c = self._communes.get(code)
            if c is not None and view.agent == c.agent:
                out.append((c, view))
        return out

    def families(self) -> Iterator[Family]:
        """Every family, agents first, then the inside measurements."""
        views = self._views()
        now = self._clock()
        yield from self._agent_families(views)
        fresh = [
            (c, v.last_round)
            for c, v in views
            if v.last_round is not None
            and (now - v.last_round.at).total_seconds() <= STALE_ROUNDS * self._interval_s
        ]
        yield from self._inside_families(fresh)

    def _agent_families(self, views: list[tuple[_Commune, AgentView]]) -> Iterator[Family]:
        def family(
            name: str, kind: str, help_text: str, value: Callable[[AgentView], float | None]
        ) -> Family:
            return (
                name,
                kind,
                help_text,
                _lines(name, ((c.agent_labels, value(v)) for c, v in views)),
            )

        yield family(
            "netwatch_agent_last_seen_timestamp_seconds",
            "gauge",
            "When the centre last heard the commune agent live (round or heartbeat), Unix time",
            lambda v: _ts(v.heard_at),
        )
        yield family(
            "netwatch_agent_last_round_timestamp_seconds",
            "gauge",
            "When the newest round received from the agent was measured, Unix time",
            lambda v: _ts(v.last_round.at if v.last_round is not None else None),
        )
        yield family(
            "netwatch_agent_buffer_messages",
            "gauge",
            "Rounds buffered on the agent box, not yet acknowledged by the centre",
            lambda v: None if v.heartbeat is None else float(v.heartbeat.buffer_messages),
        )
        yield family(
            "netwatch_agent_buffer_bytes",
            "gauge",
            "Bytes of the rounds buffered on the agent box",
            lambda v: None if v.heartbeat is None else float(v.heartbeat.buffer_bytes),
        )
        yield family(
            "netwatch_agent_buffer_oldest_age_seconds",
            "gauge",
            "Age of the oldest buffered round when the agent's last heartbeat left (0: empty)",
            _oldest_age,
        )
        yield family(
            "netwatch_agent_dropped_rounds_total",
            "counter",
            "Rounds the agent's full buffer dropped before they reached the centre",
            lambda v: None if v.heartbeat is None else float(v.heartbeat.dropped_total),
        )
        yield family(
            "netwatch_agent_rounds_received_total",
            "counter",
            "Rounds received from the agent since NetWatch started",
            lambda v: float(v.rounds_total),
        )
        yield family(
            "netwatch_agent_rounds_backfilled_total",
            "counter",
            "Rounds received late from the agent's buffer (after an outage) since NetWatch started",
            lambda v: float(v.backfilled_total),
        )
        yield family(
            "netwatch_agent_uptime_seconds",
            "gauge",
            "How long the agent process had run at its last heartbeat",
            lambda v: None if v.heartbeat is None else v.heartbeat.uptime_s,
        )
        info_pairs = (
            (f"{c.agent_labels},{labelset(('version',), (v.heartbeat.version,))}", 1.0)
            for c, v in views
            if v.heartbeat is not None
        )
        yield (
            "netwatch_agent_info",
            "gauge",
            "1 per commune agent heard, with the NetWatch version it runs",
            _lines("netwatch_agent_info", info_pairs),
        )
        revisions = self._revisions
        current_pairs = (
            (c.agent_labels, _current(revisions[c.code], v))
            for c, v in views
            if c.code in revisions
        )
        yield (
            "netwatch_agent_config_current",
            "gauge",
            "1 if the agent runs the configuration the inventory gives it now, else 0",
            _lines("netwatch_agent_config_current", current_pairs),
        )

    def _inside_families(self, rounds: list[tuple[_Commune, InsideRound]]) -> Iterator[Family]:
        paths = [(c.paths[p.link], p.ping) for c, r in rounds for p in r.paths if p.link in c.paths]
        yield (
            "netwatch_inside_path_up",
            "gauge",
            "1 if the path's far end answered the agent in its last round",
            _lines("netwatch_inside_path_up", ((pl, _up(p)) for pl, p in paths)),
        )
        yield (
            "netwatch_inside_path_loss_ratio",
            "gauge",
            "Share of the agent's echoes over the path lost in its last round (0-1)",
            _lines("netwatch_inside_path_loss_ratio", ((pl, _loss(p)) for pl, p in paths)),
        )
        yield (
            "netwatch_inside_path_rtt_median_seconds",
            "gauge",
            "Median RTT over the path measured by the agent in its last round",
            _lines("netwatch_inside_path_rtt_median_seconds", ((pl, _rtt(p)) for pl, p in paths)),
        )
        portals = [
            (f"{c.paths[t.link]},{c.portals[t.portal]}", t)
            for c, r in rounds
            for t in r.portals
            if t.link in c.paths and t.portal in c.portals
        ]
        yield (
            "netwatch_inside_portal_up",
            "gauge",
            "1 if the portal answered as expected over the path, timed by the agent",
            _lines("netwatch_inside_portal_up", ((pl, 1.0 if t.ok else 0.0) for pl, t in portals)),
        )
        phases = (
            (f'{pl},phase="{phase}"', value)
            for pl, t in portals
            for phase, value in (
                ("dns", t.dns_s),
                ("connect", t.connect_s),
                ("tls", t.tls_s),
                ("first_byte", t.first_byte_s),
                ("total", t.total_s),
            )
        )
        yield (
            "netwatch_inside_portal_phase_seconds",
            "gauge",
            "Duration of each phase of the portal over the path, timed by the agent",
            _lines("netwatch_inside_portal_phase_seconds", phases),
        )
        gateways = [(c.commune_labels, r.gateway) for c, r in rounds if r.gateway is not None]
        yield (
            "netwatch_inside_gateway_up",
            "gauge",
            "1 if the commune router's LAN address answered the agent in its last round",
            _lines("netwatch_inside_gateway_up", ((cl, _up(g)) for cl, g in gateways)),
        )
        yield (
            "netwatch_inside_gateway_rtt_median_seconds",
            "gauge",
            "Median RTT from the agent to the commune router's LAN address",
            _lines(
                "netwatch_inside_gateway_rtt_median_seconds", ((cl, _rtt(g)) for cl, g in gateways)
            ),
        )
        devices = [
            (c.devices[d.name], d.ping) for c, r in rounds for d in r.devices if d.name in c.devices
        ]
        yield (
            "netwatch_inside_device_up",
            "gauge",
            "1 if the front-office device answered the agent in its last round",
            _lines("netwatch_inside_device_up", ((dl, _up(p)) for dl, p in devices)),
        )
        throughput = [
            (c.paths[t.link], t.bps) for c, r in rounds for t in r.throughput if t.link in c.paths
        ]
        yield (
            "netwatch_inside_throughput_bytes_per_second",
            "gauge",
            "Download rate of the agent's last throughput sample over the path",
            _lines(
                "netwatch_inside_throughput_bytes_per_second",
                ((pl, None if bps is None else bps / 8) for pl, bps in throughput),
            ),
        )


def _oldest_age(view: AgentView) -> float | None:
    beat = view.heartbeat
    if beat is None:
        return None
    if beat.buffer_oldest_at is None or beat.buffer_messages == 0:
        return 0.0
    return max((beat.at - beat.buffer_oldest_at).total_seconds(), 0.0)


def _current(expected: str, view: AgentView) -> float | None:
    running = (
        view.heartbeat.config_revision
        if view.heartbeat is not None
        else view.last_round.config_revision
        if view.last_round is not None
        else None
    )
    if view.heartbeat is None and view.last_round is None:
        return None
    return 1.0 if running is not None and running == expected else 0.0
