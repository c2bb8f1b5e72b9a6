"""RsiReversion on hand-computed RSI(2) series."""

from __future__ import annotations

import pytest

from actors.messages import MarketTick, Signal
from strategies.base import StrategyError
from strategies.rsi_reversion import RsiReversion

B, S, H = Signal.BUY, Signal.SELL, Signal.HOLD


def run(strategy: RsiReversion, prices: list[float]) -> list[Signal]:
    return [
        strategy.on_tick(MarketTick(pair="BTC/USDT", ts_ms=1_000 + i, price=p, bid=p, ask=p))
        for i, p in enumerate(prices)
    ]


def test_leaving_oversold_buys_and_leaving_overbought_sells():
    """RSI(2) goes 0 -> 66.7 (BUY) -> 85.7 -> 54.5 (SELL) -> 22.2 on a dip, rally and drop."""
    prices = [10.0, 9.0, 8.0, 10.0, 12.0, 11.0, 9.0]
    # changes -1 -1 +2 +2 -1 -2
    # i=2: gain 0, loss 1 -> RSI 0 (baseline, oversold)
    # i=3: gain (0+2)/2 = 1, loss (1+0)/2 = 0.5 -> 66.7: up through 30 -> BUY
    # i=4: gain 1.5, loss 0.25 -> 85.7 (overbought)
    # i=5: gain 0.75, loss 0.625 -> 54.5: down through 70 -> SELL
    # i=6: gain 0.375, loss 1.3125 -> 22.2: entering oversold is not a signal
    signals = run(RsiReversion(period=2), prices)

    assert signals == [H, H, H, B, H, S, H]


def test_staying_oversold_does_not_buy():
    """Falling prices keep RSI at 0; there is nothing to buy until it climbs back."""
    signals = run(RsiReversion(period=2), [10.0, 9.0, 8.0, 7.0, 6.0, 5.0])

    assert signals == [H] * 6


def test_the_first_rsi_value_is_a_baseline():
    """An RSI that is first seen at 50 has not left oversold, so it does not buy."""
    signals = run(RsiReversion(period=2), [10.0, 11.0, 10.0, 10.5])

    # i=2: 50 (baseline); i=3: gain (0.5+0.5)/2 = 0.5, loss 0.25 -> 66.7, no zone left
    assert signals == [H, H, H, H]


def test_reaching_exactly_the_oversold_level_counts_as_leaving_it():
    """Oversold means RSI strictly below the level, so RSI == oversold is out of the zone."""
    # RSI(2) after 10, 9, 8 is 0; then +1: gain 0.5, loss 0.5 -> exactly 50
    signals = run(RsiReversion(period=2, oversold=50, overbought=80), [10.0, 9.0, 8.0, 9.0])

    assert signals == [H, H, H, B]


def test_warmup_is_period_plus_one():
    """RSI(period) needs period + 1 prices for its first value."""
    strategy = RsiReversion(period=3)

    run(strategy, [1.0, 2.0, 3.0])
    assert strategy.warmup == 4
    assert not strategy.is_warm
    run(strategy, [4.0])
    assert strategy.is_warm


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"oversold": 70}, "oversold=70 is invalid: must be less than overbought=70"),
        ({"oversold": 0}, r"oversold=0.0 is invalid: must be a number in \(0, 100\)"),
        ({"overbought": 100}, r"overbought=100.0 is invalid: must be a number in \(0, 100\)"),
        ({"period": 0}, "period=0 is invalid: must be an integer >= 1"),
        ({"oversold": "low"}, "oversold='low' is not a valid float"),
    ],
)
def test_bad_params_name_the_key_the_value_and_the_constraint(params, message):
    """Each invalid setting is a StrategyError that explains itself."""
    with pytest.raises(StrategyError, match=rf"^rsi_reversion: {message}"):
        RsiReversion(**params)


def test_levels_given_as_strings_are_coerced():
    """CLI text '25.5' and '80' become float thresholds."""
    strategy = RsiReversion(oversold="25.5", overbought="80", period="7")

    assert strategy.describe() == "rsi_reversion(period=7, oversold=25.5, overbought=80)"
