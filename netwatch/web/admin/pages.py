"""Rendering of the provincial IT view: each page is a template in admin/templates/ (autoescape,
extending the shared base.html through admin/_layout.html); this module gives it the shell's
context (navigation, language switch, session footer, stylesheet rules) and answers privately.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response
from markupsafe import Markup

from netwatch.web.admin.model import Login
from netwatch.web.admin.words import REFUSAL_TITLE, ROUND_KIND, Label, Refusal, Words
from netwatch.web.common import private_page
from netwatch.web.deps import runtime_or_none
from netwatch.web.i18n import TIMEZONE_NOTE, Lang, fmt_time, pick_lang
from netwatch.web.layout import NavLink, language_urls
from netwatch.web.monthly.page import W as REPORT_WORDS
from netwatch.web.status.words import Explain
from netwatch.web.templating import render

# Rules of the admin pages on top of the shared stylesheet. Table cells wrap between words
# only: the shared `overflow-wrap:anywhere` (for long names on narrow phones) also lets a table
# shrink a column below its longest word, and Chromium then broke Vietnamese syllables apart at
# 1280 px ("Tiế p nhậ n"); `break-word` breaks a word only when it cannot fit a line at all and,
# unlike `anywhere`, does not count as a place to shrink the column (CSS Text 3, overflow-wrap).
ADMIN_CSS = Markup(
    "form.inline{display:inline;margin:0}"
    "form.inline button{padding:.2rem .6rem}"
    "form.stack label{display:block;font-weight:600;margin:.5rem 0 .15rem}"
    "form.stack input,form.stack select,form.stack textarea{width:100%}"
    "form.stack button{margin-top:.75rem}"
    ".hint{font-size:.875rem;color:#4a4a4a;margin:.1rem 0}"
    "table.tickets td,table.tickets th{font-size:.95rem}"
    "table td,table th{overflow-wrap:break-word}"
    "th a{color:inherit}"
    ".nowrap{white-space:nowrap}"
    ".ok-text{color:#0a5a26;font-weight:600}.bad-text{color:#9c0019;font-weight:600}"
)

# What every admin template may use besides its own context.
_SHARED: Mapping[str, object] = {
    "Label": Label,
    "ROUND_KIND": ROUND_KIND,
    "TIMEZONE_NOTE": TIMEZONE_NOTE,
    "admin_css": ADMIN_CSS,
}


def _nav(lang: Lang, current: str) -> list[NavLink]:
    return [
        NavLink("/admin", Label.TICKETS[lang], current == "tickets"),
        NavLink("/admin/maintenance", Label.MAINTENANCE[lang], current == "maintenance"),
        NavLink("/admin/reports/monthly", REPORT_WORDS.NAV[lang], current == "reports"),
        NavLink("/admin/health", Label.HEALTH[lang], current == "health"),
    ]


def page(
    request: Request,
    template: str,
    lang: Lang,
    title: str,
    *,
    login: Login | None,
    current: str = "",
    status_code: int = 200,
    **context: Any,
) -> Response:
    """An admin page from its template, private (no-store, no referrer)."""
    runtime = runtime_or_none(request)
    paused = runtime.alerting_paused_since() if runtime is not None else None
    html = render(
        f"admin/{template}",
        {
            **_SHARED,
            "lang": lang,
            "title": f"{title} — NetWatch",
            "switch": language_urls(request),
            "nav": _nav(lang, current) if login is not None else (),
            "home": "/admin",
            "robots_noindex": True,
            "login": login,
            # No alerting core leads (a web worker sees the lease empty): said on every page.
            "alerting_paused": (
                Explain.ALERTING_PAUSED[lang].format(time=fmt_time(paused, lang)) if paused else ""
            ),
            **context,
        },
    )
    return private_page(request, html, lang, status_code)


def refused(
    request: Request,
    status: int,
    refusal: Refusal,
    message: Words,
    *,
    login: Login | None = None,
    back: str | None = None,
) -> Response:
    """A refusal page: what is wrong, with a way on; `status` is the HTTP status."""
    lang = pick_lang(request)
    title = REFUSAL_TITLE[refusal][lang]
    return page(
        request,
        "message.html",
        lang,
        title,
        login=login,
        status_code=status,
        heading=title,
        message=message[lang],
        login_link=refusal is Refusal.SESSION,
        back=back,
    )
