"""The one honest answer: is it the commune's line, the ISP, the portal — and is someone on it?

Each function returns `Notice`s: a sentence in the page's language and how serious it is. The
sentences follow root cause: an ISP node down explains every commune behind it (not their own
lines); a failing portal is never the commune's line; a full line is capacity, not an ISP fault;
NetWatch's own lost connectivity makes every state doubtful and says so. The sentences
themselves are words.Explain's; this module picks one and fills it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from netwatch.web.i18n import Lang, fmt_duration, fmt_number, fmt_time
from netwatch.web.status.model import CommuneView, LinkView, PortalView, Snapshot, TicketInfo
from netwatch.web.status.words import PATH, Explain, Shown, Words


@dataclass(frozen=True, slots=True)
class Notice:
    """One sentence of explanation; level is a CSS class: bad, warn, info, ok."""

    level: str
    text: str


def _line(link: LinkView, lang: Lang) -> str:
    return Explain.LINE[lang].format(isp=link.isp_name, path=PATH[link.path][lang])


def _told(link: LinkView, tickets: Mapping[str, TicketInfo], lang: Lang) -> str:
    """' — the ISP has been told.' when a ticket for the link (or its node) exists."""
    ticket = tickets.get(link.key)
    if ticket is None:
        return ""
    if ticket.route == "provincial_it_and_commune":  # the whole centre (issue 11)
        return Explain.SITE_TOLD[lang]
    if ticket.acknowledged_at is not None:
        return Explain.ISP_ON_IT[lang]
    if ticket.route == "provincial_it":
        return Explain.IT_TOLD[lang]
    return Explain.ISP_TOLD[lang]


def link_notice(link: LinkView, tickets: Mapping[str, TicketInfo], lang: Lang) -> Notice | None:
    """Whose problem one link's state is, in one or two sentences (None when it is fine)."""
    line = _line(link, lang)
    told = _told(link, tickets, lang)

    def say(level: str, words: Words, **values: object) -> Notice:
        text = words[lang].format(line=line, told=told, isp=link.isp_name, **values)
        return Notice(level, text)

    if link.shown is Shown.MAINTENANCE:
        return say("info", Explain.MAINTENANCE, reason=link.maintenance or "")
    if link.shown is Shown.DOWN:
        if link.upstream_outage is not None:
            return say("bad", Explain.DOWN_UPSTREAM, node=link.upstream_outage)
        site = tickets.get(link.key)
        if site is not None and site.kind == "site_unreachable":
            return say("bad", Explain.DOWN_SITE)
        # What the health monitor saw besides no echo, when it tells whose side it is.
        because = {
            "interface_down": Explain.DOWN_INTERFACE,
            "router_rebooted": Explain.DOWN_REBOOTED,
            "router_unreachable": Explain.DOWN_UNREACHABLE,
        }
        return say("bad", because.get(link.detail, Explain.DOWN))
    if link.shown is Shown.LOSSY:
        return say("warn", Explain.LOSSY)
    if link.shown is Shown.SLOW:
        return say(
            "warn", Explain.SLOW, limit=f"{fmt_number(link.rtt_threshold_s * 1000, lang, 0)} ms"
        )
    if link.shown is Shown.CONGESTED:
        return say("warn", Explain.CONGESTED, bw=fmt_number(link.bandwidth_mbps, lang, 0))
    return _line_back(line, tickets.get(link.key), lang)


def _line_back(line: str, ticket: TicketInfo | None, lang: Lang) -> Notice | None:
    """A fine link whose ticket is still open: back, and watched a while before closing."""
    if ticket is None or ticket.back_since is None or ticket.resolved_at is not None:
        return None
    until = ""
    if ticket.closes_at is not None:
        until = Explain.UNTIL[lang].format(closes=fmt_time(ticket.closes_at, lang))
    since = fmt_time(ticket.back_since, lang)
    return Notice("ok", Explain.BACK[lang].format(line=line, since=since, until=until))


def portal_notice(portal: PortalView, lang: Lang) -> Notice | None:
    """A failing or slow portal is never the commune's line."""
    if portal.state == "failing":
        return Notice("bad", Explain.PORTAL_FAILING[lang].format(name=portal.name))
    if portal.state == "slow":
        return Notice("warn", Explain.PORTAL_SLOW[lang].format(name=portal.name))
    return None


def monitor_notice(snapshot: Snapshot, lang: Lang) -> Notice | None:
    """NetWatch cut off from the network: say so before anything else."""
    if snapshot.monitor is None:
        return None
    return Notice("warn", Explain.MONITOR[lang])


def freshness_notices(snapshot: Snapshot, lang: Lang) -> list[Notice]:
    """How far to trust the page itself: data not updated for rounds, alerting paused."""
    out = []
    stale = snapshot.stale_since
    if stale is not None:
        age = fmt_duration((snapshot.taken_at - stale).total_seconds(), lang)
        time = fmt_time(stale, lang)
        out.append(Notice("warn", Explain.STALE[lang].format(time=time, age=age)))
    paused = snapshot.alerting_paused_since
    if paused is not None:
        time = fmt_time(paused, lang)
        out.append(Notice("warn", Explain.ALERTING_PAUSED[lang].format(time=time)))
    return out


def province_notices(snapshot: Snapshot, lang: Lang) -> list[Notice]:
    """Area-wide problems: the page's own freshness, the monitor, ISP nodes down, portals."""
    out = freshness_notices(snapshot, lang)
    out += [n for n in (monitor_notice(snapshot, lang),) if n is not None]
    for outage in snapshot.upstream_outages:
        text = Explain.UPSTREAM_OUTAGE[lang].format(
            node=outage.name, isp=outage.isp_name, n=len(outage.communes)
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
    out = freshness_notices(snapshot, lang)
    out += [n for n in (monitor_notice(snapshot, lang),) if n is not None]
    said = [n for v in commune.links if (n := link_notice(v, tickets, lang)) is not None]
    out.extend(said)
    bad = [n for n in said if n.level != "ok"]  # "ok": a line back, watched before closing
    working = [v for v in commune.links if v.shown is Shown.OK]
    if bad and working:
        names = ", ".join(_line(v, lang) for v in working)
        out.append(Notice("info", Explain.STILL_CONNECTED[lang].format(names=names)))
    portals = [n for p in snapshot.portals if (n := portal_notice(p, lang)) is not None]
    out.extend(portals)
    if not bad and not portals and snapshot.monitor is None:
        if all(v.shown is Shown.UNKNOWN for v in commune.links):
            out.append(Notice("info", Explain.NO_DATA_YET[lang]))
        else:
            out.append(Notice("ok", Explain.ALL_FINE[lang]))
    return out
