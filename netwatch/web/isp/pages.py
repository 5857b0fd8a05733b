"""HTML of the ticket pages: the ISP's page through its signed link, its refusals, and the ticket
body and forms the provincial IT's view shares. Templates in netwatch/web/isp/templates/ render
everything, with autoescape; this module gathers what they show.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request, Response
from markupsafe import Markup

from netwatch.health import link_id
from netwatch.notify.pathtext import path_summary
from netwatch.signing import ticket_path
from netwatch.web.api import TicketDetail
from netwatch.web.charts import chart_data, latency_loss_chart
from netwatch.web.common import private_page
from netwatch.web.i18n import LANGS, TIMEZONE_NOTE, Lang, fmt_time, pick_lang
from netwatch.web.isp.model import (
    IspTicketView,
    LiveLink,
    actor_words,
    event_text,
    evidence_rows,
    hop_rows,
    live_link,
    problem_words,
    word,
)
from netwatch.web.isp.words import (
    CHART_TITLE,
    DONE,
    EVENT,
    KIND,
    TICKET_STATE,
    Label,
    Words,
)
from netwatch.web.layout import language_urls
from netwatch.web.templating import render

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

MAX_NAME_CHARS = 100

# Page-specific rules on top of the shared stylesheet: the log as a timeline, the forms.
TICKET_CSS = (
    "ol.timeline{list-style:none;margin:.5rem 0;padding:0;border-left:3px solid #12355b}"
    "ol.timeline li{margin:0 0 .6rem;padding:.1rem 0 .1rem .75rem}"
    "ol.timeline time{display:block;font-size:.875rem;color:#4a4a4a}"
    "ol.timeline .what{font-weight:600}"
    "form.action{border:1px solid #bbb;border-radius:.35rem;padding:.6rem .8rem;margin:.75rem 0}"
    "form.action h3{margin:0 0 .4rem}"
    "form.action label{display:block;font-weight:600;margin:.4rem 0 .15rem}"
    "form.action input[type=text],form.action textarea{width:100%}"
    "form.action button{margin-top:.5rem}"
    "table.measures td,table.measures th,table.hops td,table.hops th{overflow-wrap:normal}"
    "table.hops tr.stop th,table.hops tr.stop td{font-weight:700}"
    ".nowrap{white-space:nowrap}"
)
# The badge colour of a ticket state (the status pages' palette).
TICKET_STATE_CSS = {"open": "st-down", "acknowledged": "st-slow", "resolved": "st-ok"}

# What every ticket template may use besides its own context.
_SHARED: Mapping[str, object] = {
    "Label": Label,
    "TICKET_STATE": TICKET_STATE,
    "TICKET_STATE_CSS": TICKET_STATE_CSS,
    "KIND": KIND,
    "EVENT": EVENT,
    "TIMEZONE_NOTE": TIMEZONE_NOTE,
    "word": word,
    "problem_words": problem_words,
    "event_text": event_text,
    "actor_words": actor_words,
    "max_name": MAX_NAME_CHARS,
}


def _render(template: str, lang: Lang, **context: Any) -> str:
    return render(f"isp/{template}", {**_SHARED, "lang": lang, **context})


def ticket_context(view: TicketDetail, lang: Lang, live: LiveLink | None) -> dict[str, Any]:
    """What isp/ticket_main.html shows of a ticket, besides chart, forms and notices."""
    path = view.evidence.path
    return {
        "view": view,
        "live": live,
        "evidence": evidence_rows(view, live, lang),
        "hops": hop_rows(path, lang) if path is not None else [],
        "path_summary": path_summary(path, vi=lang == "vi") if path is not None else "",
    }


def forms_markup(
    view: TicketDetail,
    lang: Lang,
    action_base: str,
    hidden: Mapping[str, str],
    *,
    ask_name: bool,
) -> Markup:
    """Acknowledge, note and resolve forms (POST, no JavaScript), as the state allows."""
    html = _render(
        "forms.html",
        lang,
        view=view,
        action_base=action_base,
        hidden=hidden,
        ask_name=ask_name,
    )
    return Markup(html)  # noqa: S704 -- rendered by a template with autoescape


def forms_html(
    view: TicketDetail,
    lang: Lang,
    action_base: str,
    hidden: Mapping[str, str],
    *,
    ask_name: bool,
) -> str:
    """The forms as a string (for HTML still built outside a template: the admin pages)."""
    return str(forms_markup(view, lang, action_base, hidden, ask_name=ask_name))


def ticket_main_html(
    view: TicketDetail,
    lang: Lang,
    *,
    now: datetime,
    live: LiveLink | None,
    chart: str,
    forms: str,
    notice: str = "",
    footnote: str = "",
) -> str:
    """The body of a ticket page: summary, evidence, chart, forms, log.

    chart, forms, notice and footnote are trusted HTML (for pages still built outside a
    template: the admin pages); templates include isp/ticket_main.html instead.
    """
    return _render(
        "ticket_main.html",
        lang,
        **ticket_context(view, lang, live),
        chart=Markup(chart),  # noqa: S704 -- trusted by contract (see the docstring)
        forms=Markup(forms),  # noqa: S704 -- idem
        notice=Markup(notice),  # noqa: S704 -- idem
        footnote=Markup(footnote),  # noqa: S704 -- idem
    )


def chart_html(runtime: Runtime, view: TicketDetail, lang: Lang, now: datetime) -> Markup:
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


def render_ticket_page(
    request: Request,
    runtime: Runtime,
    view: IspTicketView,
    exp: str,
    sig: str,
    lang: Lang,
    done: str | None,
) -> str:
    """The ISP's page: evidence, chart, the acknowledge, note and resolve forms, the log."""
    now = datetime.now(UTC)
    done_words = DONE.get(done or "")
    hidden = {"exp": exp, "sig": sig, "lang": lang}
    # The switch keeps the link (exp, sig) but not the notice of an action just done.
    switch: dict[Lang, str] = {
        code: f"{ticket_path(view.id)}?{urlencode({'exp': exp, 'sig': sig, 'lang': code})}"
        for code in LANGS
    }
    return _render(
        "ticket.html",
        lang,
        title=f"{Label.TICKET[lang]} {view.id} — NetWatch",
        switch=switch,
        robots_noindex=True,
        ticket_css=Markup(TICKET_CSS),  # noqa: S704 -- the constant above
        **ticket_context(view, lang, live_link(runtime, view)),
        chart=chart_html(runtime, view, lang, now),
        forms=forms_markup(view, lang, ticket_path(view.id), hidden, ask_name=True),
        done=done_words[lang] if done_words else "",
        footnote=f"{Label.EXPIRES[lang]} {fmt_time(view.link_expires_at, lang)}.",
    )


def error_page(
    request: Request,
    status: int,
    title: Words,
    message: str,
    message_vi: str,
    *,
    back: str | None = None,
) -> Response:
    """A clear page for a refusal: the message in the page language, the other one below."""
    lang = pick_lang(request)
    first, second, other = (
        (message_vi, message, "en") if lang == "vi" else (message, message_vi, "vi")
    )
    html = _render(
        "error.html",
        lang,
        title=f"{title[lang]} — NetWatch",
        switch=language_urls(request),
        robots_noindex=True,
        heading=title[lang],
        first=first,
        second=second,
        other=other,
        back=back,
    )
    return private_page(request, html, lang, status)
