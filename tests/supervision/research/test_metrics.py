"""The figures against hand-computed values (each expected number is worked out in the
docstring or the comment beside it, not by the code under test)."""

from __future__ import annotations

import math

import pytest

from supervision.research.metrics import (
    DrawdownTracker,
    cagr,
    calmar,
    covered_ms,
    max_drawdown,
    returns_of,
    sharpe,
    sortino,
    trade_figures,
)
from supervision.research.report import daily_closes

DAY = 86_400_000


def test_returns_start_from_the_initial_equity():
    """100 -> 110 -> 99 -> 99: +10 %, -10 %, 0."""
    assert returns_of(100.0, [110.0, 99.0, 99.0]) == pytest.approx([0.1, -0.1, 0.0])


def test_sharpe_of_three_daily_returns_by_hand():
    """r = 1 %, -2 %, 3 %: mean 0.6667 %, sample std sqrt(((0.3333)^2 + (2.6667)^2 +
    (2.3333)^2) / 2) % = 2.5166 %, so Sharpe = 0.6667 / 2.5166 * sqrt(365) = 5.0611."""
    assert sharpe([0.01, -0.02, 0.03]) == pytest.approx(5.0611, abs=1e-4)


def test_sortino_counts_only_the_losing_days_in_its_deviation():
    """r = 1 %, -2 %, 3 %: downside deviation sqrt((0 + 4 + 0) / 3) % = 1.1547 %, so
    Sortino = 0.6667 / 1.1547 * sqrt(365) = 11.0303."""
    assert sortino([0.01, -0.02, 0.03]) == pytest.approx(11.0303, abs=1e-4)


def test_ratios_without_variance_or_losses_are_undefined_not_invented():
    """No variance: no Sharpe; no losing day: no Sortino; no drawdown: no Calmar."""
    assert sharpe([0.01, 0.01, 0.01]) is None
    assert sharpe([0.01]) is None
    assert sortino([0.01, 0.02]) is None
    assert calmar(0.5, 0.0) is None


def test_cagr_of_a_doubling_over_half_a_year_is_three_hundred_percent():
    """x2 in 182.5 days: 2^(365/182.5) - 1 = 2^2 - 1 = 3."""
    assert cagr(100.0, 200.0, int(182.5 * DAY)) == pytest.approx(3.0)
    assert cagr(100.0, 110.0, 365 * DAY) == pytest.approx(0.1)
    assert calmar(0.3, 0.15) == pytest.approx(2.0)


def test_max_drawdown_is_the_largest_fall_from_a_running_peak():
    """Peaks 100 then 120; the falls are 100 -> 90 (10 %) and 120 -> 84 (30 %)."""
    assert max_drawdown([100, 90, 120, 84, 130]) == pytest.approx(0.30)
    assert max_drawdown([100, 101, 102]) == 0.0


def test_drawdown_durations_run_from_the_peak_to_the_recovery_or_the_end():
    """Peak at day 2 (120), trough at day 3, regained on day 5: 3 days under water for the
    deepest; a later dip from day 5 (130) to the end at day 7 lasts 2 days."""
    tracker = DrawdownTracker()
    for day, value in enumerate([100, 90, 120, 84, 110, 130, 125, 128]):
        tracker.update(day * DAY, value)
    assert tracker.deepest == pytest.approx(0.30)
    assert tracker.deepest_peak_ms == 2 * DAY
    assert tracker.deepest_trough_ms == 3 * DAY
    assert tracker.deepest_duration_ms == 3 * DAY
    assert tracker.longest_so_far_ms == 3 * DAY


def test_trade_figures_by_hand():
    """PnL +30, -10, +20, -20: wins 2 of 4, gross profit 50, loss 30, profit factor 5/3,
    expectancy 20 / 4 = 5."""
    figures = trade_figures([30.0, -10.0, 20.0, -20.0], [60_000, 120_000, 180_000, 240_000])
    assert (figures.trades, figures.wins, figures.losses) == (4, 2, 2)
    assert figures.win_rate == 0.5
    assert figures.profit_factor == pytest.approx(5 / 3)
    assert figures.expectancy == pytest.approx(5.0)
    assert (figures.best, figures.worst) == (30.0, -20.0)
    assert figures.avg_duration_ms == 150_000
    assert figures.longest_duration_ms == 240_000
    assert trade_figures([5.0], [1]).profit_factor is None  # no loss: undefined


def test_time_in_the_market_counts_overlapping_trades_once():
    """[0, 10) and [5, 20) cover 20; [30, 40) adds 10."""
    assert covered_ms([(5, 20), (0, 10), (30, 40)]) == 30


def test_daily_closes_carry_a_day_without_samples():
    """Samples on days 0 and 2 only: day 1 closes at day 0's last value."""
    closes = daily_closes([0, DAY // 2, 2 * DAY + 5], [100.0, 101.0, 99.0])
    assert closes == [(0, 101.0), (1, 101.0), (2, 99.0)]
    assert math.isclose(returns_of(100.0, [c for _, c in closes])[-1], 99 / 101 - 1)
