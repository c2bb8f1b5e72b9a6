"""The strategy contract: parameters, warm-up, candle aggregation and the per-tick entry point.

A strategy is a plain object owned by one pair's orchestrator and called on that actor's thread;
it does no I/O, starts no threads and places no orders. ``on_tick`` turns ticks into decision
prices (each trade price, or candle closes when ``timeframe_s > 0``) and hands them to the
subclass's ``on_price``, which returns a ``Signal`` *event*: BUY or SELL on the price where its
condition turns true, HOLD otherwise.

Failure: a bad spec fails at construction with ``StrategyError``; once built, a strategy does
not raise on finite prices (the market data actor drops insane ticks before they get here).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import attrs

from actors.messages import MarketTick, Signal
from strategies.indicators import MAX_PERIOD
from strategies.space import Range

_HOLD = Signal.HOLD

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


class StrategyError(ValueError):
    """A strategy spec that cannot be built; the message names the problem and the valid choices."""


def _show(value: Any) -> str:
    """Params as a CLI would write them: 30 not 30.0, true not True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- validators for Params classes ---------------------------------------------------------------


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool (``True`` is an int to Python, not to us)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def int_at_least(low: int) -> Validator:
    """An attrs validator: an integer (not a bool) ``>= low`` and at most ``MAX_PERIOD``
    (the integer parameters are periods)."""

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise StrategyError(
                f"{attribute.name}={value!r} is invalid: must be an integer >= {low}"
            )
        if value > MAX_PERIOD:
            raise StrategyError(
                f"{attribute.name}={value!r} is invalid: must be at most {MAX_PERIOD:,}"
            )

    return check


def float_between(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Validator:
    """An attrs validator: a finite number in the interval (``*_open`` excludes that end)."""
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    interval = f"{left}{_show(low)}, {_show(high)}{right}"

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        ok = (
            is_number(value)
            and math.isfinite(value)
            and (value > low if low_open else value >= low)
            and (value < high if high_open else value <= high)
        )
        if not ok:
            raise StrategyError(
                f"{attribute.name}={value!r} is invalid: must be a number in {interval}"
            )

    return check


def one_of(*choices: str) -> Validator:
    """An attrs validator: one of a closed set of strings."""

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise StrategyError(
                f"{attribute.name}={value!r} is invalid: must be one of {', '.join(choices)}"
            )

    return check


timeframe_validator = float_between(0.0, math.inf, high_open=True)
"""``timeframe_s``: 0 decides on every tick, > 0 on candle closes of that many seconds."""


# -- the contract ------------------------------------------------------------------------------


class Strategy(abc.ABC):
    """Base of every strategy: validated params, warm-up gating and candle aggregation.

    Subclasses set ``name`` and ``Params`` (a frozen, kw_only attrs class whose fields all
    have defaults and which includes ``timeframe_s: float = 0.0``), implement ``warmup`` and
    ``on_price``, and read their params in ``__init__`` after ``super().__init__(**params)``.

    Candles: with ``timeframe_s > 0`` ticks fall into buckets ``ts_ms // (timeframe_s*1000)``;
    a candle's close is the last tick price in its bucket, and it is decided on when the first
    tick of a later bucket arrives (only then is the close known). Buckets without ticks make
    no candle. A tick older than the current bucket arrives too late to change a decided
    candle and is ignored.

    Warm-up: ``warmup`` counts decision prices. Until that many have been seen ``on_tick`` and
    ``feed_price`` return HOLD, though indicators keep updating; the signal of the
    ``warmup``-th price itself is passed on.
    """

    name: ClassVar[str]
    Params: ClassVar[type]
    space: ClassVar[Mapping[str, Range]] = {}
    """Search ranges of the params an optimiser may tune, by field name (``strategies.space``);
    empty: the strategy cannot be optimised. Fields left out keep their configured value."""

    params: Any

    def __init__(self, **params: Any) -> None:
        self.params = _build_params(self.name, self.Params, params)
        self._prices_seen = 0
        self._warm = False
        # A user strategy that omits timeframe_s simply decides on every tick.
        timeframe_ms = float(getattr(self.params, "timeframe_s", 0.0)) * 1000.0
        # Integral bucket widths stay ints so bucket numbers are exact.
        self._timeframe_ms: float = int(timeframe_ms) if timeframe_ms.is_integer() else timeframe_ms
        self._bucket: float = -math.inf
        self._close: float | None = None

    # -- to implement --------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def warmup(self) -> int:
        """Decision prices needed before signals are meaningful."""

    @abc.abstractmethod
    def on_price(self, price: float) -> Signal:
        """Update indicators with one decision price and return the event it causes, if any."""

    # -- the entry points ----------------------------------------------------------------------

    @property
    def is_warm(self) -> bool:
        """True once ``warmup`` decision prices have been seen."""
        return self._warm

    def on_tick(self, tick: MarketTick) -> Signal:
        """Feed one tick; returns the signal of the decision price it completes, if any."""
        if self._timeframe_ms:
            price = self._candle_close(tick)
            if price is None:
                return _HOLD
        else:
            price = tick.price
        if self._warm:
            return self.on_price(price)
        return self._warming(price)

    def feed_price(self, price: float) -> Signal:
        """Feed one decision price directly (e.g. a candle close), bypassing aggregation."""
        if self._warm:
            return self.on_price(price)
        return self._warming(price)

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        """Feed history (oldest first) to prime the indicators; the signals are discarded."""
        for tick in ticks:
            self.on_tick(tick)

    def close(self) -> None:  # noqa: B027 - an optional hook: most strategies hold nothing
        """Release what the strategy holds outside this object (a process, for an isolated
        one). The orchestrator calls it when the strategy is replaced or its pair stops; it
        must be idempotent and callable from any thread. The default holds nothing."""

    def describe(self) -> str:
        """Name and params, e.g. ``ema_cross(fast=10, slow=30)``; a zero timeframe is left out."""
        shown = [
            f"{key}={_show(value)}"
            for key, value in attrs.asdict(self.params).items()
            if not (key == "timeframe_s" and value == 0)
        ]
        return f"{self.name}({', '.join(shown)})"

    def __repr__(self) -> str:
        return f"<{self.describe()}>"

    # -- internals -----------------------------------------------------------------------------

    def _warming(self, price: float) -> Signal:
        signal = self.on_price(price)
        self._prices_seen += 1
        if self._prices_seen >= self.warmup:
            self._warm = True
            return signal
        return _HOLD

    def _candle_close(self, tick: MarketTick) -> float | None:
        """The close of the candle this tick ends, or None while the candle is still open."""
        bucket = tick.ts_ms // self._timeframe_ms
        if bucket == self._bucket:
            self._close = tick.price
            return None
        if bucket < self._bucket:
            return None
        closed = self._close
        self._bucket = bucket
        self._close = tick.price
        return closed


# -- params: coercion and error wrapping ---------------------------------------------------------

_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(params_cls: type) -> dict[str, Any]:
    types = _FIELD_TYPES.get(params_cls)
    if types is None:
        if not attrs.has(params_cls):
            raise TypeError(f"{params_cls!r} must be an attrs class (see Strategy.Params)")
        # Params modules use postponed annotations, so field types are strings until resolved.
        attrs.resolve_types(params_cls)
        types = {field.name: field.type for field in attrs.fields(params_cls)}
        _FIELD_TYPES[params_cls] = types
    return types


def _build_params(name: str, params_cls: type, given: dict[str, Any]) -> Any:
    """Check keys, coerce CLI strings by field type, and build the Params value."""
    types = _field_types(params_cls)
    unknown = sorted(set(given) - set(types))
    if unknown:
        raise StrategyError(
            f"{name}: unknown parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(types)}"
        )
    coerced = {key: _coerce(name, key, value, types[key]) for key, value in given.items()}
    try:
        return params_cls(**coerced)
    except StrategyError as exc:
        raise StrategyError(f"{name}: {exc}") from None
    except (TypeError, ValueError) as exc:
        # A user-written Params may use attrs' own validators, whose messages name the key.
        raise StrategyError(f"{name}: invalid parameters: {exc}") from exc


def _coerce(name: str, key: str, value: Any, target: Any) -> Any:
    if target is float and is_number(value):
        return float(value)
    if not isinstance(value, str) or target not in (int, float, bool):
        return value
    text = value.strip()
    try:
        if target is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        return target(text)
    except ValueError:
        hint = " (use true or false)" if target is bool else ""
        raise StrategyError(
            f"{name}: {key}={value!r} is not a valid {target.__name__}{hint}"
        ) from None
