"""State history and availability: a hand-made month, checked to the second."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from netwatch.store import StateChange, Store, TransitionOutcome, TransitionRecord

LINK = "24848/vnpt-tslcd"
JUNE = datetime(2026, 6, 1, tzinfo=UTC)
JULY = datetime(2026, 7, 1, tzinfo=UTC)
H = 3600.0


async def _record(
    store: Store, subject: str, state: str, since: datetime, detail: str = ""
) -> TransitionRecord:
    """One transition, through the batch writer."""
    (record,) = await store.record_transitions([StateChange(subject, state, since, detail)])
    return record


def _june(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, tzinfo=UTC)


async def _make_june(store: Store) -> None:
    """ok since May; down 4 h on the 3rd; lossy 24 h on the 10th; NetWatch off 6 h on the 20th."""
    await _record(store, LINK, "ok", datetime(2026, 5, 28, tzinfo=UTC))
    await _record(store, LINK, "down", _june(3, 10), "interface_down")
    await _record(store, LINK, "ok", _june(3, 14))
    await _record(store, LINK, "lossy", _june(10))
    await _record(store, LINK, "ok", _june(11))
    assert await store.mark_all_unknown(_june(20)) == 1  # clean shutdown
    await _record(store, LINK, "ok", _june(20, 6))  # back up


async def test_transitions_close_the_previous_interval(store: Store) -> None:
    await _make_june(store)
    history = await store.history(LINK, JUNE, JULY)
    assert [(i.state, i.since, i.until) for i in history] == [
        ("ok", datetime(2026, 5, 28, tzinfo=UTC), _june(3, 10)),
        ("down", _june(3, 10), _june(3, 14)),
        ("ok", _june(3, 14), _june(10)),
        ("lossy", _june(10), _june(11)),
        ("ok", _june(11), _june(20)),
        ("unknown", _june(20), _june(20, 6)),
        ("ok", _june(20, 6), None),
    ]
    assert history[1].detail == "interface_down"
    current = await store.current_state(LINK)
    assert current is not None
    assert (current.state, current.since) == ("ok", _june(20, 6))


async def test_repeated_and_stale_transitions(store: Store) -> None:
    first = await _record(store, LINK, "down", _june(3), "no_echo")
    assert first.outcome is TransitionOutcome.RECORDED
    same = await _record(store, LINK, "down", _june(3, 1), "interface_down")
    assert same.outcome is TransitionOutcome.UNCHANGED
    assert same.current is not None
    assert same.current.detail == "interface_down"
    stale = await _record(store, LINK, "ok", _june(2))
    assert stale.outcome is TransitionOutcome.STALE
    assert len(await store.history(LINK, JUNE, JULY)) == 1


async def test_monthly_availability(store: Store) -> None:
    await _make_june(store)
    june = await store.availability(LINK, JUNE, JULY, now=datetime(2026, 7, 2, tzinfo=UTC))
    assert june.unavailable_s == 4 * H
    assert june.degraded_s == 24 * H
    assert june.unknown_s == 6 * H
    assert june.ok_s == (720 - 4 - 24 - 6) * H
    assert june.availability_ratio == pytest.approx(1 - 4 / 714)
    assert june.ok_ratio == pytest.approx(686 / 714)
    assert june.seconds_by_state["lossy"] == 24 * H


async def test_availability_of_a_month_in_progress(store: Store) -> None:
    await _make_june(store)
    # Mid-month: only what happened up to now is known.
    partial = await store.availability(LINK, JUNE, JULY, now=_june(4))
    assert partial.unavailable_s == 4 * H
    assert partial.ok_s == (72 - 4) * H
    assert partial.unknown_s == (720 - 72) * H
    assert partial.availability_ratio == pytest.approx(1 - 4 / 72)


async def test_availability_report_for_every_link(store: Store) -> None:
    await _make_june(store)
    await store.record_transitions(
        [
            StateChange("other", "down", datetime(2026, 5, 31, 12, tzinfo=UTC)),
            StateChange("other", "ok", _june(1, 12)),
            StateChange("quiet", "ok", datetime(2026, 7, 5, tzinfo=UTC)),  # after the period
        ]
    )
    report = await store.availability_report(JUNE, JULY, now=datetime(2026, 8, 1, tzinfo=UTC))
    assert set(report) == {LINK, "other"}
    assert report["other"].unavailable_s == 12 * H
    assert report["other"].availability_ratio == pytest.approx(1 - 12 / 720)
    unseen = await store.availability("never-seen", JUNE, JULY, now=JULY)
    assert unseen.availability_ratio is None
    assert unseen.unknown_s == 720 * H


async def test_current_states(store: Store) -> None:
    await store.record_transitions(
        [StateChange("b", "ok", _june(1)), StateChange("a", "congested", _june(2))]
    )
    states = await store.current_states()
    assert [(s.subject, s.state) for s in states] == [("a", "congested"), ("b", "ok")]


async def test_after_a_crash_the_gap_from_the_last_heartbeat_is_unknown(store: Store) -> None:
    """NetWatch died at 03:00 after its last heartbeat at 02:00; it starts again at 09:00."""
    other = "28696/vnpt-tslcd"
    assert await store.last_heartbeat() is None
    await _record(store, LINK, "ok", _june(1))
    await _record(store, other, "ok", _june(1))
    await store.heartbeat(_june(2, 1))
    await store.heartbeat(_june(2, 2))
    await store.heartbeat(_june(2, 1))  # a late writer never moves it back
    await _record(store, other, "down", _june(2, 2) + (_june(2, 3) - _june(2, 2)) / 2)
    alive = await store.last_heartbeat()
    assert alive == _june(2, 2)
    # The restart: everything unknown from the last heartbeat (or from a later change).
    assert await store.mark_all_unknown(alive) == 2
    await _record(store, LINK, "ok", _june(2, 9))
    report = await store.availability(LINK, _june(2), _june(3), now=_june(3))
    assert report.unknown_s == pytest.approx(7 * H)  # 02:00 to 09:00, not counted as ok
    assert report.ok_s == pytest.approx(17 * H)
    [*_, down, gap] = await store.history(other, JUNE, JULY)
    assert (down.state, gap.state) == ("down", "unknown")
    assert gap.since == down.since  # judged after the heartbeat: that change is kept as it was
    assert down.until == down.since
    # NetWatch's own heartbeat is not a subject: no state, no history.
    assert [s.subject for s in await store.current_states()] == [LINK, other]
    assert await store.history("netwatch:heartbeat", JUNE, JULY) == []
