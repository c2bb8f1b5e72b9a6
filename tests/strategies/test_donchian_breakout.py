"""DonchianBreakout on hand-made series: breakouts against the previous prices only."""

from __future__ import annotations

import pytest

from actors.messages import MarketTick, Signal
from strategies.base import StrategyError
from strategies.donchian_breakout import DonchianBreakout

B, S, H = Signal.BUY, Signal.SELL, Signal.HOLD


def run(strategy: DonchianBreakout, prices: list[float]) -> list[Signal]:
    return [
        strategy.on_tick(MarketTick(pair="BTC/USDT", ts_ms=1_000 + i, price=p, bid=p, ask=p))
        for i, p in enumerate(prices)
    ]


def test_a_breakout_up_then_down_gives_one_buy_then_one_sell():
    """Entry 3 / exit 2: BUY above the last three highs, SELL below the last two lows."""
    prices = [10.0, 11.0, 12.0, 13.0, 14.0, 13.5, 9.0, 8.0, 10.0]
    # i=3: 13 > max(10, 11, 12) = 12 -> BUY
    # i=4: 14 > 13, but already above -> HOLD
    # i=5: 13.5 <= 14 and 13.5 >= min(13, 14) -> HOLD
    # i=6: 9 < min(14, 13.5) = 13.5 -> SELL; i=7: 8 < 9 still below -> HOLD
    signals = run(DonchianBreakout(entry_period=3, exit_period=2), prices)

    assert signals == [H, H, H, B, H, H, S, H, H]


def test_a_steady_rise_buys_once():
    """Every price is a new high, but the breakout is reported only where it starts."""
    signals = run(DonchianBreakout(entry_period=3, exit_period=3), [float(p) for p in range(1, 11)])

    assert signals == [H, H, H, B] + [H] * 6


def test_a_second_breakout_after_a_pause_buys_again():
    """A price inside the channel ends the breakout; the next new high is a new one."""
    signals = run(
        DonchianBreakout(entry_period=3, exit_period=3), [10.0, 11.0, 12.0, 13.0, 12.5, 14.0]
    )

    # i=4: 12.5 <= max(11, 12, 13); i=5: 14 > max(12, 13, 12.5) = 13
    assert signals == [H, H, H, B, H, B]


def test_equalling_the_channel_is_not_a_breakout():
    """The comparisons are strict: touching the previous high or low signals nothing."""
    strategy = DonchianBreakout(entry_period=2, exit_period=2)
    touches_high = run(strategy, [10.0, 12.0, 12.0, 10.0])
    touches_low = run(DonchianBreakout(entry_period=2, exit_period=2), [12.0, 10.0, 10.0, 12.0])

    # i=2: 12 is not above max(10, 12) = 12; i=3: 10 < min(12, 12) -> SELL
    assert touches_high == [H, H, H, S]
    # i=2: 10 is not below min(12, 10) = 10; i=3: 12 > max(10, 10) -> BUY
    assert touches_low == [H, H, H, B]


def test_the_current_price_is_not_part_of_its_own_channel():
    """A jump is compared with the prices before it, so the jump itself can break out."""
    signals = run(DonchianBreakout(entry_period=1, exit_period=1), [5.0, 6.0, 4.0])

    assert signals == [H, B, S]


def test_warmup_covers_the_longer_window_plus_the_price_being_judged():
    """The first decision needs max(entry, exit) previous prices."""
    strategy = DonchianBreakout(entry_period=2, exit_period=4)

    assert strategy.warmup == 5
    assert run(strategy, [1.0, 2.0, 3.0, 4.0]) == [H] * 4
    assert run(strategy, [5.0]) == [B]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"entry_period": 0}, "entry_period=0 is invalid: must be an integer >= 1"),
        ({"exit_period": "x"}, "exit_period='x' is not a valid int"),
        (
            {"channel": 5},
            "unknown parameter 'channel'; valid parameters: entry_period, exit_period",
        ),
    ],
)
def test_bad_params_name_the_key_the_value_and_the_constraint(params, message):
    """Each invalid setting is a StrategyError that explains itself."""
    with pytest.raises(StrategyError, match=rf"^donchian_breakout: {message}"):
        DonchianBreakout(**params)


def test_describe_lists_both_periods():
    """describe() shows the params as a spec would write them."""
    assert DonchianBreakout().describe() == "donchian_breakout(entry_period=20, exit_period=10)"


def test_a_period_beyond_any_history_is_refused_with_its_bound():
    """Found by hypothesis: 2**63 passed the validator and overflowed a deque's maxlen."""
    from strategies.indicators import MAX_PERIOD

    with pytest.raises(StrategyError, match="entry_period=9223372036854775808 is invalid: "
                                            "must be at most 10,000,000"):
        DonchianBreakout.Params(entry_period=2**63)
    assert DonchianBreakout.Params(entry_period=MAX_PERIOD).entry_period == MAX_PERIOD
