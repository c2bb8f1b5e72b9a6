"""The embedded market simulator: endless, deterministic, crypto-looking ticks for any pairs.

It owns the price model used when no exchange and no recording is configured: a log-price
random walk per pair with Markov volatility regimes (calm / volatile), rare Poisson jumps, a
bid/ask book a few ticks wide and lot-sized trades. Everything is plain code driven by
``random.Random`` instances seeded from the run seed and a stable hash of the pair, so a seed
reproduces the same market on every machine and Python version; it runs on whichever thread
iterates it (the market data actor's) and holds no resources, so a failure is just an exception
out of ``next()``.

``profile_for`` also knows realistic start prices, tick sizes and lot sizes for well-known
assets, which the replay feed uses to model quotes and the runtime to fund non-USD quotes.
"""

from __future__ import annotations

import heapq
import math
import queue
import random
import zlib
from collections.abc import Iterator, Sequence
from decimal import Decimal

import attrs

from actors.messages import MarketTick, Side
from actors.pairs import split_pair

# -- profiles ----------------------------------------------------------------------------------


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive finite number, got {value!r}")


@attrs.frozen
class PairProfile:
    """How one pair looks: where it starts, its price and size grid and how much it moves.

    ``vol_per_sqrt_s`` is the calm-regime standard deviation of the log price over one second;
    over ``dt`` seconds it scales with ``sqrt(dt)``.
    """

    start_price: float = attrs.field(validator=_positive)
    tick_size: float = attrs.field(validator=_positive)
    lot_size: float = attrs.field(validator=_positive)
    spread_ticks: int = attrs.field(validator=attrs.validators.ge(1))
    vol_per_sqrt_s: float = attrs.field(validator=_positive)


@attrs.frozen
class _Asset:
    usd: float
    tick: float
    lot: float
    spread_ticks: int
    vol: float


# Prices are round mid-2024 figures; tick and lot sizes follow the big spot venues. Calm
# volatility of 2e-4 per sqrt(second) is ~1e-4 per 250 ms tick and ~1.2 % per calm hour for
# BTC; smaller and meme coins move more.
_ASSETS: dict[str, _Asset] = {
    "BTC": _Asset(60_000.0, 0.01, 0.00001, 1, 2.0e-4),
    "ETH": _Asset(3_000.0, 0.01, 0.0001, 1, 2.4e-4),
    "BNB": _Asset(550.0, 0.01, 0.001, 1, 2.6e-4),
    "SOL": _Asset(150.0, 0.01, 0.001, 1, 3.0e-4),
    "XRP": _Asset(0.5, 0.0001, 0.1, 1, 3.0e-4),
    "DOGE": _Asset(0.12, 0.00001, 1.0, 1, 3.6e-4),
    "ADA": _Asset(0.45, 0.0001, 0.1, 1, 3.0e-4),
    "LTC": _Asset(80.0, 0.01, 0.001, 1, 2.8e-4),
    "DOT": _Asset(6.5, 0.001, 0.01, 1, 3.0e-4),
    "AVAX": _Asset(30.0, 0.01, 0.01, 1, 3.2e-4),
    "LINK": _Asset(14.0, 0.01, 0.01, 1, 3.0e-4),
    "TRX": _Asset(0.12, 0.00001, 0.1, 1, 2.4e-4),
    "MATIC": _Asset(0.7, 0.0001, 0.1, 1, 3.2e-4),
    "POL": _Asset(0.5, 0.0001, 0.1, 1, 3.2e-4),
    "TON": _Asset(6.0, 0.001, 0.01, 1, 3.0e-4),
    "ATOM": _Asset(8.0, 0.001, 0.01, 1, 3.0e-4),
    "UNI": _Asset(8.0, 0.001, 0.01, 1, 3.2e-4),
    "XLM": _Asset(0.1, 0.00001, 1.0, 1, 3.0e-4),
    "BCH": _Asset(400.0, 0.1, 0.001, 1, 2.8e-4),
    "ETC": _Asset(25.0, 0.01, 0.01, 1, 3.0e-4),
    "NEAR": _Asset(5.0, 0.001, 0.1, 1, 3.4e-4),
    "APT": _Asset(8.0, 0.001, 0.01, 1, 3.4e-4),
    "ARB": _Asset(0.9, 0.0001, 0.1, 1, 3.4e-4),
    "OP": _Asset(2.0, 0.001, 0.01, 1, 3.4e-4),
    "FIL": _Asset(5.0, 0.001, 0.01, 1, 3.2e-4),
    "SHIB": _Asset(0.000018, 0.00000001, 1.0, 1, 4.0e-4),
    "PEPE": _Asset(0.00001, 0.00000001, 1.0, 1, 4.5e-4),
}

_UNKNOWN = _Asset(1.0, 0.0001, 0.1, 1, 3.0e-4)
"""An asset we know nothing about: worth 1 USD, quoted to 4 decimals, traded in 0.1 lots."""

USD_QUOTES = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "USD", "DAI", "TUSD"})
"""Quotes priced 1:1 with the US dollar."""

_FIAT_USD: dict[str, float] = {"EUR": 1.08, "GBP": 1.27}
"""Fiat quotes: same grid as USD, prices divided by the exchange rate."""

_CROSS_RELATIVE_TICK = 1e-4


def reference_usd(asset: str) -> float | None:
    """Roughly what one unit of ``asset`` is worth in USD, or None for an unknown asset.

    Used to fund non-USD quotes (1 BTC of cash for ETH/BTC) and to size simulated trades.
    """
    if asset in USD_QUOTES:
        return 1.0
    if asset in _FIAT_USD:
        return _FIAT_USD[asset]
    known = _ASSETS.get(asset)
    return known.usd if known is not None else None


def profile_for(pair: str) -> PairProfile:
    """A realistic profile for ``pair``.

    USD-like quotes use the base's table entry; EUR/GBP the same grid at the exchange rate.
    Any other quote makes a cross pair: price ``base_usd / quote_usd`` on a power-of-ten tick
    near 1e-4 of the price (ETH/BTC: 0.05 on a 0.00001 tick). Unknown assets count as 1 USD
    with a 0.0001 tick and 0.1 lots.

    Raises:
        PairError: ``pair`` is not a valid ``BASE/QUOTE`` symbol.
    """
    base, quote = split_pair(pair)
    asset = _ASSETS.get(base, _UNKNOWN)
    if quote in USD_QUOTES:
        price, tick = asset.usd, asset.tick
        spread = asset.spread_ticks
    elif quote in _FIAT_USD:
        price, tick = asset.usd / _FIAT_USD[quote], asset.tick
        spread = asset.spread_ticks
    else:
        quote_usd = reference_usd(quote) or _UNKNOWN.usd
        price = asset.usd / quote_usd
        tick = 10.0 ** round(math.log10(price * _CROSS_RELATIVE_TICK))
        spread = 1
    return PairProfile(
        start_price=max(tick, round_to_tick(price, tick)),
        tick_size=tick,
        lot_size=asset.lot,
        spread_ticks=spread,
        vol_per_sqrt_s=asset.vol,
    )


def decimals_of(step: float) -> int:
    """How many decimals a price or size on a ``step`` grid needs (0.01 -> 2, 1e-05 -> 5)."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def round_to_tick(price: float, tick: float) -> float:
    """``price`` on the ``tick`` grid, without binary noise such as 61837.619999999995."""
    return round(round(price / tick) * tick, decimals_of(tick))


def fit_tick(tick: float, price: float) -> float:
    """``tick``, or a power of ten near 1e-4 of ``price`` where ``tick`` is over 1 % of it.

    Recorded or scripted prices can be far from the profile's start price (XRP/ETH in 2019, a
    scenario with its own start price); a quote one tick away must still be positive.
    """
    if not (math.isfinite(price) and price > 0) or tick <= price * 1e-2:
        return tick
    return 10.0 ** round(math.log10(price * _CROSS_RELATIVE_TICK))


def stable_seed(seed: int, pair: str, stream: int = 0) -> int:
    """An RNG seed from the run seed and the pair that is the same in every process.

    Python's ``hash()`` of a string changes per process, so it must not be used here.
    """
    return ((seed & 0xFFFF_FFFF_FFFF_FFFF) << 40) | (zlib.crc32(pair.encode()) << 8) | stream


# -- the price process -------------------------------------------------------------------------

CALM = 0
VOLATILE = 1

CALM_MEAN_S = 300.0
"""Mean length of a calm spell (seconds of market time)."""
VOLATILE_MEAN_S = 120.0
"""Mean length of a volatile spell."""
VOLATILE_VOL_FACTOR = 3.0
VOLATILE_SPREAD_FACTOR = 3
JUMP_RATE_PER_S = 1.0 / 3600.0
"""About one jump per pair per hour of market time."""
JUMP_MIN, JUMP_MAX = 0.005, 0.03
TRADE_MEDIAN_USD = 300.0
TRADE_SIGMA = 1.1
"""Log-normal sigma of trade sizes: most trades small, a few a hundred times the median."""

_LIVE_STREAM = 1
_WARMUP_STREAM = 2


class _Path:
    """One pair's random walk, stepping forwards (live) or backwards (warm-up) in time.

    The regime chain and the increments are time-reversible, so a path walked backwards from
    the start price is a valid history that ends exactly where the live path begins.
    """

    __slots__ = (
        "_amount_mu",
        "_interval_ms",
        "_lot",
        "_lot_dec",
        "_price_dec",
        "_tick",
        "direction",
        "log_price",
        "pair",
        "profile",
        "regime",
        "rng",
        "t_ms",
    )

    def __init__(
        self, pair: str, profile: PairProfile, rng: random.Random, *, start_ms: int,
        interval_ms: float, direction: int,
    ) -> None:
        self.pair = pair
        self.profile = profile
        self.rng = rng
        self.t_ms = float(start_ms)
        self.direction = direction
        self.log_price = math.log(profile.start_price)
        self.regime = CALM
        self._interval_ms = interval_ms
        self._tick = profile.tick_size
        self._lot = profile.lot_size
        self._price_dec = decimals_of(profile.tick_size)
        self._lot_dec = decimals_of(profile.lot_size)
        base = split_pair(pair)[0]
        base_usd = reference_usd(base) or _UNKNOWN.usd
        self._amount_mu = math.log(TRADE_MEDIAN_USD / base_usd)

    def step(self) -> MarketTick:
        rng = self.rng
        dt_ms = self._interval_ms * (0.5 + rng.random())
        dt_s = dt_ms / 1000.0
        self.t_ms += self.direction * dt_ms

        if self.regime == CALM:
            if rng.random() < dt_s / CALM_MEAN_S:
                self.regime = VOLATILE
        elif rng.random() < dt_s / VOLATILE_MEAN_S:
            self.regime = CALM
        volatile = self.regime == VOLATILE

        sd = self.profile.vol_per_sqrt_s * math.sqrt(dt_s)
        if volatile:
            sd *= VOLATILE_VOL_FACTOR
        z = rng.gauss(0.0, 1.0)
        move = sd * z
        if rng.random() < dt_s * JUMP_RATE_PER_S:
            size = rng.uniform(JUMP_MIN, JUMP_MAX)
            move += math.log1p(size) if rng.random() < 0.5 else math.log1p(-size)
        self.log_price += move

        tick = self._tick
        spread = self.profile.spread_ticks
        if volatile:
            spread = spread * VOLATILE_SPREAD_FACTOR + (rng.random() < 0.5)
        mid_ticks = math.exp(self.log_price) / tick
        bid_n = max(1, round(mid_ticks - spread / 2))
        bid = round(bid_n * tick, self._price_dec)
        ask = round((bid_n + spread) * tick, self._price_dec)

        # Takers lean with the move: an up-tick is more often a buy lifting the ask.
        side = Side.BUY if rng.random() < 0.5 + 0.3 * math.tanh(z * self.direction) else Side.SELL
        lots = max(1, round(rng.lognormvariate(self._amount_mu, TRADE_SIGMA) / self._lot))
        return MarketTick(
            pair=self.pair,
            ts_ms=math.floor(self.t_ms),
            price=ask if side is Side.BUY else bid,
            bid=bid,
            ask=ask,
            amount=round(lots * self._lot, self._lot_dec),
            side=side,
        )


class MarketSimulator:
    """Deterministic ticks for ``pairs``: same seed, same market, on any machine.

    Args:
        pairs: symbols such as ``"BTC/USDT"``; each gets its own independent random stream.
        seed: the run seed.
        start_ms: market time (epoch ms) of the live start; warm-up history ends before it.
        tick_interval_ms: mean time between two ticks of one pair; each gap is jittered
            uniformly within +-50 % of it.
    """

    def __init__(
        self, pairs: Sequence[str], seed: int, start_ms: int, tick_interval_ms: float = 250.0,
    ) -> None:
        if not pairs:
            raise ValueError("MarketSimulator needs at least one pair")
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"MarketSimulator pairs {list(pairs)!r} name a pair twice")
        if start_ms <= 0:
            raise ValueError(f"start_ms must be a positive epoch millisecond, got {start_ms!r}")
        if not (math.isfinite(tick_interval_ms) and tick_interval_ms > 0):
            raise ValueError(f"tick_interval_ms must be positive, got {tick_interval_ms!r}")
        self.pairs = tuple(pairs)
        self.seed = seed
        self.start_ms = start_ms
        self.tick_interval_ms = tick_interval_ms
        self.profiles = {pair: profile_for(pair) for pair in self.pairs}
        # Pairs added or removed while ``ticks()`` runs on the feed thread: handed over through
        # a thread-safe queue that the generator drains between two ticks.
        self._changes: queue.SimpleQueue[tuple[bool, str]] = queue.SimpleQueue()
        self.now_ms = start_ms
        """Market time of the last live tick (where a pair added now starts)."""

    def add_pair(self, pair: str) -> None:
        """Start simulating ``pair`` from the current market time (any thread). Its warm-up
        history can be had from ``warmup_history`` as soon as this returns."""
        self.profiles[pair] = profile_for(pair)
        self._changes.put((True, pair))

    def remove_pair(self, pair: str) -> None:
        """Stop simulating ``pair`` (any thread)."""
        self._changes.put((False, pair))

    def _path(self, pair: str, stream: int, direction: int, start_ms: int | None = None
              ) -> _Path:
        rng = random.Random(stable_seed(self.seed, pair, stream))
        return _Path(
            pair, self.profiles[pair], rng, start_ms=self.start_ms if start_ms is None
            else start_ms, interval_ms=self.tick_interval_ms, direction=direction,
        )

    def warmup_history(self, pair: str, n: int, end_ms: int | None = None) -> list[MarketTick]:
        """``n`` ticks of ``pair`` ending just before ``end_ms`` (``start_ms``), oldest first.

        The history is the live path walked backwards from its start price, so it joins the
        live ticks without a seam, does not change them, and a longer history only adds older
        ticks in front of a shorter one.

        Raises:
            KeyError: ``pair`` is not simulated.
            ValueError: ``n`` is negative or the history would reach before epoch 0.
        """
        if pair not in self.profiles:
            raise KeyError(f"pair {pair!r} is not simulated; pairs are {list(self.pairs)!r}")
        if n < 0:
            raise ValueError(f"warm-up length must be >= 0, got {n!r}")
        path = self._path(pair, _WARMUP_STREAM, -1, end_ms)
        ticks = [path.step() for _ in range(n)]
        if ticks and ticks[-1].ts_ms <= 0:
            raise ValueError(
                f"{n} warm-up ticks at {self.tick_interval_ms} ms reach before epoch 0 from "
                f"start_ms={self.start_ms}"
            )
        ticks.reverse()
        return ticks

    def ticks(self) -> Iterator[MarketTick]:
        """Live ticks of all pairs, merged in timestamp order, forever.

        Each call starts the same market afresh from ``start_ms``. Ties in time go to the pair
        listed first, so the order is fully determined by the seed.
        """
        paths = [self._path(pair, _LIVE_STREAM, +1) for pair in self.pairs]
        heap = [(tick.ts_ms, i, tick) for i, tick in ((i, p.step()) for i, p in enumerate(paths))]
        heapq.heapify(heap)
        removed: set[str] = set()
        changes = self._changes
        while True:
            if not changes.empty():
                self._apply_changes(paths, heap, removed)
            if not heap:
                return
            _, i, tick = heap[0]
            if tick.pair in removed:
                heapq.heappop(heap)
                continue
            nxt = paths[i].step()
            heapq.heapreplace(heap, (nxt.ts_ms, i, nxt))
            self.now_ms = tick.ts_ms
            yield tick

    def _apply_changes(self, paths: list[_Path], heap: list[tuple[int, int, MarketTick]],
                       removed: set[str]) -> None:
        while not self._changes.empty():
            add, pair = self._changes.get()
            if not add:
                removed.add(pair)
                continue
            removed.discard(pair)
            # A pair removed and added again starts a fresh path: drop its old heap entry.
            heap[:] = [entry for entry in heap if entry[2].pair != pair]
            heapq.heapify(heap)
            path = self._path(pair, _LIVE_STREAM, +1, self.now_ms)
            paths.append(path)
            first = path.step()
            heapq.heappush(heap, (first.ts_ms, len(paths) - 1, first))
