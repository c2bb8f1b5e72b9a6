"""Several strategies voting as one: the orchestrator still sees a single strategy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from actors.messages import MarketTick, Signal
from strategies.base import Strategy, StrategyError, float_between, is_number, one_of

_BUY = Signal.BUY
_SELL = Signal.SELL
_HOLD = Signal.HOLD

RULES = ("majority", "unanimous", "weighted")


def _timeframe_zero(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value != 0:
        raise StrategyError(
            f"{attribute.name}={value!r} is invalid: an aggregate decides on every tick; "
            "set timeframe_s on its members instead"
        )


class AggregateStrategy(Strategy):
    """Combine member strategies' signals into one, by ``rule``.

    Each member keeps a *stance*: its last non-HOLD signal (BUY = +1, SELL = -1, none yet = 0).
    Every tick goes to every member (each aggregates candles by its own ``timeframe_s``); the
    combined decision is then:

    - ``majority``: BUY if more than half of the members' stances are BUY, SELL if more than
      half are SELL, else neither (weights are ignored);
    - ``unanimous``: BUY if all stances are BUY, SELL if all are SELL, else neither;
    - ``weighted``: ``score = sum(weight * stance) / sum(weights)``; BUY if
      ``score >= threshold``, SELL if ``score <= -threshold``, else neither.

    The aggregate emits BUY or SELL only on the tick where the combined decision changes to it
    (going to "neither" emits HOLD, and a later return to BUY emits BUY again). It is warm when
    every member is; until then it returns HOLD but keeps tracking the decision, so the first
    warm tick is a baseline, not an edge. ``warmup`` is the largest member warmup.
    """

    name = "aggregate"

    @attrs.frozen(kw_only=True)
    class Params:
        rule: str = attrs.field(default="majority", validator=one_of(*RULES))
        threshold: float = attrs.field(
            default=0.5, validator=float_between(0.0, 1.0, low_open=True)
        )
        timeframe_s: float = attrs.field(default=0.0, validator=_timeframe_zero)

    def __init__(self, members: Sequence[tuple[Strategy, float]], **params: Any) -> None:
        super().__init__(**params)
        self._members, self._weights = _check_members(members)
        self._stances = [0] * len(self._members)
        self._decision = 0
        self._all_warm = False
        self._rule = self.params.rule
        self._threshold = float(self.params.threshold)
        self._total_weight = math.fsum(self._weights)

    @property
    def members(self) -> tuple[tuple[Strategy, float], ...]:
        return tuple(zip(self._members, self._weights, strict=True))

    @property
    def warmup(self) -> int:
        return max(member.warmup for member in self._members)

    @property
    def is_warm(self) -> bool:
        if not self._all_warm:
            self._all_warm = all(member.is_warm for member in self._members)
        return self._all_warm

    def on_tick(self, tick: MarketTick) -> Signal:
        return self._absorb([member.on_tick(tick) for member in self._members])

    def on_price(self, price: float) -> Signal:
        """Feed one decision price to every member (bypassing their candle aggregation)."""
        return self._absorb([member.feed_price(price) for member in self._members])

    def feed_price(self, price: float) -> Signal:
        # Warm-up is the members' business; counting prices here would double-gate.
        return self.on_price(price)

    def describe(self) -> str:
        """Rule and members, e.g. ``aggregate(rule=majority; ema_cross(...) x1, ...)``."""
        head = f"rule={self._rule}"
        if self._rule == "weighted":
            head += f", threshold={self._threshold:g}"
        parts = ", ".join(f"{m.describe()} x{w:g}" for m, w in self.members)
        return f"{self.name}({head}; {parts})"

    def _absorb(self, signals: list[Signal]) -> Signal:
        """Update stances from the members' signals; emit the combined decision if it is new."""
        # Nearly every tick is HOLD from every member; count() settles that in one C call.
        if signals.count(_HOLD) == len(signals):
            return _HOLD
        stances = self._stances
        changed = False
        for index, signal in enumerate(signals):
            if signal is not _HOLD:
                stance = 1 if signal is _BUY else -1
                if stances[index] != stance:
                    stances[index] = stance
                    changed = True
        if not changed:
            return _HOLD
        decision = self._combined()
        if decision == self._decision:
            return _HOLD
        self._decision = decision
        if decision == 0 or not self.is_warm:
            return _HOLD
        return _BUY if decision > 0 else _SELL

    def _combined(self) -> int:
        stances = self._stances
        if self._rule == "weighted":
            score = math.fsum(w * s for w, s in zip(self._weights, stances, strict=True))
            score /= self._total_weight
            if score >= self._threshold:
                return 1
            if score <= -self._threshold:
                return -1
            return 0
        buys = stances.count(1)
        sells = stances.count(-1)
        count = len(stances)
        if self._rule == "unanimous":
            return 1 if buys == count else -1 if sells == count else 0
        return 1 if 2 * buys > count else -1 if 2 * sells > count else 0


def _check_members(
    members: Sequence[tuple[Strategy, float]],
) -> tuple[tuple[Strategy, ...], tuple[float, ...]]:
    if not members:
        raise StrategyError(
            "aggregate: members must be a non-empty sequence of (strategy, weight) pairs"
        )
    strategies: list[Strategy] = []
    weights: list[float] = []
    for number, item in enumerate(members, start=1):
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise StrategyError(
                f"aggregate: member {number} is {item!r}; expected a (strategy, weight) pair"
            )
        strategy, weight = item
        if not isinstance(strategy, Strategy):
            raise StrategyError(
                f"aggregate: member {number} is {strategy!r}, not a Strategy instance"
            )
        if not (is_number(weight) and math.isfinite(weight) and weight > 0):
            raise StrategyError(
                f"aggregate: member {number} ({strategy.describe()}) weight={weight!r} is "
                "invalid: must be a finite number > 0"
            )
        # One object fed twice per tick would advance its indicators twice.
        for earlier, other in enumerate(strategies, start=1):
            if other is strategy:
                raise StrategyError(
                    f"aggregate: member {number} is the same object as member {earlier}; "
                    "build a separate instance for each member"
                )
        strategies.append(strategy)
        weights.append(float(weight))
    return tuple(strategies), tuple(weights)
