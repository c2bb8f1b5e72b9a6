"""A simulated spot exchange account: the paper gateway behind the execution core.

It owns the exchange side of the account — free balances, the funds reserved by resting limit
orders, and every order it has seen — so that paper trading exercises the same failure paths a
real exchange would (lot-size flooring, insufficient balance, fees, slippage, resting orders
that fill or expire later). The state actor keeps its own ledger and mirrors these balances
from the fills; both sides move money with :func:`actors.balances.apply_fill`, so starting from
the same balances and applying the same fills in the same order they agree exactly.

Plain, single-threaded and deterministic: time is the ``ts_ms`` of the message being handled,
ids come from the order ids risk assigns. It runs inside the execution actor (or the threadless
runtime). Bad input never raises: it becomes a rejected order, because an exception on a tell
would kill the execution actor and every pair's orders with it.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable

import attrs

from actors.balances import apply_fill
from actors.exchange import ceil_to_step, floor_to_step
from actors.messages import (
    ExitReason,
    Fill,
    MarketTick,
    Order,
    OrderFilled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
    builder,
)
from actors.pairs import PairError, split_pair

RECENT_ORDERS = 10_000
"""Finished orders remembered for duplicate detection (memory stays bounded in long runs)."""

ExchangeEvent = OrderUpdated | OrderFilled
"""What the exchange reports: order updates and fills, in the order they happened. A fill
carries the order's final value (the paper exchange fills an order whole)."""

_SLACK = 1e-12
"""Relative float slack when comparing a cost with a balance.

``100.1 - 100.0 - 0.1`` is ``-5.7e-15`` in binary: a balance that covers a cost exactly in
decimal must still be enough. Whatever such a cost leaves below zero is rounding, not money,
and is swept back to zero (see ``_sweep``).
"""


_BUY = Side.BUY
_MARKET = OrderType.MARKET
_FILLED = OrderStatus.FILLED
# Built for every order: function calls, not class calls (see ``actors.messages.builder``).
_fill = builder(Fill)
_order = builder(Order)
_order_filled = builder(OrderFilled)


def _short(need: float, have: float) -> bool:
    """True where ``have`` does not cover ``need`` beyond float rounding."""
    return need - have > _SLACK * max(1.0, need)


def _fmt(x: float) -> str:
    return f"{x:.8f}".rstrip("0").rstrip(".")


# -- configuration -------------------------------------------------------------------------------


def _in_range(lo: float, hi: float) -> Callable[[object, attrs.Attribute[float], float], None]:
    def check(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
        if not (isinstance(value, int | float) and math.isfinite(value) and lo <= value <= hi):
            raise ValueError(
                f"paper.{attribute.name} = {value!r} is invalid: expected a number in [{lo}, {hi}]"
            )

    return check


@attrs.frozen(kw_only=True)
class PaperConfig:
    """Fees and slippage of the simulated exchange.

    Fees are fractions of the notional, paid in the quote asset. A market order moves its price
    against the taker by ``slippage_bps_per_10k`` basis points per 10,000 quote of notional,
    capped at ``max_slippage_bps``.
    """

    taker_fee: float = attrs.field(default=0.001, validator=_in_range(0.0, 0.05))
    maker_fee: float = attrs.field(default=0.001, validator=_in_range(0.0, 0.05))
    slippage_bps_per_10k: float = attrs.field(default=1.0, validator=_in_range(0.0, 1_000.0))
    max_slippage_bps: float = attrs.field(default=50.0, validator=_in_range(0.0, 1_000.0))

    def slippage_bps(self, notional: float) -> float:
        """Basis points a market order of ``notional`` quote moves against the taker."""
        return min(self.max_slippage_bps, self.slippage_bps_per_10k * notional / 10_000.0)


# -- the exchange ------------------------------------------------------------------------------


@attrs.define(slots=True)
class _Resting:
    order: Order
    asset: str
    reserved: float


class PaperExchange:
    """A paper spot account that fills market orders against the quote they were decided on.

    Args:
        config: fees and slippage.
        balances: starting free balances per asset (copied).
        tick_size: price step of a pair.
        lot_size: amount step of a pair.

    Orders never partially fill. A resting limit fills completely, at its limit price, on the
    first tick that crosses it; it pays the maker fee and its funds (quote for a buy, including
    that fee; base for a sell) are reserved, i.e. not free, while it rests. Limit prices are
    rounded to the tick, buys down and sells up, so a limit is never worse for the trader than
    the one asked for.
    """

    def __init__(
        self,
        config: PaperConfig,
        balances: dict[str, float],
        tick_size: Callable[[str], float],
        lot_size: Callable[[str], float],
    ) -> None:
        for asset, amount in balances.items():
            if not (math.isfinite(amount) and amount >= 0):
                raise ValueError(
                    f"starting balance {asset} = {amount!r} is invalid: expected a finite "
                    "number >= 0"
                )
        self._config = config
        self._max_slippage_bps = config.max_slippage_bps
        self._slippage_bps_per_10k = config.slippage_bps_per_10k
        self._free: dict[str, float] = dict(balances)
        # A pair's steps never change; the lookup behind them may build a profile per call.
        self._tick_size = functools.cache(tick_size)
        self._lot_size = functools.cache(lot_size)
        self._orders: dict[str, Order] = {}
        """Orders not yet finished."""
        self._done: OrderedDict[str, Order] = OrderedDict()
        """The ``RECENT_ORDERS`` most recently finished orders: enough to refuse a retried
        submit (retries come within seconds) without remembering every order forever."""
        self._resting: dict[str, _Resting] = {}
        """Resting limit orders by id, in placement order (dicts keep insertion order)."""
        self._resting_by_pair: dict[str, list[str]] = {}
        self.book_changes = 0
        """Counts orders placed on or taken off the book: ``resting_pairs`` can only have
        changed when this did (the execution core rebuilds its tick interest on a change)."""

    # -- queries ---------------------------------------------------------------------------

    def balances(self) -> dict[str, float]:
        """Free balances per asset (a copy); funds reserved by resting orders are not free."""
        return dict(self._free)

    def reserved(self) -> dict[str, float]:
        """Funds held by resting limit orders, per asset."""
        out: dict[str, float] = {}
        for r in self._resting.values():
            out[r.asset] = out.get(r.asset, 0.0) + r.reserved
        return out

    def order(self, order_id: str) -> Order | None:
        """The order as last known, or None for an id never submitted (or finished longer
        than ``RECENT_ORDERS`` orders ago)."""
        return self._orders.get(order_id) or self._done.get(order_id)

    def has_resting(self, pair: str) -> bool:
        return pair in self._resting_by_pair

    def resting_pairs(self) -> frozenset[str]:
        """Pairs with at least one resting limit order."""
        return frozenset(self._resting_by_pair)

    # -- commands --------------------------------------------------------------------------

    def submit(self, order: SubmitOrder) -> list[ExchangeEvent]:
        """Place ``order``; returns what happened to it, in order.

        A duplicate ``order_id`` returns ``[]``: a retried or replayed submit never places an
        order twice. A rejected order is a single ``OrderUpdated`` with status REJECTED.
        """
        if order.order_id in self._orders or order.order_id in self._done:
            return []  # the only case without an event: the execution core relies on it
        ts = order.ts_ms
        try:
            assets = split_pair(order.pair)
        except PairError:
            return self._reject(order, order.amount, "invalid_pair", ts)
        if not (math.isfinite(order.amount) and order.amount > 0):
            return self._reject(order, order.amount, "invalid_amount", ts)
        amount = floor_to_step(order.amount, self._lot_size(order.pair))
        if amount <= 0:
            return self._reject(order, order.amount, "below_lot_size", ts)
        bid, ask = order.bid, order.ask
        if not (math.isfinite(bid) and math.isfinite(ask) and 0 < bid <= ask):
            return self._reject(order, amount, "invalid_quote", ts)
        tick = self._tick_size(order.pair)
        buy = order.side is _BUY

        if order.order_type is _MARKET:
            # ``PaperConfig.slippage_bps``, inline: this runs for every order.
            slip = min(self._max_slippage_bps,
                       self._slippage_bps_per_10k * (amount * (ask if buy else bid)) / 10_000.0
                       ) / 10_000.0
            if buy:
                price = ceil_to_step(ask * (1.0 + slip), tick)
            else:
                price = floor_to_step(bid * (1.0 - slip), tick)
            if price <= 0:
                return self._reject(order, amount, "invalid_quote", ts)
            return self._take(order, amount, None, price, assets)

        limit_in = order.limit_price
        if limit_in is None or not (math.isfinite(limit_in) and limit_in > 0):
            return self._reject(order, amount, "invalid_limit_price", ts)
        limit = floor_to_step(limit_in, tick) if buy else ceil_to_step(limit_in, tick)
        if limit <= 0:
            return self._reject(order, amount, "invalid_limit_price", ts, limit)
        if buy and limit >= ask:
            return self._take(order, amount, limit, min(ceil_to_step(ask, tick), limit), assets)
        if not buy and limit <= bid:
            return self._take(order, amount, limit, max(floor_to_step(bid, tick), limit), assets)
        return self._rest(order, amount, limit, assets)

    def on_tick(self, tick: MarketTick) -> list[ExchangeEvent]:
        """Fill the resting limits of ``tick.pair`` that the tick crosses, at their limit."""
        ids = self._resting_by_pair.get(tick.pair)
        if ids is None or not tick.is_sane():
            return []
        out: list[ExchangeEvent] = []
        for order_id in list(ids):
            r = self._resting[order_id]
            limit = r.order.limit_price
            assert limit is not None
            crossed = tick.ask <= limit if r.order.side is _BUY else tick.bid >= limit
            if crossed:
                self._release(order_id)
                o = r.order
                out.append(self._fill(order_id, o.pair, o.side, order_type=o.order_type,
                                      reason=o.reason, created_ms=o.created_ms, limit=limit,
                                      amount=o.amount, price=limit, maker=True,
                                      ts=tick.ts_ms, assets=split_pair(o.pair)))
        return out

    def cancel(self, order_id: str, ts_ms: int) -> list[ExchangeEvent]:
        """Cancel a resting order and free its funds; ``[]`` if it is unknown or finished."""
        if order_id not in self._resting:
            return []
        r = self._release(order_id)
        canceled = attrs.evolve(r.order, status=OrderStatus.CANCELED, updated_ms=ts_ms)
        self._record(canceled)
        return [OrderUpdated(order=canceled)]

    def cancel_pair(self, pair: str, ts_ms: int) -> list[ExchangeEvent]:
        """Cancel every resting order of ``pair``."""
        out: list[ExchangeEvent] = []
        for order_id in list(self._resting_by_pair.get(pair, ())):
            out.extend(self.cancel(order_id, ts_ms))
        return out

    def expire(self, ts_ms: int, ttl_ms: int) -> list[ExchangeEvent]:
        """Cancel every resting order that has rested ``ttl_ms`` or longer at ``ts_ms``."""
        if not self._resting:
            return []
        cutoff = ts_ms - ttl_ms
        stale = [oid for oid, r in self._resting.items() if r.order.created_ms <= cutoff]
        out: list[ExchangeEvent] = []
        for order_id in stale:
            out.extend(self.cancel(order_id, ts_ms))
        return out

    # -- internals -------------------------------------------------------------------------

    def _record(self, order: Order) -> None:
        """Keep an order as last known; a finished one moves to the bounded recent set."""
        order_id = order.order_id
        if not order.status.is_terminal:
            self._orders[order_id] = order
            return
        self._orders.pop(order_id, None)
        self._done[order_id] = order
        if len(self._done) > RECENT_ORDERS:
            self._done.popitem(last=False)

    def _reject(
        self, order: SubmitOrder, amount: float, why: str, ts: int, limit: float | None = None
    ) -> list[ExchangeEvent]:
        rejected = attrs.evolve(
            order.as_order(OrderStatus.REJECTED, amount, limit), reject_reason=why
        )
        self._record(rejected)
        return [OrderUpdated(order=rejected)]

    def _insufficient(
        self, order: SubmitOrder, amount: float, limit: float | None, need: float, asset: str
    ) -> list[ExchangeEvent]:
        have = self._free.get(asset, 0.0)
        why = f"insufficient_balance: need {_fmt(need)} {asset}, have {_fmt(have)}"
        return self._reject(order, amount, why, order.ts_ms, limit)

    def _take(
        self,
        order: SubmitOrder,
        amount: float,
        limit: float | None,
        price: float,
        assets: tuple[str, str],
    ) -> list[ExchangeEvent]:
        """Fill at once as taker, or reject for want of funds (never resized)."""
        base, quote = assets
        if order.side is _BUY:
            notional = amount * price
            fee = notional * self._config.taker_fee
            if _short(notional + fee, self._free.get(quote, 0.0)):
                return self._insufficient(order, amount, limit, notional + fee, quote)
        elif _short(amount, self._free.get(base, 0.0)):
            return self._insufficient(order, amount, limit, amount, base)
        # Filled on arrival: the order is never open for anyone to see, so it is reported
        # once, finished, with its fill (see ``OrderFilled.order``).
        return [self._fill(order.order_id, order.pair, order.side,
                           order_type=order.order_type, reason=order.reason,
                           created_ms=order.ts_ms,
                           limit=order.limit_price if limit is None else limit,
                           amount=amount, price=price, maker=False, ts=order.ts_ms,
                           assets=assets)]

    def _rest(
        self, order: SubmitOrder, amount: float, limit: float, assets: tuple[str, str]
    ) -> list[ExchangeEvent]:
        """Reserve the funds of a non-marketable limit and leave it on the book."""
        base, quote = assets
        if order.side is _BUY:
            asset, need = quote, amount * limit + amount * limit * self._config.maker_fee
        else:
            asset, need = base, amount
        if _short(need, self._free.get(asset, 0.0)):
            return self._insufficient(order, amount, limit, need, asset)
        self._free[asset] = self._free.get(asset, 0.0) - need
        self._sweep(asset, need)
        opened = order.as_order(OrderStatus.OPEN, amount, limit)
        self._record(opened)
        self._resting[order.order_id] = _Resting(order=opened, asset=asset, reserved=need)
        self._resting_by_pair.setdefault(order.pair, []).append(order.order_id)
        self.book_changes += 1
        return [OrderUpdated(order=opened)]

    def _release(self, order_id: str) -> _Resting:
        """Take an order off the book and return its reservation to the free balance."""
        r = self._resting.pop(order_id)
        self.book_changes += 1
        self._free[r.asset] = self._free.get(r.asset, 0.0) + r.reserved
        ids = self._resting_by_pair[r.order.pair]
        ids.remove(order_id)
        if not ids:
            del self._resting_by_pair[r.order.pair]
        return r

    def _fill(self, order_id: str, pair: str, side: Side, *, order_type: OrderType,
              reason: ExitReason, created_ms: int, limit: float | None, amount: float,
              price: float, maker: bool, ts: int, assets: tuple[str, str]) -> OrderFilled:
        """Fill the whole order at ``price``, move the money, and return the fill with the
        order's final value. An order fills once and whole, so its fill is always its first
        (``-f1``). The order is built once, directly: ``attrs.evolve`` introspects the class
        on every call, and this runs for every order."""
        config = self._config
        notional = amount * price
        fee = notional * (config.maker_fee if maker else config.taker_fee)
        fill = _fill(fill_id=f"{order_id}-f1", order_id=order_id, pair=pair, side=side,
                     amount=amount, price=price, fee=fee, ts_ms=ts, maker=maker)
        base, quote = assets
        free = self._free
        apply_fill(free, fill)
        if free[quote] < 0:  # rounding only (``_sweep``); a balance is rarely near zero
            self._sweep(quote, notional + fee)
        if free[base] < 0:
            self._sweep(base, amount)
        filled = _order(order_id=order_id, pair=pair, side=side, order_type=order_type,
                        reason=reason, amount=amount, status=_FILLED,
                        created_ms=created_ms, updated_ms=ts, limit_price=limit, filled=amount,
                        average_price=price, fee=fee)
        self._record(filled)
        return _order_filled(fill=fill, order=filled)

    def _sweep(self, asset: str, moved: float) -> None:
        """Zero a balance that moving ``moved`` left below zero by float rounding only.

        Costs within ``_SLACK`` of the balance are accepted, and releasing a reservation (its
        sum rounded once) then paying the same sum in two steps in ``apply_fill`` can differ
        in the last bit: neither is money.
        """
        v = self._free[asset]
        if v < 0 and -v <= 4 * _SLACK * max(1.0, moved):
            self._free[asset] = 0.0
