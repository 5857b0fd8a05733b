"""HTML of the status pages: pure functions of a snapshot, a commune's records and a language.

Everything shown is escaped here; nothing internal is shown (no addresses, circuits, contacts,
communities): the views carry only what the public may see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from netwatch.history import LinkSeries
from netwatch.web.charts import chart_data, latency_loss_chart
from netwatch.web.i18n import (
    DEFAULT_LANG,
    LANGS,
    Lang,
    fmt_duration,
    fmt_number,
    fmt_percent,
    fmt_time,
    local,
)
from netwatch.web.layout import NavLink, render_page
from netwatch.web.status.explain import Notice, commune_notices, province_notices
from netwatch.web.status.model import (
    CommuneRecords,
    CommuneView,
    LinkView,
    Snapshot,
    TicketInfo,
)
from netwatch.web.status.words import (
    PATH,
    PORTAL_CSS,
    PORTAL_STATE,
    PROBLEM,
    RANK,
    STATE,
    TICKET_KIND,
    TICKET_STATE,
    Shown,
    T,
)

BASE = "/status"


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


def t(key: str, lang: Lang, **values: object) -> str:
    """A phrase of words.T, formatted with escaped values."""
    text = T[key][lang]
    if not values:
        return text
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def badge(shown: Shown, lang: Lang) -> str:
    """A state as colour, symbol and words."""
    return f'<span class="st st-{shown.value}">{STATE[shown][lang]}</span>'


def portal_badge(state: str, lang: Lang) -> str:
    """A portal state as colour, symbol and words."""
    words = PORTAL_STATE.get(state, PORTAL_STATE["unknown"])[lang]
    return f'<span class="st st-{PORTAL_CSS.get(state, "unknown")}">{words}</span>'


def _notices(notices: Sequence[Notice]) -> str:
    return "".join(f'<div class="notice {n.level}"><p>{escape(n.text)}</p></div>' for n in notices)


def _updated(snapshot: Snapshot, lang: Lang) -> str:
    at = snapshot.last_round_at or snapshot.taken_at
    return (
        f'<p class="muted"><small>{t("updated", lang, time=fmt_time(at, lang))} '
        f"{t('hysteresis', lang)}</small></p>"
    )


def _footer(lang: Lang) -> str:
    return f"<p>{t('footer', lang)}</p>"


def _page(
    lang: Lang,
    title: str,
    main: str,
    switch: Mapping[Lang, str],
    nav: Sequence[NavLink] = (),
    *,
    refresh_s: float | None,
) -> str:
    return render_page(
        lang=lang,
        title=f"{title} — NetWatch",
        main=main,
        switch=switch,
        nav=nav,
        refresh_s=refresh_s,
        footer=_footer(lang),
        home=BASE,
    )


def _nav(snapshot: Snapshot, lang: Lang, current: int | None) -> list[NavLink]:
    if len(snapshot.provinces) <= 1:
        return []
    return [NavLink(with_params(BASE, lang), T["nav_all"][lang], current is None)]


# --- province ---------------------------------------------------------------------------------


def _portals(snapshot: Snapshot, lang: Lang) -> str:
    if not snapshot.portals:
        return f"<p>{t('no_portals', lang)}</p>"
    items = []
    for p in snapshot.portals:
        since = (
            f" <small>{t('since', lang, time=fmt_time(p.since, lang))}</small>"
            if p.since is not None and p.state != "ok"
            else ""
        )
        items.append(f"<li>{escape(p.name)}: {portal_badge(p.state, lang)}{since}</li>")
    return f'<ul class="plain">{"".join(items)}</ul>'


def _counts(communes: Sequence[CommuneView], path: str, lang: Lang, chosen: Shown | None) -> str:
    counts = dict.fromkeys(
        (
            Shown.OK,
            Shown.SLOW,
            Shown.LOSSY,
            Shown.CONGESTED,
            Shown.DOWN,
            Shown.MAINTENANCE,
            Shown.UNKNOWN,
        ),
        0,
    )
    for c in communes:
        counts[c.shown] += 1
    items = []
    for shown, n in counts.items():
        if shown is Shown.UNKNOWN and n == 0:
            continue
        current = ' aria-current="true"' if shown is chosen else ""
        items.append(
            f'<li><a href="{escape(with_params(path, lang, state=shown.value))}"{current}>'
            f"{badge(shown, lang)} <strong>{n}</strong></a></li>"
        )
    all_link = escape(with_params(path, lang))
    items.append(
        f'<li><a href="{all_link}">{t("all", lang)} <strong>{len(communes)}</strong></a></li>'
    )
    return f'<ul class="counts">{"".join(items)}</ul>'


def _search_form(path: str, lang: Lang, q: str) -> str:
    hidden = f'<input type="hidden" name="lang" value="{lang}">' if lang != DEFAULT_LANG else ""
    return (
        f'<form class="search" role="search" method="get" action="{escape(path)}">'
        f'<label for="q">{t("search_label", lang)}</label>'
        f'<input type="search" id="q" name="q" value="{escape(q)}" autocomplete="off" '
        f'aria-describedby="q-hint">{hidden}'
        f'<button type="submit">{t("search_button", lang)}</button>'
        f'<small id="q-hint" class="muted">{t("search_hint", lang)}</small></form>'
    )


def _commune_items(communes: Sequence[CommuneView], lang: Lang) -> str:
    items = []
    for c in communes:
        since = (
            f" <small>{t('since', lang, time=fmt_time(c.since, lang))}</small>"
            if c.since is not None and c.shown not in (Shown.OK, Shown.UNKNOWN)
            else ""
        )
        items.append(
            f'<li><a class="name" href="{escape(with_params(commune_url(c.code), lang))}">'
            f"{escape(c.name)}</a><span>{badge(c.shown, lang)}{since}</span></li>"
        )
    return f'<ul class="plain communes">{"".join(items)}</ul>'


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
    filters = ""
    if q.strip():
        listed = snapshot.search(q, province)
        found = "search_found" if listed else "search_none"
        filters = f'<p role="status">{t(found, lang, n=len(listed), q=q.strip())} '
        filters += f'<a href="{escape(with_params(path, lang))}">{t("show_all", lang)}</a></p>'
    elif state is not None:
        listed = [c for c in communes if c.shown is state]
        filters = (
            f'<p role="status">{t("filter_shown", lang, state=STATE[state][lang])} '
            f'<a href="{escape(with_params(path, lang))}">{t("show_all", lang)}</a></p>'
        )
    title = t("province_h1", lang, name=name)
    main = (
        f"<h1>{title}</h1>{_updated(snapshot, lang)}"
        f"{_notices(province_notices(snapshot, lang))}"
        f'<section aria-labelledby="portals-h"><h2 id="portals-h">{t("portals_h", lang)}</h2>'
        f"{_portals(snapshot, lang)}</section>"
        f'<section aria-labelledby="counts-h"><h2 id="counts-h">{t("counts_h", lang)}</h2>'
        f"{_counts(communes, path, lang, state)}</section>"
        f'<section aria-labelledby="communes-h"><h2 id="communes-h">{t("communes_h", lang)}</h2>'
        f"{_search_form(path, lang, q)}{filters}{_commune_items(listed, lang)}</section>"
    )
    params = {"q": q.strip(), "state": state.value if state is not None else ""}
    return _page(
        lang,
        T["province_h1"][lang].format(name=name),
        main,
        switch_urls(path, **params),
        _nav(snapshot, lang, province),
        refresh_s=snapshot.refresh_s,
    )


def provinces_page(snapshot: Snapshot, lang: Lang, *, q: str = "") -> str:
    """Several provinces: each with its count of communes in trouble, and a search over all."""
    items = []
    for code, name in sorted(snapshot.provinces.items(), key=lambda kv: kv[1]):
        communes = snapshot.in_province(code)
        bad = sum(1 for c in communes if RANK[c.shown] > RANK[Shown.UNKNOWN])
        by_state: dict[Shown, int] = {}
        for c in communes:
            by_state[c.shown] = by_state.get(c.shown, 0) + 1
        states = " ".join(
            f"{badge(shown, lang)} {by_state[shown]}"
            for shown in sorted(by_state, key=lambda s: -RANK[s])
        )
        items.append(
            f'<li><a class="name" href="{escape(with_params(province_url(code), lang))}">'
            f"{escape(name)}</a><span>{t('province_of', lang, n=len(communes))} · "
            f"{t('problems', lang, n=bad)}<br>{states}</span></li>"
        )
    found = ""
    if q.strip():
        hits = snapshot.search(q)
        key = "search_found" if hits else "search_none"
        found = f'<p role="status">{t(key, lang, n=len(hits), q=q.strip())}</p>'
        found += _commune_items(hits, lang)
    main = (
        f"<h1>{t('provinces_h1', lang)}</h1>{_updated(snapshot, lang)}"
        f"{_notices(province_notices(snapshot, lang))}"
        f'<section aria-labelledby="portals-h"><h2 id="portals-h">{t("portals_h", lang)}</h2>'
        f"{_portals(snapshot, lang)}</section>"
        f'<section aria-labelledby="communes-h"><h2 id="communes-h">{t("communes_h", lang)}</h2>'
        f"{_search_form(BASE, lang, q)}{found}</section>"
        f'<section aria-labelledby="provinces-h"><h2 id="provinces-h">{t("provinces_h", lang)}'
        f'</h2><ul class="plain communes">{"".join(items)}</ul></section>'
    )
    return _page(
        lang,
        T["provinces_h1"][lang],
        main,
        switch_urls(BASE, q=q.strip()),
        refresh_s=snapshot.refresh_s,
    )


# --- commune ----------------------------------------------------------------------------------


def _who(route: str, lang: Lang) -> str:
    key = {"isp": "who_isp", "provincial_it": "who_it"}.get(route, "who_both")
    return T[key][lang]


def _role(role: str, lang: Lang) -> str:
    return T[{"isp": "actor_isp", "provincial_it": "actor_it"}.get(role, "actor_system")][lang]


def _ticket_card(ticket: TicketInfo, now: datetime, lang: Lang) -> str:
    kind = TICKET_KIND.get(ticket.kind, {"vi": ticket.kind, "en": ticket.kind})[lang]
    if ticket.told_at is not None:
        told = fmt_time(ticket.told_at, lang)
    elif ticket.queued:
        told = T["ticket_not_told_yet"][lang]
    else:
        told = T["ticket_nobody"][lang]
    ack = (
        t("ticket_ack_yes", lang, time=fmt_time(ticket.acknowledged_at, lang))
        if ticket.acknowledged_at is not None
        else T["ticket_ack_no"][lang]
    )
    problem = PROBLEM.get(ticket.problem or "", None)
    what = f" — {problem[lang]}" if problem is not None else ""
    notes = ""
    if ticket.notes:
        items = "".join(
            f"<li><small>{fmt_time(n.at, lang)} · {_role(n.role, lang)}</small><br>"
            f"{escape(n.text)}</li>"
            for n in ticket.notes
        )
        notes = f'<h4>{t("ticket_notes", lang)}</h4><ul class="plain">{items}</ul>'
    return (
        f'<div class="card"><h3>{t("ticket_title", lang, id=ticket.id, kind=kind)}{what}</h3>'
        f'<dl class="facts">'
        f"<dt>{t('ticket_opened', lang)}</dt><dd>{fmt_time(ticket.opened_at, lang)}</dd>"
        f"<dt>{t('ticket_told', lang, who=_who(ticket.route, lang))}</dt><dd>{told}</dd>"
        f"<dt>{t('ticket_ack', lang)}</dt><dd>{ack}</dd>"
        f"<dt>{t('ticket_downtime', lang)}</dt>"
        f"<dd>{fmt_duration(ticket.downtime_s(now), lang)}</dd>"
        f"</dl>{notes}</div>"
    )


def _last_round(link: LinkView, lang: Lang) -> str:
    if link.last_at is None:
        return "—"
    loss = fmt_percent(link.last_loss_ratio, lang, 0)
    rtt = (
        f"{fmt_number(link.last_rtt_s * 1000, lang, 1)} ms" if link.last_rtt_s is not None else "—"
    )
    return t("last_round", lang, time=fmt_time(link.last_at, lang), loss=loss, rtt=rtt)


def _link_card(link: LinkView, lang: Lang) -> str:
    path = PATH[link.path][lang]
    since = fmt_time(link.since, lang) if link.since is not None else "—"
    measured = ""
    if link.shown is Shown.MAINTENANCE and link.judged is not None:
        state = STATE[Shown(link.judged.value)][lang]
        measured = f"<br><small>{t('measured_under_maintenance', lang, state=state)}</small>"
    return (
        f'<div class="card"><h3>{escape(link.isp_name)} — {path}</h3><dl class="facts">'
        f"<dt>{t('link_state', lang)}</dt><dd>{badge(link.shown, lang)}{measured}</dd>"
        f"<dt>{t('link_since', lang)}</dt><dd>{since}</dd>"
        f"<dt>{t('link_last', lang)}</dt><dd>{_last_round(link, lang)}</dd>"
        f"</dl></div>"
    )


def _history(records: CommuneRecords, now: datetime, lang: Lang) -> str:
    if not records.recent:
        return f"<p>{t('history_none', lang)}</p>"
    items = []
    for ticket in records.recent:
        kind = TICKET_KIND.get(ticket.kind, {"vi": ticket.kind, "en": ticket.kind})[lang]
        problem = PROBLEM.get(ticket.problem or "", None)
        what = f"{problem[lang]} — {kind}" if problem is not None else kind
        end = (
            fmt_time(ticket.resolved_at, lang)
            if ticket.resolved_at is not None
            else T["history_open"][lang]
        )
        state = TICKET_STATE.get(ticket.state.value, {"vi": "", "en": ""})[lang]
        duration = fmt_duration(ticket.downtime_s(ticket.resolved_at or now), lang)
        items.append(
            f"<li><strong>{escape(what)}</strong><br><small>{fmt_time(ticket.opened_at, lang)} → "
            f"{end} · {duration} · {escape(ticket.id)}: {state}</small></li>"
        )
    return f'<ul class="plain communes">{"".join(items)}</ul>'


def _availability(commune: CommuneView, records: CommuneRecords, lang: Lang) -> str:
    items = []
    for link in commune.links:
        a = records.availability.get(link.key)
        ratio = a.availability_ratio if a is not None else None
        path = PATH[link.path][lang]
        if a is None or ratio is None:
            value = T["availability_unknown"][lang]
        else:
            below = ratio < commune.availability_target
            value = f"<strong>{fmt_percent(ratio, lang, 2)}</strong>"
            if below:
                value += " ✕ " + ("dưới mức cam kết" if lang == "vi" else "below the target")
            detail = t(
                "availability_detail",
                lang,
                down=fmt_duration(a.unavailable_s, lang),
                degraded=fmt_duration(a.degraded_s, lang),
                known=fmt_duration(a.known_s, lang),
            )
            value += f" <small>({detail})</small>"
        items.append(f"<li>{escape(link.isp_name)} ({path}): {value}</li>")
    target = fmt_percent(commune.availability_target, lang, 1)
    return (
        f'<ul class="plain">{"".join(items)}</ul>'
        f'<p class="muted"><small>{t("availability_note", lang, target=target)}</small></p>'
    )


def commune_page(
    snapshot: Snapshot,
    commune: CommuneView,
    records: CommuneRecords | None,
    series: Callable[[str], LinkSeries | None],
    lang: Lang,
) -> str:
    """A commune: the answer, each link, who is on it, 24 h chart, 30 days, this month."""
    now = snapshot.taken_at
    open_by_link: dict[str, TicketInfo] = {}
    if records is not None:
        for ticket in records.open_tickets:
            own = ticket.incident_key.link_id
            covered = ticket.links or ((own,) if own is not None else ())
            for key in covered:
                open_by_link.setdefault(key, ticket)
    province = snapshot.provinces.get(commune.province_code, f"{commune.province_code:02d}")
    since = (
        f" <small>{t('since', lang, time=fmt_time(commune.since, lang))}</small>"
        if commune.since is not None and commune.shown not in (Shown.OK, Shown.UNKNOWN)
        else ""
    )
    back = with_params(
        province_url(commune.province_code) if len(snapshot.provinces) > 1 else BASE, lang
    )
    parts = [
        f'<p><a href="{escape(back)}">{t("back_province", lang, name=province)}</a></p>',
        f"<h1>{escape(commune.name)}</h1>",
        f'<p class="muted">{t("commune_sub", lang, code=commune.code, province=province)}</p>',
        _updated(snapshot, lang),
        f'<section aria-labelledby="answer-h"><h2 id="answer-h">{t("answer_h", lang)}</h2>'
        f"<p>{badge(commune.shown, lang)}{since}</p>"
        f"{_notices(commune_notices(commune, snapshot, open_by_link, lang))}</section>",
        f'<section aria-labelledby="links-h"><h2 id="links-h">{t("links_h", lang)}</h2>'
        f"{''.join(_link_card(v, lang) for v in commune.links)}</section>",
    ]
    if records is not None:
        cards = "".join(_ticket_card(tk, now, lang) for tk in records.open_tickets)
        parts.append(
            f'<section aria-labelledby="tickets-h"><h2 id="tickets-h">{t("tickets_h", lang)}</h2>'
            f"{cards or '<p>' + t('no_ticket', lang) + '</p>'}</section>"
        )
    charts = []
    for i, link in enumerate(commune.links):
        s = series(link.key)
        if s is None:
            continue
        title = T["chart_title"][lang].format(isp=link.isp_name, path=PATH[link.path][lang])
        charts.append(
            f"<h3>{escape(link.isp_name)} — {PATH[link.path][lang]}</h3>"
            + latency_loss_chart(
                chart_data(s),
                lang=lang,
                title=title,
                chart_id=f"chart{i}",
                rtt_threshold_s=link.rtt_threshold_s,
            )
        )
    if charts:
        parts.append(
            f'<section aria-labelledby="chart-h"><h2 id="chart-h">{t("chart_h", lang)}</h2>'
            f"{''.join(charts)}</section>"
        )
    if records is not None:
        month = f"{local(records.month_start):%m/%Y}"
        parts.append(
            f'<section aria-labelledby="history-h"><h2 id="history-h">{t("history_h", lang)}'
            f"</h2>{_history(records, now, lang)}</section>"
            f'<section aria-labelledby="avail-h"><h2 id="avail-h">'
            f"{t('availability_h', lang, month=month)}</h2>"
            f"{_availability(commune, records, lang)}</section>"
        )
    return _page(
        lang,
        f"{commune.name} — {T['site_title'][lang]}",
        "".join(parts),
        switch_urls(commune_url(commune.code)),
        _nav(snapshot, lang, commune.province_code),
        refresh_s=snapshot.refresh_s,
    )


def message_page(lang: Lang, title: str, text: str, path: str) -> str:
    """A short page with one message (not found, starting)."""
    main = (
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
        f'<p><a href="{escape(with_params(BASE, lang))}">NetWatch — {T["site_title"][lang]}</a></p>'
    )
    return _page(lang, title, main, switch_urls(path), refresh_s=None)
