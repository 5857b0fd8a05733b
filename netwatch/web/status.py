"""A plain status page in Vietnamese: the latest round of every link and portal.

This is the first, simple view (one round, no hysteresis); the full status page for commune
officials is built on the health evaluator.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from netwatch.inventory import Thresholds
from probes.icmp import PingResult

router = APIRouter(include_in_schema=False)
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}td,th{padding:.35rem .5rem;border-bottom:1px solid #ddd;
text-align:left}.ok{color:#0a6b2d}.warn{color:#8a5200}.bad{color:#b00020}.none{color:#555}
@media(max-width:40rem){td:nth-child(5),th:nth-child(5){display:none}}
"""


def _verdict(result: PingResult | None, thresholds: Thresholds) -> tuple[str, str]:
    if result is None:
        return "Chưa có số liệu", "none"
    if result.received == 0:
        return "Mất kết nối", "bad"
    if result.loss_ratio * 100 > thresholds.loss_pct:
        return "Mất gói", "warn"
    if result.rtt_median_s is not None and result.rtt_median_s * 1000 > thresholds.rtt_ms:
        return "Chậm", "warn"
    return "Bình thường", "ok"


def _local(ts: datetime | None) -> str:
    return ts.astimezone(LOCAL_TZ).strftime("%H:%M:%S %d/%m/%Y") if ts else "—"


def redirect_page(target: str) -> str:
    """A tiny page that sends the browser on (works without JavaScript)."""
    return (
        f'<!doctype html><meta http-equiv="refresh" content="0; url={escape(target)}">'
        f'<a href="{escape(target)}">NetWatch</a>'
    )


@router.get("/status", response_class=HTMLResponse)
def status_page(request: Request) -> HTMLResponse:
    """Every link's state after the latest round, and the portals."""
    runtime = request.app.state.runtime
    inventory = runtime.inventory
    rows = []
    for commune in inventory.communes:
        thresholds = commune.effective_thresholds(inventory.thresholds)
        for link in commune.links:
            obs = runtime.state.icmp.get(f"link:{commune.code}/{link.id}")
            result = obs.result if obs is not None else None
            word, css = _verdict(result, thresholds)
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
                f'<td class="{css}"><strong>{word}</strong></td>'
                f"<td>{loss} / {rtt}</td>"
                f"<td>{_local(result.started_at if result else None)}</td></tr>"
            )
    portal_rows = []
    for job in runtime.plan.portals:
        pobs = runtime.state.portals.get(job.key)
        if pobs is None:
            word, css, detail = "Chưa có số liệu", "none", ""
        elif pobs.http.failure is None:
            word, css = "Hoạt động bình thường", "ok"
            detail = f"{pobs.http.total_s * 1000:.0f} ms"
        else:
            word, css, detail = "Đang gián đoạn", "bad", escape(pobs.http.detail)
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
<p>Kết quả vòng đo gần nhất. Cập nhật lúc {_local(datetime.now(LOCAL_TZ))} (giờ Việt Nam).</p>
<h2>Cổng dịch vụ công</h2>
<table><thead><tr><th>Cổng</th><th>Tình trạng</th><th>Chi tiết</th></tr></thead>
<tbody>{"".join(portal_rows) or '<tr><td colspan="3">Chưa cấu hình</td></tr>'}</tbody></table>
<h2>Đường truyền</h2>
<table><thead><tr><th>Xã, phường</th><th>Nhà mạng</th><th>Tình trạng</th>
<th>Mất gói / Độ trễ</th><th>Đo lúc</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p><small>NetWatch · <a href="/docs">API</a> · <a href="/metrics">/metrics</a></small></p>
</body></html>"""
    return HTMLResponse(html)
