"""What an exchange accepts per pair: tick size, lot size, minimum amount and notional.

``MarketRules`` is built once per run from the markets ccxt loaded (``from_ccxt``) and then
only read: risk sizes entries with it, the paper exchange rounds with it when a real exchange's
live data is paper-traded, and the live order path rounds and checks every order with it
before the order goes out, so an order the exchange would refuse for its size is rejected here
with a clear reason instead of costing a request.

Plain, immutable after construction, safe to read from any thread. A pair the markets do not
describe falls back to ``default`` (a fine step and no minimums), so a missing market never
raises on a hot path; ``check`` reports it instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from actors.exchange.steps import ceil_to_step, floor_to_step

DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4
"""ccxt's ``precisionMode`` values (``ccxt.base.decimal_to_precision``): how a market's
``precision`` numbers read. Copied so this module never imports ccxt (it takes a second)."""

FALLBACK_STEP = 1e-8


@attrs.frozen(kw_only=True)
class PairRules:
    """One market's steps and limits; zero means "no limit"."""

    tick: float = FALLBACK_STEP
    lot: float = FALLBACK_STEP
    min_amount: float = 0.0
    max_amount: float = 0.0
    min_notional: float = 0.0
    active: bool = True
    known: bool = True


def precision_step(value: Any, mode: int) -> float | None:
    """A ccxt precision number as a step: a tick size as is, decimal places as 10**-n."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0:
        return None
    if mode == TICK_SIZE:
        return number if number > 0 else None
    # DECIMAL_PLACES (and SIGNIFICANT_DIGITS, which has no fixed step: read as places, the
    # closest fixed rule; such exchanges are rare and round again inside ccxt).
    return 10.0 ** -round(number)


def _limit(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _fmt(x: float) -> str:
    return f"{x:.12g}"


class MarketRules:
    """Tick, lot and minimums per pair; see the module docstring.

    Args:
        rules: per pair symbol (``BASE/QUOTE``).
        default: for pairs not in ``rules``.
    """

    def __init__(self, rules: Mapping[str, PairRules],
                 default: PairRules = PairRules(known=False)) -> None:
        self._rules = dict(rules)
        self._default = default

    @classmethod
    def from_ccxt(cls, markets: Mapping[str, Mapping[str, Any]], precision_mode: int = TICK_SIZE,
                  pairs: Iterable[str] | None = None) -> MarketRules:
        """Rules from ccxt's ``exchange.markets`` (``precision_mode`` is the client's
        ``precisionMode``); ``pairs`` limits them to the traded ones."""
        wanted = None if pairs is None else set(pairs)
        out: dict[str, PairRules] = {}
        for symbol, market in markets.items():
            if wanted is not None and symbol not in wanted:
                continue
            precision = market.get("precision") or {}
            limits = market.get("limits") or {}
            amount_limits = limits.get("amount") or {}
            cost_limits = limits.get("cost") or {}
            out[symbol] = PairRules(
                tick=precision_step(precision.get("price"), precision_mode) or FALLBACK_STEP,
                lot=precision_step(precision.get("amount"), precision_mode) or FALLBACK_STEP,
                min_amount=_limit(amount_limits.get("min")),
                max_amount=_limit(amount_limits.get("max")),
                min_notional=_limit(cost_limits.get("min")),
                active=market.get("active") is not False,
            )
        return cls(out)

    def rules(self, pair: str) -> PairRules:
        return self._rules.get(pair, self._default)

    def pairs(self) -> frozenset[str]:
        return frozenset(self._rules)

    def tick_size(self, pair: str) -> float:
        return self.rules(pair).tick

    def lot_size(self, pair: str) -> float:
        return self.rules(pair).lot

    def min_amount(self, pair: str) -> float:
        return self.rules(pair).min_amount

    def min_notional(self, pair: str) -> float:
        return self.rules(pair).min_notional

    def round_amount(self, pair: str, amount: float) -> float:
        """``amount`` floored to the lot: never more than was asked for."""
        return floor_to_step(amount, self.rules(pair).lot)

    def round_price(self, pair: str, price: float, side: str | None = None) -> float:
        """``price`` on the tick: a buy rounds down and a sell up (never a worse limit for the
        trader), no side to the nearest tick."""
        tick = self.rules(pair).tick
        if side == "buy":
            return floor_to_step(price, tick)
        if side == "sell":
            return ceil_to_step(price, tick)
        lower = floor_to_step(price, tick)
        upper = ceil_to_step(price, tick)
        return lower if price - lower <= upper - price else upper

    def check(self, pair: str, amount: float, price: float) -> str | None:
        """Why the exchange would refuse ``amount`` at ``price`` (both already rounded), as
        ``reason: detail``, or None where it fits. ``price`` is the expected fill price of a
        market order, the limit of a limit order."""
        rules = self.rules(pair)
        if not rules.known:
            return f"unknown_market: the exchange lists no market {pair}"
        if not rules.active:
            return f"market_inactive: {pair} is not trading at the exchange"
        if not (math.isfinite(amount) and amount > 0):
            return (f"below_lot_size: amount {_fmt(amount)} rounds to nothing on lot "
                    f"{_fmt(rules.lot)}")
        if not (math.isfinite(price) and price > 0):
            return f"invalid_price: {_fmt(price)}"
        if rules.min_amount and amount < rules.min_amount * (1 - 1e-9):
            return (f"below_min_amount: amount {_fmt(amount)} < exchange minimum "
                    f"{_fmt(rules.min_amount)} for {pair}")
        if rules.max_amount and amount > rules.max_amount * (1 + 1e-9):
            return (f"above_max_amount: amount {_fmt(amount)} > exchange maximum "
                    f"{_fmt(rules.max_amount)} for {pair}")
        notional = amount * price
        if rules.min_notional and notional < rules.min_notional * (1 - 1e-9):
            return (f"below_min_notional: notional {notional:.2f} < exchange minimum "
                    f"{_fmt(rules.min_notional)} for {pair}")
        return None

    def __repr__(self) -> str:
        return f"MarketRules({len(self._rules)} markets)"
