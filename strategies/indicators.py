"""Incremental indicators: O(1) work (amortized) and bounded memory per value.

Strategies call these on every decision price of every pair, so nothing here keeps history
beyond what the definition needs or recomputes a window. Each has ``update(x)`` returning the
current value (None until ready) and ``ready``.
"""

from __future__ import annotations

from collections import deque

MAX_PERIOD = 10_000_000
"""The longest window an indicator (and a strategy's integer parameter) takes: longer than any
history, and far below the sizes a bounded deque refuses with an OverflowError."""


def _check_period(period: int) -> None:
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        raise ValueError(f"period={period!r} is invalid: must be an integer >= 1")
    if period > MAX_PERIOD:
        raise ValueError(f"period={period!r} is invalid: must be at most {MAX_PERIOD:,}")


class _Smoothed:
    """What Ema and Rsi share: a period and one value, None until ready."""

    __slots__ = ("_period", "_value")

    def __init__(self, period: int) -> None:
        _check_period(period)
        self._period = period
        self._value: float | None = None

    @property
    def period(self) -> int:
        return self._period

    @property
    def ready(self) -> bool:
        return self._value is not None

    @property
    def value(self) -> float | None:
        return self._value


class Ema(_Smoothed):
    """Exponential moving average with ``alpha = 2 / (period + 1)``.

    Seeded with the simple average of the first ``period`` values (the TA-Lib convention), so
    it is ready after ``period`` values and no single early price dominates it. After that,
    ``ema += alpha * (x - ema)``.
    """

    __slots__ = ("_alpha", "_count", "_sum")

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._alpha = 2.0 / (period + 1)
        self._count = 0
        self._sum = 0.0

    def update(self, x: float) -> float | None:
        value = self._value
        if value is not None:
            value += self._alpha * (x - value)
            self._value = value
            return value
        self._count += 1
        self._sum += x
        if self._count == self._period:
            self._value = self._sum / self._period
        return self._value


class Rsi(_Smoothed):
    """Relative strength index with Wilder smoothing, in [0, 100].

    The first average gain and loss are simple averages of the first ``period`` price changes
    (so ``period + 1`` prices are needed); after that ``avg = (avg * (period - 1) + x) / period``.
    RSI is written ``100 * gain / (gain + loss)`` (the same as ``100 - 100 / (1 + RS)``) so it
    cannot leave [0, 100] by rounding; with no movement at all it is 50.
    """

    __slots__ = ("_changes", "_gain", "_loss", "_prev")

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._prev: float | None = None
        self._changes = 0
        self._gain = 0.0
        self._loss = 0.0

    def update(self, x: float) -> float | None:
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        change = x - prev
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        period = self._period
        if self._value is not None:
            self._gain = (self._gain * (period - 1) + gain) / period
            self._loss = (self._loss * (period - 1) + loss) / period
        else:
            self._changes += 1
            self._gain += gain
            self._loss += loss
            if self._changes < period:
                return None
            self._gain /= period
            self._loss /= period
        total = self._gain + self._loss
        # Ratio first: gain / total <= 1 exactly, whereas (100 * gain) / total can round above 100.
        self._value = 100.0 * (self._gain / total) if total > 0.0 else 50.0
        return self._value


class RollingExtremes:
    """Highest and lowest of the last ``period`` values, via monotonic deques.

    The high deque holds window values in non-increasing order, the low deque in non-decreasing
    order; equal values are all kept. When the oldest value leaves the window it is at the front
    of a deque exactly when it equals that front (a larger later value would have removed it),
    so values alone suffice and no (value, index) pairs are built per update. Each value is
    pushed and popped at most once per deque: amortized O(1) per update, memory at most
    ``period`` values in each of the window and the two deques.
    """

    __slots__ = ("_high", "_low", "_period", "_window")

    def __init__(self, period: int) -> None:
        _check_period(period)
        self._period = period
        self._window: deque[float] = deque(maxlen=period)
        self._high: deque[float] = deque()
        self._low: deque[float] = deque()

    @property
    def period(self) -> int:
        return self._period

    @property
    def ready(self) -> bool:
        """True once ``period`` values have been seen (a full window)."""
        return len(self._window) == self._period

    @property
    def high(self) -> float:
        """The highest value in the window; raises IndexError before the first update."""
        return self._high[0]

    @property
    def low(self) -> float:
        """The lowest value in the window; raises IndexError before the first update."""
        return self._low[0]

    def update(self, x: float) -> tuple[float, float] | None:
        """Add a value; returns ``(high, low)`` of the window once ready, else None."""
        window = self._window
        high = self._high
        low = self._low
        full = len(window) == self._period
        if full:
            leaving = window[0]
            if high[0] == leaving:
                high.popleft()
            if low[0] == leaving:
                low.popleft()
        window.append(x)
        while high and high[-1] < x:
            high.pop()
        high.append(x)
        while low and low[-1] > x:
            low.pop()
        low.append(x)
        if full or len(window) == self._period:
            return high[0], low[0]
        return None
