"""The JSON API (/api/v1): links and their latest measurements. OpenAPI at /docs."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

router = APIRouter(prefix="/api/v1", tags=["links"])


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
    address: str
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


def _links(request: Request, commune: str | None = None) -> list[LinkView]:
    runtime = request.app.state.runtime
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
                address=target.address,
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


@router.get("/links", response_model=list[LinkView], summary="Every link and its latest round")
def list_links(request: Request) -> list[LinkView]:
    """Links of every commune with the latest ICMP and SNMP measurements."""
    return _links(request)


@router.get(
    "/communes/{code}",
    response_model=CommuneView,
    summary="One commune by official code",
    responses={404: {"description": "No such commune in the configuration"}},
)
def get_commune(code: str, request: Request) -> CommuneView:
    """A commune's links with their latest measurements."""
    runtime = request.app.state.runtime
    normalized = code.zfill(5) if code.isdigit() else code
    commune = runtime.inventory.commune(normalized)
    if commune is None:
        raise HTTPException(404, f"commune {code!r} is not monitored by this NetWatch")
    return CommuneView(
        code=commune.code,
        name=commune.name,
        province=f"{commune.province_code:02d}",
        links=_links(request, commune.code),
    )


class IncidentView(BaseModel):
    """Something wrong now, with whose problem it is."""

    key: str
    kind: str  # link_fault, capacity, upstream_outage, portal_outage, monitor_connectivity
    state: str
    since: datetime
    route: str  # isp, provincial_it, isp_and_provincial_it
    isp: str | None
    links: list[str]
    detail: str


@router.get(
    "/incidents",
    response_model=list[IncidentView],
    tags=["incidents"],
    summary="What is wrong now, root cause decided",
)
def list_incidents(request: Request) -> list[IncidentView]:
    """Current incidents: one per link fault, upstream outage, portal outage or monitor outage."""
    return [
        IncidentView(
            key=i.key,
            kind=i.kind.value,
            state=i.state,
            since=i.since,
            route=i.route.value,
            isp=i.isp,
            links=list(i.links),
            detail=i.detail,
        )
        for i in request.app.state.runtime.health.incidents
    ]
