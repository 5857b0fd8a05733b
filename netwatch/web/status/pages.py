"""HTML of the status pages: pure functions of a snapshot, a commune's records and a language.

Each page is a template in netwatch/web/status/templates/ (extending the shared base.html),
rendered with autoescape: everything shown is escaped there. This module picks what a page shows
(counts, filters, charts) and hands it over. Nothing internal is shown (no addresses, circuits,
contacts, communities): the views carry only what the public may see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlencode

from markupsafe import Markup

from netwatch.history import LinkSeries
from netwatch.web.charts import chart_data, latency_loss_chart
from netwatch.web.i18n import DEFAULT_LANG, LANGS, Lang, fmt_time
from netwatch.web.layout import NavLink
from netwatch.web.status.explain import commune_notices, province_notices
from netwatch.web.status.inside import CommuneInside
from netwatch.web.status.model import (
    CommuneRecords,
    CommuneView,
    LinkView,
    Snapshot,
    TicketInfo,
)
from netwatch.web.status.words import (
    DEVICE_KIND,
    INSIDE,
    PATH,
    PHASE,
    PORTAL_CSS,
    PORTAL_STATE,
    PROBLEM,
    RANK,
    STATE,
    TICKET_KIND,
    TICKET_STATE,
    Shown,
    T,
    Words,
)
from netwatch.web.templating import render

BASE = "/status"

# Said after an availability figure under the contract's target.
BELOW_TARGET: Words = {"vi": "dưới mức cam kết", "en": "below the target"}
# Who is told of a ticket (by its route) and who wrote a note (by role): keys of words.T.
WHO: Mapping[str, str] = {
    "isp": "who_isp",
    "provincial_it": "who_it",
    "provincial_it_and_commune": "who_it_commune",  # a site unreachable (issue 11)
}
ROLE: Mapping[str, str] = {"isp": "actor_isp", "provincial_it": "actor_it"}
# States shown without "since when" (nothing to report).
QUIET = (Shown.OK, Shown.UNKNOWN)
# The order of the counts per state on a province page.
COUNTED = (
    Shown.OK,
    Shown.SLOW,
    Shown.LOSSY,
    Shown.CONGESTED,
    Shown.DOWN,
    Shown.MAINTENANCE,
    Shown.UNKNOWN,
)


def commune_url(code: str) -> str:
    """The stable URL of a commune's page."""
    return f"{BASE}/xa/{code}"


def province_url(code: int) -> str:
    """The URL of a province's page."""
    return f"{BASE}/{code:02d}"


def with_params(path: str, lang: Lang, **params: str) -> str:
    """path?params, with lang added when it is not the default (works without cookies too)."""
    items = [(k, v) for k, v in params.items() if v]
    if lang != DEFAULT_LANG:
        items.append(("lang", lang))
    return f"{path}?{urlencode(items)}" if items else path


def switch_urls(path: str, **params: str) -> dict[Lang, str]:
    """This page in each language (the switch sets lang explicitly, so the cookie follows)."""
    kept = [(k, v) for k, v in params.items() if v]
    return {lang: f"{path}?{urlencode([*kept, ('lang', lang)])}" for lang in LANGS}


# What every status template may use besides its own context.
_SHARED: Mapping[str, object] = {
    "T": T,
    "STATE": STATE,
    "PORTAL_STATE": PORTAL_STATE,
    "PORTAL_CSS": PORTAL_CSS,
    "PATH": PATH,
    "PROBLEM": PROBLEM,
    "TICKET_KIND": TICKET_KIND,
    "TICKET_STATE": TICKET_STATE,
    "WHO": WHO,
    "ROLE": ROLE,
    "QUIET": QUIET,
    "MAINTENANCE": Shown.MAINTENANCE,
    "Shown": Shown,
    "DEFAULT_LANG": DEFAULT_LANG,
    "base": BASE,
    "home": BASE,
    "with_params": with_params,
    "commune_url": commune_url,
    "province_url": province_url,
}


def _page(
    template: str,
    lang: Lang,
    title: str,
    switch: Mapping[Lang, str],
    nav: Sequence[NavLink] = (),
    *,
    refresh_s: float | None,
    **context: Any,
) -> str:
    return render(
        f"status/{template}",
        {
            **_SHARED,
            "lang": lang,
            "title": f"{title} — NetWatch",
            "switch": switch,
            "nav": nav,
            "refresh_s": refresh_s,
            **context,
        },
    )


def _nav(snapshot: Snapshot, lang: Lang, current: int | None) -> list[NavLink]:
    if len(snapshot.provinces) <= 1:
        return []
    return [NavLink(with_params(BASE, lang), T["nav_all"][lang], current is None)]


# --- province ---------------------------------------------------------------------------------


class CommuneRow(NamedTuple):
    """One commune in a list, its words ready (the list is the pages' longest loop)."""

    href: str
    name: str
    css: str  # the state's CSS suffix
    state: str
    since: str  # "từ 07:15 22/11/2026", "" when not worth saying


def commune_rows(communes: Sequence[CommuneView], lang: Lang) -> list[CommuneRow]:
    """The rows of a list of communes: link, name, state, since when (not for ok/unknown)."""
    since = T["since"][lang]
    return [
        CommuneRow(
            with_params(commune_url(c.code), lang),
            c.name,
            c.shown.value,
            STATE[c.shown][lang],
            since.format(time=fmt_time(c.since, lang))
            if c.since is not None and c.shown not in QUIET
            else "",
        )
        for c in communes
    ]


def _counts(communes: Sequence[CommuneView]) -> list[tuple[Shown, int]]:
    counts = dict.fromkeys(COUNTED, 0)
    for c in communes:
        counts[c.shown] += 1
    return [(s, n) for s, n in counts.items() if not (s is Shown.UNKNOWN and n == 0)]


def province_page(
    snapshot: Snapshot,
    province: int,
    lang: Lang,
    *,
    q: str = "",
    state: Shown | None = None,
    path: str | None = None,
) -> str:
    """A province: notices, portals, counts per state, search, every commune with its state."""
    name = snapshot.provinces.get(province, f"{province:02d}")
    path = path or province_url(province)
    communes = snapshot.in_province(province)
    listed = communes
    search: list[CommuneView] | None = None
    if q.strip():
        listed = search = snapshot.search(q, province)
    elif state is not None:
        listed = [c for c in communes if c.shown is state]
    params = {"q": q.strip(), "state": state.value if state is not None else ""}
    return _page(
        "province.html",
        lang,
        T["province_h1"][lang].format(name=name),
        switch_urls(path, **params),
        _nav(snapshot, lang, province),
        refresh_s=snapshot.refresh_s,
        snapshot=snapshot,
        name=name,
        path=path,
        notices=province_notices(snapshot, lang),
        counts=_counts(communes),
        total=len(communes),
        chosen=state,
        q=q,
        search=search,
        listed=commune_rows(listed, lang),
    )


@dataclass(frozen=True, slots=True)
class ProvinceRow:
    """One province in the list: its communes, how many in trouble, counts by state."""

    code: int
    name: str
    communes: int
    problems: int
    states: tuple[tuple[str, str, int], ...]  # (state css, state words, communes), worst first


def _province_row(snapshot: Snapshot, code: int, name: str, lang: Lang) -> ProvinceRow:
    communes = snapshot.in_province(code)
    bad = sum(1 for c in communes if RANK[c.shown] > RANK[Shown.UNKNOWN])
    by_state: dict[Shown, int] = {}
    for c in communes:
        by_state[c.shown] = by_state.get(c.shown, 0) + 1
    states = tuple(
        (s.value, STATE[s][lang], by_state[s]) for s in sorted(by_state, key=lambda s: -RANK[s])
    )
    return ProvinceRow(code, name, len(communes), bad, states)


def provinces_page(snapshot: Snapshot, lang: Lang, *, q: str = "") -> str:
    """Several provinces: each with its count of communes in trouble, and a search over all."""
    rows = [
        _province_row(snapshot, code, name, lang)
        for code, name in sorted(snapshot.provinces.items(), key=lambda kv: kv[1])
    ]
    return _page(
        "provinces.html",
        lang,
        T["provinces_h1"][lang],
        switch_urls(BASE, q=q.strip()),
        refresh_s=snapshot.refresh_s,
        snapshot=snapshot,
        notices=province_notices(snapshot, lang),
        rows=rows,
        q=q,
        search=commune_rows(snapshot.search(q), lang) if q.strip() else None,
    )


# --- commune ----------------------------------------------------------------------------------


def _open_by_link(records: CommuneRecords | None) -> dict[str, TicketInfo]:
    open_by_link: dict[str, TicketInfo] = {}
    if records is not None:
        for ticket in records.open_tickets:
            own = ticket.incident_key.link_id
            covered = ticket.links or ((own,) if own is not None else ())
            for key in covered:
                open_by_link.setdefault(key, ticket)
    return open_by_link


def _charts(
    commune: CommuneView, series: Callable[[str], LinkSeries | None], lang: Lang
) -> list[tuple[LinkView, Markup]]:
    charts = []
    for i, link in enumerate(commune.links):
        s = series(link.key)
        if s is None:
            continue
        title = T["chart_title"][lang].format(isp=link.isp_name, path=PATH[link.path][lang])
        svg = latency_loss_chart(
            chart_data(s),
            lang=lang,
            title=title,
            chart_id=f"chart{i}",
            rtt_threshold_s=link.rtt_threshold_s,
        )
        charts.append((link, svg))
    return charts


def commune_page(
    snapshot: Snapshot,
    commune: CommuneView,
    records: CommuneRecords | None,
    series: Callable[[str], LinkSeries | None],
    lang: Lang,
    inside: CommuneInside | None = None,
) -> str:
    """A commune: the answer, each link, who is on it, seen from the commune (its agent),
    24 h chart, 30 days, this month."""
    province = snapshot.provinces.get(commune.province_code, f"{commune.province_code:02d}")
    back = with_params(
        province_url(commune.province_code) if len(snapshot.provinces) > 1 else BASE, lang
    )
    return _page(
        "commune.html",
        lang,
        f"{commune.name} — {T['site_title'][lang]}",
        switch_urls(commune_url(commune.code)),
        _nav(snapshot, lang, commune.province_code),
        refresh_s=snapshot.refresh_s,
        snapshot=snapshot,
        commune=commune,
        province=province,
        back=back,
        records=records,
        now=snapshot.taken_at,
        notices=commune_notices(commune, snapshot, _open_by_link(records), lang),
        charts=_charts(commune, series, lang),
        below_target=BELOW_TARGET,
        inside=inside,
        age=lambda at: max((snapshot.taken_at - at).total_seconds(), 0.0),
        INSIDE=INSIDE,
        DEVICE_KIND=DEVICE_KIND,
        PHASE=PHASE,
    )


def message_page(lang: Lang, title: str, text: str, path: str) -> str:
    """A short page with one message (not found, starting)."""
    return _page(
        "message.html", lang, title, switch_urls(path), refresh_s=None, heading=title, text=text
    )


def redirect_page(target: str) -> str:
    """A tiny page that sends the browser on (works without JavaScript)."""
    return render("status/redirect.html", {"target": target})
