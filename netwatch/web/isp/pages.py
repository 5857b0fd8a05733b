"""HTML of the ISP's pages: its ticket page through the signed link, and its refusals. The
ticket's body (shared with the provincial IT's view) is netwatch.web.ticket's; templates in
netwatch/web/isp/templates/ render everything, with autoescape; this module gathers what they show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request, Response

from netwatch.signing import ticket_path
from netwatch.store import InternalNote
from netwatch.web.common import private_page
from netwatch.web.i18n import LANGS, Lang, fmt_time, pick_lang
from netwatch.web.isp.model import IspTicketView
from netwatch.web.isp.words import Label
from netwatch.web.layout import language_urls
from netwatch.web.templating import render
from netwatch.web.ticket.pages import CONTEXT as TICKET_CONTEXT
from netwatch.web.ticket.pages import TicketForms, ticket_body
from netwatch.web.ticket.words import Label as TicketLabel
from netwatch.web.words import Words

if TYPE_CHECKING:
    from netwatch.runtime import Runtime

# What every ISP template may use besides its own context: the ticket body's words and helpers.
_SHARED: Mapping[str, object] = {**TICKET_CONTEXT, "Label": Label}


def _render(template: str, lang: Lang, **context: Any) -> str:
    return render(f"isp/{template}", {**_SHARED, "lang": lang, **context})


def render_ticket_page(
    request: Request,
    runtime: Runtime,
    view: IspTicketView,
    exp: str,
    sig: str,
    lang: Lang,
    done: str | None,
    internal_notes: Sequence[InternalNote] = (),
) -> str:
    """The ISP's page: evidence, chart, the acknowledge, note and resolve forms, the log."""
    # The switch keeps the link (exp, sig) but not the notice of an action just done.
    switch: dict[Lang, str] = {
        code: f"{ticket_path(view.id)}?{urlencode({'exp': exp, 'sig': sig, 'lang': code})}"
        for code in LANGS
    }
    return _render(
        "ticket.html",
        lang,
        title=f"{TicketLabel.TICKET[lang]} {view.id} — NetWatch",
        switch=switch,
        robots_noindex=True,
        t=ticket_body(
            runtime,
            view,
            lang,
            datetime.now(UTC),
            TicketForms(
                ticket_path(view.id),
                {"exp": exp, "sig": sig, "lang": lang},
                ask_name=True,
                view_only=_view_only(view, lang),
            ),
            done=done,
            footnote=_footnote(view, lang),
            internal_notes=internal_notes,
        ),
    )


def _view_only(view: IspTicketView, lang: Lang) -> str:
    """What the page says instead of the forms when the link may no longer act ("": it may)."""
    if view.link_may_act or view.link_acts_until is None:
        return ""
    return Label.VIEW_ONLY[lang].format(at=fmt_time(view.link_acts_until, lang))


def _footnote(view: IspTicketView, lang: Lang) -> str:
    """The link's expiry, and until when it acts while it may."""
    said = f"{Label.EXPIRES[lang]} {fmt_time(view.link_expires_at, lang)}."
    if view.link_may_act and view.link_acts_until is not None:
        said += f" {Label.ACTS_UNTIL[lang]} {fmt_time(view.link_acts_until, lang)}."
    return said


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
