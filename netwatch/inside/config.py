"""Each commune agent's part of the inventory (issue 11): the centre builds it, the agent runs it.

Provincial IT edits one inventory; an agent asking for its configuration gets only its own
commune's part (``AgentConfig``), never another commune's addresses. ``revision`` is a digest of
the content, so an agent (and the pages) can tell whether it runs the current configuration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from netwatch.agent import wire
from netwatch.agent.model import (
    AgentConfig,
    DeviceConfig,
    PathConfig,
    PortalConfig,
    ThroughputConfig,
)
from netwatch.inventory.models import Commune, Inventory


class AgentConfigError(ValueError):
    """The inventory cannot give this commune's agent a configuration (said in plain words)."""


def agent_config(
    inventory: Inventory, code: str, portals: Mapping[str, PortalConfig] | None = None
) -> AgentConfig:
    """The configuration of the agent of commune ``code``; ``portals``: the inventory's
    ``portal_configs``, for a caller building many (each reads the portals' CA files once).

    Raises ``AgentConfigError`` when the commune is not listed, has no agent, or a portal's CA
    file cannot be read.
    """
    commune = inventory.commune(code)
    if commune is None:
        raise AgentConfigError(f"no commune {code} in the inventory")
    if commune.agent is None or commune.agent_id is None:
        raise AgentConfigError(f"commune {code} {commune.name} has no `agent:` section")
    agent = commune.agent
    wanted = agent.portals if agent.portals is not None else tuple(inventory.portals)
    if portals is None:
        chosen = tuple(_portal(inventory, pid) for pid in wanted)
    else:
        chosen = tuple(portals[pid] for pid in wanted)
    t = agent.throughput
    config = AgentConfig(
        commune=commune.code,
        agent=commune.agent_id,
        revision="",
        interval_s=inventory.agents.interval_s,
        echoes=inventory.agents.echoes,
        lan_gateway=str(agent.lan_gateway) if agent.lan_gateway is not None else None,
        paths=tuple(
            PathConfig(
                link=p.link,
                source=str(p.source) if p.source is not None else None,
                interface=p.interface,
                target=str(p.target),
            )
            for p in agent.paths
        ),
        portals=chosen,
        devices=_devices(commune),
        throughput=ThroughputConfig(
            enabled=t.enabled,
            url=t.url,
            max_bytes=t.max_bytes,
            every_s=t.every_s,
            rate_limit_bps=t.rate_limit_bps,
        ),
    )
    return replace(config, revision=revision_of(config))


def agent_configs(inventory: Inventory) -> dict[str, AgentConfig]:
    """Every agent's configuration, by commune code (communes without an agent left out)."""
    portals = portal_configs(inventory)
    return {c.code: agent_config(inventory, c.code, portals) for c in inventory.communes if c.agent}


def portal_configs(inventory: Inventory) -> dict[str, PortalConfig]:
    """Every portal as agents time it, by id (its CA file read once)."""
    return {pid: _portal(inventory, pid) for pid in inventory.portals}


def revision_of(config: AgentConfig) -> str:
    """A short digest of everything in ``config`` but its revision."""
    body = wire.encode_config(replace(config, revision=""))
    return hashlib.sha256(body).hexdigest()[:16]


def _portal(inventory: Inventory, pid: str) -> PortalConfig:
    portal = inventory.portals[pid]
    ca_pem = None
    if portal.ca_file:
        try:
            ca_pem = Path(portal.ca_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise AgentConfigError(
                f"portal {pid}: cannot read ca_file {portal.ca_file}: {exc}"
            ) from exc
    return PortalConfig(
        id=pid,
        url=portal.url,
        expect_status=portal.expect_status,
        expect_text=portal.expect_text,
        ca_pem=ca_pem,
        dns_resolver=str(portal.dns_resolver) if portal.dns_resolver is not None else None,
        timeout_s=portal.timeout_s,
    )


def _devices(commune: Commune) -> tuple[DeviceConfig, ...]:
    return tuple(
        DeviceConfig(name=d.name, kind=d.kind, address=str(d.address)) for d in commune.devices
    )
