"""One vocabulary (issue 14): every state, kind and event has exactly one Vietnamese and one
English wording, in netwatch/vocab.py, and mail, chat, the pages and the dashboards say it."""

from __future__ import annotations

import enum
import importlib
import json
import pkgutil
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import netwatch.web
from alerts.model import DownCause, IncidentKind, LinkState, NodeState, PortalState
from alerts.tickets import EventKind, TicketStatus
from netwatch import vocab
from netwatch.notify.messages import (
    NoticeEvent,
    ProblemState,
    notice_event_words,
    problem_words,
    render_chat,
    render_email,
    render_webhook,
)
from netwatch.vocab import CATALOGUE, LANGS, TABLES, Term, Wording
from netwatch.web.status import words as status_words
from netwatch.web.status.words import Shown

from .conftest import make_notice

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"

# Every enum whose members people are told about: a new enum here, or a new member in one, must
# get its words in the catalogue.
NAMED = (
    IncidentKind,
    LinkState,
    PortalState,
    NodeState,
    DownCause,
    TicketStatus,
    EventKind,
    Term,
)

# Wordings retired when the three vocabularies became one: none may come back anywhere.
RETIRED = (
    "Sự cố nút mạng cấp trên",
    "Upstream outage",
    "Outage at the ISP's node",
    "Sự cố cổng dịch vụ công",
    "Portal outage",
    "Mất kết nối của hệ thống giám sát",
    "Monitor connectivity",
    "Monitor lost its connectivity",
    "Bandwidth overload",
    "nghẽn do đầy băng thông",
    "Overloaded",
    "không truy cập được",
    "router báo cổng WAN ngừng hoạt động",
    "the router reports its WAN port down",
    "the router has just restarted",
    "the router does not answer SNMP either",
    "báo mất tín hiệu",
    "reports no signal",
    "Auto-resolved",
    "Reminder sent",
    "Chưa rõ / unknown",
    "Bảo trì / maintenance",
    "Chậm / slow",
    "Quá tải / congested",
    "Mất gói / lossy",
    "Bình thường / ok",
    "Mở / opened",
    "Đã xác nhận / acknowledged",
    "Đã xử lý / resolved",
)

# The kind of problem behind each incident kind, as the alerting loop reports it.
STATE_OF_KIND = {
    IncidentKind.LINK_FAULT: ProblemState.DOWN,
    IncidentKind.CAPACITY: ProblemState.CONGESTED,
    IncidentKind.UPSTREAM_OUTAGE: ProblemState.DOWN,
    IncidentKind.PORTAL_OUTAGE: ProblemState.FAILING,
    IncidentKind.MONITOR_CONNECTIVITY: ProblemState.DOWN,
    IncidentKind.SITE_UNREACHABLE: ProblemState.DOWN,
    IncidentKind.AGENT_HEALTH: ProblemState.DOWN,
}


def _no_retired_wording(text: str) -> None:
    for old in RETIRED:
        assert old not in text, f"retired wording {old!r} in: {text}"


# --- the catalogue ---------------------------------------------------------------------------


def test_the_catalogue_has_a_table_for_every_named_enum() -> None:
    assert set(TABLES) == set(NAMED)


@pytest.mark.parametrize("named", NAMED, ids=lambda e: e.__name__)
def test_every_member_has_exactly_one_vietnamese_and_one_english_wording(
    named: type[enum.Enum],
) -> None:
    table = TABLES[named]
    assert set(table) == set(named), f"{named.__name__}: members without words, or strays"
    for member in named:
        words = table[member]
        assert isinstance(words, Wording)
        assert CATALOGUE[member] is words  # one wording, wherever it is looked up
        assert vocab.wording(member) is words
        assert dict(words) == {"vi": words.vi, "en": words.en}
        assert len(words) == len(LANGS) == 2
        for lang in LANGS:
            text = words[lang]
            assert vocab.say(member, lang) == text
            assert text, member
            assert text.strip() == text, member
            assert unicodedata.is_normalized("NFC", text), member  # diacritics composed
            assert text[0].isupper(), f"{member}: a label starts with a capital"
            assert not text.endswith("."), member
            assert words.inline(lang) == text[0].lower() + text[1:]
    # Two members of one enum never share a wording: a reader could not tell them apart.
    for lang in LANGS:
        said = [table[m][lang] for m in named]
        assert len(set(said)) == len(said), f"{named.__name__} ({lang}): {said}"


def test_a_wording_is_a_closed_two_language_mapping() -> None:
    words = CATALOGUE[LinkState.DOWN]
    assert words["vi"] == "Mất kết nối"
    assert words.inline("en") == "down"
    assert words.pair() == "Mất kết nối / down"
    with pytest.raises(KeyError):
        words["fr"]  # type: ignore[index]


# --- mail and chat ---------------------------------------------------------------------------


def test_every_notice_event_and_problem_state_is_said_with_catalogue_words() -> None:
    said = [*CATALOGUE.values()]
    for event in NoticeEvent:
        assert any(notice_event_words(event) is w for w in said), event
    for state in ProblemState:
        assert any(problem_words(state) is w for w in said), state


@pytest.mark.parametrize("event", list(NoticeEvent))
@pytest.mark.parametrize("kind", list(IncidentKind))
def test_mail_and_chat_say_the_catalogue_wording(event: NoticeEvent, kind: IncidentKind) -> None:
    state = STATE_OF_KIND[kind]
    notice = make_notice(event, kind=kind, state=state, note="Đã cử kỹ thuật viên.", actor="An")
    email = render_email(notice)
    vi, _sep, en = email.text.partition("\n--- English ---\n")
    chat = render_chat(notice)
    kind_words = CATALOGUE[kind]
    event_words = notice_event_words(event)
    state_words = problem_words(state)

    assert f"{kind_words.vi}:" in email.subject
    assert email.subject.endswith(f"| {kind_words.en}")
    assert f"Phiếu NW-2026-000042 — {event_words.vi}" in vi
    assert f"Loại sự cố: {kind_words.vi} ({state_words.inline('vi')})" in vi
    assert f"Ticket NW-2026-000042 — {event_words.en}" in en
    assert f"Incident: {kind_words.en} ({state_words.inline('en')})" in en

    assert chat.startswith(f"[NW-2026-000042] {event_words.vi}: {kind_words.vi}\n")
    assert f" — {state_words.inline('vi')}\n" in chat
    assert f"EN: {event_words.en} · {kind_words.en}, {state_words.inline('en')} since" in chat

    summary = render_webhook(notice)["summary"]
    for text in (email.subject, email.text, chat, json.dumps(summary, ensure_ascii=False)):
        _no_retired_wording(text)


@pytest.mark.parametrize("cause", list(DownCause))
def test_mail_says_the_catalogue_down_cause(cause: DownCause) -> None:
    notice = make_notice()
    evidence = replace(notice.evidence, interface_up=None, down_cause=cause)
    text = render_email(replace(notice, evidence=evidence)).text
    assert f"Ghi nhận thêm: {CATALOGUE[cause].inline('vi')}" in text
    assert f"Also seen: {CATALOGUE[cause].inline('en')}" in text
    _no_retired_wording(text)


def test_the_opening_mail_says_the_state_inside_its_sentence() -> None:
    for state in ProblemState:
        text = render_email(make_notice(state=state)).text
        assert f"(giờ Việt Nam): {problem_words(state).inline('vi')}." in text
        assert f"(Vietnam time, UTC+7): {problem_words(state).inline('en')}." in text


# --- pages -----------------------------------------------------------------------------------


def test_status_page_words_are_the_catalogues() -> None:
    link = {
        Shown.OK: LinkState.OK,
        Shown.SLOW: LinkState.SLOW,
        Shown.LOSSY: LinkState.LOSSY,
        Shown.CONGESTED: LinkState.CONGESTED,
        Shown.DOWN: LinkState.DOWN,
    }
    for shown in Shown:
        key: vocab.Key = link.get(shown) or (
            Term.MAINTENANCE if shown is Shown.MAINTENANCE else Term.NO_DATA
        )
        assert status_words.STATE[shown] is CATALOGUE[key], shown
    for portal in PortalState:
        assert status_words.PORTAL_STATE[portal.value] is CATALOGUE[portal]
    assert status_words.PORTAL_STATE["unknown"] is CATALOGUE[Term.NO_DATA]
    for kind in IncidentKind:
        assert status_words.TICKET_KIND[kind.value] is CATALOGUE[kind]
    for status in TicketStatus:
        assert status_words.TICKET_STATE[status.value] is CATALOGUE[status]
    for cause in DownCause:
        assert status_words.DOWN_CAUSE[cause.value] is CATALOGUE[cause]
    for problem in ProblemState:
        assert status_words.PROBLEM[problem.value] is problem_words(problem)


def _web_modules() -> Iterator[ModuleType]:
    yield netwatch.web
    for info in pkgutil.walk_packages(netwatch.web.__path__, "netwatch.web."):
        yield importlib.import_module(info.name)


def _is_words(value: object) -> bool:
    return isinstance(value, Mapping) and set(value) == {"vi", "en"}


def _wordings_of(value: str) -> list[Wording]:
    """The catalogue wordings of every named member with this value ("slow": link and portal)."""
    return [table[m] for named, table in TABLES.items() for m in named if m.value == value]


def test_every_page_table_of_states_kinds_or_events_says_the_catalogue_wording() -> None:
    """Any {value: {vi, en}} table in the web package keyed only by named members' values
    (a ticket-kind table, a problem table, an event log table) must say the catalogue's words."""
    checked = 0
    for module in _web_modules():
        for name, table in vars(module).items():
            if not (isinstance(table, Mapping) and table and name.isupper()):
                continue
            keys: list[Any] = list(table)
            if not all(isinstance(k, str) for k in keys):
                continue
            if not all(_is_words(v) for v in table.values()):
                continue
            if not all(_wordings_of(k) for k in keys):
                continue  # a label table, not one of states, kinds or events
            for key in keys:
                words = dict(table[key])
                # as a label, or as said inside a sentence ("Mất kết nối — thiết bị mạng …")
                said = [dict(w) for w in _wordings_of(key)]
                said += [{lang: w.inline(lang) for lang in LANGS} for w in _wordings_of(key)]
                assert words in said, (
                    f"{module.__name__}.{name}[{key!r}] = {words}: not the catalogue's wording"
                )
            checked += 1
    assert checked >= 4  # the status pages' kind, ticket state, down cause and problem tables


# --- dashboards ------------------------------------------------------------------------------


def _dashboard_texts() -> dict[str, str]:
    return {p.name: p.read_text("utf-8") for p in sorted(DASHBOARDS.glob("*.json"))}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _mapping_texts(model: Any) -> set[str]:
    return {
        option["text"]
        for node in _walk(model)
        if node.get("type") == "value" and isinstance(node.get("options"), dict)
        for option in node["options"].values()
    }


def _display_names(model: Any) -> set[str]:
    return {
        node["value"]
        for node in _walk(model)
        if node.get("id") == "displayName" and isinstance(node.get("value"), str)
    }


def test_dashboards_say_the_catalogue_wording() -> None:
    texts = _dashboard_texts()
    assert texts
    models = {name: json.loads(text) for name, text in texts.items()}
    states = {CATALOGUE[s].pair() for s in LinkState}
    states |= {CATALOGUE[Term.NO_DATA].pair(), CATALOGUE[Term.MAINTENANCE].pair()}
    # The judged state (map, state timeline) and the links-by-state series.
    for name in ("province-overview.json", "commune-detail.json"):
        assert states <= _mapping_texts(models[name]), name
    assert states <= _display_names(models["province-overview.json"])
    # Incidents by kind, and tickets by state.
    kinds = {CATALOGUE[k].pair() for k in IncidentKind}
    assert kinds <= _display_names(models["netwatch-self.json"])
    tickets = {CATALOGUE[s].pair() for s in TicketStatus}
    assert tickets <= _mapping_texts(models["isp-accountability.json"])
    for words in (
        CATALOGUE[EventKind.OPENED],
        CATALOGUE[EventKind.ACKNOWLEDGED],
        CATALOGUE[TicketStatus.RESOLVED],
    ):
        assert words.pair() in texts["isp-accountability.json"]
    for text in texts.values():
        _no_retired_wording(text)
