"""The views shared by the JSON API, the ISP pages and the admin pages.

A stored ticket as people and programs see it (`TicketView`, `TicketDetail` with its evidence
and log), the manual actions on a ticket (acknowledge, resolve, note) with why one is refused,
and the scope of a maintenance window checked against the inventory. The API serializes these
models; the pages render them. Times are also given in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from alerts.model import InsidePath, InsidePortal, Measurements, PathTrace
from alerts.subject import SubjectKind
from alerts.tickets import Actor, Evidence, Refusal, Refused, Ticket
from netwatch.bus.commands import ActionName
from netwatch.inventory.models import LOCAL_TZ, Notifications
from netwatch.runtime import DeskAnswer, Runtime
from netwatch.store import MomentOutOfRangeError, StoredTicket, TicketLink, utc_moment
from netwatch.store.codec import actor_text

MAX_TEXT_CHARS = 2000


def checked_moment(at: datetime, field: str) -> datetime:
    """An aware moment the store can keep (local time when naive), else 422 naming the field
    (issue 15: year 1 or 9999 with an offset overflowed into a 500)."""
    aware = at if at.tzinfo else at.replace(tzinfo=LOCAL_TZ)
    try:
        utc_moment(aware)
    except MomentOutOfRangeError as exc:
        raise HTTPException(422, f"{field}: {exc}") from None
    return aware


def acts_until(notifications: Notifications | None, link: TicketLink) -> datetime | None:
    """When a signed ISP link stops acting on its ticket: `link_act_hours` after the notice that
    carried it (never after its expiry); None for a link issued before links were recorded at
    issuance (revision 0005): it acts until it expires, as it always did."""
    if link.issued_at is None or notifications is None:
        return None
    return min(link.issued_at + timedelta(hours=notifications.link_act_hours), link.expires_at)


def local_iso(at: datetime | None) -> str | None:
    """The moment as ISO 8601 in Asia/Ho_Chi_Minh (+07:00)."""
    return at.astimezone(LOCAL_TZ).isoformat() if at is not None else None


class EventView(BaseModel):
    """One entry of a ticket's log."""

    seq: int | None
    at: datetime
    at_local: str
    actor: str  # "netwatch", "isp:VNPT Lâm Đồng", "provincial_it:ops"
    kind: str  # opened, acknowledged, note, resolved, escalated, auto_resolved, ...
    text: str


class SubjectView(BaseModel):
    """What a ticket is about: a link (with its commune), an upstream node, a portal."""

    name: str
    commune: str | None
    commune_name: str | None
    link: str | None  # the link id within the commune
    circuit: str | None
    isp: str | None
    isp_name: str | None


class TicketView(BaseModel):
    """A ticket with its age and acknowledgement."""

    id: str
    incident_key: str
    kind: str  # link_fault, capacity, upstream_outage, portal_outage, monitor_connectivity
    route: str  # isp, provincial_it, isp_and_provincial_it, provincial_it_and_commune
    state: str  # open, acknowledged, resolved
    problem_state: str | None  # down, lossy, slow, congested, failing (the latest)
    worst_state: str | None
    detail: str | None  # e.g. interface_down, router_unreachable
    subject: SubjectView
    opened_at: datetime
    opened_at_local: str
    age_s: float
    acknowledged: bool
    acknowledged_at: datetime | None
    acknowledged_at_local: str | None
    resolved_at: datetime | None
    resolved_at_local: str | None
    first_bad_at: datetime | None
    first_bad_at_local: str | None
    downtime_s: float
    escalation_level: int


class EvidenceView(BaseModel):
    """What NetWatch measured over the episode (None: not measured)."""

    links: list[str]  # affected links, "CODE/LINK-ID"
    worst_loss_ratio: float | None
    worst_rtt_median_s: float | None
    interface_up: bool | None  # False if the router's WAN interface was seen down
    worst_utilization_ratio: float | None
    first_loss_ratio: float | None
    first_rtt_median_s: float | None
    # Toward the subject, traced when the ticket opened: where the path stopped (hop addresses
    # are the ISP's routers: shown to the ISP and provincial IT, never on the public pages).
    path: PathTrace | None = None
    # What the commune's agent saw from inside (issue 11): its rounds of the path with the LAN
    # gateway's answer, and the portal's phase timings over the path, each with its time.
    inside_paths: tuple[InsidePath, ...] = ()
    inside_portals: tuple[InsidePortal, ...] = ()


class TicketDetail(TicketView):
    """A ticket with its evidence and its whole log."""

    evidence: EvidenceView
    events: list[EventView]


def downtime_s(evidence: Evidence, now: datetime) -> float:
    """Time the subject was bad during the episode, as of now (closed stretches + running)."""
    bad_since = evidence.bad_since
    running_s = max((now - bad_since).total_seconds(), 0.0) if bad_since else 0.0
    return evidence.downtime_closed_s + running_s


def subject_of(runtime: Runtime, ticket: Ticket) -> SubjectView:
    """A ticket's subject, named from the inventory."""
    key = ticket.key
    isp = runtime.inventory.isps.get(ticket.isp) if ticket.isp else None
    isp_name = isp.name if isp is not None else ticket.isp
    link = key.link_id
    info = runtime.health.topology.links.get(link) if link is not None else None
    if info is not None:
        return SubjectView(
            name=f"{info.commune_name} — {info.link.split('/', 1)[-1]}",
            commune=info.commune,
            commune_name=info.commune_name,
            link=info.link.split("/", 1)[-1],
            circuit=info.circuit,
            isp=ticket.isp,
            isp_name=isp_name,
        )
    name = key.encoded
    if key.kind in (SubjectKind.SITE, SubjectKind.AGENT):  # a commune's centre or its agent
        commune = runtime.inventory.commune(key.name)
        return SubjectView(
            name=commune.name if commune is not None else key.encoded,
            commune=key.name,
            commune_name=commune.name if commune is not None else None,
            link=None,
            circuit=None,
            isp=ticket.isp,
            isp_name=isp_name,
        )
    if key.kind is SubjectKind.UPSTREAM and key.name in runtime.inventory.upstreams:
        name = runtime.inventory.upstreams[key.name].name
    elif key.kind is SubjectKind.PORTAL and key.name in runtime.inventory.portals:
        name = runtime.inventory.portals[key.name].name
    elif key.kind is SubjectKind.MONITOR:
        name = "NetWatch"
    return SubjectView(
        name=name,
        commune=None,
        commune_name=None,
        link=None,
        circuit=None,
        isp=ticket.isp,
        isp_name=isp_name,
    )


def ticket_view(runtime: Runtime, stored: StoredTicket, now: datetime) -> TicketView:
    """A stored ticket as the API shows it."""
    ticket = stored.ticket
    ev = ticket.evidence
    return TicketView(
        id=ticket.id,
        incident_key=ticket.key.encoded,
        kind=ev.kind.value,
        route=ticket.route.value,
        state=ticket.status.value,
        problem_state=ev.state or None,
        worst_state=ev.worst_state or None,
        detail=ev.detail or None,
        subject=subject_of(runtime, ticket),
        opened_at=ticket.opened_at,
        opened_at_local=local_iso(ticket.opened_at) or "",
        age_s=max((now - ticket.opened_at).total_seconds(), 0.0),
        acknowledged=ticket.acknowledged_at is not None,
        acknowledged_at=ticket.acknowledged_at,
        acknowledged_at_local=local_iso(ticket.acknowledged_at),
        resolved_at=ticket.resolved_at,
        resolved_at_local=local_iso(ticket.resolved_at),
        first_bad_at=ev.first_bad_at,
        first_bad_at_local=local_iso(ev.first_bad_at),
        downtime_s=downtime_s(ev, now),
        escalation_level=stored.escalation_level,
    )


async def ticket_detail(runtime: Runtime, stored: StoredTicket, now: datetime) -> TicketDetail:
    """A stored ticket with its evidence and log."""
    events = await runtime.store.ticket_events(stored.ticket.id)
    ev = stored.ticket.evidence
    worst, first = ev.worst or Measurements(), ev.first or Measurements()
    return TicketDetail(
        **ticket_view(runtime, stored, now).model_dump(),
        evidence=EvidenceView(
            links=list(ev.links),
            worst_loss_ratio=worst.loss_ratio,
            worst_rtt_median_s=worst.rtt_median_s,
            interface_up=worst.interface_up,
            worst_utilization_ratio=worst.utilization_ratio,
            first_loss_ratio=first.loss_ratio,
            first_rtt_median_s=first.rtt_median_s,
            path=first.path,
            inside_paths=worst.inside_paths or first.inside_paths,
            inside_portals=worst.inside_portals or first.inside_portals,
        ),
        events=[
            EventView(
                seq=e.seq,
                at=e.event.at,
                at_local=local_iso(e.event.at) or "",
                actor=actor_text(e.event.actor),
                kind=e.event.kind.value,
                text=e.event.text,
            )
            for e in events
        ],
    )


class ManualAction(enum.Enum):
    """What a person does to a ticket."""

    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    NOTE = "note"

    @property
    def name_on_bus(self) -> ActionName:
        """The action's name in netwatch.bus.commands (and TicketDesk.act)."""
        return _ACTION_NAMES[self]


_ACTION_NAMES: dict[ManualAction, ActionName] = {
    ManualAction.ACKNOWLEDGE: "acknowledge",
    ManualAction.RESOLVE: "resolve",
    ManualAction.NOTE: "note",
}


@dataclass(frozen=True, slots=True)
class ActionFailure:
    """A manual action not done: the HTTP status, and why in English and in Vietnamese."""

    status: int
    reason: str
    message: str
    message_vi: str


def refusal_failure(ticket_id: str, reason: Refusal) -> ActionFailure:
    """409 (or 422 for an empty note) for what the ticket book refused."""
    texts = {
        Refusal.ALREADY_ACKNOWLEDGED: (
            f"ticket {ticket_id} is already acknowledged",
            f"Phiếu {ticket_id} đã được tiếp nhận trước đó.",
        ),
        Refusal.ALREADY_RESOLVED: (
            f"ticket {ticket_id} is already resolved",
            f"Phiếu {ticket_id} đã được đóng.",
        ),
        Refusal.UNKNOWN_TICKET: (
            f"ticket {ticket_id} is no longer current: it was closed long ago or a newer "
            "ticket stands for the same problem",
            f"Phiếu {ticket_id} không còn hiệu lực: phiếu đã đóng từ lâu hoặc đã có phiếu mới "
            "cho cùng sự cố.",
        ),
        Refusal.EMPTY_NOTE: ("a note needs text", "Ghi chú cần có nội dung."),
    }
    message, message_vi = texts[reason]
    status = 422 if reason is Refusal.EMPTY_NOTE else 409
    return ActionFailure(status, reason.value, message, message_vi)


def ticket_not_found(ticket_id: str) -> ActionFailure:
    """404 for a ticket id the store does not know."""
    return ActionFailure(
        404,
        "unknown_ticket",
        f"ticket {ticket_id!r} not found",
        f"Không tìm thấy phiếu {ticket_id}.",
    )


async def apply_action(
    runtime: Runtime,
    ticket_id: str,
    action: ManualAction,
    actor: Actor,
    text: str,
    now: datetime,
) -> StoredTicket | ActionFailure:
    """Acknowledge, resolve or note a ticket through the alerting service (one book, persisted)."""
    text = text.strip()
    if action is ManualAction.NOTE and not text:
        return refusal_failure(ticket_id, Refusal.EMPTY_NOTE)
    if len(text) > MAX_TEXT_CHARS:
        return ActionFailure(
            422,
            "text_too_long",
            f"text is longer than {MAX_TEXT_CHARS} characters",
            f"Nội dung dài quá {MAX_TEXT_CHARS} ký tự.",
        )
    if await runtime.store.get_ticket(ticket_id) is None:
        return ticket_not_found(ticket_id)
    # Where the ticket book lives: this process while it leads, else the leading core (bus).
    result = await runtime.desk.act(action.name_on_bus, ticket_id, actor, now, text)
    if result is DeskAnswer.STANDBY:
        # The leading instance owns the ticket book; a change made here would be overwritten.
        return ActionFailure(
            503,
            "standby",
            "this NetWatch instance is on standby; the leading instance takes changes, "
            "try again in a moment",
            "Máy NetWatch này đang ở chế độ dự phòng; máy chính nhận thay đổi, "
            "vui lòng thử lại sau ít phút.",
        )
    if isinstance(result, Refused):
        return refusal_failure(ticket_id, result.reason)
    stored = await runtime.store.get_ticket(ticket_id)
    assert stored is not None  # it was there, and tickets are never deleted
    return stored


# --- maintenance scopes ---------------------------------------------------------------------------


class ScopeIn(BaseModel):
    """What a window covers: exactly one of province, commune, link, isp, upstream."""

    model_config = ConfigDict(extra="forbid")
    province: int | None = None
    commune: str | None = None
    link: str | None = Field(None, description='"CODE/LINK-ID", e.g. "24848/vnpt-tslcd"')
    isp: str | None = None
    upstream: str | None = None


def scope_target(runtime: Runtime, scope: ScopeIn) -> tuple[str, str]:
    """(scope, target) checked against the inventory; 422 naming what is wrong."""
    given = {k: v for k, v in scope.model_dump().items() if v is not None}
    if len(given) != 1:
        raise HTTPException(
            422, "scope: name exactly one of province, commune, link, isp, upstream"
        )
    kind, value = next(iter(given.items()))
    inventory = runtime.inventory
    if kind == "province":
        if value not in {c.province_code for c in inventory.communes}:
            raise HTTPException(422, f"scope: province {value} has no monitored commune")
        return kind, str(value)
    if kind == "commune":
        code = value.zfill(5) if value.isdigit() else value
        if inventory.commune(code) is None:
            raise HTTPException(422, f"scope: commune {value!r} is not monitored")
        return kind, code
    if kind == "link":
        if value not in runtime.health.topology.links:
            raise HTTPException(422, f"scope: link {value!r} is not monitored (write CODE/LINK-ID)")
        return kind, value
    names = inventory.isps if kind == "isp" else inventory.upstreams
    if value not in names:
        raise HTTPException(422, f"scope: {kind} {value!r} is not in the configuration")
    return kind, value
