"""The one Jinja2 environment of NetWatch's pages: autoescape, shared filters, one base layout.

Templates live next to the code that fills them: ``netwatch/web/templates/`` holds ``base.html``
(the page shell every page extends), and each page package its own ``templates/`` folder, named
by the package: ``status/province.html`` is ``netwatch/web/status/templates/province.html``. They
are found through the installed packages (package-data ships ``**/*.html``), so an installed
wheel renders the same pages as a checkout.

Autoescape is on for every ``.html`` template: a value is escaped unless it is
``markupsafe.Markup`` (the inline stylesheet, server-drawn SVG charts). Line breaks and the
indentation after them are dropped when a template is compiled (see `CompactHtml`): templates
are laid out for people, while pages go out as compact as when they were built in Python (the
status pages are read by thousands, and whitespace between inline elements would change them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib.resources import files
from importlib.util import find_spec
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    PackageLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.ext import Extension
from markupsafe import Markup

from netwatch.inventory.models import LOCAL_TZ
from netwatch.web.i18n import (
    LANGS,
    Lang,
    fmt_duration,
    fmt_number,
    fmt_percent,
    fmt_time,
    local,
)

# Page packages under netwatch.web with a templates/ folder, each under its own prefix (ticket:
# the ticket body the isp and admin pages share; monthly: the report the admin page shows and
# Chromium prints).
PAGE_PACKAGES = ("status", "isp", "admin", "ticket", "monthly")

_NEWLINE_AND_INDENT = re.compile(r"\n[ \t]*")

# The words of the page shell (base.html).
LANG_NAMES: Mapping[Lang, str] = {"vi": "Tiếng Việt", "en": "English"}
SKIP_TO_CONTENT: Mapping[Lang, str] = {
    "vi": "Bỏ qua, đến nội dung chính",
    "en": "Skip to main content",
}
LANGUAGE_LABEL: Mapping[Lang, str] = {"vi": "Ngôn ngữ", "en": "Language"}
MENU_LABEL: Mapping[Lang, str] = {"vi": "Trang", "en": "Pages"}


@cache
def stylesheet() -> Markup:
    """The shared stylesheet (netwatch/web/static/base.css), read once, inlined by base.html."""
    css = files("netwatch.web").joinpath("static/base.css").read_text(encoding="utf-8")
    return Markup(css)  # noqa: S704 -- our own file, shipped with the package


# The pages' one script: reload while the page is visible and nobody is typing in a field; a
# hidden tab reloads when shown again (without JavaScript the page stays as served). Inline, so a
# page is still one request on a commune's slow line, and constant, the interval read from its
# element's data-refresh-ms: the Content-Security-Policy allows exactly this text by its hash
# (netwatch.web.edge), and no other inline script.
RELOAD_SCRIPT = Markup(
    "(function(){var ms=+document.currentScript.getAttribute('data-refresh-ms'),due=false;"
    "function go(){var a=document.activeElement;if(document.hidden||(a&&"
    "/^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)&&a.value)){due=true;return}location.reload()}"
    'setInterval(go,ms);document.addEventListener("visibilitychange",function(){'
    "if(due&&!document.hidden)go()})})()"
)


class CompactHtml(Extension):
    """Drop each line break and the indentation after it from a template's source.

    A space that matters is written on the line itself; a line break between two tags never
    reaches the page (`<li>` items laid out inline, `<span>` next to `<small>`, stay as they
    were when pages were one Python string).
    """

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        """The source with line breaks and leading indentation removed."""
        return _NEWLINE_AND_INDENT.sub("", source)


def _time(at: datetime | None, lang: Lang) -> str:
    return fmt_time(at, lang)


def _clock(at: datetime | None, lang: Lang) -> str:
    return fmt_time(at, lang, with_date=False)


def _iso_local(at: datetime) -> str:
    """The moment in Vietnam time, ISO 8601 to the second (for <time datetime>)."""
    return at.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def _month(at: datetime) -> str:
    return f"{local(at):%m/%Y}"


def _duration(seconds: float, lang: Lang) -> str:
    return fmt_duration(seconds, lang)


def _number(value: float, lang: Lang, decimals: int = 1) -> str:
    return fmt_number(value, lang, decimals)


def _percent(ratio: float | None, lang: Lang, decimals: int = 2) -> str:
    return fmt_percent(ratio, lang, decimals)


def _say(words: Mapping[str, str], lang: str, **values: object) -> str:
    """One entry of a {lang: text} table, its {placeholders} filled (escaped with the rest)."""
    text = words[lang]
    return text.format(**values) if values else text


def _loader() -> BaseLoader:
    prefixed: dict[str, BaseLoader] = {}
    for name in PAGE_PACKAGES:
        package = f"netwatch.web.{name}"
        if find_spec(package) is None:
            continue
        try:
            prefixed[name] = PackageLoader(package, "templates")
        except ValueError:  # a page package without templates (yet)
            continue
    return ChoiceLoader([PackageLoader("netwatch.web", "templates"), PrefixLoader(prefixed)])


def make_environment() -> Environment:
    """A Jinja2 environment with autoescape, the shared filters and compact output."""
    env = Environment(
        loader=_loader(),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,  # a misspelt name fails the test, not the reader
        extensions=[CompactHtml],
        auto_reload=False,
        cache_size=-1,
    )
    filters: dict[str, Any] = {
        "time": _time,
        "clock": _clock,
        "iso_local": _iso_local,
        "month": _month,
        "duration": _duration,
        "number": _number,
        "percent": _percent,
        "say": _say,
    }
    env.filters.update(filters)
    env.globals.update(
        {
            "LANGS": LANGS,
            "LANG_NAMES": LANG_NAMES,
            "SKIP_TO_CONTENT": SKIP_TO_CONTENT,
            "LANGUAGE_LABEL": LANGUAGE_LABEL,
            "MENU_LABEL": MENU_LABEL,
            "stylesheet": stylesheet,
            "RELOAD_SCRIPT": RELOAD_SCRIPT,
        }
    )
    return env


@cache
def templates() -> Jinja2Templates:
    """The pages' templates (made once, on first use, shared by every page)."""
    return Jinja2Templates(env=make_environment())


def render(name: str, context: Mapping[str, Any]) -> str:
    """A template rendered to a string (pages cached per round are rendered this way)."""
    return templates().get_template(name).render(context)
