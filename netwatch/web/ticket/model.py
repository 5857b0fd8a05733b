"""What a ticket's body shows, as values: the link's latest round, and the log, the measurements
and the path in words (no HTML here: see templates/ticket.html)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from alerts.model import PathTrace
from alerts.subject import SubjectKey, link_id
from alerts.tickets import ActorKind
from netwatch.notify.pathtext import format_rtt
from netwatch.web.i18n import Lang, fmt_number, fmt_percent, fmt_time
from netwatch.web.ticket.words import DETAIL, LEVEL, PROBLEM, SINCE, Label
from netwatch.web.views import EventView, TicketDetail, TicketView
from netwatch.web.words import Words

if TYPE_CHECKING:
    from netwatch.runtime import Runtime


@dataclass(frozen=True, slots=True)
class LiveLink:
    """The latest round of the ticket's link, as NetWatch measures it now."""

    measured_at: datetime | None
    loss_ratio: float | None
    rtt_median_s: float | None
    interface_up: bool | None
    utilization_in_ratio: float | None
    utilization_out_ratio: float | None


def live_link(runtime: Runtime, view: TicketDetail) -> LiveLink | None:
    """The latest ICMP and SNMP readings of a link ticket's link (None for other tickets)."""
    subject = view.subject
    if subject.commune is None or subject.link is None:
        return None
    key = SubjectKey.link(link_id(subject.commune, subject.link))
    obs = runtime.state.icmp.get(key)
    reading = next(
        (r for o in runtime.state.snmp.values() for r in o.interfaces if r.link_key == key), None
    )
    if obs is None and reading is None:
        return None
    result = obs.result if obs is not None else None
    return LiveLink(
        measured_at=result.started_at if result is not None else None,
        loss_ratio=result.loss_ratio if result is not None else None,
        rtt_median_s=result.rtt_median_s if result is not None else None,
        interface_up=reading.oper_up if reading is not None else None,
        utilization_in_ratio=reading.in_utilization_ratio if reading is not None else None,
        utilization_out_ratio=reading.out_utilization_ratio if reading is not None else None,
    )


def word(table: Mapping[str, Words], key: str | None, lang: Lang) -> str:
    """A value's words from a table; the value itself when the table lacks it; "—" for none."""
    if not key:
        return "—"
    words = table.get(key)
    return words[lang] if words is not None else key


def actor_words(actor: str, lang: Lang) -> str:
    """Who did it, in words: 'Nguyễn Văn An (nhà mạng)', 'ops (CNTT tỉnh)', 'NetWatch'."""
    kind, _, name = actor.partition(":")
    if kind == ActorKind.ISP.value:
        return f"{name} ({Label.ISP_ACTOR[lang]})"
    if kind in (ActorKind.PROVINCIAL_IT.value, "token"):
        return f"{name} ({Label.IT_ACTOR[lang]})"
    return "NetWatch" if actor == "netwatch" else actor


_STATE_TEXT = re.compile(r"^(?:(?P<why>[^:]+): )?(?P<state>[a-z_]+)(?: \((?P<detail>[a-z_]+)\))?$")
_SINCE_TEXT = re.compile(r"^(?P<what>ok|unacknowledged) since (?P<at>\S+)$")


def event_text(event: EventView, lang: Lang) -> str:
    """An event's text; NetWatch's own texts are terse ("down (interface_down)"): say them."""
    text = event.text
    if event.actor != "netwatch" or not text:
        return text
    if match := _STATE_TEXT.match(text):
        state, detail = match["state"], match["detail"]
        if state in PROBLEM and (detail is None or detail in DETAIL):
            words = PROBLEM[state][lang] + (f" — {DETAIL[detail][lang]}" if detail else "")
            return f"{match['why']}: {words}" if match["why"] else words
    if match := _SINCE_TEXT.match(text):
        try:
            at = datetime.fromisoformat(match["at"])
        except ValueError:
            return text
        return f"{SINCE[match['what']][lang]} {fmt_time(at, lang)}"
    if text.startswith("level ") and text[6:].isdigit():
        return f"{LEVEL[lang]} {text[6:]}"
    return text


def problem_words(view: TicketView, lang: Lang) -> str:
    """The problem and what NetWatch knows of its cause, in one phrase."""
    problem = word(PROBLEM, view.problem_state, lang)
    if view.detail and view.detail in DETAIL:
        problem = f"{problem} — {DETAIL[view.detail][lang]}"
    return problem


def ms(seconds: float | None, lang: Lang) -> str:
    """A duration in whole milliseconds, kept on one line ("12\u00a0ms"); "—" when unknown."""
    return "—" if seconds is None else f"{fmt_number(seconds * 1000, lang, 0)}\u00a0ms"


def pct(ratio: float | None, lang: Lang) -> str:
    """A ratio as a percentage on one line ("100,0\u00a0%")."""
    return fmt_percent(ratio, lang, 1).replace(" ", "\u00a0")


def interface_words(up: bool | None, lang: Lang) -> str:
    """The WAN interface's state in words."""
    label = {True: Label.IF_UP, False: Label.IF_DOWN, None: Label.UNKNOWN}[up]
    return label[lang]


def evidence_rows(
    view: TicketDetail, live: LiveLink | None, lang: Lang
) -> list[tuple[str, str, str, str]]:
    """The evidence table: (measure, at first, worst, now) for loss, RTT, interface, use."""
    ev = view.evidence
    now_loss = pct(live.loss_ratio, lang) if live else "—"
    now_rtt = ms(live.rtt_median_s, lang) if live else "—"
    now_if = interface_words(live.interface_up, lang) if live else "—"
    now_util = "—"
    if live and (live.utilization_in_ratio is not None or live.utilization_out_ratio is not None):
        now_util = (
            f"{pct(live.utilization_in_ratio, lang)} / {pct(live.utilization_out_ratio, lang)} "
            f"({Label.IN_OUT[lang]})"
        )
    return [
        (
            Label.LOSS[lang],
            pct(ev.first_loss_ratio, lang),
            pct(ev.worst_loss_ratio, lang),
            now_loss,
        ),
        (
            Label.RTT[lang],
            ms(ev.first_rtt_median_s, lang),
            ms(ev.worst_rtt_median_s, lang),
            now_rtt,
        ),
        (Label.INTERFACE[lang], "—", interface_words(ev.interface_up, lang), now_if),
        (Label.UTILIZATION[lang], "—", pct(ev.worst_utilization_ratio, lang), now_util),
    ]


@dataclass(frozen=True, slots=True)
class HopRow:
    """One hop of the path trace, in words."""

    ttl: int
    address: str
    name: str
    answered: str  # "3/3"
    rtt: str
    stop: bool  # where the path stopped


def hop_rows(path: PathTrace, lang: Lang) -> list[HopRow]:
    """The path's hops; the last one that answered is marked where the path did not arrive."""
    vi = lang == "vi"
    last = path.last_hop()
    stop_ttl = last.ttl if last is not None and not path.reached else None
    rows = []
    for hop in path.hops:
        silent = not hop.received
        # An answered hop without an address is the traced address, left out for the ISP.
        rows.append(
            HopRow(
                ttl=hop.ttl,
                address="*" if silent else hop.address or "—",
                name=Label.NO_ANSWER[lang] if silent else hop.name or "—",
                answered=f"{hop.received}/{hop.sent}",
                rtt=format_rtt(hop.rtt_s, vi=vi).replace(" ", "\u00a0")
                if hop.rtt_s is not None
                else "—",
                stop=hop.ttl == stop_ttl,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class InsideRow:
    """One round of a path seen from inside the commune, in words (issue 11)."""

    at: str
    path: str
    lan: str
    far: str
    late: str  # "sent after the line came back", or ""


@dataclass(frozen=True, slots=True)
class InsidePortalRow:
    """One portal's timings over one path from inside, in words."""

    at: str
    portal: str
    path: str
    outcome: str  # "failed at tls", or ""
    times: str  # "0,02 / 0,05 / 0,1 / 8,2 / 8,4 s"


def _seconds(value: float | None, lang: Lang) -> str:
    return "—" if value is None else fmt_number(value, lang, 2)


def inside_rows(view: TicketDetail, lang: Lang) -> list[InsideRow]:
    """The agent's rounds of the ticket's path(s), oldest first."""
    rows = []
    for p in view.evidence.inside_paths:
        lan = {True: Label.ANSWERED, False: Label.NO_ANSWER, None: Label.UNKNOWN}[p.lan_up]
        far = Label.NO_ANSWER[lang]
        if p.answered:
            far = f"{Label.ANSWERED[lang]} ({ms(p.rtt_median_s, lang)})"
        rows.append(
            InsideRow(
                at=fmt_time(p.at, lang),
                path=p.link.split("/", 1)[-1],
                lan=lan[lang],
                far=far,
                late=Label.INSIDE_LATE[lang] if p.backfilled else "",
            )
        )
    return rows


def inside_portal_rows(view: TicketDetail, lang: Lang) -> list[InsidePortalRow]:
    """The portal's timings over the ticket's path from inside."""
    rows = []
    for t in view.evidence.inside_portals:
        times = " / ".join(
            _seconds(v, lang) for v in (t.dns_s, t.connect_s, t.tls_s, t.first_byte_s, t.total_s)
        )
        outcome = "" if t.ok else Label.INSIDE_FAILED[lang].format(phase=t.failed_phase or "?")
        rows.append(
            InsidePortalRow(
                at=fmt_time(t.at, lang),
                portal=t.portal,
                path=t.link.split("/", 1)[-1],
                outcome=outcome,
                times=f"{times} s",
            )
        )
    return rows
