"""The figures of a run, as plain functions of its equity and its trades.

Definitions (the tests check each against hand-computed values and an independent library):
- returns are daily (UTC days), the first against the starting equity; a year has 365 days
  (crypto trades every day);
- Sharpe = mean / sample standard deviation (ddof 1) of daily returns x sqrt(365), risk-free
  rate 0; Sortino = mean / downside deviation x sqrt(365), the downside deviation being
  sqrt(mean(min(r, 0)^2)) over all days;
- CAGR = (final / initial) ^ (365 days / span) - 1; Calmar = CAGR / max drawdown;
- max drawdown = the largest fall from a running peak, as a fraction of that peak, over
  every equity sample; its duration runs from that peak to the recovery (or the end);
- profit factor = gross profit / gross loss; expectancy = mean PnL per trade.

A figure that is undefined (no variance, no loss, no trades) is None, never a made-up number.
Pure code: no I/O, no clock; callable from any thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import attrs

DAYS_PER_YEAR = 365
YEAR_MS = DAYS_PER_YEAR * 86_400_000


class DrawdownTracker:
    """Streams equity samples; keeps the deepest drawdown and the longest time under water."""

    __slots__ = (
        "_peak",
        "_peak_ms",
        "_under_since",
        "deepest",
        "deepest_peak_ms",
        "deepest_recovered_ms",
        "deepest_trough_ms",
        "last_ms",
        "longest_ms",
    )

    def __init__(self) -> None:
        self._peak = -math.inf
        self._peak_ms = 0
        self._under_since: int | None = None
        self.deepest = 0.0
        """The largest fall from a running peak, as a fraction of that peak (0..1)."""
        self.deepest_peak_ms = 0
        self.deepest_trough_ms = 0
        self.deepest_recovered_ms: int | None = None
        """When equity regained the deepest drawdown's peak (None: not within the run)."""
        self.longest_ms = 0
        """The longest time from a peak until equity regained it (or until the end)."""
        self.last_ms = 0

    def update(self, ts_ms: int, value: float) -> float:
        """Take one sample; returns the current drawdown (a fraction, >= 0)."""
        self.last_ms = ts_ms
        if value >= self._peak:
            if self._under_since is not None:
                self.longest_ms = max(self.longest_ms, ts_ms - self._under_since)
                if self.deepest_recovered_ms is None and self.deepest_peak_ms == self._peak_ms \
                        and self.deepest > 0:
                    self.deepest_recovered_ms = ts_ms
                self._under_since = None
            self._peak, self._peak_ms = value, ts_ms
            return 0.0
        if self._under_since is None:
            self._under_since = self._peak_ms
        drawdown = (self._peak - value) / self._peak if self._peak > 0 else 0.0
        if drawdown > self.deepest:
            self.deepest = drawdown
            self.deepest_peak_ms = self._peak_ms
            self.deepest_trough_ms = ts_ms
            self.deepest_recovered_ms = None
        return drawdown

    @property
    def longest_so_far_ms(self) -> int:
        """``longest_ms`` counting a drawdown still open at the last sample."""
        open_for = self.last_ms - self._under_since if self._under_since is not None else 0
        return max(self.longest_ms, open_for)

    @property
    def deepest_duration_ms(self) -> int:
        """From the deepest drawdown's peak to its recovery (or the last sample)."""
        if self.deepest == 0:
            return 0
        end = self.deepest_recovered_ms if self.deepest_recovered_ms is not None \
            else self.last_ms
        return end - self.deepest_peak_ms


def max_drawdown(values: Iterable[float]) -> float:
    """Largest fall from a running peak, as a fraction of that peak."""
    tracker = DrawdownTracker()
    for i, value in enumerate(values):
        tracker.update(i, value)
    return tracker.deepest


def returns_of(initial: float, closes: Sequence[float]) -> list[float]:
    """Period returns of ``closes``, the first against ``initial``."""
    out = []
    previous = initial
    for close in closes:
        out.append(close / previous - 1 if previous else 0.0)
        previous = close
    return out


def sharpe(returns: Sequence[float], periods_per_year: int = DAYS_PER_YEAR) -> float | None:
    """Annualised Sharpe ratio (risk-free 0); None with fewer than two returns or no
    variance."""
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns) / n
    variance = sum((r - mean) ** 2 for r in returns) / (n - 1)
    if variance <= 0:
        return None
    return mean / math.sqrt(variance) * math.sqrt(periods_per_year)


def sortino(returns: Sequence[float], periods_per_year: int = DAYS_PER_YEAR) -> float | None:
    """Annualised Sortino ratio (target 0); None without returns or without a losing
    period."""
    n = len(returns)
    if n == 0:
        return None
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n)
    if downside == 0:
        return None
    return (sum(returns) / n) / downside * math.sqrt(periods_per_year)


def cagr(initial: float, final: float, span_ms: int) -> float | None:
    """Compound annual growth over ``span_ms``; None for an empty span or no equity."""
    if span_ms <= 0 or initial <= 0 or final <= 0:
        return None
    return float((final / initial) ** (YEAR_MS / span_ms) - 1)


def calmar(growth: float | None, deepest_drawdown: float) -> float | None:
    """CAGR / max drawdown; None without a drawdown or a growth figure."""
    if growth is None or deepest_drawdown <= 0:
        return None
    return growth / deepest_drawdown


@attrs.frozen(kw_only=True)
class TradeFigures:
    """What a list of closed round trips adds up to."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    expectancy: float | None
    net_pnl: float
    best: float | None
    worst: float | None
    avg_duration_ms: float | None
    longest_duration_ms: int | None


def trade_figures(pnls: Sequence[float], durations_ms: Sequence[int]) -> TradeFigures:
    """Figures of closed trades given their PnL and their durations (same order)."""
    n = len(pnls)
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_profit, gross_loss = sum(wins), -sum(losses)
    return TradeFigures(
        trades=n, wins=len(wins), losses=len(losses),
        win_rate=len(wins) / n if n else None,
        gross_profit=gross_profit, gross_loss=gross_loss,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        expectancy=sum(pnls) / n if n else None,
        net_pnl=sum(pnls),
        best=max(pnls) if n else None, worst=min(pnls) if n else None,
        avg_duration_ms=sum(durations_ms) / n if n else None,
        longest_duration_ms=max(durations_ms) if n else None,
    )


def covered_ms(intervals: Iterable[tuple[int, int]]) -> int:
    """Total time covered by the union of ``[start, end)`` intervals (time in the market)."""
    total = 0
    current_start: int | None = None
    current_end = 0
    for start, end in sorted(intervals):
        if current_start is None or start > current_end:
            if current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None:
        total += current_end - current_start
    return total
