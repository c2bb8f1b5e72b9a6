"""Which recorded files a backtest trades, over which time, and the ticks they give.

``BacktestData`` is checked when it is made, before anything runs: every file exists, has a
known header and at least one row, and the time range overlaps every pair's data; each
problem is one ``ConfigError`` that names it (the CLI exits 2). ``BacktestData.open`` streams
the files merged in time order (``actors.market.open_feeds``, never loaded whole) and keeps
the ticks before the time range as each pair's warm-up, so a strategy starts the range warm,
as it would live, without trading on what came before.

Plain code on the caller's thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from itertools import chain
from pathlib import Path

import attrs

from actors.market import FeedError, open_feeds, validate_csv
from actors.messages import MarketTick
from supervision.config import ConfigError
from supervision.research.datafiles import data_path, first_ts, last_ts
from supervision.research.timeframes import TRADES, TimeRange, show_ms, timeframe_ms


@attrs.frozen(kw_only=True)
class BacktestData:
    """Files per pair (``((pair, path), ...)``) and the time range traded."""

    files: tuple[tuple[str, str], ...]
    timerange: TimeRange = TimeRange()
    first_ms: int
    """Start of the traded span: the range's start, or the earliest row."""
    last_ms: int
    """End of the traded span: the range's end, or the latest row."""
    bar_ms: int = 60_000
    """The candles' interval (60 s for trade files): the equity is sampled this often."""

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(pair for pair, _ in self.files)

    def within(self, timerange: TimeRange) -> BacktestData:
        """The same files over a part of this span (a walk-forward window)."""
        start = timerange.start_ms if timerange.start_ms is not None else self.first_ms
        end = timerange.end_ms if timerange.end_ms is not None else self.last_ms
        return attrs.evolve(self, timerange=TimeRange(start, end), first_ms=start,
                            last_ms=end)

    def open(self, history_size: int) -> tuple[dict[str, list[MarketTick]], Iterator[MarketTick]]:
        """The warm-up ticks per pair (the last ``history_size`` before the range) and the
        ticks inside it, in time order."""
        ticks = open_feeds(dict(self.files))
        start, end = self.timerange.start_ms, self.timerange.end_ms
        warm: dict[str, deque[MarketTick]] = {p: deque(maxlen=history_size) for p in self.pairs}
        first: MarketTick | None = None
        if start is not None:
            for tick in ticks:
                if tick.ts_ms >= start:
                    first = tick
                    break
                warm[tick.pair].append(tick)
            head: Iterable[MarketTick] = () if first is None else (first,)
            ticks = chain(head, ticks)
        history = {pair: list(ring) for pair, ring in warm.items()}
        return history, ticks if end is None else _until(ticks, end)


    def estimated_ticks(self) -> int:
        """Ticks in the files (rows, four per candle), counted from their newlines."""
        total = 0
        for _, path in self.files:
            with open(path, "rb") as f:
                rows = sum(block.count(b"\n") for block in iter(partial(f.read, 1 << 20), b""))
            total += rows * (1 if validate_csv(path) == "trades" else 4)
        return total

    def preload(self, history_size: int) -> BacktestData:
        """The same data with its ticks read once into memory, for many runs over it (an
        optimiser's trials): each ``open`` then replays the list instead of parsing files."""
        history, ticks = self.open(history_size)
        return PreloadedData(files=self.files, timerange=self.timerange, first_ms=self.first_ms,
                             last_ms=self.last_ms, bar_ms=self.bar_ms, history=history,
                             ticks=tuple(ticks), history_size=history_size)


@attrs.frozen(kw_only=True)
class PreloadedData(BacktestData):
    """``BacktestData`` whose warm-up and ticks are already in memory."""

    history: dict[str, list[MarketTick]] = attrs.field(eq=False, repr=False)
    ticks: tuple[MarketTick, ...] = attrs.field(eq=False, repr=False)
    history_size: int

    def open(self, history_size: int) -> tuple[dict[str, list[MarketTick]], Iterator[MarketTick]]:
        if history_size != self.history_size:
            return super().open(history_size)
        return {p: list(h) for p, h in self.history.items()}, iter(self.ticks)

    def within(self, timerange: TimeRange) -> BacktestData:
        raise TypeError("preload the window's own data (BacktestData.within, then preload)")


def _until(ticks: Iterator[MarketTick], end_ms: int) -> Iterator[MarketTick]:
    for tick in ticks:
        if tick.ts_ms >= end_ms:
            return
        yield tick


def from_data_dir(data_dir: str | Path, pairs: Sequence[str], timeframe: str,
                  timerange: TimeRange) -> BacktestData:
    """The files ``download`` wrote for ``pairs`` at ``timeframe``."""
    bar_ms = timeframe_ms(timeframe, allow_trades=True) or 60_000
    files = []
    for pair in pairs:
        path = data_path(data_dir, pair, timeframe)
        if not path.is_file():
            hint = "" if timeframe == TRADES else f" --timeframe {timeframe}"
            raise ConfigError(
                f"data: no file for {pair} at {timeframe}: {str(path)!r} does not exist; "
                f"download it: trade-conductor download --pairs {pair}{hint} --since DATE "
                f"--data-dir {data_dir}")
        files.append((pair, str(path)))
    return from_files(files, timerange, bar_ms)


def from_files(files: Sequence[tuple[str, str]], timerange: TimeRange,
               bar_ms: int | None = None) -> BacktestData:
    """Replay files (``--replay PAIR=FILE``) over ``timerange``; the bar interval is read from
    a candle file's first rows when not given."""
    spans = []
    for pair, path in files:
        if not Path(path).is_file():
            problem = "is a folder" if Path(path).is_dir() else "does not exist"
            raise ConfigError(f"data: file {path!r} for {pair} {problem}")
        try:
            schema = validate_csv(path)
        except FeedError as exc:
            raise ConfigError(f"data: {exc}") from None
        first, last = first_ts(path), last_ts(path)
        if first is None or last is None:
            raise ConfigError(f"data: file {path!r} for {pair} has a header but no rows; "
                              "download data into it first")
        if (timerange.start_ms is not None and timerange.start_ms > last) or (
                timerange.end_ms is not None and timerange.end_ms <= first):
            raise ConfigError(f"timerange: {timerange.describe()} is outside the data of "
                              f"{pair} ({show_ms(first)} to {show_ms(last)} in {path!r})")
        if bar_ms is None and schema == "candles":
            bar_ms = _bar_ms(path)
        spans.append((first, last))
    # The span traded: the range, cut to the data (a range wider than the data would dilute
    # every annual figure with time nobody traded).
    start = max(timerange.start_ms or 0, min(f for f, _ in spans))
    end = min(timerange.end_ms or 2**62, max(la for _, la in spans) + 1)
    return BacktestData(files=tuple((p, str(f)) for p, f in files), timerange=timerange,
                        first_ms=start, last_ms=end, bar_ms=bar_ms or 60_000)


def _bar_ms(path: str) -> int:
    """The gap between a candle file's first two rows (one minute with a single row)."""
    with open(path, encoding="utf-8-sig") as f:
        next(f, None)
        stamps = []
        for line in f:
            head = line.split(",", 1)[0].strip()
            if head.isdigit():
                stamps.append(int(head))
            if len(stamps) == 2:
                return max(stamps[1] - stamps[0], 1000)
    return 60_000
