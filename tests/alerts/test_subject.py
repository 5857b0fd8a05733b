"""SubjectKey: one codec, and the stored forms the database has always held."""

from __future__ import annotations

import pytest

from alerts.subject import (
    LinkId,
    SubjectKey,
    SubjectKind,
    link_id,
    portal_of_subject,
    portal_subject,
)

STORED = {
    SubjectKey.link(link_id("24848", "vnpt-tslcd")): "link:24848/vnpt-tslcd",
    SubjectKey.upstream("pop-1"): "upstream:pop-1",
    SubjectKey.reference("10.0.0.1"): "reference:10.0.0.1",
    SubjectKey.reference("2001:db8::1"): "reference:2001:db8::1",
    SubjectKey.portal("dvcqg"): "portal:dvcqg",
    SubjectKey.router("24848"): "router:24848",
    SubjectKey.device("24848", "10.1.0.5"): "device:24848/10.1.0.5",
    SubjectKey.MONITOR: "monitor",
}


@pytest.mark.parametrize(("key", "text"), list(STORED.items()))
def test_the_stored_form_is_unchanged_and_parses_back(key: SubjectKey, text: str) -> None:
    assert key.encoded == str(key) == text
    back = SubjectKey.parse(text)
    assert back == key
    assert hash(back) == hash(key)
    assert (back.kind, back.name) == (key.kind, key.name)


def test_keys_sort_and_dedupe_as_their_strings_did() -> None:
    keys = list(STORED)
    assert [k.encoded for k in sorted(keys)] == sorted(STORED.values())
    assert len({*keys, *(SubjectKey.parse(t) for t in STORED.values())}) == len(keys)
    assert SubjectKey.upstream("x") != "upstream:x"  # a key is not a string


def test_a_link_key_names_its_link() -> None:
    key = SubjectKey.parse("link:24848/vnpt-tslcd")
    assert key.kind is SubjectKind.LINK
    assert key.link_id == LinkId("24848/vnpt-tslcd") == link_id("24848", "vnpt-tslcd")
    assert SubjectKey.upstream("pop-1").link_id is None
    assert SubjectKey.upstream("pop-1").is_node
    assert SubjectKey.reference("10.0.0.1").is_node
    assert not key.is_node


@pytest.mark.parametrize("text", ["", "link", "link:", "monitor:x", "nope:1", "24848/vnpt-tslcd"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a subject key"):
        SubjectKey.parse(text)


def test_portal_history_subjects() -> None:
    assert portal_subject("dvcqg", "central") == "dvcqg@central"
    assert portal_of_subject("dvcqg@central") == "dvcqg"
