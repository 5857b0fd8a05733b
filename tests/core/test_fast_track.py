"""The one stop rule of fast confirmation (links, nodes and portals alike)."""

from __future__ import annotations

from netwatch.confirm import FastTrack, Mode, Thresholds

TH = Thresholds(rtt_s=0.05, loss_ratio=0.02, enter_rounds=3, enter_window=5, exit_rounds=5)


def test_a_suspect_that_turns_bad_is_done_as_changed() -> None:
    track = FastTrack(Mode.ENTER)
    assert track.step(True, False, TH) is None
    assert track.step(True, True, TH) is True


def test_a_suspect_with_three_good_rounds_in_a_row_is_noise() -> None:
    # 3 of 5 enter: after 5 - 3 + 1 = 3 good rounds in a row the window cannot fill any more.
    track = FastTrack(Mode.ENTER)
    steps = [track.step(bad, False, TH) for bad in (True, False, False, False)]
    assert steps == [None, None, None, False]


def test_a_line_coming_back_survives_one_bad_round_not_two() -> None:
    back = FastTrack(Mode.EXIT)
    assert back.step(True, True, TH) is None  # its first echoes lost on the way up
    assert back.step(False, True, TH) is None
    assert back.step(False, False, TH) is True  # judged back
    still = FastTrack(Mode.EXIT)
    assert [still.step(True, True, TH) for _ in range(2)] == [None, False]


def test_no_subject_stays_longer_than_enter_window_plus_exit_rounds() -> None:
    track = FastTrack(Mode.ENTER)
    steps = [track.step(i % 2 == 0, False, TH) for i in range(10)]
    assert steps == [None] * 9 + [False]
