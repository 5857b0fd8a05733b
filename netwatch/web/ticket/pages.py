"""What a ticket's body is given: the ticket in words, its chart, its forms, the notice of an
action just done. The body itself is a set of macros (templates/ticket.html: `css`, `body`,
`forms`) that a page imports with its context; the page's renderer adds `CONTEXT` to it and
passes the `TicketBody` as `t`, so the body is rendered once, with the page, autoescaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from netwatch.health import link_id
from netwatch.notify.pathtext import path_summary
from netwatch.store import InternalNote
from netwatch.web.charts import chart_data, latency_loss_chart
from netwatch.web.i18n import TIMEZONE_NOTE, Lang
from netwatch.web.ticket.model import (
    HopRow,
    InsidePortalRow,
    InsideRow,
    LiveLink,
    actor_words,
    event_text,
    evidence_rows,
    hop_rows,
    inside_portal_rows,
    inside_rows,
    live_link,
    problem_words,
    word,
)
from netwatch.web.ticket.words import CHART_TITLE, DONE, EVENT, Label
from netwatch.web.views import MAX_TEXT_CHARS, ActionFailure, TicketDetail
from netwatch.web.words import TICKET_KIND, TICKET_STATE

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

MAX_NAME_CHARS = 100
# The badge colour of a ticket state (the status pages' palette).
TICKET_STATE_CSS: Mapping[str, str] = {
    "open": "st-down",
    "acknowledged": "st-slow",
    "resolved": "st-ok",
}

# What the body's macros read from the page's context, besides lang and t. Its names say
# "ticket" where a page may have its own (the provincial IT view's `Label`).
CONTEXT: Mapping[str, Any] = {
    "TicketLabel": Label,
    "TICKET_STATE": TICKET_STATE,
    "TICKET_STATE_CSS": TICKET_STATE_CSS,
    "TICKET_KIND": TICKET_KIND,
    "TICKET_EVENT": EVENT,
    "TIMEZONE_NOTE": TIMEZONE_NOTE,
    "word": word,
    "problem_words": problem_words,
    "event_text": event_text,
    "actor_words": actor_words,
    "max_name": MAX_NAME_CHARS,
}


@dataclass(frozen=True, slots=True)
class TicketForms:
    """Where the body's forms post ({action_base}/acknowledge, /note, /resolve), with which
    hidden fields, and whether they ask for a name (the ISP; the admin's token names the actor).
    `view_only`, when set, is said instead of the forms (a link past its time to act)."""

    action_base: str
    hidden: Mapping[str, str]
    ask_name: bool
    view_only: str = ""


@dataclass(frozen=True, slots=True)
class TicketBody:
    """One ticket as its body shows it, in the page language: summary, evidence, path, chart,
    forms, log."""

    view: TicketDetail
    lang: Lang
    forms: TicketForms
    live: LiveLink | None = None  # the link's latest round
    chart: Markup = field(default_factory=Markup)  # server-drawn SVG (netwatch.web.charts)
    done: str = ""  # the notice of an action just done
    footnote: str = ""  # said after the time zone note
    internal_notes: Sequence[InternalNote] = ()  # for the ISP and provincial IT only

    @property
    def evidence(self) -> list[tuple[str, str, str, str]]:
        """(measure, at first, worst, now) for loss, RTT, interface, use."""
        return evidence_rows(self.view, self.live, self.lang)

    @property
    def inside(self) -> list[InsideRow]:
        """What the commune's agent saw of the path from inside (issue 11)."""
        return inside_rows(self.view, self.lang)

    @property
    def inside_portals(self) -> list[InsidePortalRow]:
        """The portal's timings over the path from inside."""
        return inside_portal_rows(self.view, self.lang)

    @property
    def hops(self) -> list[HopRow]:
        """The path's hops, when the ticket has a path trace."""
        path = self.view.evidence.path
        return hop_rows(path, self.lang) if path is not None else []

    @property
    def path_summary(self) -> str:
        """Where the path stopped, in one sentence ("" without a path trace)."""
        path = self.view.evidence.path
        return path_summary(path, vi=self.lang == "vi") if path is not None else ""


def ticket_body(
    runtime: Runtime,
    view: TicketDetail,
    lang: Lang,
    now: datetime,
    forms: TicketForms,
    *,
    done: str | None = None,
    footnote: str = "",
    internal_notes: Sequence[InternalNote] = (),
) -> TicketBody:
    """The body of a live ticket, with its link's latest round and 24 h chart; `done` is the
    action just done (?done=), said as a notice."""
    done_words = DONE.get(done or "")
    return TicketBody(
        view,
        lang,
        forms,
        live_link(runtime, view),
        ticket_chart(runtime, view, lang, now),
        done_words[lang] if done_words else "",
        footnote,
        tuple(internal_notes),
    )


# A note's visibility (the note form's radio buttons): public notes go into the ticket's log
# (the status page shows them, the notified are told); internal ones are kept beside it.
PUBLIC, INTERNAL = "public", "internal"


def note_visibility(fields: Mapping[str, str]) -> str | ActionFailure:
    """The visibility a note form asked for (public when it does not say), or the refusal."""
    visibility = fields.get("visibility", PUBLIC).strip() or PUBLIC
    if visibility not in (PUBLIC, INTERNAL):
        return ActionFailure(
            422,
            "bad_visibility",
            "visibility must be 'public' or 'internal'",
            "Chế độ xem ghi chú phải là công khai (public) hoặc nội bộ (internal).",
        )
    return visibility


def internal_note_text(text: str) -> str | ActionFailure:
    """An internal note's text, or why it cannot be kept (as for a public note)."""
    text = text.strip()
    if not text:
        return ActionFailure(422, "empty_note", "a note needs text", "Ghi chú cần có nội dung.")
    if len(text) > MAX_TEXT_CHARS:
        return ActionFailure(
            422,
            "text_too_long",
            f"text is longer than {MAX_TEXT_CHARS} characters",
            f"Nội dung dài quá {MAX_TEXT_CHARS} ký tự.",
        )
    return text


def ticket_chart(runtime: Runtime, view: TicketDetail, lang: Lang, now: datetime) -> Markup:
    """Loss and latency of the ticket's link over the last 24 h (SVG), or "" without history."""
    s = view.subject
    if s.commune is None or s.link is None:
        return Markup("")
    series = runtime.history.series(link_id(s.commune, s.link), now)
    if series is None:
        return Markup("")
    commune = runtime.inventory.commune(s.commune)
    threshold = (
        commune.effective_thresholds(runtime.inventory.thresholds).rtt_ms / 1000
        if commune is not None
        else None
    )
    return latency_loss_chart(
        chart_data(series, now),
        lang=lang,
        title=CHART_TITLE[lang].format(commune=s.commune_name, link=s.link),
        chart_id=f"chart-{view.id}",
        rtt_threshold_s=threshold,
    )
