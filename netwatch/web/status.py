"""A plain status page in Vietnamese: every link's judged state, the portals, what is known.

States come from the health evaluator (hysteresis: a state counts once it has held), and the
incidents from root-cause analysis explain whose problem it is. The full status page for commune
officials (province and commune pages, search, charts, English) builds on this.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from alerts.model import Incident, IncidentKind, LinkState, PortalState

router = APIRouter(include_in_schema=False)
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}td,th{padding:.35rem .5rem;border-bottom:1px solid #ddd;
text-align:left}.ok{color:#0a6b2d}.warn{color:#8a5200}.bad{color:#b00020}.none{color:#555}
.note{border-left:4px solid #b00020;padding:.5rem .75rem;background:#fdf1f1;margin:.5rem 0}
@media(max-width:40rem){td:nth-child(5),th:nth-child(5){display:none}}
"""

# Plain words for commune officials, with a class for colour (state is never colour alone).
LINK_WORDS = {
    LinkState.OK: ("Bình thường", "ok"),
    LinkState.SLOW: ("Chậm", "warn"),
    LinkState.LOSSY: ("Mất gói", "warn"),
    LinkState.CONGESTED: ("Quá tải", "warn"),
    LinkState.DOWN: ("Mất kết nối", "bad"),
}
PORTAL_WORDS = {
    PortalState.OK: ("Hoạt động bình thường", "ok"),
    PortalState.SLOW: ("Phản hồi chậm", "warn"),
    PortalState.FAILING: ("Đang gián đoạn", "bad"),
}


def explain(
    incident: Incident, portal_names: dict[str, str], upstream_names: dict[str, str]
) -> str:
    """One sentence, in Vietnamese, saying whose problem an incident is."""
    if incident.kind is IncidentKind.PORTAL_OUTAGE:
        name = portal_names.get(incident.key.removeprefix("portal:"), "Cổng dịch vụ công")
        return f"{name} đang gián đoạn — không phải lỗi đường truyền của xã."
    if incident.kind is IncidentKind.UPSTREAM_OUTAGE:
        name = upstream_names.get(incident.key.removeprefix("upstream:"), "điểm kết nối")
        return (
            f"Sự cố tại {name} của nhà mạng: {len(incident.links)} đường truyền của các xã phía "
            "sau bị ảnh hưởng — nhà mạng đã được thông báo một lần cho cả khu vực."
        )
    if incident.kind is IncidentKind.MONITOR_CONNECTIVITY:
        return (
            "Hệ thống giám sát NetWatch đang mất kết nối — số liệu tạm thời chưa phản ánh "
            "đúng tình trạng các xã."
        )
    if incident.kind is IncidentKind.CAPACITY:
        return "Đường truyền quá tải (dùng gần hết băng thông) — cần tăng băng thông."
    return "Sự cố đường truyền của nhà mạng."


def _local(ts: datetime | None) -> str:
    return ts.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y") if ts else "—"


def redirect_page(target: str) -> str:
    """A tiny page that sends the browser on (works without JavaScript)."""
    return (
        f'<!doctype html><meta http-equiv="refresh" content="0; url={escape(target)}">'
        f'<a href="{escape(target)}">NetWatch</a>'
    )


@router.get("/status", response_class=HTMLResponse)
def status_page(request: Request) -> HTMLResponse:
    """Every link's judged state, the portals, and the incidents explained."""
    runtime = request.app.state.runtime
    inventory = runtime.inventory
    health = runtime.health
    portal_names = {pid: p.name for pid, p in inventory.portals.items()}
    upstream_names = {uid: u.name for uid, u in inventory.upstreams.items()}
    wide = [
        i
        for i in health.incidents
        if i.kind
        in (
            IncidentKind.PORTAL_OUTAGE,
            IncidentKind.UPSTREAM_OUTAGE,
            IncidentKind.MONITOR_CONNECTIVITY,
        )
    ]
    notes = "".join(
        f'<p class="note">{escape(explain(i, portal_names, upstream_names))} '
        f"<small>Từ {_local(i.since)}</small></p>"
        for i in wide
    )
    rows = []
    for commune in inventory.communes:
        for link in commune.links:
            status = health.link_status(commune.code, link.id)
            obs = runtime.state.icmp.get(f"link:{commune.code}/{link.id}")
            result = obs.result if obs is not None else None
            word, css = LINK_WORDS[status.state] if status else ("Chưa có số liệu", "none")
            since = f"<br><small>từ {_local(status.since)}</small>" if status else ""
            rtt = (
                f"{result.rtt_median_s * 1000:.1f} ms"
                if result is not None and result.rtt_median_s is not None
                else "—"
            )
            loss = f"{result.loss_ratio * 100:.0f} %" if result is not None else "—"
            isp = inventory.isps[link.isp].name if link.isp in inventory.isps else link.isp
            path = "Truyền số liệu chuyên dùng" if link.path == "tslcd" else "Internet"
            rows.append(
                f"<tr><td>{escape(commune.name)}<br><small>{commune.code}</small></td>"
                f"<td>{escape(isp)}<br><small>{path}</small></td>"
                f'<td class="{css}"><strong>{word}</strong>{since}</td>'
                f"<td>{loss} / {rtt}</td>"
                f"<td>{_local(result.started_at if result else None)}</td></tr>"
            )
    portal_rows = []
    for job in runtime.plan.portals:
        pstatus = health.portal_status(job.portal)
        pobs = runtime.state.portals.get(job.key)
        word, css = PORTAL_WORDS[pstatus.state] if pstatus else ("Chưa có số liệu", "none")
        detail = ""
        if pobs is not None:
            detail = (
                f"{pobs.http.total_s * 1000:.0f} ms"
                if pobs.http.failure is None
                else escape(pobs.http.detail)
            )
        portal_rows.append(
            f'<tr><td>{escape(job.name)}</td><td class="{css}"><strong>{word}</strong></td>'
            f"<td>{detail}</td></tr>"
        )
    html = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>NetWatch — Tình trạng đường truyền</title><style>{_STYLE}</style></head>
<body><h1>Tình trạng đường truyền các xã, phường</h1>
<p>Cập nhật lúc {_local(datetime.now(LOCAL_TZ))} (giờ Việt Nam). Một tình trạng được ghi nhận
khi nó kéo dài qua nhiều vòng đo liên tiếp.</p>
{notes}
<h2>Cổng dịch vụ công</h2>
<table><thead><tr><th>Cổng</th><th>Tình trạng</th><th>Chi tiết</th></tr></thead>
<tbody>{"".join(portal_rows) or '<tr><td colspan="3">Chưa cấu hình</td></tr>'}</tbody></table>
<h2>Đường truyền</h2>
<table><thead><tr><th>Xã, phường</th><th>Nhà mạng</th><th>Tình trạng</th>
<th>Mất gói / Độ trễ (vòng gần nhất)</th><th>Đo lúc</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p><small>NetWatch · <a href="/docs">API</a> · <a href="/metrics">/metrics</a></small></p>
</body></html>"""
    return HTMLResponse(html)
