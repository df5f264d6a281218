"""Display frames: a requested duration becomes whole frames at the measured refresh rate, and
the masks' real durations at the rates a study's raters measured."""

import pytest

from hype.science.frames import DEFAULT_REFRESH_MS, frames_for, mask_timings, refresh_hz


@pytest.mark.parametrize(
    ("ms", "refresh_ms", "frames"),
    [
        (30, 1000 / 60, 2),  # 1.8 frames: 2 frames = 33.3 ms
        (500, 1000 / 60, 30),
        (100, 1000 / 60, 6),
        (30, 1000 / 144, 4),  # 4.32 frames
        (30, 1000 / 30, 1),  # 0.9 frames
        (5, 1000 / 60, 1),  # never less than one frame
        (30, 1000 / 75, 2),  # 2.25 frames
        (30, 1000 / 120, 4),  # 3.6 frames
    ],
)
def test_a_duration_is_the_nearest_whole_number_of_frames_and_at_least_one(ms, refresh_ms, frames):
    assert frames_for(ms, refresh_ms) == frames


def test_a_refresh_interval_that_is_not_positive_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="the refresh interval must be positive, not 0"):
        frames_for(30, 0)


def test_refresh_intervals_are_named_by_the_rate_they_are_sold_as():
    assert [refresh_hz(ms) for ms in (16.68, 16.6667, 6.944, 8.33, 16.0)] == [60, 60, 144, 120, 62]


def test_before_anyone_has_measured_the_masks_are_given_at_60_hz():
    (timing,) = mask_timings(count=4, mask_ms=30, refresh_intervals=[])
    assert timing.hz == 60 and timing.refresh_ms == DEFAULT_REFRESH_MS and timing.raters == 0
    assert timing.frames == 2
    assert timing.shown_ms == pytest.approx(33.333, abs=1e-3)
    assert timing.total_ms == pytest.approx(133.333, abs=1e-3)
    assert timing.sentence() == (
        "4 masks of 30 ms requested: 2 frames = 33.3 ms each, 133 ms in all, at 60 Hz"
    )


def test_each_rate_the_raters_measured_gets_its_own_line_with_its_rater_count():
    intervals = [16.68, 16.66, 16.70, 6.944, 6.95, 8.333, None]
    timings = mask_timings(count=4, mask_ms=30, refresh_intervals=intervals)
    assert [(t.hz, t.frames, t.raters) for t in timings] == [(60, 2, 3), (120, 4, 1), (144, 4, 2)]
    sixty, hundred_twenty, hundred_forty_four = timings
    assert sixty.refresh_ms == 16.68  # the median of the raters at that rate
    assert sixty.sentence() == (
        "4 masks of 30 ms requested: 2 frames = 33.4 ms each, 133 ms in all, at 60 Hz"
    )
    assert hundred_twenty.sentence() == (
        "4 masks of 30 ms requested: 4 frames = 33.3 ms each, 133 ms in all, at 120 Hz"
    )
    assert hundred_forty_four.sentence() == (
        "4 masks of 30 ms requested: 4 frames = 27.8 ms each, 111 ms in all, at 144 Hz"
    )


def test_one_mask_of_one_frame_reads_in_the_singular():
    (timing,) = mask_timings(count=1, mask_ms=10, refresh_intervals=[1000 / 60])
    assert timing.sentence() == "1 mask of 10 ms requested: 1 frame = 16.7 ms, at 60 Hz"


def test_raters_of_one_rate_whose_frames_differ_are_not_merged():
    # 25 ms is 1.5 frames at 60 Hz: 16.60 ms per frame gives 2 frames, 16.70 gives 1.
    timings = mask_timings(count=2, mask_ms=25, refresh_intervals=[16.60, 16.70])
    assert [(t.hz, t.frames) for t in timings] == [(60, 1), (60, 2)]
