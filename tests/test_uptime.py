"""Uptime arithmetic on hand-computed cases (no database): edges, hours, unknown time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fangxin.devices.uptime import Clock, Figures, Hours, UnknownTime, clip, window_figures
from tests.devices_helpers import HOUR, T0, at

E0 = at(0).timestamp()  # local midnight of a Monday, as epoch seconds
DAY = 24 * HOUR
ALL_DAY = Clock(None)
SHANGHAI = 8 * HOUR


def span(a: float, b: float) -> tuple[float, float]:
    return (E0 + a, E0 + b)


def test_around_the_clock_window_edges() -> None:
    window = span(0, HOUR)
    # before the window, across its start, inside, across its end, after it
    offline = [
        span(-600, -300),
        span(-100, 200),
        span(1000, 1300),
        span(3500, 4000),
        span(5000, 6000),
    ]
    got = window_figures(window, offline, [], ALL_DAY)
    assert got == Figures(online_s=3600 - 200 - 300 - 100, offline_s=600, unknown_s=0)
    assert got.uptime == pytest.approx(3000 / 3600)


def test_back_to_back_outages_count_once_each() -> None:
    got = window_figures(span(0, HOUR), [span(100, 200), span(200, 350)], [], ALL_DAY)
    assert got.offline_s == 250
    assert got.online_s == 3350


def test_unknown_time_is_excluded_from_both() -> None:
    # unknown 600..1200; an outage 900..1500 is offline only for its known part 1200..1500
    got = window_figures(span(0, HOUR), [span(900, 1500)], [span(600, 1200)], ALL_DAY)
    assert got == Figures(online_s=3600 - 600 - 300, offline_s=300, unknown_s=600)
    assert got.uptime == pytest.approx(2700 / 3000)


def test_outage_overlapping_two_unknown_periods() -> None:
    unknown = [span(100, 200), span(400, 500)]
    got = window_figures(span(0, 1000), [span(150, 450)], unknown, ALL_DAY)
    # 150..450 is 300 s, minus 150..200 and 400..450 unknown
    assert got == Figures(online_s=1000 - 200 - 200, offline_s=200, unknown_s=200)


def test_nothing_observed_has_no_uptime() -> None:
    got = window_figures(span(0, 600), [span(0, 600)], [span(0, 600)], ALL_DAY)
    assert got == Figures(0, 0, 600)
    assert got.uptime is None


def test_business_hours_in_a_day() -> None:
    clock = Clock(Hours.parse("06:00", "22:00"), SHANGHAI)
    assert clock.measure(*span(0, DAY)) == 16 * HOUR
    # 05:00..07:00 counts from 06:00; 21:30..23:00 counts up to 22:00
    offline = [span(5 * HOUR, 7 * HOUR), span(21.5 * HOUR, 23 * HOUR)]
    got = window_figures(span(0, DAY), offline, [], clock)
    assert got.offline_s == 1.5 * HOUR
    assert got.online_s == 14.5 * HOUR


def test_business_hours_crossing_midnight() -> None:
    clock = Clock(Hours.parse("22:00", "02:00"), SHANGHAI)
    assert clock.measure(*span(0, DAY)) == 4 * HOUR  # 00:00-02:00 and 22:00-24:00
    assert clock.measure(*span(0, 2 * DAY)) == 8 * HOUR
    # 01:00..05:00 counts 01:00-02:00; 23:00..03:00 next day counts 23:00-02:00
    offline = [span(HOUR, 5 * HOUR), span(23 * HOUR, DAY + 3 * HOUR)]
    one_day = window_figures(span(0, DAY), offline, [], clock)
    assert one_day == Figures(online_s=2 * HOUR, offline_s=2 * HOUR, unknown_s=0)
    two_days = window_figures(span(0, 2 * DAY), offline, [], clock)
    assert two_days == Figures(online_s=4 * HOUR, offline_s=4 * HOUR, unknown_s=0)


def test_business_hours_with_unknown_time() -> None:
    clock = Clock(Hours.parse("06:00", "22:00"), SHANGHAI)
    # unknown 20:00..24:00 holds 2 counted hours; outage 21:00..23:00 holds 1, all unknown
    got = window_figures(span(0, DAY), [span(21 * HOUR, 23 * HOUR)], [span(20 * HOUR, DAY)], clock)
    assert got == Figures(online_s=14 * HOUR, offline_s=0, unknown_s=2 * HOUR)


def test_equal_open_and_close_is_around_the_clock() -> None:
    clock = Clock.of(Hours.parse("00:00", "00:00"), "Asia/Shanghai", T0)
    assert clock.hours is None
    assert Clock.of(Hours.parse("06:00", "22:00"), "Asia/Shanghai", T0).offset_s == SHANGHAI


def test_close_at_midnight() -> None:
    clock = Clock(Hours.parse("18:00", "24:00"), SHANGHAI)
    assert clock.measure(*span(0, DAY)) == 6 * HOUR
    assert clock.measure(*span(17 * HOUR, 19 * HOUR)) == HOUR


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 30 * 86400), min_size=0, max_size=40, unique=True),
    window=st.tuples(st.integers(-86400, 31 * 86400), st.integers(-86400, 31 * 86400)),
    hours=st.sampled_from([None, ("06:00", "22:00"), ("22:00", "06:00")]),
)
def test_unknown_time_of_a_window_is_the_sum_of_its_clipped_spans(
    cuts: list[int], window: tuple[int, int], hours: tuple[str, str] | None
) -> None:
    edges = [T0.timestamp() + c for c in sorted(cuts)]
    spans = list(zip(edges[::2], edges[1::2], strict=False))  # sorted and disjoint
    clock = Clock.of(Hours.parse(*hours) if hours else None, "Asia/Shanghai", T0)
    span = (T0.timestamp() + window[0], T0.timestamp() + window[1])
    expected = sum(clock.measure(*c) for c in (clip(u, span) for u in spans) if c)
    assert UnknownTime(spans, clock).within(span) == pytest.approx(expected, abs=1e-6)
