"""Commune agents' rounds and heartbeats for tests, shaped by the agent's real configuration
(``agent_config``): what a box running that configuration would send. Fed to the centre through
``runtime.inside_sinks``, as the bus feed does (docs/agent-centre.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from netwatch.agent.model import (
    AgentConfig,
    AgentHeartbeat,
    DevicePing,
    InsideRound,
    PathPing,
    Ping,
    PortalTiming,
)


def ping(target: str, *, up: bool = True, rtt_s: float = 0.004, sent: int = 4) -> Ping:
    """A target's echoes: all answered at rtt_s, or none."""
    return Ping(
        target=target,
        sent=sent,
        received=sent if up else 0,
        rtt_median_s=rtt_s if up else None,
        rtt_max_s=rtt_s * 1.5 if up else None,
        failure=None if up else "timeout",
    )


def timing(portal: str, link: str, total_s: float | None) -> PortalTiming:
    """A portal over one path: answered in total_s split into phases, or (None) failed at
    connect after 10 s."""
    if total_s is None:
        return PortalTiming(
            portal, link, False, 0.01, None, None, None, 10.0, None, "timeout", "connect"
        )
    return PortalTiming(
        portal,
        link,
        True,
        dns_s=total_s * 0.05,
        connect_s=total_s * 0.1,
        tls_s=total_s * 0.2,
        first_byte_s=total_s * 0.8,
        total_s=total_s,
        status=200,
        failure=None,
        failed_phase=None,
    )


def inside_round(
    config: AgentConfig,
    seq: int,
    at: datetime,
    *,
    paths: Mapping[str, float | None] | None = None,
    portals: Mapping[str, float | None] | None = None,
    devices_down: tuple[str, ...] = (),
    lan_up: bool = True,
    revision: str | None = None,
) -> InsideRound:
    """One round of the agent of `config`: `paths` link -> RTT (None: no answer; default 4 ms
    on every path), `portals` link -> total seconds of every portal over it (None: failing;
    default 0.8 s), the devices named in `devices_down` silent, the rest up."""
    rtts = {p.link: 0.004 for p in config.paths} if paths is None else paths
    totals = {p.link: 0.8 for p in config.paths} if portals is None else portals
    return InsideRound(
        commune=config.commune,
        agent=config.agent,
        seq=seq,
        at=at,
        config_revision=config.revision if revision is None else revision,
        gateway=None if config.lan_gateway is None else ping(config.lan_gateway, up=lan_up),
        paths=tuple(
            PathPing(
                p.link,
                ping(p.target, up=rtts.get(p.link) is not None, rtt_s=rtts.get(p.link) or 0.0),
            )
            for p in config.paths
            if p.link in rtts
        ),
        portals=tuple(
            timing(portal.id, link, total)
            for portal in config.portals
            for link, total in totals.items()
        ),
        devices=tuple(
            DevicePing(d.name, ping(d.address, up=d.name not in devices_down))
            for d in config.devices
        ),
    )


def heartbeat(
    config: AgentConfig,
    at: datetime,
    *,
    last_seq: int = 1,
    buffered: int = 0,
    oldest_age_s: float = 0.0,
    dropped: int = 0,
    version: str = "0.20.0",
    revision: str | None = None,
) -> AgentHeartbeat:
    """The agent's heartbeat: `buffered` rounds waiting (about 400 bytes each), the oldest
    `oldest_age_s` old."""
    return AgentHeartbeat(
        commune=config.commune,
        agent=config.agent,
        version=version,
        at=at,
        config_revision=config.revision if revision is None else revision,
        last_seq=last_seq,
        buffer_messages=buffered,
        buffer_bytes=buffered * 400,
        buffer_oldest_at=at - timedelta(seconds=oldest_age_s) if buffered else None,
        dropped_total=dropped,
        uptime_s=3600.0,
    )
