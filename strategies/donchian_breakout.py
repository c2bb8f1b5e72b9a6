"""Donchian channel breakout: trend following on new highs and lows."""

from __future__ import annotations

from typing import Any

import attrs

from actors.messages import Signal
from strategies.base import Strategy, int_at_least, timeframe_validator
from strategies.indicators import RollingExtremes
from strategies.space import IntRange

_BUY = Signal.BUY
_SELL = Signal.SELL
_HOLD = Signal.HOLD


class DonchianBreakout(Strategy):
    """BUY when price exceeds the highest of the previous ``entry_period`` prices, SELL when
    it falls below the lowest of the previous ``exit_period`` prices.

    The current price is compared with the channel *before* it joins the window. Edge
    triggered: one BUY when price breaks out above, then none while it keeps making new highs;
    another only after a price that is not above the channel. Likewise for SELL. The first
    price with full windows (price ``max(entry_period, exit_period) + 1``) can signal, since a
    breakout is judged against history, not against the previous price's state. The two
    conditions exclude each other: the exit window's low never exceeds the entry window's high.
    """

    name = "donchian_breakout"

    @attrs.frozen(kw_only=True)
    class Params:
        entry_period: int = attrs.field(default=20, validator=int_at_least(1))
        exit_period: int = attrs.field(default=10, validator=int_at_least(1))
        timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)

    space = {"entry_period": IntRange(5, 100), "exit_period": IntRange(3, 60)}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._entry = RollingExtremes(self.params.entry_period)
        self._exit = RollingExtremes(self.params.exit_period)
        self._ready = False
        self._above = False
        self._below = False

    @property
    def warmup(self) -> int:
        return max(int(self.params.entry_period), int(self.params.exit_period)) + 1

    def on_price(self, price: float) -> Signal:
        entry = self._entry
        exit_ = self._exit
        signal = _HOLD
        if self._ready or (entry.ready and exit_.ready):
            self._ready = True
            above = price > entry.high
            below = price < exit_.low
            if above and not self._above:
                signal = _BUY
            elif below and not self._below:
                signal = _SELL
            self._above = above
            self._below = below
        entry.update(price)
        exit_.update(price)
        return signal
