"""EmaCross on hand-computed series, and the Strategy contract it inherits from the base class."""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest

from actors.messages import MarketTick, Signal
from strategies.base import Strategy, StrategyError, int_at_least, timeframe_validator
from strategies.ema_cross import EmaCross

B, S, H = Signal.BUY, Signal.SELL, Signal.HOLD
T0 = 1_700_000_000_000


def tick(price: float, ts_ms: int = T0) -> MarketTick:
    return MarketTick(pair="BTC/USDT", ts_ms=ts_ms, price=price, bid=price, ask=price)


def run(strategy: Strategy, prices: list[float]) -> list[Signal]:
    return [strategy.on_tick(tick(p, T0 + i)) for i, p in enumerate(prices)]


class Recorder(Strategy):
    """A probe: records the decision prices it is given and answers BUY to each."""

    name = "recorder"

    @attrs.frozen(kw_only=True)
    class Params:
        warm: int = attrs.field(default=1, validator=int_at_least(1))
        ratio: float = 0.5
        verbose: bool = False
        label: str = "x"
        timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: list[float] = []

    @property
    def warmup(self) -> int:
        return int(self.params.warm)

    def on_price(self, price: float) -> Signal:
        self.seen.append(price)
        return B


# -- EmaCross ----------------------------------------------------------------------------------


def test_a_fall_then_rise_then_fall_gives_one_buy_then_one_sell():
    """EmaCross(2, 3) buys where fast crosses above slow and sells where it crosses back."""
    prices = [12.0, 11.0, 10.0, 10.0, 14.0, 14.0, 8.0, 8.0]
    # fast (alpha 2/3): seed (12+11)/2 = 11.5 at i=1; 10.5; 10.167; 12.722; 13.574; 9.858; 8.619
    # slow (alpha 1/2): seed (12+11+10)/3 = 11 at i=2; 10.5; 12.25; 13.125; 10.5625; 9.281
    # i=2: 10.5 < 11 baseline below; i=4: 12.722 > 12.25 BUY; i=6: 9.858 < 10.5625 SELL
    signals = run(EmaCross(fast=2, slow=3), prices)

    assert signals == [H, H, H, H, B, H, S, H]


def test_the_first_comparison_is_a_baseline_not_a_cross():
    """A series that starts with fast above slow does not buy when the EMAs first exist."""
    signals = run(EmaCross(fast=2, slow=3), [10.0, 11.0, 12.0, 13.0, 14.0])

    assert signals == [H] * 5


def test_starting_equal_and_moving_above_is_a_cross():
    """Flat prices make the EMAs equal; the first rise after that is a BUY."""
    signals = run(EmaCross(fast=2, slow=3), [10.0, 10.0, 10.0, 10.0, 13.0])

    # i=4: fast 10 + 2/3*3 = 12 > slow 10 + 1/2*3 = 11.5
    assert signals == [H, H, H, H, B]


def test_touching_without_crossing_does_not_signal_again():
    """Above, then equal, then above again is one cross, not two."""
    strategy = EmaCross(fast=1, slow=2)
    # fast is the price; slow (alpha 2/3) seeds at (10+10)/2 = 10
    # i=2: 13 > 10 BUY, slow -> 12; i=3: 12 == 12 tie, slow stays 12; i=4: 15 > 12 no new cross
    signals = run(strategy, [10.0, 10.0, 13.0, 12.0, 15.0])

    assert signals == [H, H, B, H, H]


def test_signals_match_a_from_scratch_ema_cross_on_a_random_walk():
    """The incremental strategy agrees with recomputing both EMAs over the whole history."""
    rng = random.Random(7)
    prices = [100.0]
    for _ in range(600):
        prices.append(prices[-1] * (1 + rng.gauss(0, 0.01)))

    def ema_series(period: int) -> list[float | None]:
        out: list[float | None] = [None] * (period - 1)
        value = sum(prices[:period]) / period
        out.append(value)
        for x in prices[period:]:
            value += 2 / (period + 1) * (x - value)
            out.append(value)
        return out

    fast, slow = ema_series(10), ema_series(30)
    expected: list[Signal] = []
    side = None
    for f, s in zip(fast, slow, strict=True):
        if s is None or f is None:
            expected.append(H)
            continue
        now = (f > s) - (f < s)
        if side is None or now in (0, side):
            side = now if side is None or now != 0 else side
            expected.append(H)
            continue
        expected.append(B if now > 0 else S)
        side = now

    signals = run(EmaCross(), prices)

    assert signals == expected
    assert signals.count(B) >= 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 30, "slow": 30}, "fast=30 is invalid: must be less than slow=30"),
        ({"fast": 0}, "fast=0 is invalid: must be an integer >= 1"),
        ({"slow": 2.5}, r"slow=2.5 is invalid: must be an integer >= 1"),
        ({"fast": True}, "fast=True is invalid: must be an integer >= 1"),
        ({"timeframe_s": -1}, r"timeframe_s=-1.0 is invalid: must be a number in \[0, inf\)"),
    ],
)
def test_bad_params_name_the_key_the_value_and_the_constraint(params, message):
    """Validation failures are StrategyErrors that say what is wrong and what would be right."""
    with pytest.raises(StrategyError, match=rf"^ema_cross: {message}"):
        EmaCross(**params)


def test_an_unknown_param_is_named_with_the_valid_ones():
    """A typo names the unknown key and lists the keys the strategy takes."""
    with pytest.raises(StrategyError) as info:
        EmaCross(fsat=5)

    assert str(info.value) == (
        "ema_cross: unknown parameter 'fsat'; valid parameters: fast, slow, timeframe_s"
    )


def test_strategy_error_is_a_value_error():
    """Callers that already catch ValueError for bad config also catch bad strategy specs."""
    assert issubclass(StrategyError, ValueError)


def test_describe_shows_name_and_params():
    """describe() reads like the spec that built the strategy; a zero timeframe is implied."""
    assert EmaCross().describe() == "ema_cross(fast=10, slow=30)"
    assert (
        EmaCross(fast=5, timeframe_s=60).describe() == "ema_cross(fast=5, slow=30, timeframe_s=60)"
    )


def test_warmup_is_the_slow_period():
    """EmaCross can compare the EMAs only once the slow one has its seed."""
    strategy = EmaCross(fast=3, slow=5)
    assert strategy.warmup == 5

    run(strategy, [1.0] * 4)
    assert not strategy.is_warm
    run(strategy, [1.0])
    assert strategy.is_warm


# -- the base contract: string params --------------------------------------------------------


def test_string_params_from_the_cli_are_coerced_by_field_type():
    """'5', '0.25', 'true' and ' label ' become an int, a float, a bool and a str."""
    probe = Recorder(warm="5", ratio="0.25", verbose="true", label="a b", timeframe_s="60")

    assert probe.params == Recorder.Params(
        warm=5, ratio=0.25, verbose=True, label="a b", timeframe_s=60.0
    )


@pytest.mark.parametrize(
    ("text", "value"), [("TRUE", True), ("no", False), ("0", False), ("on", True)]
)
def test_bool_params_accept_the_usual_spellings(text, value):
    """true/false, yes/no, on/off and 1/0 all work, in any case."""
    assert Recorder(verbose=text).params.verbose is value


def test_an_int_param_given_to_a_float_field_becomes_a_float():
    """TOML's ``ratio = 1`` is an int; the float field stores 1.0."""
    assert Recorder(ratio=1).params.ratio == 1.0
    assert isinstance(Recorder(ratio=1).params.ratio, float)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"warm": "ten"}, "recorder: warm='ten' is not a valid int"),
        ({"warm": "2.5"}, "recorder: warm='2.5' is not a valid int"),
        ({"ratio": "half"}, "recorder: ratio='half' is not a valid float"),
        (
            {"verbose": "maybe"},
            r"recorder: verbose='maybe' is not a valid bool \(use true or false\)",
        ),
    ],
)
def test_a_string_that_does_not_fit_the_field_type_is_a_clear_error(params, message):
    """Coercion failures name the key, the text and the type it should have been."""
    with pytest.raises(StrategyError, match=f"^{message}$"):
        Recorder(**params)


def test_string_params_are_validated_after_coercion():
    """'0' coerces to 0, which the fast >= 1 validator then refuses."""
    with pytest.raises(StrategyError, match="fast=0 is invalid"):
        EmaCross(fast="0")


# -- the base contract: warm-up --------------------------------------------------------------


def test_signals_are_held_until_warm_but_indicators_still_see_every_price():
    """With warmup 3, the first two answers are HOLD although on_price ran for them."""
    probe = Recorder(warm=3)

    signals = run(probe, [1.0, 2.0, 3.0, 4.0])

    assert signals == [H, H, B, B]
    assert probe.seen == [1.0, 2.0, 3.0, 4.0]


def test_warm_up_feeds_history_and_discards_its_signals():
    """warm_up() primes the strategy; the next live cross is reported as usual."""
    history = [12.0, 11.0, 10.0, 10.0, 14.0, 14.0]
    strategy = EmaCross(fast=2, slow=3)

    strategy.warm_up(tick(p, T0 + i) for i, p in enumerate(history))

    assert strategy.is_warm
    assert strategy.on_tick(tick(8.0, T0 + 100)) is S


def test_feed_price_applies_the_same_warm_up_gate():
    """Candle closes fed directly are gated like ticks."""
    probe = Recorder(warm=2, timeframe_s=60)

    assert [probe.feed_price(p) for p in (1.0, 2.0, 3.0)] == [H, B, B]


# -- the base contract: candles --------------------------------------------------------------


def test_a_timeframe_decides_on_each_candle_close_when_the_next_candle_starts():
    """With 60 s candles, the last price of each minute is decided on at the next minute's tick."""
    probe = Recorder(timeframe_s=60)
    minute = 60_000
    start = T0 - T0 % minute
    ticks = [
        tick(1.0, start),
        tick(2.0, start + 30_000),
        tick(3.0, start + 59_999),  # close of minute 0
        tick(4.0, start + minute),  # ends minute 0
        tick(5.0, start + 3 * minute),  # ends minute 1 (close 4); minute 2 had no ticks
        tick(6.0, start + 3 * minute + 1),
    ]

    signals = [probe.on_tick(t) for t in ticks]

    assert signals == [H, H, H, B, B, H]
    assert probe.seen == [3.0, 4.0]


def test_a_late_tick_for_an_already_decided_candle_is_ignored():
    """An out-of-order tick cannot rewrite a candle that was already closed."""
    probe = Recorder(timeframe_s=1)

    signals = [
        probe.on_tick(tick(p, ts)) for p, ts in [(1.0, 1000), (2.0, 2000), (9.0, 1500), (3.0, 3000)]
    ]

    assert signals == [H, B, H, B]
    assert probe.seen == [1.0, 2.0]


def test_a_fractional_timeframe_buckets_by_milliseconds():
    """timeframe_s=0.25 makes 250 ms candles."""
    probe = Recorder(timeframe_s=0.25)

    for p, ts in [(1.0, 1000), (2.0, 1249), (3.0, 1250), (4.0, 1500)]:
        probe.on_tick(tick(p, ts))

    assert probe.seen == [2.0, 3.0]


def test_ema_cross_on_candles_equals_ema_cross_on_their_closes():
    """Aggregating ticks into candles is the same as feeding the candle closes."""
    rng = random.Random(11)
    ticks, closes = [], []
    price, ts = 100.0, 1_000_000
    for _ in range(300):
        for _ in range(rng.randint(1, 5)):
            price *= 1 + rng.gauss(0, 0.01)
            ts += rng.randint(1, 400)
            ticks.append(tick(price, ts))
    by_second: dict[int, float] = {}
    for t in ticks:
        by_second[t.ts_ms // 1000] = t.price
    closes = [by_second[k] for k in sorted(by_second)][:-1]  # the last candle never closes
    on_candles = EmaCross(fast=3, slow=8, timeframe_s=1)
    on_closes = EmaCross(fast=3, slow=8)

    from_ticks = [s for s in (on_candles.on_tick(t) for t in ticks) if s is not H]
    from_closes = [s for s in (on_closes.feed_price(c) for c in closes) if s is not H]

    assert from_ticks == from_closes
    assert len(from_closes) >= 4
