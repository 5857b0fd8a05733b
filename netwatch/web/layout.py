"""The page shell every NetWatch HTML page shares: one look, one stylesheet, no external requests.

The shell itself is the template ``netwatch/web/templates/base.html`` (see netwatch.web.templating):
<html lang>, a head with the inline stylesheet, a header with the site name, navigation and the
language switch, and a footer. Pages work without JavaScript; with ``refresh_s`` a small inline
script reloads the page (never while someone types). This module holds what pages pass to it
(`NavLink`, `language_urls`) and the response helper.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from netwatch.web.i18n import LANG_PARAM, LANGS, Lang, remember_lang


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
