"""The one honest answer: is it the commune's line, the ISP, the portal — and is someone on it?

Each function returns `Notice`s: a sentence in the page's language and how serious it is. The
sentences follow root cause: an ISP node down explains every commune behind it (not their own
lines); a failing portal is never the commune's line; a full line is capacity, not an ISP fault;
NetWatch's own lost connectivity makes every state doubtful and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from netwatch.web.i18n import Lang, fmt_number, fmt_time
from netwatch.web.status.model import CommuneView, LinkView, PortalView, Snapshot, TicketInfo
from netwatch.web.status.words import PATH, Shown


@dataclass(frozen=True, slots=True)
class Notice:
    """One sentence of explanation; level is a CSS class: bad, warn, info, ok."""

    level: str
    text: str


def _line(link: LinkView, lang: Lang) -> str:
    path = PATH[link.path][lang]
    if lang == "vi":
        return f"Đường truyền {link.isp_name} ({path})"
    return f"The {link.isp_name} link ({path})"


def _told(link: LinkView, tickets: Mapping[str, TicketInfo], lang: Lang) -> str:
    """' — the ISP has been told.' when a ticket for the link (or its node) exists."""
    ticket = tickets.get(link.key)
    if ticket is None:
        return ""
    if ticket.acknowledged_at is not None:
        return " Nhà mạng đã tiếp nhận xử lý." if lang == "vi" else " The ISP is working on it."
    if ticket.route == "provincial_it":
        return " CNTT tỉnh đã được thông báo." if lang == "vi" else " Provincial IT has been told."
    return " Nhà mạng đã được thông báo." if lang == "vi" else " The ISP has been told."


def link_notice(link: LinkView, tickets: Mapping[str, TicketInfo], lang: Lang) -> Notice | None:
    """Whose problem one link's state is, in one or two sentences (None when it is fine)."""
    line = _line(link, lang)
    told = _told(link, tickets, lang)
    if link.shown is Shown.MAINTENANCE:
        reason = link.maintenance or ""
        if lang == "vi":
            return Notice(
                "info",
                f"{line} đang được bảo trì theo kế hoạch ({reason}): có thể gián đoạn trong "
                "thời gian bảo trì.",
            )
        return Notice(
            "info", f"{line} is under planned maintenance ({reason}): it may be interrupted."
        )
    if link.shown is Shown.DOWN:
        if link.upstream_outage is not None:
            if lang == "vi":
                return Notice(
                    "bad",
                    f"{line} mất kết nối do sự cố tại {link.upstream_outage} của nhà mạng "
                    f"{link.isp_name}: nhiều xã trong khu vực cùng bị ảnh hưởng — không phải lỗi "
                    f"tại xã.{told}",
                )
            return Notice(
                "bad",
                f"{line} is down because of an outage at {link.upstream_outage} of "
                f"{link.isp_name}: several communes in the area are affected — not a fault at "
                f"the commune.{told}",
            )
        if link.detail == "interface_down":
            if lang == "vi":
                return Notice(
                    "bad",
                    f"{line} mất kết nối: cổng WAN trên thiết bị mạng của xã báo mất tín hiệu từ "
                    "đường truyền. Hãy kiểm tra dây cáp và modem/thiết bị quang của nhà mạng tại "
                    f"xã; nếu thiết bị vẫn bình thường, lỗi thuộc đường truyền của nhà mạng.{told}",
                )
            return Notice(
                "bad",
                f"{line} is down: the WAN port of the commune's router sees no signal from the "
                "line. Check the cable and the ISP's modem at the commune; if they look fine, "
                f"the fault is on the ISP's line.{told}",
            )
        if link.detail == "router_rebooted":
            if lang == "vi":
                return Notice(
                    "bad",
                    f"{line} mất kết nối: thiết bị mạng của xã vừa khởi động lại (có thể do mất "
                    f"điện tại xã).{told}",
                )
            return Notice(
                "bad",
                f"{line} is down: the commune's router has just restarted (a power cut at the "
                f"commune?).{told}",
            )
        if link.detail == "router_unreachable":
            if lang == "vi":
                return Notice(
                    "bad",
                    f"{line} mất kết nối: không liên lạc được với thiết bị mạng của xã — có thể "
                    f"mất điện tại xã hoặc đứt đường truyền của nhà mạng.{told}",
                )
            return Notice(
                "bad",
                f"{line} is down: the commune's router cannot be reached — a power cut at the "
                f"commune, or the ISP's line is cut.{told}",
            )
        if lang == "vi":
            return Notice(
                "bad",
                f"{line} mất kết nối — lỗi đường truyền phía nhà mạng {link.isp_name}.{told}",
            )
        return Notice("bad", f"{line} is down — a fault on {link.isp_name}'s side.{told}")
    if link.shown is Shown.LOSSY:
        if lang == "vi":
            return Notice(
                "warn",
                f"{line} đang mất gói, kết nối chập chờn — lỗi chất lượng phía nhà mạng, không "
                f"phải do xã dùng quá nhiều.{told}",
            )
        return Notice(
            "warn",
            f"{line} is losing packets (unstable) — a quality fault on the ISP's side, not "
            f"the commune using too much.{told}",
        )
    if link.shown is Shown.SLOW:
        limit = f"{fmt_number(link.rtt_threshold_s * 1000, lang, 0)} ms"
        if lang == "vi":
            return Notice(
                "warn",
                f"{line} đang chậm: độ trễ vượt ngưỡng {limit} trong khi đường truyền không đầy "
                f"— lỗi chất lượng phía nhà mạng.{told}",
            )
        return Notice(
            "warn",
            f"{line} is slow: latency above {limit} while the line is not full — a quality "
            f"fault on the ISP's side.{told}",
        )
    if link.shown is Shown.CONGESTED:
        bw = fmt_number(link.bandwidth_mbps, lang, 0)
        if lang == "vi":
            return Notice(
                "warn",
                f"{line} đang quá tải: xã đang dùng gần hết băng thông thuê bao ({bw} Mbps) — "
                "không phải lỗi của nhà mạng; CNTT tỉnh xem xét nâng băng thông hoặc giảm tải "
                f"(tải tệp lớn, camera...).{told}",
            )
        return Notice(
            "warn",
            f"{line} is overloaded: the commune uses nearly all of its contracted bandwidth "
            f"({bw} Mbps) — not an ISP fault; provincial IT looks at more bandwidth or less "
            f"load (large downloads, cameras...).{told}",
        )
    return _line_back(line, tickets.get(link.key), lang)


def _line_back(line: str, ticket: TicketInfo | None, lang: Lang) -> Notice | None:
    """A fine link whose ticket is still open: back, and watched a while before closing."""
    if ticket is None or ticket.back_since is None or ticket.resolved_at is not None:
        return None
    since = fmt_time(ticket.back_since, lang)
    closes = fmt_time(ticket.closes_at, lang) if ticket.closes_at is not None else None
    if lang == "vi":
        until = f" đến {closes}" if closes else ""
        return Notice(
            "ok",
            f"{line} đã hoạt động trở lại từ {since}. NetWatch tiếp tục theo dõi{until} rồi "
            "mới đóng phiếu sự cố.",
        )
    until = f" until {closes}" if closes else ""
    return Notice(
        "ok",
        f"{line} has been back since {since}. NetWatch keeps watching it{until} before it "
        "closes the ticket.",
    )


def portal_notice(portal: PortalView, lang: Lang) -> Notice | None:
    """A failing or slow portal is never the commune's line."""
    if portal.state == "failing":
        if lang == "vi":
            return Notice(
                "bad", f"{portal.name} đang gián đoạn — không phải lỗi đường truyền của xã."
            )
        return Notice(
            "bad", f"{portal.name} is interrupted — not a fault of the commune's connection."
        )
    if portal.state == "slow":
        if lang == "vi":
            return Notice(
                "warn", f"{portal.name} đang phản hồi chậm — không phải lỗi đường truyền của xã."
            )
        return Notice(
            "warn",
            f"{portal.name} is responding slowly — not a fault of the commune's connection.",
        )
    return None


def monitor_notice(snapshot: Snapshot, lang: Lang) -> Notice | None:
    """NetWatch cut off from the network: say so before anything else."""
    if snapshot.monitor is None:
        return None
    if lang == "vi":
        return Notice(
            "warn",
            "Hệ thống giám sát NetWatch đang mất kết nối — tình trạng hiển thị có thể chưa "
            "phản ánh đúng đường truyền của các xã.",
        )
    return Notice(
        "warn",
        "NetWatch itself has lost connectivity — the states shown may not reflect the "
        "communes' links.",
    )


def province_notices(snapshot: Snapshot, lang: Lang) -> list[Notice]:
    """Area-wide problems: the monitor, ISP nodes down, portals."""
    out = [n for n in (monitor_notice(snapshot, lang),) if n is not None]
    for outage in snapshot.upstream_outages:
        n = len(outage.communes)
        if lang == "vi":
            text = (
                f"Sự cố tại {outage.name} của nhà mạng {outage.isp_name}: {n} xã phía sau mất "
                "kết nối — không phải lỗi tại các xã; nhà mạng được thông báo một lần cho cả "
                "khu vực."
            )
        else:
            text = (
                f"Outage at {outage.name} of {outage.isp_name}: {n} communes behind it are "
                "down — not a fault at the communes; the ISP is told once for the whole area."
            )
        out.append(Notice("bad", text))
    out.extend(pn for p in snapshot.portals if (pn := portal_notice(p, lang)) is not None)
    return out


def commune_notices(
    commune: CommuneView,
    snapshot: Snapshot,
    tickets: Mapping[str, TicketInfo],
    lang: Lang,
) -> list[Notice]:
    """Everything a commune official needs to read, most important first."""
    out = [n for n in (monitor_notice(snapshot, lang),) if n is not None]
    said = [n for v in commune.links if (n := link_notice(v, tickets, lang)) is not None]
    out.extend(said)
    bad = [n for n in said if n.level != "ok"]  # "ok": a line back, watched before closing
    working = [v for v in commune.links if v.shown is Shown.OK]
    if bad and working:
        names = ", ".join(_line(v, lang) for v in working)
        out.append(
            Notice(
                "info",
                f"Xã vẫn còn kết nối qua: {names}."
                if lang == "vi"
                else f"The commune still has a connection through: {names}.",
            )
        )
    portals = [n for p in snapshot.portals if (n := portal_notice(p, lang)) is not None]
    out.extend(portals)
    if not bad and not portals and snapshot.monitor is None:
        if all(v.shown is Shown.UNKNOWN for v in commune.links):
            out.append(
                Notice(
                    "info",
                    "Chưa có số liệu đo: NetWatch vừa khởi động."
                    if lang == "vi"
                    else "No measurement yet: NetWatch has just started.",
                )
            )
        else:
            out.append(
                Notice(
                    "ok",
                    "Đường truyền của xã hoạt động bình thường."
                    if lang == "vi"
                    else "The commune's connection is working normally.",
                )
            )
    return out
