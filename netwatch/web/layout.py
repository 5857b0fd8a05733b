"""The page shell every NetWatch HTML page shares: one look, one stylesheet, no external requests.

The shell itself is the template ``netwatch/web/templates/base.html`` (see netwatch.web.templating):
<html lang>, a head with the inline stylesheet, a header with the site name, navigation and the
language switch, and a footer. Pages work without JavaScript; with ``refresh_s`` a small inline
script reloads the page (never while someone types). This module holds what pages pass to it
(`NavLink`, `language_urls`), the response helper, and `render_page` for HTML still built outside
a template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from netwatch.web.i18n import LANG_PARAM, LANGS, Lang, remember_lang
from netwatch.web.templating import (
    LANG_NAMES,
    LANGUAGE_LABEL,
    MENU_LABEL,
    SKIP_TO_CONTENT,
    render,
    stylesheet,
)

__all__ = [
    "LANGUAGE_LABEL",
    "LANG_NAMES",
    "MENU_LABEL",
    "SKIP_TO_CONTENT",
    "NavLink",
    "language_urls",
    "page_response",
    "render_page",
    "stylesheet",
]


@dataclass(frozen=True, slots=True)
class NavLink:
    """One entry of the header navigation."""

    href: str
    label: str
    current: bool = False


def language_urls(request: Request) -> dict[Lang, str]:
    """This page's URL in each language: same path and query, `lang` replaced."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != LANG_PARAM]
    out: dict[Lang, str] = {}
    for lang in LANGS:
        query = urlencode([*kept, (LANG_PARAM, lang)])
        out[lang] = f"{request.url.path}?{query}"
    return out


def render_page(
    *,
    lang: Lang,
    title: str,
    main: str,
    switch: Mapping[Lang, str] | None = None,
    nav: Sequence[NavLink] = (),
    refresh_s: float | None = None,
    footer: str = "",
    extra_css: str = "",
    home: str = "/status",
    robots_noindex: bool = False,
) -> str:
    """A whole HTML document around `main` (trusted HTML); `title` is plain text.

    For HTML built outside a template; templated pages extend base.html instead.
    switch: the URL of this page in each language (see `language_urls`); None hides the switch.
    nav: header links; refresh_s: reload period when JavaScript is on; footer: extra footer HTML.
    """
    return render(
        "page.html",
        {
            "lang": lang,
            "title": title,
            "main": Markup(main),  # noqa: S704 -- trusted by contract (see the docstring)
            "footer": Markup(footer),  # noqa: S704 -- idem
            "extra_css": Markup(extra_css),  # noqa: S704 -- the caller's own constant CSS
            "switch": switch,
            "nav": nav,
            "refresh_s": refresh_s,
            "home": home,
            "robots_noindex": robots_noindex,
        },
    )


def page_response(
    request: Request,
    html: str,
    lang: Lang,
    *,
    status_code: int = 200,
    cache_s: int = 0,
) -> HTMLResponse:
    """An HTMLResponse for a rendered page: language header, cookie remembered, caching."""
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Language"] = lang
    response.headers["Cache-Control"] = f"public, max-age={cache_s}" if cache_s else "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    remember_lang(request, response, lang)
    return response
