"""The benchmark data: seeded GBM trade ticks, paced live-like feeds and the recorded files.

The replay data set matches the published EMA-crossover benchmark definition: trade ticks 20
ms apart whose price follows a geometric Brownian motion with 0.04 % volatility per tick (no
drift), rounded to the pair's tick size; a taker buy trades at the ask (bid one tick below),
a sell at the bid, as ``actors.market.replay`` quotes recorded trades. Prices are generated once
per (seed, pair, length) into a compact ``array('d')`` and cached; the ``MarketTick`` objects
are built lazily while the feed iterates, like a CSV feed parsing rows, so the data set does
not inflate the process's memory. ``source_rate`` times that construction alone, so it can be
told apart from the system's own cost.

``bare_ema_loop`` is the floor and the reference: the strategy's arithmetic (EMA(10)/EMA(30)
seeded with simple averages, long only, one fill per cross: ``EMA_DEFINITION``) in a plain
Python loop over the same prices, written apart from ``strategies``; seeded with the first
price instead, it is nautilus_trader's definition. ``write_trades_csv`` writes a GBM tape as a
trades CSV, the file the peer benchmark gives both systems.
"""

from __future__ import annotations

import math
import random
import threading
import time
import zlib
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from actors.market import decimals_of, profile_for
from actors.messages import MarketTick, Side

START_MS = 1_700_000_000_000
VOL_PER_TICK = 0.0004
REPLAY_INTERVAL_MS = 20
LIVE_INTERVAL_MS = 50  # 20 ticks/s per pair

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

RECORDED_FILES: tuple[tuple[str, str, bool], ...] = (
    # (file, pair, part of the quick run)
    ("binance_btcusdt_trades_2024-08-08T2354_2024-08-09T0005.csv", "BTC/USDT", True),
    ("binance_ethusdt_trades_2024-08-08T2354_2024-08-09T0005.csv", "ETH/USDT", True),
    ("binance_btcusdt_trades_2021-01-08.csv", "BTC/USDT", True),
    ("xrpeth_trades_2019-10-11_2019-10-13.csv", "XRP/ETH", True),
    ("binance_btcusdt_1m_2021-04-20_2021-05-20.csv", "BTC/USDT", False),
    ("binance_ethusdt_1m_2021-04-20_2021-05-20.csv", "ETH/USDT", False),
    ("binance_xrpusdt_1m_2021-04-20_2021-05-20.csv", "XRP/USDT", False),
    ("binance_btcusdt_1h_2017-08-17_2024-04-21.csv", "BTC/USDT", False),
    ("binance_ethusdt_1m_2022-08-14_2022-08-15.csv", "ETH/USDT", False),
    ("binance-usdm_btcusdt-perp_1m_2022-09-05_2022-09-06.csv", "BTC/USDT", False),
    ("bybit_btcusdt_1m_2022-12-13.csv", "BTC/USDT", False),
    ("binance_btcbusd_1m_2022-12-13.csv", "BTC/BUSD", False),
    ("coinbase_ethusd_1m_2018-04-04_2018-04-05.csv", "ETH/USD", False),
)

REPLAY_PAIRS = ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT",
                "ADA/USDT", "LTC/USDT", "DOT/USDT", "AVAX/USDT")
"""Real symbols for the replay runs, each priced from its own profile (BTC 60,000 ...)."""

SYNTH_START_PRICE = 100.0


def synthetic_pairs(n: int) -> tuple[str, ...]:
    """``n`` distinct symbols unknown to the simulator's table (tick 0.0001, lot 0.1)."""
    return tuple(f"Q{i:03d}/USDT" for i in range(n))


def start_price(pair: str) -> float:
    return SYNTH_START_PRICE if pair.startswith("Q") else profile_for(pair).start_price


def _seed(seed: int, pair: str) -> int:
    return seed * 1_000_003 + zlib.crc32(pair.encode())


_CACHE: dict[tuple[int, str, int], tuple[array, array]] = {}


def gbm_path(seed: int, pair: str, n: int) -> tuple[array, array]:
    """``n`` GBM trade prices for ``pair`` on its tick grid and their taker sides (1 = buy)."""
    key = (seed, pair, n)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    rng = random.Random(_seed(seed, pair))
    gauss, getrandbits = rng.gauss, rng.getrandbits
    tick, dec = _grid(pair)
    log_p = math.log(start_price(pair))
    prices = array("d", bytes(8 * n))
    sides = array("b", bytes(n))
    exp = math.exp
    for i in range(n):
        log_p += gauss(0.0, VOL_PER_TICK)
        prices[i] = max(tick, round(exp(log_p), dec))
        sides[i] = getrandbits(1)
    _CACHE[key] = (prices, sides)
    return prices, sides


def clear_cache() -> None:
    _CACHE.clear()


def _grid(pair: str) -> tuple[float, int]:
    """``pair``'s tick size and its decimals."""
    tick = profile_for(pair).tick_size
    return tick, decimals_of(tick)


def _quote(pair: str, ts: int, price: float, buy: int, grid: tuple[float, int]) -> MarketTick:
    tick, dec = grid
    if buy:
        return MarketTick(pair=pair, ts_ms=ts, price=price, bid=round(price - tick, dec),
                          ask=price, amount=0.01, side=Side.BUY)
    return MarketTick(pair=pair, ts_ms=ts, price=price, bid=price,
                      ask=round(price + tick, dec), amount=0.01, side=Side.SELL)


class ReplaySource:
    """A finite, seeded GBM tape for ``pairs``: ``per_pair`` ticks each, ``interval_ms``
    apart per pair, pairs staggered evenly inside the interval, in timestamp order."""

    def __init__(self, pairs: Sequence[str], per_pair: int, seed: int = 7,
                 interval_ms: int = REPLAY_INTERVAL_MS) -> None:
        self.pairs = tuple(pairs)
        self.per_pair = per_pair
        self.interval_ms = interval_ms
        self.paths = [gbm_path(seed, p, per_pair) for p in self.pairs]

    def __len__(self) -> int:
        return self.per_pair * len(self.pairs)

    def __iter__(self) -> Iterator[MarketTick]:
        n = len(self.pairs)
        grids = []
        for i, pair in enumerate(self.pairs):
            tick = profile_for(pair).tick_size
            grids.append((pair, (i * self.interval_ms) // n, (tick, decimals_of(tick)),
                          self.paths[i][0], self.paths[i][1]))
        interval = self.interval_ms
        quote = _quote
        for k in range(self.per_pair):
            base = START_MS + k * interval
            for pair, offset, grid, prices, sides in grids:
                yield quote(pair, base + offset, prices[k], sides[k], grid)


def source_rate(source: ReplaySource) -> float:
    """Ticks per second of building the source's ticks alone (no system behind it)."""
    t0 = time.perf_counter()
    count = 0
    for _ in source:
        count += 1
    return count / (time.perf_counter() - t0)


class LiveSource:
    """An endless (until ``stop`` or ``seconds`` of market time) GBM feed of ``pairs`` at
    ``interval_ms`` per pair, generated on the fly; meant to be paced at speed 1 by the
    market data actor. Pairs are staggered evenly inside the interval, as independent
    exchange streams would be, rather than arriving as one burst."""

    def __init__(self, pairs: Sequence[str], seconds: float | None, stop: threading.Event,
                 *, seed: int = 11, interval_ms: int = LIVE_INTERVAL_MS,
                 start_ms: int = START_MS) -> None:
        self.pairs = tuple(pairs)
        self.steps = None if seconds is None else int(seconds * 1000 / interval_ms)
        self.stop = stop
        self.seed = seed
        self.interval_ms = interval_ms
        self.start_ms = start_ms

    def walkers(self, seed: int | None = None) -> list[list[Any]]:
        """Per pair, in order: [pair, its index, tick size, decimals, log price, its rng]."""
        return [self.walker(pair, i, seed) for i, pair in enumerate(self.pairs)]

    def walker(self, pair: str, index: int, seed: int | None = None) -> list[Any]:
        return [pair, index, *_grid(pair), math.log(start_price(pair)),
                random.Random(_seed(self.seed if seed is None else seed, pair))]

    def __iter__(self) -> Iterator[MarketTick]:
        n = len(self.pairs)
        state = self.walkers()
        k = 0
        stop = self.stop
        while (self.steps is None or k < self.steps) and not stop.is_set():
            base = self.start_ms + k * self.interval_ms
            for entry in state:
                yield _walk(entry, base + (entry[1] * self.interval_ms) // n)
            k += 1


def _walk(entry: list[Any], ts_ms: int) -> MarketTick:
    """The walker's next tick at ``ts_ms`` (its log price moves one GBM step)."""
    pair, _, tick, dec, log_p, rng = entry
    log_p += rng.gauss(0.0, VOL_PER_TICK)
    entry[4] = log_p
    price = max(tick, round(math.exp(log_p), dec))
    return _quote(pair, ts_ms, price, rng.getrandbits(1), (tick, dec))


EMA_DEFINITION = (
    "EMA(n): alpha = 2 / (n + 1), ema += alpha * (price - ema), seeded with the simple average "
    "of the first n prices (the TA-Lib convention), so both EMAs first exist at price 30; "
    "the side (fast above / below slow) at that price is the baseline, and each change of "
    "strict side after it is a cross; long only: a BUY cross opens when flat, a SELL cross "
    "closes when long, one fill each"
)
"""The strategy the replay and peer benchmarks trade (``strategies.ema_cross``), in words."""


class PhasedSource(LiveSource):
    """``LiveSource`` whose interval per pair changes by phase: ``phases`` is a list of
    (market seconds, interval ms), run in order, then the feed ends. The feed thread's
    ``perf_counter_ns`` at the first tick of each phase is kept in ``phase_ns`` (the burst's
    start and end on the clock that stamps ``recv_ns``); ``produced`` counts every tick
    yielded, so that processed + shed can be checked against it.

    The walks are drawn when the source is made, before the system starts (the same ticks as
    ``LiveSource`` would draw on the fly): drawn in the feed thread they cost 3.2 µs a tick,
    about 0.06 of a core at 20,000 ticks/s that the system under test would be charged for,
    as a socket reader's decoding would not. They hold 9 bytes a tick (6.5 MB for the
    1,000-pair burst run), counted in the run's RSS."""

    def __init__(self, pairs: Sequence[str], phases: Sequence[tuple[float, int]],
                 stop: threading.Event, *, seed: int = 11, history: int = 0) -> None:
        super().__init__(pairs, None, stop, seed=seed)
        self.phases = tuple(phases)
        self.phase_ns: list[int] = []
        self.produced = 0
        self.history = history
        steps = sum(int(s * 1000 / i) for s, i in self.phases)
        # ``gbm_path`` with this source's seed draws what ``_walk`` would, step by step.
        self._walks = [(pair, _grid(pair), *gbm_path(seed, pair, steps)) for pair in self.pairs]

    def warmup(self, pair: str) -> list[MarketTick]:
        """``history`` ticks of ``pair``'s own walk before the first (``MarketSource`` seeds
        the pair's history ring with them and its strategy warms up on them), one pair at a
        time: 2,000 ticks x 1,000 pairs held at once would be 400 MB."""
        i = self.pairs.index(pair)
        entry = self.walker(pair, i, self.seed + 1)
        interval = self.phases[0][1] if self.phases else LIVE_INTERVAL_MS
        start = self.start_ms - self.history * interval
        return [_walk(entry, start + k * interval + i * interval // len(self.pairs))
                for k in range(self.history)]

    def __iter__(self) -> Iterator[MarketTick]:
        n = len(self.pairs)
        walks = self._walks
        stop, perf_ns = self.stop, time.perf_counter_ns
        start = float(self.start_ms)
        step = 0
        for seconds, interval in self.phases:
            self.phase_ns.append(0)
            steps = int(seconds * 1000 / interval)
            for k in range(steps):
                if stop.is_set():
                    return
                base = start + k * interval
                for i, (pair, grid, prices, sides) in enumerate(walks):
                    if not self.phase_ns[-1]:
                        self.phase_ns[-1] = perf_ns()
                    self.produced += 1
                    yield _quote(pair, int(base + i / n * interval), prices[step],
                                 sides[step], grid)
                step += 1
            start += steps * interval


def bare_ema_loop(prices: Sequence[float], fast: int = 10, slow: int = 30, *,
                  seed: str = "sma") -> tuple[int, float]:
    """The strategy's arithmetic alone: returns (fills, seconds).

    ``seed="sma"``: the conventions of ``strategies.ema_cross`` (``EMA_DEFINITION``): each
    EMA is seeded with the simple average of its first ``period`` prices. ``seed="first"``:
    each EMA starts at the first price and counts as ready after ``period`` prices
    (nautilus_trader's ``ExponentialMovingAverage``). Either way the first comparison is at
    price ``slow``, whose side is the baseline; a change of strict side is a cross; long
    only, so a BUY cross opens when flat and a SELL cross closes when long, one fill each.
    """
    if seed not in ("sma", "first"):
        raise ValueError(f"seed={seed!r} is invalid: expected 'sma' or 'first'")
    t0 = time.perf_counter()
    a_fast, a_slow = 2.0 / (fast + 1), 2.0 / (slow + 1)
    ef = es = prices[0] if prices else 0.0
    sum_f = sum_s = 0.0
    sma = seed == "sma"
    side = 2  # no baseline yet
    long = False
    fills = 0
    for i, x in enumerate(prices):
        if i >= slow:
            ef += a_fast * (x - ef)
            es += a_slow * (x - es)
        elif sma:
            if i < fast:
                sum_f += x
                if i == fast - 1:
                    ef = sum_f / fast
            else:
                ef += a_fast * (x - ef)
            sum_s += x
            if i < slow - 1:
                continue
            es = sum_s / slow
        else:
            if i:
                ef += a_fast * (x - ef)
                es += a_slow * (x - es)
            if i < slow - 1:
                continue
        if ef > es:
            now = 1
        elif ef < es:
            now = -1
        else:
            if side == 2:
                side = 0
            continue
        if now == side:
            continue
        previous, side = side, now
        if previous == 2:
            continue
        if now > 0 and not long:
            long = True
            fills += 1
        elif now < 0 and long:
            long = False
            fills += 1
    return fills, time.perf_counter() - t0


def write_trades_csv(path: str | Path, pair: str, n: int, seed: int = 7,
                     interval_ms: int = REPLAY_INTERVAL_MS) -> None:
    """Write ``ReplaySource([pair], n, seed)``'s tape as a trades CSV (``actors.market.replay``
    reads it back into the same ticks): one row per tick, amount 0.01, the taker's side."""
    prices, sides = gbm_path(seed, pair, n)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("timestamp_ms,price,amount,side\n")
        f.writelines(f"{START_MS + i * interval_ms},{prices[i]!r},0.01,"
                     f"{'buy' if sides[i] else 'sell'}\n" for i in range(n))


def recorded_files(quick: bool) -> list[tuple[Path, str]]:
    """The recorded files present in ../shared/data (the quick run takes the trade files)."""
    out = []
    for name, pair, in_quick in RECORDED_FILES:
        path = SHARED_DATA / name
        if path.is_file() and (in_quick or not quick):
            out.append((path, pair))
    return out


def first_price(path: Path) -> float:
    """The first usable price of a trades or candles CSV (to size a 0.01-unit stake)."""
    with path.open(encoding="utf-8-sig") as f:
        next(f, None)
        for line in f:
            parts = line.strip().split(",")
            try:
                price = float(parts[1])
            except (IndexError, ValueError):
                continue
            if math.isfinite(price) and price > 0:
                return price
    return 1.0
