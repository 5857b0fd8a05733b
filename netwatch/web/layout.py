"""The page shell every NetWatch HTML page shares: one look, one stylesheet, no external requests.

`render_page` wraps a page's main content in <html lang>, a head with the inline stylesheet, a
header with the site name, navigation and the language switch, and a footer. Pages work without
JavaScript; with `refresh_s` a small inline script reloads the page (never while someone types).
Everything passed in as HTML must already be escaped; plain strings are escaped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib.resources import files
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from netwatch.web.i18n import LANG_PARAM, LANGS, Lang, remember_lang

LANG_NAMES: Mapping[Lang, str] = {"vi": "Tiếng Việt", "en": "English"}
SKIP_TO_CONTENT: Mapping[Lang, str] = {
    "vi": "Bỏ qua, đến nội dung chính",
    "en": "Skip to main content",
}
LANGUAGE_LABEL: Mapping[Lang, str] = {"vi": "Ngôn ngữ", "en": "Language"}
MENU_LABEL: Mapping[Lang, str] = {"vi": "Trang", "en": "Pages"}


@dataclass(frozen=True, slots=True)
class NavLink:
    """One entry of the header navigation."""

    href: str
    label: str
    current: bool = False


@cache
def stylesheet() -> str:
    """The shared stylesheet (netwatch/web/static/base.css), read once."""
    return files("netwatch.web").joinpath("static/base.css").read_text(encoding="utf-8")


def language_urls(request: Request) -> dict[Lang, str]:
    """This page's URL in each language: same path and query, `lang` replaced."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != LANG_PARAM]
    out: dict[Lang, str] = {}
    for lang in LANGS:
        query = urlencode([*kept, (LANG_PARAM, lang)])
        out[lang] = f"{request.url.path}?{query}"
    return out


def _refresh_script(refresh_s: float) -> str:
    # Reload while the page is visible and nobody is typing in a field; a hidden tab reloads
    # when shown again. Without JavaScript the page simply stays as served.
    ms = int(refresh_s * 1000)
    return (
        "<script>(function(){var due=false;function go(){var a=document.activeElement;"
        "if(document.hidden||(a&&/^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)&&a.value)){"
        "due=true;return}location.reload()}"
        f"setInterval(go,{ms});"
        'document.addEventListener("visibilitychange",function(){if(due&&!document.hidden)go()})'
        "})()</script>"
    )


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

    switch: the URL of this page in each language (see `language_urls`); None hides the switch.
    nav: header links; refresh_s: reload period when JavaScript is on; footer: extra footer HTML.
    """
    langs = ""
    if switch:
        items = []
        for code in LANGS:
            url = switch.get(code)
            if url is None:
                continue
            current = ' aria-current="true"' if code == lang else ""
            items.append(
                f'<li><a href="{escape(url)}" hreflang="{code}" lang="{code}"{current}>'
                f"{LANG_NAMES[code]}</a></li>"
            )
        langs = (
            f'<nav aria-label="{LANGUAGE_LABEL[lang]}"><ul class="langs">{"".join(items)}'
            "</ul></nav>"
        )
    menu = ""
    if nav:
        current_page = ' aria-current="page"'
        links = "".join(
            f'<li><a href="{escape(n.href)}"{current_page if n.current else ""}>'
            f"{escape(n.label)}</a></li>"
            for n in nav
        )
        menu = f'<nav class="site" aria-label="{MENU_LABEL[lang]}"><ul>{links}</ul></nav>'
    robots = '<meta name="robots" content="noindex">' if robots_noindex else ""
    script = _refresh_script(refresh_s) if refresh_s else ""
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{robots}<title>{escape(title)}</title>"
        f"<style>{stylesheet()}{extra_css}</style></head><body>"
        f'<a class="skip" href="#main">{SKIP_TO_CONTENT[lang]}</a>'
        f'<header class="site"><div class="bar"><a class="brand" href="{escape(home)}">NetWatch</a>'
        f"{menu}{langs}</div></header>"
        f'<main id="main">{main}</main>'
        f'<footer class="site">{footer}</footer>'
        f"{script}</body></html>"
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
