"""Where the path toward a failing subject stops, traced when its ticket opens (issue 12, item 4).

probes/trace.py measures; this module decides what to trace for an incident, names the hops
from the inventory (upstream nodes, reference targets, commune links, routers and devices,
portals given by address) and turns the result into the ``PathTrace`` that alerts/ carries in a
ticket's evidence. It also holds the JSON form stored with the ticket.

Known nodes fill a silent hop. A router whose route toward a dead customer line falls into a
blackhole drops the probes silently, *before* their TTL is checked (Linux does; so do the lab's
POPs), so the plain trace toward a commune whose line is down stops one hop early, at the core,
and never names the POP that lost the line. NetWatch knows which nodes the path should cross
(its reference targets, then the link's upstream node and that node's parents), so it traces
those in the same call, on the same socket and in the same second: when the target's probes go
silent at TTL k right after a hop that answered, and a known node on the way answered at exactly
TTL k with the same hops before it, that node fills hop k. It is measured (the node answered at
that TTL), and it says what an engineer with a ping prompt would say: the POP is alive, the path
stops after it. Only that one hop is filled, never a run of hops: a node is named only where the
path measured up to the hop before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from alerts.model import PathHop, PathTrace
from alerts.subject import SubjectKey, link_id
from netwatch.inventory.models import Inventory
from probes.icmp import IcmpUnavailableError
from probes.trace import TraceHop, TraceResult, trace_paths

__all__ = [
    "REFERENCE_NAME",
    "PathTracer",
    "hop_names",
    "name_hops",
]

log = logging.getLogger(__name__)

REFERENCE_NAME = "Điểm tham chiếu của NetWatch"  # a reference target (the lab's core router)


def hop_names(inventory: Inventory) -> dict[str, str]:
    """What the inventory calls each address it knows; the most specific name wins.

    Later entries overwrite earlier ones: a router whose address is also its first link's is
    named by the link, which says more to the ISP.
    """
    names: dict[str, str] = {}
    for portal in inventory.portals.values():
        host = urlsplit(portal.url).hostname or ""
        # A name is not resolved here: a lookup per load for a rarely seen label.
        with contextlib.suppress(ValueError):
            names[str(ip_address(host))] = portal.name
    for address in inventory.reference_targets:
        names[str(address)] = REFERENCE_NAME
    for upstream in inventory.upstreams.values():
        if upstream.address is not None:
            names[str(upstream.address)] = upstream.name
    for commune in inventory.communes:
        for device in commune.devices:
            names[str(device.address)] = f"{commune.name} — {device.name}"
        if commune.router is not None:
            names[str(commune.router.address)] = f"{commune.name} — router"
        for link in commune.links:
            names[str(link.address)] = f"{commune.name} — {link.id}"
    return names


def _path_hop(hop: TraceHop, names: Mapping[str, str]) -> PathHop:
    return PathHop(
        ttl=hop.ttl,
        address=hop.address,
        name=names.get(hop.address, "") if hop.address is not None else "",
        rtt_s=hop.rtt_median_s,
        sent=hop.sent,
        received=hop.received,
    )


def _to_path(result: TraceResult, hops: Sequence[TraceHop], names: Mapping[str, str]) -> PathTrace:
    return PathTrace(
        target=result.target,
        at=result.started_at,
        hops=tuple(_path_hop(hop, names) for hop in hops),
        reached=result.reached,
    )


def name_hops(inventory: Inventory | Mapping[str, str], result: TraceResult) -> PathTrace:
    """The trace as alerts/ carries it, each hop named from the inventory (or a name map)."""
    names = hop_names(inventory) if isinstance(inventory, Inventory) else inventory
    return _to_path(result, result.hops, names)


def fill_from_known(main: TraceResult, known: Sequence[TraceResult]) -> tuple[TraceHop, ...]:
    """The target's hops, with the silent hop where it stops filled by a known node on the way.

    ``known`` are traces toward nodes the path should cross (reference targets, upstream
    nodes). See the module docstring for why and when.
    """
    hops = list(main.hops)
    if main.reached or not hops or hops[-1].address is not None:
        return tuple(hops)  # reached, or stopped by an answer (unreachable, max hops)
    gap = hops[-1].ttl  # the first silent TTL after the last answer (or 1)
    before = {h.ttl: h.address for h in hops if h.address is not None}
    if gap > 1 and (gap - 1) not in before:
        return tuple(hops)  # the hop before the gap was not measured: name nothing
    for node in known:
        if not node.reached or node.hops[-1].ttl != gap:
            continue
        # The node must sit on this path: every hop both traces measured agrees.
        agrees = all(
            before.get(h.ttl) in (None, h.address) for h in node.hops[:-1] if h.address is not None
        )
        if agrees:
            return (*hops[:-1], node.hops[-1], _silent(gap + 1, hops[-1].sent))
    return tuple(hops)


def _silent(ttl: int, sent: int) -> TraceHop:
    return TraceHop(ttl=ttl, address=None, sent=sent, received=0, rtt_median_s=None, rtts_s=())


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to trace for one incident: its address and the known nodes on the way."""

    address: str
    known: tuple[str, ...]


class PathTracer:
    """Traces the path toward an incident's subject, named from the inventory.

    Built once per inventory (the names and the per-incident plans are computed here, not per
    trace). ``trace`` never raises for a network problem: a broken path is the result it is
    there to find, and no raw socket (no CAP_NET_RAW) gives None with one warning.
    """

    def __init__(
        self,
        inventory: Inventory,
        *,
        max_hops: int = 12,
        probes_per_hop: int = 3,
        spacing_s: float = 0.25,
        timeout_s: float = 1.0,
        max_concurrent: int = 4,
    ) -> None:
        self.reload(inventory)
        self._options: dict[str, Any] = {
            "max_hops": max_hops,
            "probes_per_hop": probes_per_hop,
            "spacing_s": spacing_s,
            "timeout_s": timeout_s,
        }
        # Each trace holds a raw socket for about a second and a half; a storm of incidents
        # waits its turn rather than opening hundreds of them.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._unavailable = False

    def reload(self, inventory: Inventory) -> None:
        """Take the (re)loaded inventory: the addresses traced and the names of known hops."""
        self._names = hop_names(inventory)
        self._plans = _plans(inventory)

    def address_of(self, incident_key: SubjectKey) -> str | None:
        """The address traced for an incident key (a link's, an upstream node's), or None."""
        plan = self._plans.get(incident_key)
        return plan.address if plan is not None else None

    async def trace(self, incident_key: SubjectKey) -> PathTrace | None:
        """The path toward the incident's subject; None for keys without an address."""
        return (await self.trace_many([incident_key])).get(incident_key)

    async def trace_many(
        self, incident_keys: Sequence[SubjectKey]
    ) -> dict[SubjectKey, PathTrace | None]:
        """Several incidents in one trace (one socket, the same second or two)."""
        plans = {key: self._plans[key] for key in incident_keys if key in self._plans}
        out: dict[SubjectKey, PathTrace | None] = dict.fromkeys(incident_keys)
        if not plans or self._unavailable:
            return out
        targets = sorted(
            {p.address for p in plans.values()} | {a for p in plans.values() for a in p.known}
        )
        async with self._slots:
            try:
                results = await trace_paths(targets, **self._options)
            except IcmpUnavailableError as exc:
                self._unavailable = True
                log.warning("path trace unavailable error=%r", str(exc))
                return out
            except OSError as exc:
                log.warning("path trace failed error=%r", exc.strerror or str(exc))
                return out
        by_target = dict(zip(targets, results, strict=True))
        for key, plan in plans.items():
            main = by_target[plan.address]
            known = [by_target[a] for a in plan.known if a != plan.address]
            out[key] = _to_path(main, fill_from_known(main, known), self._names)
        return out


def _plans(inventory: Inventory) -> dict[SubjectKey, _Plan]:
    references = tuple(str(a) for a in inventory.reference_targets)

    def chain(upstream_id: str | None) -> tuple[str, ...]:
        """Addresses of an upstream node and its parents, nearest first (cycles cut)."""
        out: list[str] = []
        seen: set[str] = set()
        while upstream_id is not None and upstream_id not in seen:
            seen.add(upstream_id)
            node = inventory.upstreams.get(upstream_id)
            if node is None:
                break
            if node.address is not None:
                out.append(str(node.address))
            upstream_id = node.parent
        return tuple(out)

    plans: dict[SubjectKey, _Plan] = {}
    for upstream_id, node in inventory.upstreams.items():
        if node.address is not None:
            plans[SubjectKey.upstream(upstream_id)] = _Plan(
                str(node.address), references + chain(node.parent)
            )
    for commune in inventory.communes:
        for link in commune.links:
            plans[SubjectKey.link(link_id(commune.code, link.id))] = _Plan(
                str(link.address), references + chain(link.upstream)
            )
    return plans
