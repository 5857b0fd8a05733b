"""The JSON API (/api/v1): links and their latest measurements. Its OpenAPI schema is at
/openapi.json (no bundled viewer: docs/security.md).

Every route needs a bearer token (netwatch.web.auth): `read` for the reads, `write` for the
changes. A token restricted to provinces or one ISP sees only their communes, links, tickets and
windows: lists leave the rest out, and one thing outside is a 404, as if it did not exist
(netwatch.web.reach)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from netwatch.health import link_id
from netwatch.inventory.models import LOCAL_TZ
from netwatch.notify.pathtext import hide_target
from netwatch.runtime import Runtime
from netwatch.store import NewMaintenance, RevokeOutcome, StoredWindow, TicketStatus
from netwatch.web.auth import Caller, ReadCaller, WriteCaller
from netwatch.web.common import ActionDoc, add_action_routes
from netwatch.web.deps import RuntimeDep
from netwatch.web.reach import Role
from netwatch.web.views import (
    MAX_TEXT_CHARS,
    ActionFailure,
    EventView,
    EvidenceView,
    ManualAction,
    ScopeIn,
    SubjectView,
    TicketDetail,
    TicketView,
    apply_action,
    checked_moment,
    downtime_s,
    local_iso,
    refusal_failure,
    scope_target,
    subject_of,
    ticket_detail,
    ticket_not_found,
    ticket_view,
)

# The shared views keep being importable from here (the ISP and status pages, older tests).
__all__ = [
    "MAX_TEXT_CHARS",
    "ActionFailure",
    "AvailabilityView",
    "CommuneView",
    "EventView",
    "EvidenceView",
    "IncidentView",
    "LinkView",
    "MaintenanceIn",
    "MaintenanceView",
    "ManualAction",
    "ScopeIn",
    "SubjectView",
    "TicketDetail",
    "TicketView",
    "apply_action",
    "downtime_s",
    "local_iso",
    "parse_moment",
    "refusal_failure",
    "router",
    "subject_of",
    "ticket_detail",
    "ticket_not_found",
    "ticket_view",
]

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, unknown or revoked API token"},
    403: {"description": "The token lacks the scope, or its role may not do this"},
}
router = APIRouter(prefix="/api/v1", responses=_AUTH_ERRORS)
# Row ids are 64-bit signed on both backends: a larger one names nothing (issue 15: a 28-digit
# id overflowed the driver into a 500).
MAX_ROW_ID = 2**63 - 1


class LinkView(BaseModel):
    """One WAN link with its latest measurement."""

    commune: str
    commune_name: str
    province: str
    link: str
    isp: str
    path: str
    circuit: str
    bandwidth_mbps: float
    address: str  # the monitored address; "" for an ISP's caller
    state: str | None  # judged (after hysteresis): ok, slow, lossy, congested, down
    state_since: datetime | None
    state_detail: str | None  # for down: interface_down, router_rebooted, router_unreachable, ...
    measured_at: datetime | None
    reachable: bool | None
    loss_ratio: float | None
    rtt_median_s: float | None
    jitter_s: float | None
    interface_up: bool | None
    utilization_in_ratio: float | None
    utilization_out_ratio: float | None


class CommuneView(BaseModel):
    """A commune and its links."""

    code: str
    name: str
    province: str
    links: list[LinkView]


def _links(runtime: Runtime, caller: Caller, commune: str | None = None) -> list[LinkView]:
    snmp_by_link = {
        reading.link_key: reading
        for obs in runtime.state.snmp.values()
        for reading in obs.interfaces
    }
    out = []
    for target in runtime.plan.icmp:
        ref = target.link
        if ref is None or (commune is not None and ref.commune != commune):
            continue
        if not caller.reach.sees(ref.province, ref.isp):
            continue
        obs = runtime.state.icmp.get(target.key)
        result = obs.result if obs is not None else None
        reading = snmp_by_link.get(target.key)
        status = runtime.health.link_status(ref.commune, ref.link)
        out.append(
            LinkView(
                commune=ref.commune,
                commune_name=ref.commune_name,
                province=ref.province,
                link=ref.link,
                isp=ref.isp,
                path=ref.path,
                circuit=ref.circuit,
                bandwidth_mbps=ref.bandwidth_bps / 1e6,
                # An ISP's caller never sees the monitored addresses (the provincial network's
                # own addressing), as on its signed ticket page: "" here.
                address=target.address if caller.role is not Role.ISP else "",
                state=status.state.value if status else None,
                state_since=status.since if status else None,
                state_detail=(status.detail or None) if status else None,
                measured_at=result.started_at if result else None,
                reachable=(result.received > 0) if result else None,
                loss_ratio=result.loss_ratio if result else None,
                rtt_median_s=result.rtt_median_s if result else None,
                jitter_s=result.jitter_s if result else None,
                interface_up=reading.oper_up if reading else None,
                utilization_in_ratio=reading.in_utilization_ratio if reading else None,
                utilization_out_ratio=reading.out_utilization_ratio if reading else None,
            )
        )
    return out


@router.get(
    "/links",
    response_model=list[LinkView],
    tags=["links"],
    summary="Every link and its latest round",
)
def list_links(runtime: RuntimeDep, caller: ReadCaller) -> list[LinkView]:
    """Links of every commune (the caller's) with the latest ICMP and SNMP measurements."""
    return _links(runtime, caller)


@router.get(
    "/communes/{code}",
    response_model=CommuneView,
    tags=["links"],
    summary="One commune by official code",
    responses={404: {"description": "No such commune in the configuration"}},
)
def get_commune(code: str, runtime: RuntimeDep, caller: ReadCaller) -> CommuneView:
    """A commune's links with their latest measurements (an ISP's caller: its links only)."""
    normalized = code.zfill(5) if code.isdigit() else code
    commune = runtime.inventory.commune(normalized)
    if commune is None or not caller.reach.sees_commune(commune):
        raise HTTPException(404, f"commune {code!r} is not monitored by this NetWatch")
    return CommuneView(
        code=commune.code,
        name=commune.name,
        province=f"{commune.province_code:02d}",
        links=_links(runtime, caller, commune.code),
    )


class IncidentView(BaseModel):
    """Something wrong now, with whose problem it is."""

    key: str
    kind: str  # link_fault, capacity, upstream_outage, portal_outage, monitor_connectivity
    state: str
    since: datetime
    route: str  # isp, provincial_it, isp_and_provincial_it, provincial_it_and_commune
    isp: str | None
    links: list[str]
    detail: str


@router.get(
    "/incidents",
    response_model=list[IncidentView],
    tags=["incidents"],
    summary="What is wrong now, root cause decided",
)
def list_incidents(runtime: RuntimeDep, caller: ReadCaller) -> list[IncidentView]:
    """Current incidents: one per link fault, upstream outage, portal outage or monitor outage
    (a restricted caller: those whose every link it sees; portal and monitor outages are
    national)."""
    topology = runtime.health.topology
    reach = caller.reach
    return [
        IncidentView(
            key=i.key.encoded,
            kind=i.kind.value,
            state=i.state,
            since=i.since,
            route=i.route.value,
            isp=i.isp,
            links=list(i.links),
            detail=i.detail,
        )
        for i in runtime.health.incidents
        if reach.everything
        or (i.links and all(reach.sees_link(topology.links.get(link)) for link in i.links))
    ]


# --- tickets, availability, maintenance -------------------------------------------------------
# Reads need the "read" scope, changes the "write" scope (netwatch.web.auth); a restricted
# caller meets only its own tickets (others are 404: netwatch.web.reach).

_TICKET_404: dict[int | str, dict[str, Any]] = {404: {"description": "No such ticket"}}


def parse_moment(text: str, field: str, *, as_end: bool) -> tuple[datetime, bool]:
    """A month, a date or a date-time (local time unless an offset is given); 422 otherwise.

    As an end, a month or a date means through its last moment (the next one's start), so
    start=2026-11-01&end=2026-11-30 covers all of November. Returns (moment, was a month).
    """
    value = text.strip()
    month = False
    try:
        if re.fullmatch(r"\d{4}-\d{2}", value):
            year, number = int(value[:4]), int(value[5:])
            moment = datetime(year, number, 1, tzinfo=LOCAL_TZ)
            if as_end:
                moment = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=LOCAL_TZ)
            month = True
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
            if as_end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        pass
    else:
        return checked_moment(moment, field), month
    raise HTTPException(
        422,
        f"{field}: {text!r} is not a month (2026-11), a date (2026-11-01) or a date and time "
        "(2026-11-01T08:00, local time unless an offset is given)",
    )


@router.get(
    "/tickets",
    response_model=list[TicketView],
    tags=["tickets"],
    summary="Tickets, newest first",
    responses={422: {"description": "A filter is not valid"}},
)
async def list_tickets(
    runtime: RuntimeDep,
    caller: ReadCaller,
    state: Annotated[
        list[Literal["open", "acknowledged", "resolved"]] | None,
        Query(description="Only tickets in these states (repeat the parameter for several)"),
    ] = None,
    since: Annotated[
        str | None,
        Query(description="Only tickets opened from then on: 2026-11, 2026-11-01 or a date-time"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many")] = 100,
) -> list[TicketView]:
    """Tickets with their age, acknowledgement, subject and downtime so far."""
    opened_since = parse_moment(since, "since", as_end=False)[0] if since else None
    states = [TicketStatus(s) for s in state] if state else None
    now = datetime.now(UTC)
    topology, reach = runtime.health.topology, caller.reach
    if reach.everything:
        tickets = await runtime.store.list_tickets(states, opened_since, limit)
    else:  # the newest `limit` of the caller's: read on until that many are found
        tickets = [
            t
            for t in await runtime.store.list_tickets(states, opened_since, None)
            if reach.sees_ticket(topology, t.ticket)
        ][:limit]
    return [ticket_view(runtime, t, now) for t in tickets]


@router.get(
    "/tickets/{ticket_id}",
    response_model=TicketDetail,
    tags=["tickets"],
    summary="One ticket with its evidence and log",
    responses=_TICKET_404,
)
async def get_ticket(ticket_id: str, runtime: RuntimeDep, caller: ReadCaller) -> TicketDetail:
    """A ticket with everything it proves and every change made to it."""
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None or not caller.reach.sees_ticket(runtime.health.topology, ticket.ticket):
        raise HTTPException(404, ticket_not_found(ticket_id).message)
    return for_caller(await ticket_detail(runtime, ticket, datetime.now(UTC)), caller)


class ActionIn(BaseModel):
    """Optional words to go with an acknowledgement or a resolution."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field("", max_length=MAX_TEXT_CHARS)


class NoteIn(BaseModel):
    """A note for the ticket's log."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


async def _act(
    runtime: Runtime, ticket_id: str, action: ManualAction, caller: Caller, text: str
) -> TicketDetail:
    now = datetime.now(UTC)
    ticket = await runtime.store.get_ticket(ticket_id)
    if ticket is None or not caller.reach.sees_ticket(runtime.health.topology, ticket.ticket):
        raise HTTPException(404, ticket_not_found(ticket_id).message)
    result = await apply_action(runtime, ticket_id, action, caller.actor, text, now)
    if isinstance(result, ActionFailure):
        raise HTTPException(result.status, result.message)
    return for_caller(await ticket_detail(runtime, result, now), caller)


def for_caller(detail: TicketDetail, caller: Caller) -> TicketDetail:
    """A ticket as this caller may see it: an ISP's, as its signed link shows it, without the
    monitored address the path was traced toward (docs/isp-and-admin-pages.md)."""
    if caller.role is Role.ISP and detail.evidence.path is not None:
        detail.evidence.path = hide_target(detail.evidence.path)
    return detail


_ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH_ERRORS,
    404: {"description": "No such ticket"},
    409: {"description": "Refused by the ticket's lifecycle (already acknowledged, resolved)"},
    503: {"description": "This instance is on standby: the leading instance takes changes"},
}


# Acknowledge and resolve take the same optional words and differ only in the action: one
# route each (POST /tickets/{id}/acknowledge, /resolve), registered from this table.
_TEXT_ACTIONS: tuple[ActionDoc, ...] = (
    (
        ManualAction.ACKNOWLEDGE,
        "Take a ticket: escalation and reminders stop",
        "Acknowledge as provincial IT (the log names the token).",
    ),
    (
        ManualAction.RESOLVE,
        "Resolve a ticket by hand",
        "Resolve as provincial IT; it reopens if the problem is in fact still there.",
    ),
)


def _text_action(action: ManualAction) -> Callable[..., Awaitable[TicketDetail]]:
    async def endpoint(
        ticket_id: str, runtime: RuntimeDep, caller: WriteCaller, body: ActionIn | None = None
    ) -> TicketDetail:
        return await _act(runtime, ticket_id, action, caller, body.text if body else "")

    return endpoint


add_action_routes(
    router,
    "/tickets/{{ticket_id}}/{action}",
    _TEXT_ACTIONS,
    _text_action,
    name="{action}_ticket",
    response_model=TicketDetail,
    tags=["tickets"],
    responses=_ACTION_ERRORS,
)


@router.post(
    "/tickets/{ticket_id}/notes",
    response_model=TicketDetail,
    tags=["tickets"],
    summary="Add a note to a ticket's log",
    responses=_ACTION_ERRORS,
)
async def note_ticket(
    ticket_id: str, runtime: RuntimeDep, caller: WriteCaller, body: NoteIn
) -> TicketDetail:
    """A note, told to those already notified of the ticket."""
    return await _act(runtime, ticket_id, ManualAction.NOTE, caller, body.text)


# --- availability --------------------------------------------------------------------------


class AvailabilityView(BaseModel):
    """How one link spent a period: unavailable (down), degraded, ok, unknown seconds."""

    subject: str  # "CODE/LINK-ID"
    commune: str
    commune_name: str
    link: str
    isp: str
    start: datetime
    end: datetime
    start_local: str
    end_local: str
    availability_ratio: float | None  # 1 - down / known; None when nothing is known
    ok_ratio: float | None  # ok / known: the stricter figure
    ok_s: float
    down_s: float
    degraded_s: float  # slow, lossy, congested: available, reported apart
    unknown_s: float  # NetWatch not running, before the first round, in the future
    seconds_by_state: dict[str, float]


@router.get(
    "/links/{commune}/{link}/availability",
    response_model=AvailabilityView,
    tags=["links"],
    summary="A link's availability over a period",
    responses={
        404: {"description": "No such commune or link"},
        422: {"description": "The period is not valid"},
    },
)
async def link_availability(
    commune: str,
    link: str,
    runtime: RuntimeDep,
    caller: ReadCaller,
    start: Annotated[
        str | None,
        Query(
            description="2026-11 (a month), 2026-11-01 or a date-time; local time "
            "(Asia/Ho_Chi_Minh) unless an offset is given. Default: this month."
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            description="A month or a date counts through its end. Default: the end of "
            "start's month when start is a month, else now."
        ),
    ] = None,
) -> AvailabilityView:
    """Seconds down, degraded, ok and unknown, and the availability ratio (unknown excluded)."""
    code = commune.zfill(5) if commune.isdigit() else commune
    info = runtime.health.topology.links.get(link_id(code, link))
    if info is None or not caller.reach.sees_link(info):
        known = runtime.inventory.commune(code)
        if known is None or not caller.reach.sees_commune(known):
            raise HTTPException(404, f"commune {commune!r} is not monitored by this NetWatch")
        raise HTTPException(404, f"commune {code} has no link {link!r}")
    now = datetime.now(UTC)
    if start is None:
        local_now = now.astimezone(LOCAL_TZ)
        start = f"{local_now:%Y-%m}"
    period_start, month = parse_moment(start, "start", as_end=False)
    if end is not None:
        period_end = parse_moment(end, "end", as_end=True)[0]
    elif month:
        period_end = parse_moment(start, "start", as_end=True)[0]
    else:
        period_end = now
    if period_end <= period_start:
        raise HTTPException(422, "end must be after start")
    a = await runtime.store.availability(info.link, period_start, period_end, now)
    return AvailabilityView(
        subject=info.link,
        commune=info.commune,
        commune_name=info.commune_name,
        link=link,
        isp=info.isp,
        start=a.start,
        end=a.end,
        start_local=local_iso(a.start) or "",
        end_local=local_iso(a.end) or "",
        availability_ratio=a.availability_ratio,
        ok_ratio=a.ok_ratio,
        ok_s=a.ok_s,
        down_s=a.unavailable_s,
        degraded_s=a.degraded_s,
        unknown_s=a.unknown_s,
        seconds_by_state=dict(a.seconds_by_state),
    )


# --- maintenance windows -------------------------------------------------------------------


class MaintenanceIn(BaseModel):
    """A one-off maintenance window; times without an offset are local (Asia/Ho_Chi_Minh)."""

    model_config = ConfigDict(extra="forbid")
    scope: ScopeIn
    start: datetime
    end: datetime
    reason: str = Field(min_length=1, max_length=500)


class MaintenanceView(BaseModel):
    """A stored maintenance window."""

    id: int
    scope: str
    target: str
    start: datetime
    end: datetime
    start_local: str
    end_local: str
    reason: str
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None


def _maintenance_view(w: StoredWindow) -> MaintenanceView:
    return MaintenanceView(
        id=w.id,
        scope=w.scope,
        target=w.target,
        start=w.starts_at,
        end=w.ends_at,
        start_local=local_iso(w.starts_at) or "",
        end_local=local_iso(w.ends_at) or "",
        reason=w.reason,
        created_by=w.created_by,
        created_at=w.created_at,
        cancelled_at=w.cancelled_at,
    )


@router.get(
    "/maintenance",
    response_model=list[MaintenanceView],
    tags=["maintenance"],
    summary="Maintenance windows made through the API, not ended and not cancelled",
)
async def list_maintenance(runtime: RuntimeDep, caller: ReadCaller) -> list[MaintenanceView]:
    """Current and coming windows (the config file's own windows are not listed here); a
    province's caller sees those wholly in its provinces; an ISP's none (403)."""
    caller.require_role(Role.NATIONAL, Role.PROVINCE)
    windows = await runtime.store.maintenance_windows(start=datetime.now(UTC))
    inventory, topology = runtime.inventory, runtime.health.topology
    return [
        _maintenance_view(w) for w in windows if caller.reach.sees_window(inventory, topology, w)
    ]


@router.post(
    "/maintenance",
    response_model=MaintenanceView,
    status_code=201,
    tags=["maintenance"],
    summary="Plan a one-off maintenance window",
    responses={**_AUTH_ERRORS, 422: {"description": "Bad scope or times"}},
)
async def create_maintenance(
    body: MaintenanceIn, runtime: RuntimeDep, caller: WriteCaller
) -> MaintenanceView:
    """Store a window: tickets of what it covers are suppressed while it lasts (a province's
    caller: only over its own provinces' communes and links)."""
    caller.require_role(Role.NATIONAL, Role.PROVINCE)
    kind, target = scope_target(runtime, body.scope)
    if not caller.reach.covers(runtime.inventory, runtime.health.topology, kind, target):
        raise HTTPException(403, f"scope: {kind} {target!r} is outside this caller's provinces")
    start = checked_moment(body.start, "start")
    end = checked_moment(body.end, "end")
    if end <= start:
        raise HTTPException(422, "end must be after start")
    window = await runtime.store.add_maintenance(
        NewMaintenance(kind, target, start, end, body.reason.strip(), caller.created_by),
        datetime.now(UTC),
    )
    return _maintenance_view(window)


@router.delete(
    "/maintenance/{window_id}",
    status_code=204,
    tags=["maintenance"],
    summary="Cancel a maintenance window",
    responses={
        **_AUTH_ERRORS,
        404: {"description": "No such window"},
        409: {"description": "Already cancelled"},
    },
)
async def cancel_maintenance(
    window_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The window's id")],
    runtime: RuntimeDep,
    caller: WriteCaller,
) -> Response:
    """Cancel a window: it stops suppressing from now on."""
    caller.require_role(Role.NATIONAL, Role.PROVINCE)
    if not caller.reach.everything:
        window = await runtime.store.maintenance_window(window_id)
        topology = runtime.health.topology
        if window is None or not caller.reach.sees_window(runtime.inventory, topology, window):
            raise HTTPException(404, f"maintenance window {window_id} not found")
    outcome = await runtime.store.cancel_maintenance(window_id, datetime.now(UTC))
    if outcome is RevokeOutcome.NOT_FOUND:
        raise HTTPException(404, f"maintenance window {window_id} not found")
    if outcome is RevokeOutcome.ALREADY:
        raise HTTPException(409, f"maintenance window {window_id} is already cancelled")
    return Response(status_code=204)
