"""Scripted, deterministic price paths for scenario tests.

Where the simulator gives a realistic but aimless market, a scenario gives a known shape (a
trend, a range, a flash crash, a gap in the feed) so that a test can state what a strategy or
the risk rules must do about it. Paths are lists, built eagerly by plain code from a seed; the
same arguments always give the same ticks.

Quotes are one tick wide around each trade: an up-move trades at the ask (a taker buy), a
down-move or no move at the bid.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from actors.market.simulator import (
    TRADE_MEDIAN_USD,
    TRADE_SIGMA,
    decimals_of,
    fit_tick,
    profile_for,
    reference_usd,
    round_to_tick,
    stable_seed,
)
from actors.messages import MarketTick, Side
from actors.pairs import split_pair

SCENARIOS = ("uptrend", "downtrend", "chop", "flash_crash", "gap")

TREND_DRIFT = 0.001
"""Log-return per tick of a trend: +-0.1 %."""
TREND_NOISE = 0.0003
CHOP_AMPLITUDE = 0.004
CHOP_PERIOD_TICKS = 40
CALM_NOISE = 0.0002
CRASH_DEPTH = 0.30
CRASH_SPAN_MS = 10_000
CRASH_RECOVERY = 0.5
"""Share of the crash won back after the bottom."""
RECOVERY_SPAN_MS = 60_000
GAP_MS = 600_000
"""Ten minutes without a tick."""
GAP_MOVE = -0.05
"""The first tick after the gap is 5 % below the last one before it."""

_SCENARIO_STREAM = 3
_MIN_TICKS = 10

# A path maker returns n log-prices relative to the start (0.0 = start price) and the index
# of the first tick after a feed gap, if any.
_PathMaker = Callable[[random.Random, int, int], tuple[list[float], int | None]]


def _trend(drift: float) -> _PathMaker:
    def make(rng: random.Random, n: int, _interval_ms: int) -> tuple[list[float], int | None]:
        x, out = 0.0, []
        for _ in range(n):
            out.append(x)
            x += drift + TREND_NOISE * rng.gauss(0.0, 1.0)
        return out, None

    return make


def _chop(rng: random.Random, n: int, _interval_ms: int) -> tuple[list[float], int | None]:
    # A sine gives the many EMA crosses a range-trading test wants; the mean-reverting noise
    # keeps it from looking machine-made.
    noise, out = 0.0, []
    for i in range(n):
        out.append(CHOP_AMPLITUDE * math.sin(2 * math.pi * i / CHOP_PERIOD_TICKS) + noise)
        noise = 0.8 * noise + 0.0005 * rng.gauss(0.0, 1.0)
    return out, None


def _flash_crash(rng: random.Random, n: int, interval_ms: int) -> tuple[list[float], int | None]:
    crash_at = n // 2
    span = max(1, min(round(CRASH_SPAN_MS / interval_ms), (n - crash_at) // 3))
    recovery = max(1, min(round(RECOVERY_SPAN_MS / interval_ms), n - crash_at - span))
    bottom = math.log(1.0 - CRASH_DEPTH)
    rebound = math.log(1.0 - CRASH_DEPTH * (1.0 - CRASH_RECOVERY))
    out = []
    for i in range(n):
        noise = CALM_NOISE * rng.gauss(0.0, 1.0)
        if i < crash_at:
            level = 0.0
        elif i < crash_at + span:
            level = bottom * (i - crash_at + 1) / span
        elif i < crash_at + span + recovery:
            level = bottom + (rebound - bottom) * (i - crash_at - span + 1) / recovery
        else:
            level = rebound
        out.append(level + noise)
    return out, None


def _gap(rng: random.Random, n: int, _interval_ms: int) -> tuple[list[float], int | None]:
    gap_at = n // 2
    x, out = 0.0, []
    for i in range(n):
        if i == gap_at:
            x += math.log1p(GAP_MOVE)
        out.append(x)
        x += TREND_NOISE * rng.gauss(0.0, 1.0)
    return out, gap_at


_MAKERS: dict[str, _PathMaker] = {
    "uptrend": _trend(TREND_DRIFT),
    "downtrend": _trend(-TREND_DRIFT),
    "chop": _chop,
    "flash_crash": _flash_crash,
    "gap": _gap,
}


def scenario_ticks(
    kind: str,
    pair: str,
    *,
    seed: int = 0,
    n: int = 600,
    start_ms: int,
    interval_ms: int = 1000,
    start_price: float | None = None,
) -> list[MarketTick]:
    """``n`` ticks of ``pair`` shaped like ``kind``, one every ``interval_ms`` from ``start_ms``.

    Kinds:
        uptrend / downtrend: +-0.1 % drift per tick with 0.03 % noise.
        chop: a +-0.4 % range with a 40-tick period and a little noise; many small crosses.
        flash_crash: calm until tick ``n // 2``, then -30 % within ~10 s of ticks, then half
            of it won back within ~60 s, then calm again.
        gap: a quiet walk; tick ``n // 2`` comes 10 minutes late and 5 % lower.

    Raises:
        ValueError: an unknown kind (naming the valid ones) or a bad size, interval or price.
    """
    maker = _MAKERS.get(kind)
    if maker is None:
        raise ValueError(f"unknown scenario {kind!r}; valid scenarios are {', '.join(SCENARIOS)}")
    if n < _MIN_TICKS:
        raise ValueError(f"scenario {kind!r} needs n >= {_MIN_TICKS} ticks, got {n!r}")
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms!r}")
    if start_ms <= 0:
        raise ValueError(f"start_ms must be a positive epoch millisecond, got {start_ms!r}")
    profile = profile_for(pair)
    if start_price is None:
        start_price = profile.start_price
    elif not (math.isfinite(start_price) and start_price > 0):
        raise ValueError(f"start_price must be positive and finite, got {start_price!r}")

    rng = random.Random(stable_seed(seed, f"{kind}:{pair}", _SCENARIO_STREAM))
    log_path, gap_index = maker(rng, n, interval_ms)

    tick = fit_tick(profile.tick_size, start_price)
    dec = decimals_of(tick)
    lot, lot_dec = profile.lot_size, decimals_of(profile.lot_size)
    base_usd = reference_usd(split_pair(pair)[0]) or 1.0
    amount_mu = math.log(TRADE_MEDIAN_USD / base_usd)

    ticks: list[MarketTick] = []
    previous = start_price
    for i, x in enumerate(log_path):
        ts = start_ms + i * interval_ms
        if gap_index is not None and i >= gap_index:
            ts += GAP_MS
        # Two ticks minimum keeps the bid of a taker buy positive.
        price = max(2 * tick, round_to_tick(start_price * math.exp(x), tick))
        side = Side.BUY if price > previous else Side.SELL
        if side is Side.BUY:
            bid, ask = round(price - tick, dec), price
        else:
            bid, ask = price, round(price + tick, dec)
        lots = max(1, round(rng.lognormvariate(amount_mu, TRADE_SIGMA) / lot))
        ticks.append(
            MarketTick(
                pair=pair, ts_ms=ts, price=price, bid=bid, ask=ask,
                amount=round(lots * lot, lot_dec), side=side,
            )
        )
        previous = price
    return ticks
