"""What the provincial IT view shows, computed from the runtime: logins, ticket rows, maintenance
scopes and forms, NetWatch's own rounds and facts. No HTML here: the templates render it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException

from alerts.tickets import Actor
from netwatch.health import link_id
from netwatch.inventory.models import LOCAL_TZ
from netwatch.runtime import Runtime
from netwatch.store import NewMaintenance, StoredWindow
from netwatch.web.admin.words import Label, Message
from netwatch.web.auth import Caller
from netwatch.web.i18n import Lang, fmt_duration, fmt_number, fmt_time
from netwatch.web.reach import Reach, Role
from netwatch.web.session import Session
from netwatch.web.ticket.model import problem_words
from netwatch.web.ticket.pages import TICKET_STATE_CSS
from netwatch.web.views import ScopeIn, TicketView, scope_target
from netwatch.web.words import TICKET_KIND, TICKET_STATE

MAX_REASON_CHARS = 500
DEFAULT_WINDOW = timedelta(hours=2)
SCOPE_KINDS = ("province", "commune", "link", "isp", "upstream")
SORTS = ("age", "-age")
EVERYTHING = Reach()


@dataclass(frozen=True, slots=True)
class Login:
    """A caller (a write token, or a person) logged in through a verified session; the token's
    or the person's name is the actor, as the API names it."""

    caller: Caller
    session: Session

    @property
    def name(self) -> str:
        """The token's or the person's name."""
        return self.caller.name

    @property
    def reach(self) -> Reach:
        """What the caller sees."""
        return self.caller.reach

    @property
    def role(self) -> Role:
        """National, province or ISP."""
        return self.caller.role

    @property
    def actor(self) -> Actor:
        """Who the ticket's log names."""
        return self.caller.actor

    @property
    def created_by(self) -> str:
        """How the store names this caller."""
        return self.caller.created_by


# --- open tickets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketRow:
    """One row of the open tickets table, in the page language."""

    view: TicketView
    state_css: str
    state: str
    problem: str
    kind: str


def ticket_rows(views: Sequence[TicketView], lang: Lang) -> list[TicketRow]:
    """The table's rows: the ticket's state, problem and kind in words."""
    return [
        TicketRow(
            view=v,
            state_css=TICKET_STATE_CSS.get(v.state, "st-unknown"),
            state=TICKET_STATE[v.state][lang] if v.state in TICKET_STATE else v.state,
            problem=problem_words(v, lang),
            kind=TICKET_KIND[v.kind][lang] if v.kind in TICKET_KIND else v.kind,
        )
        for v in views
    ]


# --- maintenance windows -----------------------------------------------------------------------


def _isp_name(runtime: Runtime, isp: str) -> str:
    found = runtime.inventory.isps.get(isp)
    return found.name if found is not None else isp


def scope_options(
    runtime: Runtime, lang: Lang, reach: Reach = EVERYTHING
) -> list[tuple[str, list[tuple[str, str]]]]:
    """What a window may cover, grouped: (group label, [(value "kind:target", label)]); only
    what lies wholly in the caller's reach."""
    groups = _scope_groups(runtime, lang)
    inv, topology = runtime.inventory, runtime.health.topology
    return [
        (label, kept)
        for label, options in groups
        if (
            kept := [
                (value, text)
                for value, text in options
                if reach.covers(inv, topology, *value.split(":", 1))
            ]
        )
    ]


def _scope_groups(runtime: Runtime, lang: Lang) -> list[tuple[str, list[tuple[str, str]]]]:
    inv = runtime.inventory
    provinces = sorted({c.province_code for c in inv.communes})
    groups: list[tuple[str, list[tuple[str, str]]]] = [
        (
            Label.G_PROVINCE[lang],
            [(f"province:{p}", f"{Label.WHOLE_PROVINCE[lang]} ({p:02d})") for p in provinces],
        ),
        (
            Label.G_COMMUNE[lang],
            [(f"commune:{c.code}", f"{c.name} ({c.code})") for c in inv.communes],
        ),
        (
            Label.G_LINK[lang],
            [
                (
                    f"link:{link_id(c.code, link.id)}",
                    f"{c.name} — {link.id} ({_isp_name(runtime, link.isp)})",
                )
                for c in inv.communes
                for link in c.links
            ],
        ),
        (Label.G_ISP[lang], [(f"isp:{k}", isp.name) for k, isp in inv.isps.items()]),
        (
            Label.G_UPSTREAM[lang],
            [(f"upstream:{k}", up.name) for k, up in inv.upstreams.items()],
        ),
    ]
    return [(label, options) for label, options in groups if options]


def scope_words(runtime: Runtime, scope: str, target: str, lang: Lang) -> str:
    """A stored window's scope in words."""
    for _, options in _scope_groups(runtime, lang):
        for value, label in options:
            if value == f"{scope}:{target}":
                return label
    return f"{scope}: {target}"


def local_input(at: datetime) -> str:
    """A moment as a datetime-local field's value, in Vietnam time."""
    return f"{at.astimezone(LOCAL_TZ):%Y-%m-%dT%H:%M}"


@dataclass(frozen=True, slots=True)
class WindowRow:
    """A stored window as its table row shows it."""

    window: StoredWindow
    scope: str
    active: bool  # started: ending it ends it now; otherwise it is cancelled


def window_rows(
    runtime: Runtime, windows: Sequence[StoredWindow], lang: Lang, now: datetime
) -> list[WindowRow]:
    """The table's rows: each window's scope in words, and whether it is in progress."""
    return [
        WindowRow(w, scope_words(runtime, w.scope, w.target, lang), w.starts_at <= now)
        for w in windows
    ]


def config_windows(runtime: Runtime, lang: Lang) -> list[tuple[str, str, str]]:
    """The configuration file's windows (read-only): (scope in words, when, reason)."""
    items = []
    for m in runtime.inventory.maintenance:
        given = {k: v for k, v in m.scope.model_dump().items() if v is not None}
        kind, target = next(iter(given.items())) if given else ("", "")
        when = (
            f"{m.start:%H:%M %d/%m/%Y} – {m.end:%H:%M %d/%m/%Y}"
            if m.start is not None and m.end is not None
            else f"{m.every} {' '.join(m.days)} {m.at or ''} "
            f"({fmt_number(m.duration_min or 0, lang, 0)} min)"
        )
        items.append((scope_words(runtime, kind, str(target), lang), when, m.reason))
    return items


def _parse_local(text: str, field: str, lang: Lang) -> datetime | str:
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return Message.NOT_A_TIME[lang].format(field=field, value=value)
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def window_from_form(
    runtime: Runtime, values: Mapping[str, str], lang: Lang, now: datetime, created_by: str
) -> NewMaintenance | str:
    """The window the form describes, checked like the API's, or what is wrong with it."""
    kind, _, target = values["target"].partition(":")
    if kind not in SCOPE_KINDS or not target:
        return Message.CHOOSE_SCOPE[lang]
    start = _parse_local(values["start"], Label.START[lang], lang)
    if isinstance(start, str):
        return start
    end = _parse_local(values["end"], Label.END[lang], lang)
    if isinstance(end, str):
        return end
    if end <= start:
        return Message.END_BEFORE_START[lang]
    if end <= now:
        return Message.ENDS_IN_PAST[lang]
    reason = values["reason"].strip()
    if not reason:
        return Message.NO_REASON[lang]
    if len(reason) > MAX_REASON_CHARS:
        return Message.REASON_TOO_LONG[lang].format(max_chars=MAX_REASON_CHARS)
    try:
        value: int | str = int(target) if kind == "province" else target
        scope = ScopeIn.model_validate({kind: value})
        scope_kind, scope_value = scope_target(runtime, scope)
    except (HTTPException, ValueError) as exc:
        detail = str(exc.detail) if isinstance(exc, HTTPException) else str(exc)
        return Message.BAD_SCOPE[lang].format(detail=detail)
    return NewMaintenance(scope_kind, scope_value, start, end, reason, created_by)


# --- NetWatch's own health ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundHealth:
    """One probe kind's schedule and its last round."""

    kind: str
    interval_s: float
    targets: int
    started_at: datetime | None
    lag_s: float | None
    duration_s: float | None
    skipped_rounds: int | None
    failures: int | None
    on_time: bool | None  # None: not run yet (or the kind is off)


def round_health(runtime: Runtime, now: datetime) -> list[RoundHealth]:
    """The last round of each probe kind, and whether the schedule holds."""
    plan, state = runtime.plan, runtime.state
    failures = {
        "icmp": sum(1 for o in state.icmp.values() if o.result.received == 0),
        "snmp": sum(1 for o in state.snmp.values() if o.sample.failure is not None),
        "http": sum(1 for o in state.portals.values() if o.http.failure is not None),
    }
    out = []
    for kind, interval, targets in (
        ("icmp", plan.icmp_interval_s, len(plan.icmp)),
        ("snmp", plan.snmp_interval_s, len(plan.snmp)),
        ("http", plan.http_interval_s, len(plan.portals)),
    ):
        report = state.rounds.get(kind)
        on_time = None
        if report is not None:
            # Late: no round has started for two intervals (plus the last one's length).
            on_time = now - report.started_at <= timedelta(seconds=2 * interval + report.duration_s)
        out.append(
            RoundHealth(
                kind=kind,
                interval_s=interval,
                targets=targets,
                started_at=report.started_at if report else None,
                lag_s=report.lag_s if report else None,
                duration_s=report.duration_s if report else None,
                skipped_rounds=report.skipped_rounds if report else None,
                failures=failures[kind] if report else None,
                on_time=on_time,
            )
        )
    return out


def seconds_words(value: float | None, lang: Lang) -> str:
    """A short duration: "0,25 s" under ten seconds, "3 phút" above, "—" for none."""
    if value is None:
        return "—"
    if value < 10:
        return f"{fmt_number(value, lang, 2)} s"
    return fmt_duration(value, lang)


def last_tick_words(last_tick: datetime | None, now: datetime, lang: Lang) -> str:
    """When the alerting loop last evaluated, and how long ago."""
    if not isinstance(last_tick, datetime):
        return Label.UNKNOWN[lang]
    ago = fmt_duration((now - last_tick).total_seconds(), lang)
    return f"{fmt_time(last_tick, lang)} ({ago} {Label.AGO[lang]})"
