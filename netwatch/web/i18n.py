"""Language choice (Vietnamese first, English on request) and local-time formatting for pages.

The language comes from `?lang=vi|en` when given (and is then remembered in a cookie), else from
the cookie, else Vietnamese: an official opening a link gets Vietnamese whatever their browser
says. Times are always shown in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, TypeGuard

from fastapi import Request, Response

from netwatch.inventory.models import LOCAL_TZ
from netwatch.notify.messages import format_duration_en, format_duration_vi

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")
DEFAULT_LANG: Lang = "vi"
LANG_COOKIE = "nw_lang"
LANG_PARAM = "lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def is_lang(value: object) -> TypeGuard[Lang]:
    """Whether a value names a supported language."""
    return value in LANGS


def pick_lang(request: Request) -> Lang:
    """The page language: ?lang= first, then the cookie, then Vietnamese."""
    asked = request.query_params.get(LANG_PARAM)
    if is_lang(asked):
        return asked
    remembered = request.cookies.get(LANG_COOKIE)
    if is_lang(remembered):
        return remembered
    return DEFAULT_LANG


def remember_lang(request: Request, response: Response, lang: Lang) -> None:
    """Set the language cookie when the request chose a language explicitly."""
    if request.query_params.get(LANG_PARAM) == lang and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=LANG_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            path="/",
        )


def text(words: Mapping[Lang, str], lang: Lang) -> str:
    """One entry of a {lang: text} table."""
    return words[lang]


def local(at: datetime) -> datetime:
    """The moment in Vietnam's time zone."""
    return at.astimezone(LOCAL_TZ)


def fmt_time(at: datetime | None, lang: Lang, *, with_date: bool = True) -> str:
    """'07:15 22/11/2026' in Vietnam time (the page says once that times are Vietnam time)."""
    if at is None:
        return "—"
    return f"{local(at):%H:%M %d/%m/%Y}" if with_date else f"{local(at):%H:%M}"


def fmt_duration(seconds: float, lang: Lang) -> str:
    """Plain words: '1 giờ 5 phút' / '1 hour 5 minutes'."""
    return format_duration_vi(seconds) if lang == "vi" else format_duration_en(seconds)


def fmt_number(value: float, lang: Lang, decimals: int = 1) -> str:
    """A number with the language's decimal mark (12,5 in Vietnamese, 12.5 in English)."""
    out = f"{value:.{decimals}f}"
    return out.replace(".", ",") if lang == "vi" else out


def fmt_percent(ratio: float | None, lang: Lang, decimals: int = 2) -> str:
    """A ratio as a percentage, '99,95 %' / '99.95 %'; '—' when unknown."""
    if ratio is None:
        return "—"
    return f"{fmt_number(ratio * 100, lang, decimals)} %"


TIMEZONE_NOTE: Mapping[Lang, str] = {
    "vi": "Giờ Việt Nam (UTC+7)",
    "en": "Vietnam time (UTC+7)",
}
