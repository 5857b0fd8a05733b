"""The one codec between the typed ticket values and the JSON the store keeps.

alerts/ works on frozen values (Ticket, Evidence, Measurements, PathTrace); the database keeps
them as JSON columns (the ticket's ``book``, its ``evidence``). Everything that writes or reads
those columns goes through here, so the web reads typed evidence and never re-parses JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from alerts.model import (
    DownCause,
    IncidentKind,
    InsidePath,
    InsidePortal,
    Measurements,
    PathHop,
    PathTrace,
    Route,
)
from alerts.subject import SubjectKey
from alerts.tickets import (
    SYSTEM,
    Actor,
    ActorKind,
    EventKind,
    Evidence,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from netwatch.notify.pathtext import hops_json

# --- the path trace (evidence "first" -> "path") ---------------------------------------------


def path_json(path: PathTrace) -> dict[str, Any]:
    """The stored form: {"target", "at" (ISO 8601 UTC), "reached", "hops": [...]}."""
    return {
        "target": path.target,
        "at": path.at.astimezone(UTC).isoformat(),
        "reached": path.reached,
        "hops": hops_json(path),
    }


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def path_from_json(data: object) -> PathTrace | None:
    """Read back ``path_json``; None when there is no path or it is not of that shape."""
    if not isinstance(data, Mapping):
        return None
    target, at_text, reached, raw_hops = (
        data.get("target"),
        data.get("at"),
        data.get("reached"),
        data.get("hops"),
    )
    if not (isinstance(target, str) and isinstance(at_text, str) and isinstance(reached, bool)):
        return None
    if not isinstance(raw_hops, list):
        return None
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        return None
    if at.utcoffset() is None:
        return None
    hops: list[PathHop] = []
    for raw in raw_hops:
        if not isinstance(raw, Mapping):
            return None
        ttl, address, name = _int(raw.get("ttl")), raw.get("address"), raw.get("name", "")
        sent, received = _int(raw.get("sent")), _int(raw.get("received"))
        if ttl is None or sent is None or received is None:
            return None
        if not (address is None or isinstance(address, str)) or not isinstance(name, str):
            return None
        hops.append(PathHop(ttl, address, name, _float(raw.get("rtt_s")), sent, received))
    return PathTrace(target=target, at=at, hops=tuple(hops), reached=reached)


# --- evidence and tickets -----------------------------------------------------------------------


def _ts(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _dt(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def _measurements_json(m: Measurements | None) -> dict[str, Any] | None:
    if m is None:
        return None
    out: dict[str, Any] = {
        "loss_ratio": m.loss_ratio,
        "rtt_median_s": m.rtt_median_s,
        "interface_up": m.interface_up,
        "utilization_ratio": m.utilization_ratio,
        "path": path_json(m.path) if m.path is not None else None,
    }
    # Only when measured (health does not yet), so the stored JSON stays as it was.
    if m.rtt_max_s is not None:
        out["rtt_max_s"] = m.rtt_max_s
    if m.down_cause is not None:
        out["down_cause"] = m.down_cause.value
    if m.inside_paths:
        out["inside_paths"] = [_inside_path_json(p) for p in m.inside_paths]
    if m.inside_portals:
        out["inside_portals"] = [_inside_portal_json(t) for t in m.inside_portals]
    return out


def _inside_path_json(p: InsidePath) -> dict[str, Any]:
    return {
        "link": p.link,
        "at": p.at.astimezone(UTC).isoformat(),
        "lan_up": p.lan_up,
        "answered": p.answered,
        "loss_ratio": p.loss_ratio,
        "rtt_median_s": p.rtt_median_s,
        "backfilled": p.backfilled,
        "received_at": _ts(p.received_at.astimezone(UTC)) if p.received_at else None,
    }


def _inside_portal_json(t: InsidePortal) -> dict[str, Any]:
    return {
        "portal": t.portal,
        "link": t.link,
        "at": t.at.astimezone(UTC).isoformat(),
        "ok": t.ok,
        "total_s": t.total_s,
        "failed_phase": t.failed_phase,
        "dns_s": t.dns_s,
        "connect_s": t.connect_s,
        "tls_s": t.tls_s,
        "first_byte_s": t.first_byte_s,
    }


def _aware(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.utcoffset() is not None else None


def _inside_paths(data: object) -> tuple[InsidePath, ...]:
    out: list[InsidePath] = []
    for raw in data if isinstance(data, list) else ():
        if not isinstance(raw, Mapping):
            continue
        link, at, answered, lan_up = (
            raw.get("link"),
            _aware(raw.get("at")),
            raw.get("answered"),
            raw.get("lan_up"),
        )
        if not isinstance(link, str) or at is None or not isinstance(answered, bool):
            continue
        out.append(
            InsidePath(
                link=link,
                at=at,
                lan_up=lan_up if isinstance(lan_up, bool) else None,
                answered=answered,
                loss_ratio=_float(raw.get("loss_ratio")),
                rtt_median_s=_float(raw.get("rtt_median_s")),
                backfilled=raw.get("backfilled") is True,
                received_at=_aware(raw.get("received_at")),
            )
        )
    return tuple(out)


def _inside_portals(data: object) -> tuple[InsidePortal, ...]:
    out: list[InsidePortal] = []
    for raw in data if isinstance(data, list) else ():
        if not isinstance(raw, Mapping):
            continue
        portal, link, at, ok = (
            raw.get("portal"),
            raw.get("link"),
            _aware(raw.get("at")),
            raw.get("ok"),
        )
        if not (isinstance(portal, str) and isinstance(link, str)) or at is None:
            continue
        if not isinstance(ok, bool):
            continue
        phase = raw.get("failed_phase")
        out.append(
            InsidePortal(
                portal=portal,
                link=link,
                at=at,
                ok=ok,
                total_s=_float(raw.get("total_s")),
                failed_phase=phase if isinstance(phase, str) else None,
                dns_s=_float(raw.get("dns_s")),
                connect_s=_float(raw.get("connect_s")),
                tls_s=_float(raw.get("tls_s")),
                first_byte_s=_float(raw.get("first_byte_s")),
            )
        )
    return tuple(out)


def _measurements(d: object) -> Measurements | None:
    if not isinstance(d, Mapping):
        return None
    interface_up = d.get("interface_up")
    return Measurements(
        loss_ratio=_float(d.get("loss_ratio")),
        rtt_median_s=_float(d.get("rtt_median_s")),
        interface_up=interface_up if isinstance(interface_up, bool) else None,
        utilization_ratio=_float(d.get("utilization_ratio")),
        path=path_from_json(d.get("path")),
        rtt_max_s=_float(d.get("rtt_max_s")),
        down_cause=_down_cause(d.get("down_cause")),
        inside_paths=_inside_paths(d.get("inside_paths")),
        inside_portals=_inside_portals(d.get("inside_portals")),
    )


def _down_cause(value: object) -> DownCause | None:
    try:
        return DownCause(value) if isinstance(value, str) else None
    except ValueError:
        return None


def evidence_json(e: Evidence) -> dict[str, Any]:
    """A ticket's evidence as JSON (also what the store keeps in its evidence column)."""
    return {
        "kind": e.kind.value,
        "state": e.state,
        "worst_state": e.worst_state,
        "detail": e.detail,
        "links": list(e.links),
        "first_bad_at": _ts(e.first_bad_at),
        "bad_since": _ts(e.bad_since),
        "downtime_closed_s": e.downtime_closed_s,
        "first": _measurements_json(e.first),
        "worst": _measurements_json(e.worst),
    }


def actor_text(actor: Actor) -> str:
    """How the store names who made a change: "netwatch", or "isp:NAME", "provincial_it:NAME"."""
    if actor.kind is ActorKind.SYSTEM:
        return actor.name
    return f"{actor.kind.value}:{actor.name}"


def actor_from_text(text: str) -> Actor:
    """Inverse of actor_text; any other text (an older version's) is the system's own name."""
    kind, sep, name = text.partition(":")
    if sep and kind in _PEOPLE:
        return Actor(ActorKind(kind), name)
    return Actor(ActorKind.SYSTEM, text)


_PEOPLE = frozenset(k.value for k in ActorKind if k is not ActorKind.SYSTEM)


def _event_json(e: TicketEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": _ts(e.at),
        "actor": [e.actor.kind.value, e.actor.name],
        "kind": e.kind.value,
        "text": e.text,
    }


def _event_from_json(d: Mapping[str, Any], opened: datetime) -> TicketEvent:
    actor = d.get("actor")
    return TicketEvent(
        seq=d["seq"],
        at=_dt(d.get("at")) or opened,
        actor=Actor(ActorKind(actor[0]), actor[1]) if isinstance(actor, list) else SYSTEM,
        kind=EventKind(d["kind"]),
        text=d.get("text", ""),
    )


def ticket_json(t: Ticket) -> dict[str, Any]:
    """The whole alerts/ ticket, enough to restore the ticket book after a restart."""
    return {
        "id": t.id,
        "key": t.key.encoded,
        "episode_start": _ts(t.episode_start),
        "route": t.route.value,
        "isp": t.isp,
        "status": t.status.value,
        "evidence": evidence_json(t.evidence),
        "opened_at": _ts(t.opened_at),
        "escalation_from": _ts(t.escalation_from),
        "last_notified_at": _ts(t.last_notified_at),
        "level": t.level,
        "acknowledged_at": _ts(t.acknowledged_at),
        "resolved_at": _ts(t.resolved_at),
        "ok_since": _ts(t.ok_since),
        "parent": t.parent.encoded if t.parent is not None else None,
        "maintenance": t.maintenance,
        "reopened": t.reopened,
        "line_back_at": _ts(t.line_back_at),
        "bad_again_told": t.bad_again_told,
        "log": [_event_json(e) for e in t.log],
    }


def ticket_from_json(d: Mapping[str, Any]) -> Ticket:
    """Inverse of ticket_json."""
    opened = _dt(d["opened_at"]) or datetime.now(UTC)
    evidence = evidence_from_json(d["evidence"], first_bad_at=_dt(d["evidence"]["first_bad_at"]))
    columns = Ticket(
        id=d["id"],
        key=SubjectKey.parse(d["key"]),
        episode_start=opened,
        route=Route(d["route"]),
        isp=d["isp"],
        status=TicketStatus(d["status"]),
        evidence=evidence,
        opened_at=opened,
        escalation_from=opened,
        last_notified_at=_dt(d["last_notified_at"]) or opened,
        acknowledged_at=_dt(d["acknowledged_at"]),
        resolved_at=_dt(d["resolved_at"]),
    )
    return completed(columns, d)


def completed(columns: Ticket, book: Mapping[str, Any]) -> Ticket:
    """A ticket as a stored row's columns tell it, completed from its book with what only the
    book keeps (episode start, escalation, recovery, parent, maintenance, log, ...).

    What the book lacks stays as in ``columns``: a row of an older version has book ``{}``.
    """
    parent = book.get("parent")
    return replace(
        columns,
        episode_start=_dt(book.get("episode_start")) or columns.episode_start,
        escalation_from=_dt(book.get("escalation_from")) or columns.escalation_from,
        level=book.get("level", columns.level),
        ok_since=_dt(book["ok_since"]) if "ok_since" in book else columns.ok_since,
        parent=SubjectKey.parse(parent) if isinstance(parent, str) else columns.parent,
        maintenance=bool(book.get("maintenance", columns.maintenance)),
        reopened=book.get("reopened", columns.reopened),
        line_back_at=_dt(book.get("line_back_at")) or columns.line_back_at,
        bad_again_told=bool(book.get("bad_again_told", columns.bad_again_told)),
        log=tuple(_event_from_json(e, columns.opened_at) for e in book.get("log", ()))
        or columns.log,
    )


def _time(value: object) -> datetime | None:
    """A moment read from JSON (ISO 8601), None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def evidence_from_json(
    d: object, *, first_bad_at: datetime | None = None, kind: str = ""
) -> Evidence:
    """Inverse of evidence_json. Lenient, for rows written by older versions: a missing figure
    is None, a missing time ``first_bad_at`` (the ticket's opening), a missing kind ``kind``."""
    ev: Mapping[str, object] = d if isinstance(d, Mapping) else {}
    state = ev.get("state")
    worst_state = ev.get("worst_state")
    detail = ev.get("detail")
    links = ev.get("links")
    raw_kind = ev.get("kind") or kind
    return Evidence(
        kind=IncidentKind(raw_kind) if isinstance(raw_kind, str) and raw_kind else _NO_KIND,
        state=state if isinstance(state, str) else "",
        worst_state=worst_state if isinstance(worst_state, str) else "",
        detail=detail if isinstance(detail, str) else "",
        links=tuple(x for x in links if isinstance(x, str)) if isinstance(links, list) else (),
        first_bad_at=_time(ev.get("first_bad_at")) or first_bad_at or datetime.now(UTC),
        bad_since=_time(ev.get("bad_since")),
        downtime_closed_s=_float(ev.get("downtime_closed_s")) or 0.0,
        first=_measurements(ev.get("first")),
        worst=_measurements(ev.get("worst")),
    )


_NO_KIND = IncidentKind.LINK_FAULT  # a row without any kind: the only kind of the first tickets


def recovery_json(ok_since: datetime | None, closes_at: datetime | None) -> dict[str, Any]:
    """The recovery watch the evidence column carries beside the evidence (pages show it)."""
    out: dict[str, Any] = {}
    if ok_since is not None:
        out["ok_since"] = _ts(ok_since)
        if closes_at is not None:
            out["closes_at"] = _ts(closes_at)
    return out


def recovery_from_json(d: object) -> tuple[datetime | None, datetime | None]:
    """Inverse of recovery_json: (ok_since, closes_at)."""
    if not isinstance(d, Mapping):
        return None, None
    return _time(d.get("ok_since")), _time(d.get("closes_at"))
