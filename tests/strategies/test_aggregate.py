"""AggregateStrategy: stances, the three rules, edge-triggered output and warm-up."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from actors.messages import MarketTick, Signal
from strategies.aggregate import AggregateStrategy
from strategies.base import Strategy, StrategyError, int_at_least, timeframe_validator
from strategies.ema_cross import EmaCross

B, S, H = Signal.BUY, Signal.SELL, Signal.HOLD
_CODES = {"B": B, "S": S, ".": H}


class Scripted(Strategy):
    """A member that plays a script, one character per decision price: B, S or '.'."""

    name = "scripted"

    @attrs.frozen(kw_only=True)
    class Params:
        script: str = ""
        warm: int = attrs.field(default=1, validator=int_at_least(1))
        timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._step = 0

    @property
    def warmup(self) -> int:
        return int(self.params.warm)

    def on_price(self, price: float) -> Signal:
        script = self.params.script
        code = script[self._step] if self._step < len(script) else "."
        self._step += 1
        return _CODES[code]


def tick(i: int, price: float = 100.0) -> MarketTick:
    return MarketTick(pair="BTC/USDT", ts_ms=1_000 + i, price=price, bid=price, ask=price)


def play(aggregate: AggregateStrategy, steps: int) -> list[Signal]:
    return [aggregate.on_tick(tick(i)) for i in range(steps)]


def members(*scripts: str, weights: tuple[float, ...] = ()) -> list[tuple[Strategy, float]]:
    chosen = weights or (1.0,) * len(scripts)
    return [(Scripted(script=s), w) for s, w in zip(scripts, chosen, strict=True)]


# -- majority ----------------------------------------------------------------------------------


def test_majority_buys_when_more_than_half_of_the_stances_are_buy():
    """Two of three members holding BUY makes the aggregate BUY, once."""
    aggregate = AggregateStrategy(members("B....", "..B..", "....."))

    assert play(aggregate, 5) == [H, H, B, H, H]


def test_majority_needs_strictly_more_than_half():
    """One BUY out of two members is half, not a majority."""
    aggregate = AggregateStrategy(members("B...", "...."))

    assert play(aggregate, 4) == [H] * 4


def test_majority_sells_when_the_stances_turn_and_ignores_weights():
    """Stances persist between signals; a heavy member is still one vote under majority."""
    aggregate = AggregateStrategy(members("B..S.", "B...S", ".....", weights=(10.0, 1.0, 1.0)))

    # i=0: stances (+,+,0) BUY; i=3: (-,+,0) neither; i=4: (-,-,0) SELL
    assert play(aggregate, 5) == [B, H, H, H, S]


# -- unanimous ---------------------------------------------------------------------------------


def test_unanimous_buys_only_when_every_member_holds_buy():
    """The aggregate waits for the last member to agree."""
    aggregate = AggregateStrategy(members("B....", "..B..", "....B"), rule="unanimous")

    assert play(aggregate, 5) == [H, H, H, H, B]


def test_unanimous_sells_when_all_sell_after_a_split():
    """Disagreement makes no decision; all SELL is a SELL."""
    aggregate = AggregateStrategy(members("BS...", "B..S."), rule="unanimous")

    # i=0 all BUY; i=1 split (neither); i=3 all SELL
    assert play(aggregate, 5) == [B, H, H, S, H]


# -- weighted ----------------------------------------------------------------------------------


def test_weighted_compares_the_weighted_mean_stance_with_the_threshold():
    """Weights 3 and 1 at threshold 0.5: the heavy member alone decides, the light one cannot."""
    aggregate = AggregateStrategy(
        members("B...S.", "..S...", weights=(3.0, 1.0)), rule="weighted", threshold=0.5
    )

    # i=0: 3/4 = 0.75 >= 0.5 BUY; i=2: (3-1)/4 = 0.5, still BUY, no edge
    # i=4: (-3-1)/4 = -1 <= -0.5 SELL
    assert play(aggregate, 6) == [B, H, H, H, S, H]


def test_weighted_score_equal_to_the_threshold_decides():
    """The comparison includes the threshold itself (score >= threshold)."""
    aggregate = AggregateStrategy(
        members("B..", "...", weights=(1.0, 3.0)), rule="weighted", threshold=0.25
    )

    assert play(aggregate, 3) == [B, H, H]


def test_weighted_below_the_threshold_is_no_decision():
    """A score between -threshold and threshold emits nothing."""
    aggregate = AggregateStrategy(
        members("B..", "...", weights=(1.0, 3.0)), rule="weighted", threshold=0.3
    )

    assert play(aggregate, 3) == [H, H, H]


# -- edges and warm-up -------------------------------------------------------------------------


def test_losing_the_decision_and_regaining_it_buys_again():
    """BUY, then no majority, then BUY again is two BUY events."""
    aggregate = AggregateStrategy(members("B....", "B.S.B", "....."))

    # i=0 (+,+,0) BUY; i=2 (+,-,0) neither; i=4 (+,+,0) BUY
    assert play(aggregate, 5) == [B, H, H, H, B]


def test_a_member_repeating_its_signal_does_not_repeat_the_aggregate_signal():
    """Only a change of the combined decision is an event."""
    aggregate = AggregateStrategy(members("BBBB"))

    assert play(aggregate, 4) == [B, H, H, H]


def test_the_aggregate_is_warm_when_every_member_is():
    """warmup is the largest member warmup and is_warm waits for the slowest member."""
    aggregate = AggregateStrategy([(Scripted(warm=2), 1.0), (Scripted(warm=4), 1.0)])

    assert aggregate.warmup == 4
    play(aggregate, 3)
    assert not aggregate.is_warm
    play(aggregate, 1)
    assert aggregate.is_warm


def test_a_decision_reached_during_warm_up_is_a_baseline_not_an_event():
    """An early member's BUY is tracked but not emitted, and not emitted late either."""
    early = Scripted(script="B.....", warm=1)
    late = Scripted(script="....S.", warm=3)
    aggregate = AggregateStrategy([(early, 1.0), (late, 1.0)], rule="weighted", threshold=0.5)

    # i=0: score 0.5 -> BUY while late is cold: held; i=2 late warms, still BUY: no edge
    # i=4: score 0 -> neither; nothing to emit
    assert play(aggregate, 6) == [H] * 6


def test_warm_up_primes_every_member():
    """warm_up() feeds history through the members and discards the combined signals."""
    aggregate = AggregateStrategy([(EmaCross(fast=2, slow=3), 1.0)])
    prices = [12.0, 11.0, 10.0, 10.0]

    aggregate.warm_up(tick(i, p) for i, p in enumerate(prices))

    assert aggregate.is_warm
    assert aggregate.on_tick(tick(10, 14.0)) is B


def test_members_aggregate_candles_by_their_own_timeframe():
    """A member with 1 s candles decides only when a second closes; the aggregate follows."""
    aggregate = AggregateStrategy([(Scripted(script="B", timeframe_s=1), 1.0)])
    ticks = [tick(0), tick(500), tick(999), tick(1_000)]

    assert [aggregate.on_tick(t) for t in ticks] == [H, H, H, B]


def test_feed_price_drives_the_members_with_decision_prices():
    """Candle closes fed to the aggregate reach every member."""
    aggregate = AggregateStrategy(members("B.", ".B"), rule="unanimous")

    assert [aggregate.feed_price(p) for p in (1.0, 2.0)] == [H, B]


def test_describe_names_the_rule_and_each_member_with_its_weight():
    """describe() shows how the aggregate was built."""
    aggregate = AggregateStrategy(
        [(EmaCross(), 1.0), (EmaCross(fast=5, slow=20), 2.5)], rule="weighted", threshold=0.6
    )

    assert aggregate.describe() == (
        "aggregate(rule=weighted, threshold=0.6; "
        "ema_cross(fast=10, slow=30) x1, ema_cross(fast=5, slow=20) x2.5)"
    )


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"rule": "mostly"},
            "rule='mostly' is invalid: must be one of majority, unanimous, weighted",
        ),
        ({"threshold": 0}, r"threshold=0.0 is invalid: must be a number in \(0, 1\]"),
        ({"threshold": "1.5"}, r"threshold=1.5 is invalid: must be a number in \(0, 1\]"),
        ({"timeframe_s": 60}, "timeframe_s=60.0 is invalid: .* set timeframe_s on its members"),
    ],
)
def test_bad_params_name_the_key_the_value_and_the_valid_choices(params, message):
    """Rule, threshold and timeframe errors are StrategyErrors that explain themselves."""
    with pytest.raises(StrategyError, match=rf"^aggregate: {message}"):
        AggregateStrategy(members("B"), **params)


def test_threshold_may_be_exactly_one():
    """threshold = 1 is allowed: a weighted aggregate that needs every weight behind it."""
    assert AggregateStrategy(members("B"), rule="weighted", threshold=1).params.threshold == 1.0


@pytest.mark.parametrize(
    ("bad_members", "message"),
    [
        ([], "members must be a non-empty sequence of \\(strategy, weight\\) pairs"),
        (
            [(Scripted(), 0.0)],
            r"member 1 \(scripted\(.*\)\) weight=0.0 is invalid: must be a finite number > 0",
        ),
        ([(Scripted(), float("inf"))], "member 1 .* weight=inf is invalid"),
        ([(Scripted(), "2")], "member 1 .* weight='2' is invalid"),
        ([("ema_cross", 1.0)], "member 1 is 'ema_cross', not a Strategy instance"),
        ([Scripted()], "member 1 is <scripted.*>; expected a \\(strategy, weight\\) pair"),
    ],
)
def test_bad_members_are_refused_with_the_member_named(bad_members, message):
    """Each malformed member is reported by position with what was expected."""
    with pytest.raises(StrategyError, match=f"^aggregate: {message}"):
        AggregateStrategy(bad_members)


def test_the_same_strategy_object_cannot_be_two_members():
    """One object would see every tick twice, so it is refused."""
    shared = Scripted()

    with pytest.raises(StrategyError, match="member 2 is the same object as member 1"):
        AggregateStrategy([(shared, 1.0), (shared, 2.0)])
