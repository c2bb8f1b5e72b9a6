"""Pacer: how long to wait before each tick so a feed runs at the chosen speed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.market.pacer import Pacer


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_the_first_tick_is_delivered_at_once() -> None:
    """Nothing to pace against yet."""
    assert Pacer(1.0, clock=FakeClock()).delay_for(1_000_000) == 0.0


def test_real_speed_waits_as_long_as_the_recording_did() -> None:
    """At speed 1 a tick 1.5 s later in the data is due 1.5 s later on the clock."""
    pacer = Pacer(1.0, clock=FakeClock())
    pacer.delay_for(10_000)

    assert pacer.delay_for(11_500) == pytest.approx(1.5)


def test_ten_times_speed_waits_a_tenth() -> None:
    """At speed 10 one second of data takes a tenth of a second."""
    pacer = Pacer(10.0, clock=FakeClock())
    pacer.delay_for(0)

    assert pacer.delay_for(1000) == pytest.approx(0.1)


def test_infinite_speed_never_waits() -> None:
    """math.inf replays as fast as the consumer can take it."""
    clock = FakeClock()
    pacer = Pacer(math.inf, clock=clock)

    assert [pacer.delay_for(ts) for ts in (0, 10_000, 3_600_000)] == [0.0, 0.0, 0.0]


def test_pace_is_anchored_so_time_spent_working_is_not_waited_again() -> None:
    """If the consumer took 0.4 s to handle a tick, the next one-second tick waits 0.6 s."""
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock)
    pacer.delay_for(0)
    clock.advance(0.4)

    assert pacer.delay_for(1000) == pytest.approx(0.6)


def test_waiting_the_returned_delay_keeps_the_pace_without_drift() -> None:
    """After 100 one-second ticks delivered on time the clock has moved exactly 99 s."""
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock)
    start = clock.now

    for ts in range(0, 100_000, 1000):
        clock.advance(pacer.delay_for(ts))

    assert clock.now - start == pytest.approx(99.0)


def test_a_late_consumer_gets_no_negative_delay_and_catches_up() -> None:
    """Behind schedule by less than max_gap_s, ticks are due at once until pace is regained."""
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock)
    pacer.delay_for(0)
    clock.advance(3.0)

    assert pacer.delay_for(1000) == 0.0
    assert pacer.delay_for(2000) == 0.0
    assert pacer.delay_for(4000) == pytest.approx(1.0)


def test_a_consumer_far_behind_resumes_from_now_instead_of_bursting() -> None:
    """A stall longer than max_gap_s re-anchors: the next ticks are paced from the present."""
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, max_gap_s=5.0)
    pacer.delay_for(0)
    clock.advance(60.0)

    assert pacer.delay_for(1000) == 0.0
    assert pacer.delay_for(2000) == pytest.approx(1.0)


def test_a_huge_gap_in_the_data_is_compressed_to_max_gap_s() -> None:
    """Two hours of exchange maintenance cost max_gap_s of wall time, not two hours."""
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, max_gap_s=5.0)
    pacer.delay_for(0)

    delay = pacer.delay_for(2 * 3_600_000)

    assert delay == pytest.approx(5.0)
    assert pacer.compressed_gaps == 1


def test_after_a_compressed_gap_pacing_resumes_from_the_new_anchor() -> None:
    """Ticks after the gap are paced relative to the first tick after it."""
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, max_gap_s=5.0)
    clock.advance(pacer.delay_for(0))
    clock.advance(pacer.delay_for(3_600_000))

    assert pacer.delay_for(3_602_000) == pytest.approx(2.0)


def test_the_gap_limit_applies_after_speed_scaling() -> None:
    """At speed 100 a 400 s gap is 4 s of wall time: waited, not compressed."""
    pacer = Pacer(100.0, clock=FakeClock(), max_gap_s=5.0)
    pacer.delay_for(0)

    assert pacer.delay_for(400_000) == pytest.approx(4.0)
    assert pacer.compressed_gaps == 0


def test_a_tick_from_the_past_is_due_at_once() -> None:
    """A timestamp earlier than one already paced waits nothing."""
    pacer = Pacer(1.0, clock=FakeClock())
    pacer.delay_for(5000)

    assert pacer.delay_for(4000) == 0.0


def test_reset_starts_pacing_afresh() -> None:
    """After reset the next tick is the new anchor."""
    pacer = Pacer(1.0, clock=FakeClock())
    pacer.delay_for(0)
    pacer.reset()

    assert pacer.delay_for(4000) == 0.0
    assert pacer.delay_for(5000) == pytest.approx(1.0)


@pytest.mark.parametrize("speed", [0.0, -1.0, math.nan])
def test_a_speed_that_is_not_positive_is_refused(speed: float) -> None:
    """Zero, negative and NaN speeds raise ValueError naming the parameter."""
    with pytest.raises(ValueError, match="speed"):
        Pacer(speed)


def test_a_gap_limit_that_is_not_positive_is_refused() -> None:
    """max_gap_s must be a positive number of seconds."""
    with pytest.raises(ValueError, match="max_gap_s"):
        Pacer(1.0, max_gap_s=0.0)


@settings(max_examples=200, deadline=None)
@given(
    speed=st.sampled_from([0.5, 1.0, 7.0, 1000.0, math.inf]),
    steps=st.lists(
        st.tuples(st.integers(-5000, 10_000_000), st.floats(0.0, 100.0)), max_size=50,
    ),
)
def test_delays_are_never_negative_nor_longer_than_the_gap_limit(
    speed: float, steps: list[tuple[int, float]],
) -> None:
    """Whatever the timestamps and the consumer's lateness, 0 <= delay <= max_gap_s."""
    clock = FakeClock()
    pacer = Pacer(speed, clock=clock, max_gap_s=5.0)
    ts = 1_000_000

    for step, busy in steps:
        ts += step
        delay = pacer.delay_for(ts)
        assert 0.0 <= delay <= 5.0 + 1e-9
        clock.advance(delay + busy)
