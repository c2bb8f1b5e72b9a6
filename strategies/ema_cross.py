"""EMA crossover: the benchmark strategy.

"EMA(10)/EMA(30) of trade prices, long only, an order on each cross": BUY on the decision price
where the fast EMA crosses above the slow one, SELL where it crosses below. Long-only is the
orchestrator's business (a SELL while flat places nothing); this class only reports crosses.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.messages import Signal
from strategies.base import Strategy, StrategyError, int_at_least, timeframe_validator
from strategies.indicators import Ema
from strategies.space import IntRange

_BUY = Signal.BUY
_SELL = Signal.SELL
_HOLD = Signal.HOLD

_NO_BASELINE = 2
"""Side before the first price at which both EMAs exist (sides are -1, 0, +1)."""


class EmaCross(Strategy):
    """BUY when EMA(fast) crosses above EMA(slow), SELL when it crosses below.

    Both EMAs are seeded with the simple average of their first ``period`` prices, so the
    first comparison is at price ``slow``; it sets the baseline side and emits nothing. A cross
    is a change of the strict side (fast above / below slow): prices where the EMAs are equal
    do not change the side, so above -> equal -> above is not a new cross, while starting
    equal and moving above is one.
    """

    name = "ema_cross"

    @attrs.frozen(kw_only=True)
    class Params:
        fast: int = attrs.field(default=10, validator=int_at_least(1))
        slow: int = attrs.field(default=30, validator=int_at_least(1))
        timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)

        def __attrs_post_init__(self) -> None:
            if self.fast >= self.slow:
                raise StrategyError(
                    f"fast={self.fast} is invalid: must be less than slow={self.slow}"
                )

    space = {"fast": IntRange(2, 50), "slow": IntRange(10, 200)}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._fast = Ema(self.params.fast)
        self._slow = Ema(self.params.slow)
        self._side = _NO_BASELINE

    @property
    def warmup(self) -> int:
        return int(self.params.slow)

    def on_price(self, price: float) -> Signal:
        fast = self._fast.update(price)
        slow = self._slow.update(price)
        if slow is None or fast is None:
            return _HOLD
        if fast > slow:
            side = 1
        elif fast < slow:
            side = -1
        else:
            if self._side == _NO_BASELINE:
                self._side = 0
            return _HOLD
        previous = self._side
        if side == previous:
            return _HOLD
        self._side = side
        if previous == _NO_BASELINE:
            return _HOLD
        return _BUY if side > 0 else _SELL
