"""Incremental indicators against hand-computed values and brute-force definitions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.indicators import Ema, RollingExtremes, Rsi

# Seeded and database-free, so a run is the same everywhere and leaves no files behind.
DETERMINISTIC = settings(derandomize=True, database=None, max_examples=200, deadline=None)

prices = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


# -- Ema ---------------------------------------------------------------------------------------


def test_ema_is_none_until_period_values_then_seeds_with_their_average():
    """Ema(3) has no value for two prices and starts at the simple average of the first three."""
    ema = Ema(3)

    assert [ema.update(x) for x in (1.0, 2.0, 3.0)] == [None, None, 2.0]
    assert ema.ready


def test_ema_applies_alpha_two_over_period_plus_one_after_the_seed():
    """After seeding, Ema(3) moves half-way (alpha = 2/4) towards each new price."""
    ema = Ema(3)
    for x in (1.0, 2.0, 3.0):
        ema.update(x)

    # 2 + 0.5 * (4 - 2) = 3; then 3 + 0.5 * (8 - 3) = 5.5
    assert ema.update(4.0) == 3.0
    assert ema.update(8.0) == 5.5
    assert ema.value == 5.5


def test_ema_of_period_one_is_the_price_itself():
    """With alpha = 1 the average is always the latest price."""
    ema = Ema(1)

    assert [ema.update(x) for x in (5.0, 7.0, 2.0)] == [5.0, 7.0, 2.0]


@pytest.mark.parametrize("period", [0, -3, 2.5, True, 10_000_001, 2**63])
def test_indicators_reject_a_period_that_is_not_a_positive_integer(period):
    """Every indicator refuses a period below 1 or not an int, naming the value."""
    for indicator in (Ema, Rsi, RollingExtremes):
        with pytest.raises(ValueError, match=rf"period={period!r} is invalid"):
            indicator(period)


@DETERMINISTIC
@given(period=st.integers(1, 40), xs=st.lists(prices, min_size=1, max_size=200))
def test_ema_stays_within_the_range_of_its_inputs(period, xs):
    """An EMA is a weighted mean, so it never leaves [min, max] of the prices seen (to rounding)."""
    ema = Ema(period)
    for i, x in enumerate(xs):
        value = ema.update(x)
        if value is None:
            assert i + 1 < period
            continue
        seen = xs[: i + 1]
        tolerance = 1e-9 * max(seen)
        assert min(seen) - tolerance <= value <= max(seen) + tolerance


# -- Rsi ---------------------------------------------------------------------------------------


def test_rsi_needs_period_plus_one_prices():
    """Rsi(2) needs two price changes, so three prices, before it has a value."""
    rsi = Rsi(2)

    assert [rsi.update(x) for x in (10.0, 11.0)] == [None, None]
    assert not rsi.ready
    assert rsi.update(10.0) == 50.0
    assert rsi.ready


def test_rsi_follows_wilder_smoothing():
    """Rsi(2) on 10, 11, 10, 12, 11 matches the hand-computed Wilder averages."""
    rsi = Rsi(2)
    values = [rsi.update(x) for x in (10.0, 11.0, 10.0, 12.0, 11.0)]

    # changes +1, -1: avg gain 0.5, avg loss 0.5 -> 50
    # +2: gain (0.5*1 + 2)/2 = 1.25, loss (0.5*1 + 0)/2 = 0.25 -> 100*1.25/1.5 = 83.33
    # -1: gain 1.25/2 = 0.625, loss (0.25 + 1)/2 = 0.625 -> 50
    assert values[:3] == [None, None, 50.0]
    assert values[3] == pytest.approx(250.0 / 3.0)
    assert values[4] == pytest.approx(50.0)


def test_rsi_is_100_when_prices_only_rise_0_when_they_only_fall_and_50_when_flat():
    """The extremes and the no-movement case have fixed, documented values."""
    rising, falling, flat = Rsi(3), Rsi(3), Rsi(3)
    for i in range(6):
        rising.update(100.0 + i)
        falling.update(100.0 - i)
        flat.update(100.0)

    assert (rising.value, falling.value, flat.value) == (100.0, 0.0, 50.0)


@DETERMINISTIC
@given(period=st.integers(1, 30), xs=st.lists(prices, min_size=2, max_size=200))
def test_rsi_stays_within_0_and_100(period, xs):
    """Whatever the prices, every RSI value is in [0, 100]."""
    rsi = Rsi(period)
    for x in xs:
        value = rsi.update(x)
        if value is not None:
            assert 0.0 <= value <= 100.0


# -- RollingExtremes ---------------------------------------------------------------------------


def test_rolling_extremes_report_high_and_low_of_the_last_period_values():
    """RollingExtremes(3) slides its window one value per update."""
    window = RollingExtremes(3)

    results = [window.update(x) for x in (5.0, 1.0, 4.0, 2.0, 8.0, 3.0)]

    # windows: [5,1,4] [1,4,2] [4,2,8] [2,8,3]
    assert results == [None, None, (5.0, 1.0), (4.0, 1.0), (8.0, 2.0), (8.0, 2.0)]
    assert (window.high, window.low) == (8.0, 2.0)


def test_rolling_extremes_handle_repeated_values():
    """Equal values keep the extremes right as duplicates leave the window."""
    window = RollingExtremes(2)

    results = [window.update(x) for x in (2.0, 2.0, 2.0, 1.0, 1.0, 3.0)]

    assert results == [None, (2.0, 2.0), (2.0, 2.0), (2.0, 1.0), (1.0, 1.0), (3.0, 1.0)]


def test_rolling_extremes_are_ready_only_with_a_full_window():
    """``ready`` turns true on the ``period``-th value, while high/low exist from the first."""
    window = RollingExtremes(3)
    window.update(4.0)

    assert not window.ready
    assert (window.high, window.low) == (4.0, 4.0)
    window.update(5.0)
    window.update(6.0)
    assert window.ready


@DETERMINISTIC
@given(period=st.integers(1, 25), xs=st.lists(prices, min_size=1, max_size=300))
def test_rolling_extremes_equal_brute_force_max_and_min(period, xs):
    """Every result equals max/min over the last ``period`` values, with bounded memory."""
    window = RollingExtremes(period)
    for i, x in enumerate(xs):
        result = window.update(x)
        recent = xs[max(0, i + 1 - period) : i + 1]
        assert (window.high, window.low) == (max(recent), min(recent))
        assert result == ((max(recent), min(recent)) if i + 1 >= period else None)
        assert len(window._high) <= period
        assert len(window._low) <= period
