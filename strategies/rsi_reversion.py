"""RSI mean reversion: buy when the market leaves oversold, sell when it leaves overbought."""

from __future__ import annotations

from typing import Any

import attrs

from actors.messages import Signal
from strategies.base import (
    Strategy,
    StrategyError,
    float_between,
    int_at_least,
    timeframe_validator,
)
from strategies.indicators import Rsi
from strategies.space import FloatRange, IntRange

_BUY = Signal.BUY
_SELL = Signal.SELL
_HOLD = Signal.HOLD

_level = float_between(0.0, 100.0, low_open=True, high_open=True)


class RsiReversion(Strategy):
    """BUY when RSI crosses back up through ``oversold``, SELL when it crosses down through
    ``overbought``.

    Oversold means RSI < ``oversold``: BUY on the price where RSI goes from below ``oversold``
    to at or above it. Overbought means RSI > ``overbought``: SELL where it goes from above
    to at or below it. The first RSI value (at price ``period + 1``) is only a baseline.
    """

    name = "rsi_reversion"

    @attrs.frozen(kw_only=True)
    class Params:
        period: int = attrs.field(default=14, validator=int_at_least(1))
        oversold: float = attrs.field(default=30.0, validator=_level)
        overbought: float = attrs.field(default=70.0, validator=_level)
        timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)

        def __attrs_post_init__(self) -> None:
            if self.oversold >= self.overbought:
                raise StrategyError(
                    f"oversold={self.oversold:g} is invalid: must be less than "
                    f"overbought={self.overbought:g}"
                )

    space = {"period": IntRange(2, 50), "oversold": FloatRange(10.0, 45.0),
             "overbought": FloatRange(55.0, 90.0)}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._rsi = Rsi(self.params.period)
        self._oversold = float(self.params.oversold)
        self._overbought = float(self.params.overbought)
        self._previous: float | None = None

    @property
    def warmup(self) -> int:
        return int(self.params.period) + 1

    def on_price(self, price: float) -> Signal:
        rsi = self._rsi.update(price)
        if rsi is None:
            return _HOLD
        previous = self._previous
        self._previous = rsi
        if previous is None:
            return _HOLD
        if previous < self._oversold <= rsi:
            return _BUY
        if previous > self._overbought >= rsi:
            return _SELL
        return _HOLD
