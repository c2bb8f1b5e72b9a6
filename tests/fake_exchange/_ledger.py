"""The fake Binance's account and market state: books, balances, orders, fills, public trades.

Plain synchronous code behind one lock: the server's event-loop thread calls it for each
request, and test threads call it through ``FakeBinance``'s control methods. Each mutating call
returns the websocket events it caused (``(stream name, payload)`` pairs) for the server to
push. A request that Binance would refuse raises ``ApiError`` and leaves the state untouched.

Matching model (simpler than Binance's, documented in the package docstring):
- the book is one level each side (``bid``/``ask``) with unlimited size for market orders;
- a market order fills at once, in full, at the ask (buy) or bid (sell);
- a marketable limit fills at once at the touch (price improvement), as a taker;
- a resting limit fills, as a maker at its own price, when ``set_book``/``set_price`` moves
  the touch through it (in full) or when a public trade crosses it (up to the trade's amount).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

import attrs

from . import _wire
from ._records import MarketSpec, OrderRecord, TradeRecord, to_decimal
from ._wire import ZERO, Json, fmt

Event = tuple[str, Json]

_CLIENT_ID = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
_NUMBER_RANGE = "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'"
MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_DUPLICATE = "Duplicate order sent."


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ApiError(Exception):
    """A refusal in Binance's form: an HTTP status and a ``{"code", "msg"}`` body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg


def _missing(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                "or malformed.")


def _decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                                   f"range is {_NUMBER_RANGE}.")
    return value


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                                   "range is '^[0-9]{1,20}$'.") from None


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    return step == 0 or value % step == 0


def _filter_failure(name: str) -> ApiError:
    return ApiError(400, -1013, f"Filter failure: {name}")


INTERVAL_MS = {"1s": 1000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
               "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
               "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
               "3d": 259_200_000, "1w": 604_800_000}
_MONDAY_MS = 4 * 86_400_000  # 1970-01-05, the first Monday: Binance's weeks start on Monday


def _bucket(time_ms: int, interval: str) -> int:
    step = INTERVAL_MS[interval]
    offset = _MONDAY_MS if interval == "1w" else 0
    return (time_ms - offset) // step * step + offset


def _live_candles(points: Iterable[tuple[int, Decimal, Decimal]],
                  interval: str) -> dict[int, list[Decimal]]:
    """open, high, low, close, volume, trade count per bucket of the prices seen."""
    candles: dict[int, list[Decimal]] = {}
    for time_ms, price, qty in points:
        row = candles.get(_bucket(time_ms, interval))
        if row is None:
            candles[_bucket(time_ms, interval)] = [price, price, price, price, qty,
                                                   Decimal(1 if qty else 0)]
        else:
            row[1], row[2], row[3] = max(row[1], price), min(row[2], price), price
            row[4] += qty
            row[5] += 1 if qty else 0
    return candles


@attrs.frozen(kw_only=True)
class BalanceRecord:
    """One asset's balance: ``free`` can be spent, ``locked`` backs open orders."""

    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@attrs.frozen(kw_only=True)
class PublicTrade:
    """A trade on the fake's public tape (``/api/v3/trades``, ``@trade`` stream)."""

    trade_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    time_ms: int
    buyer_is_maker: bool


@attrs.define
class _Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@attrs.define
class _Order:
    order_id: int
    client_order_id: str
    spec: MarketSpec
    side: str
    type: str
    time_in_force: str
    price: Decimal
    quantity: Decimal
    quote_order_qty: Decimal
    created_ms: int
    updated_ms: int
    executed_qty: Decimal = ZERO
    cumulative_quote_qty: Decimal = ZERO
    status: str = "NEW"

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty

    def record(self) -> OrderRecord:
        return OrderRecord(
            order_id=self.order_id, client_order_id=self.client_order_id,
            symbol=self.spec.symbol, side=self.side, type=self.type,
            time_in_force=self.time_in_force, price=self.price, quantity=self.quantity,
            quote_order_qty=self.quote_order_qty, executed_qty=self.executed_qty,
            cumulative_quote_qty=self.cumulative_quote_qty, status=self.status,
            created_ms=self.created_ms, updated_ms=self.updated_ms)


@attrs.define
class _Book:
    spec: MarketSpec
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_qty: Decimal = Decimal(1000)
    ask_qty: Decimal = Decimal(1000)
    last: Decimal | None = None
    last_qty: Decimal = ZERO
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    update_id: int = 1
    tape: deque[PublicTrade] = attrs.field(factory=lambda: deque(maxlen=1000))
    # (time_ms, price, qty) of every price seen (qty 0 for set_book), for live klines.
    points: deque[tuple[int, Decimal, Decimal]] = attrs.field(
        factory=lambda: deque(maxlen=20_000))
    seeded: dict[str, dict[int, list[Decimal]]] = attrs.field(factory=dict)
    history: list[PublicTrade] = attrs.field(factory=list)
    """Seeded past trades (``seed_trades``), oldest first, before the live tape."""

    def saw_price(self, price: Decimal, time_ms: int, qty: Decimal = ZERO) -> None:
        self.points.append((time_ms, price, qty))
        if self.open is None:
            self.open = price
        self.high = price if self.high is None else max(self.high, price)
        self.low = price if self.low is None else min(self.low, price)
        self.last = price


class Ledger:
    """All exchange state of one fake Binance; every public method takes the lock."""

    def __init__(self, specs: Mapping[str, MarketSpec], balances: Mapping[str, object],
                 fee_rate: object = 0, clock: Callable[[], int] = now_ms) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.fee_rate = to_decimal(fee_rate)
        self.specs = dict(specs)
        self.by_id = {spec.id: spec for spec in self.specs.values()}
        self._books = {symbol: _Book(spec) for symbol, spec in self.specs.items()}
        self._balances: dict[str, _Balance] = {}
        for spec in self.specs.values():
            self._balances.setdefault(spec.base, _Balance())
            self._balances.setdefault(spec.quote, _Balance())
        for asset, free in balances.items():
            self._balances[asset] = _Balance(free=to_decimal(free))
        self._orders: dict[int, _Order] = {}
        self._my_trades: list[TradeRecord] = []
        self._next_order_id = 1_000_001
        self._next_trade_id = 5_000_001
        self._events: list[Event] = []
        for symbol, spec in self.specs.items():
            if spec.price is not None:
                self.set_book(symbol, spec.price, spec.price)

    # ----------------------------------------------------------------- test control
    def spec(self, symbol: str) -> MarketSpec:
        try:
            return self.specs[symbol]
        except KeyError:
            raise KeyError(f"unknown market {symbol!r}; the fake lists "
                           f"{sorted(self.specs)}") from None

    def set_book(self, symbol: str, bid: object, ask: object, bid_qty: object = None,
                 ask_qty: object = None, last: object = None) -> list[Event]:
        """Move the touch; resting limits it crosses fill as makers at their own price."""
        with self.lock:
            self._events = []
            book = self._books[self.spec(symbol).symbol]
            book.bid, book.ask = to_decimal(bid), to_decimal(ask)
            if book.bid > book.ask:
                raise ValueError(f"crossed book for {symbol}: bid {bid} > ask {ask}")
            if bid_qty is not None:
                book.bid_qty = to_decimal(bid_qty)
            if ask_qty is not None:
                book.ask_qty = to_decimal(ask_qty)
            book.update_id += 1
            book.saw_price(to_decimal(last) if last is not None else (book.bid + book.ask) / 2,
                           self.clock())
            for order in self._resting(book.spec):
                if ((order.side == "BUY" and order.price >= book.ask)
                        or (order.side == "SELL" and order.price <= book.bid)):
                    self._fill(order, order.remaining, order.price, is_maker=True)
            self._emit_book(book)
            return self._events

    def set_price(self, symbol: str, price: object, spread: object = 0,
                  size: object = None) -> list[Event]:
        """Bid/ask around ``price`` (``spread`` is absolute, rounded out to the tick)."""
        spec = self.spec(symbol)
        mid, half = to_decimal(price), to_decimal(spread) / 2
        bid = ((mid - half) / spec.tick_size).to_integral_value(ROUND_FLOOR) * spec.tick_size
        ask = ((mid + half) / spec.tick_size).to_integral_value(ROUND_CEILING) * spec.tick_size
        return self.set_book(symbol, bid, ask, size, size, last=mid)

    def public_trade(self, symbol: str, price: object, amount: object,
                     side: str) -> list[Event]:
        """A trade by other participants; ``side`` is the taker's. Crossed limits fill first."""
        taker = side.upper()
        if taker not in ("BUY", "SELL"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        with self.lock:
            self._events = []
            spec = self.spec(symbol)
            book = self._books[spec.symbol]
            px, left = to_decimal(price), to_decimal(amount)

            def crosses(order: _Order) -> bool:
                if order.side == "BUY":
                    return order.price > px or (order.price == px and taker == "SELL")
                return order.price < px or (order.price == px and taker == "BUY")

            crossed = [o for o in self._resting(spec) if crosses(o)]
            crossed.sort(key=lambda o: (-o.price if o.side == "BUY" else o.price, o.order_id))
            for order in crossed:
                if left <= 0:
                    break
                qty = min(order.remaining, left)
                self._fill(order, qty, order.price, is_maker=True)
                left -= qty
            if left > 0:
                self._tape(book, px, left, buyer_is_maker=taker == "SELL")
            if book.bid is None or book.ask is None:
                book.bid = book.ask = px
            self._emit_ticker(book)
            return self._events

    def set_balance(self, asset: str, free: object, locked: object = None) -> None:
        with self.lock:
            balance = self._balances.setdefault(asset, _Balance())
            balance.free = to_decimal(free)
            if locked is not None:
                balance.locked = to_decimal(locked)

    def orders(self) -> list[OrderRecord]:
        with self.lock:
            return [o.record() for o in self._orders.values()]

    def my_trades(self) -> list[TradeRecord]:
        with self.lock:
            return list(self._my_trades)

    def balances(self) -> dict[str, BalanceRecord]:
        with self.lock:
            return {asset: BalanceRecord(free=b.free, locked=b.locked)
                    for asset, b in self._balances.items()}

    def public_trades(self, symbol: str) -> list[PublicTrade]:
        with self.lock:
            return list(self._books[self.spec(symbol).symbol].tape)

    # ------------------------------------------------------------- public endpoints
    def _spec_by_id(self, market_id: str | None) -> MarketSpec:
        if not market_id:
            raise _missing("symbol")
        spec = self.by_id.get(market_id)
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return spec

    def _selected(self, params: Mapping[str, str]) -> tuple[list[MarketSpec], bool]:
        """Markets named by ``symbol`` or ``symbols`` (a JSON list); bool: single object."""
        if params.get("symbol"):
            return [self._spec_by_id(params["symbol"])], True
        if params.get("symbols"):
            try:
                ids = json.loads(params["symbols"])
            except ValueError:
                raise ApiError(400, -1100, "Illegal characters found in parameter "
                                           "'symbols'.") from None
            return [self._spec_by_id(str(i)) for i in ids], False
        return list(self.specs.values()), False

    def exchange_info(self, params: Mapping[str, str]) -> Json:
        with self.lock:
            specs, _ = self._selected(params)
            return _wire.exchange_info(specs, self.clock())

    def ticker_24hr(self, params: Mapping[str, str]) -> Json | list[Json]:
        with self.lock:
            specs, single = self._selected(params)
            rows = [self._ticker_json(self._books[s.symbol]) for s in specs]
            return rows[0] if single else rows

    def book_ticker(self, params: Mapping[str, str]) -> Json | list[Json]:
        with self.lock:
            specs, single = self._selected(params)
            rows = [self._book_ticker_json(self._books[s.symbol]) for s in specs]
            return rows[0] if single else rows

    def ticker_price(self, params: Mapping[str, str]) -> Json | list[Json]:
        with self.lock:
            specs, single = self._selected(params)
            rows = [{"symbol": s.id, "price": fmt(self._books[s.symbol].last)} for s in specs]
            return rows[0] if single else rows

    def avg_price(self, params: Mapping[str, str]) -> Json:
        with self.lock:
            book = self._books[self._spec_by_id(params.get("symbol")).symbol]
            return {"mins": 5, "price": fmt(book.last), "closeTime": self.clock()}

    def depth(self, params: Mapping[str, str]) -> Json:
        with self.lock:
            book = self._books[self._spec_by_id(params.get("symbol")).symbol]
            return {
                "lastUpdateId": book.update_id,
                "bids": [] if book.bid is None else [[fmt(book.bid), fmt(book.bid_qty)]],
                "asks": [] if book.ask is None else [[fmt(book.ask), fmt(book.ask_qty)]],
            }

    def trades(self, params: Mapping[str, str]) -> list[Json]:
        with self.lock:
            book = self._books[self._spec_by_id(params.get("symbol")).symbol]
            limit = _int_param(params, "limit") or 500
            return [{"id": t.trade_id, "price": fmt(t.price), "qty": fmt(t.qty),
                     "quoteQty": fmt(t.price * t.qty), "time": t.time_ms,
                     "isBuyerMaker": t.buyer_is_maker, "isBestMatch": True}
                    for t in list(book.tape)[-limit:]]

    def klines(self, params: Mapping[str, str]) -> list[list[Any]]:
        """Candles: seeded ones, overridden bucket by bucket by those built from live prices."""
        with self.lock:
            book = self._books[self._spec_by_id(params.get("symbol")).symbol]
            interval = params.get("interval") or ""
            if not interval:
                raise _missing("interval")
            if interval not in INTERVAL_MS:
                raise ApiError(400, -1120, "Invalid interval.")
            rows = {t: list(r) for t, r in book.seeded.get(interval, {}).items()}
            rows.update(_live_candles(book.points, interval))
            start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
            limit = min(_int_param(params, "limit") or 500, 1000)
            opens = [t for t in sorted(rows) if (start is None or t >= start)
                     and (end is None or t <= end)]
            opens = opens[:limit] if start is not None else opens[-limit:]
            step = INTERVAL_MS[interval]
            return [[t, fmt(rows[t][0]), fmt(rows[t][1]), fmt(rows[t][2]), fmt(rows[t][3]),
                     fmt(rows[t][4]), t + step - 1, fmt(rows[t][4] * rows[t][3]),
                     int(rows[t][5]), fmt(ZERO), fmt(ZERO), "0"] for t in opens]

    def seed_klines(self, symbol: str, interval: str, rows: Iterable[Iterable[object]]) -> None:
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}; valid: {', '.join(INTERVAL_MS)}")
        with self.lock:
            book = self._books[self.spec(symbol).symbol]
            table = book.seeded.setdefault(interval, {})
            for row in rows:
                open_ms, *ohlcv = list(row)
                if len(ohlcv) != 5:
                    raise ValueError(f"a kline is [open_ms, open, high, low, close, volume], "
                                     f"got {row!r}")
                table[_bucket(int(str(open_ms)), interval)] = [
                    *(to_decimal(v) for v in ohlcv), ZERO]

    def seed_trades(self, symbol: str, rows: Iterable[Iterable[object]]) -> None:
        with self.lock:
            book = self._books[self.spec(symbol).symbol]
            for row in rows:
                time_ms, price, qty, side = list(row)
                if side not in ("buy", "sell"):
                    raise ValueError(f"a seeded trade is [time_ms, price, qty, 'buy'|'sell'], "
                                     f"got {row!r}")
                book.history.append(PublicTrade(
                    trade_id=self._next_trade_id, symbol=book.spec.symbol,
                    price=to_decimal(price), qty=to_decimal(qty), time_ms=int(str(time_ms)),
                    buyer_is_maker=side == "sell"))
                self._next_trade_id += 1
            book.history.sort(key=lambda t: (t.time_ms, t.trade_id))

    def agg_trades(self, params: Mapping[str, str]) -> list[Json]:
        with self.lock:
            book = self._books[self._spec_by_id(params.get("symbol")).symbol]
            limit = _int_param(params, "limit") or 500
            start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
            from_id = _int_param(params, "fromId")
            rows = [t for t in (*book.history, *book.tape)
                    if (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)
                    and (from_id is None or t.trade_id >= from_id)]
            rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
            return [{"a": t.trade_id, "p": fmt(t.price), "q": fmt(t.qty), "f": t.trade_id,
                     "l": t.trade_id, "T": t.time_ms, "m": t.buyer_is_maker, "M": True}
                    for t in rows]

    # ------------------------------------------------------------ signed endpoints
    def account(self, params: Mapping[str, str]) -> Json:
        with self.lock:
            omit_zero = params.get("omitZeroBalances") == "true"
            balances = [{"asset": a, "free": fmt(b.free), "locked": fmt(b.locked)}
                        for a, b in sorted(self._balances.items())
                        if not (omit_zero and b.free == 0 and b.locked == 0)]
            rate = fmt(self.fee_rate)
            return {
                "makerCommission": int(self.fee_rate * 10000),
                "takerCommission": int(self.fee_rate * 10000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": rate, "taker": rate, "buyer": fmt(ZERO),
                                    "seller": fmt(ZERO)},
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.clock(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 354937868,
            }

    def new_order(self, params: Mapping[str, str], *, test: bool = False,
                  force_insufficient: bool = False) -> tuple[Json, list[Event]]:
        """``POST /api/v3/order`` (``test``: validate only, as ``/api/v3/order/test``)."""
        with self.lock:
            self._events = []
            spec = self._spec_by_id(params.get("symbol"))
            side = params.get("side") or ""
            if not side:
                raise _missing("side")
            if side not in ("BUY", "SELL"):
                raise ApiError(400, -1117, "Invalid side.")
            kind = params.get("type") or ""
            if not kind:
                raise _missing("type")
            if kind not in ("MARKET", "LIMIT", "LIMIT_MAKER"):
                raise ApiError(400, -1116, "Invalid orderType.")
            client_id = params.get("newClientOrderId") or f"fake{self._next_order_id}"
            if not _CLIENT_ID.match(client_id):
                raise ApiError(400, -1100, "Illegal characters found in parameter "
                                           "'newClientOrderId'; legal range is "
                                           "'^[a-zA-Z0-9-_]{1,36}$'.")
            resp_type = params.get("newOrderRespType") or "FULL"
            if resp_type not in ("ACK", "RESULT", "FULL"):
                raise ApiError(400, -1100, "Illegal characters found in parameter "
                                           "'newOrderRespType'.")
            if any(o.is_open and o.client_order_id == client_id for o in self._orders.values()):
                raise ApiError(400, -2010, MSG_DUPLICATE)
            order = self._validated_order(spec, side, kind, client_id, params)
            if force_insufficient or not self._can_fund(order):
                raise ApiError(400, -2010, MSG_INSUFFICIENT)
            if test:
                return {}, []
            self._next_order_id += 1
            self._orders[order.order_id] = order
            first_trade = len(self._my_trades)
            self._execute(order)
            fills = self._my_trades[first_trade:]
            return _wire.new_order(order.record(), spec.id, resp_type, fills), self._events

    def _validated_order(self, spec: MarketSpec, side: str, kind: str, client_id: str,
                         params: Mapping[str, str]) -> _Order:
        book = self._books[spec.symbol]
        quantity = _decimal_param(params, "quantity")
        quote_qty = _decimal_param(params, "quoteOrderQty")
        price = _decimal_param(params, "price")
        tif = params.get("timeInForce") or ""
        if kind == "MARKET":
            if tif:
                raise ApiError(400, -1106, "Parameter 'timeInForce' sent when not required.")
            if price is not None:
                raise ApiError(400, -1106, "Parameter 'price' sent when not required.")
            if quantity is None and quote_qty is None:
                raise ApiError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, "
                                           "but both were empty!")
            if quantity is not None and quote_qty is not None:
                raise ApiError(400, -1106, "Parameter 'quoteOrderQty' sent when not required.")
            price, tif = ZERO, "GTC"
            touch = book.ask if side == "BUY" else book.bid
            if quantity is None and touch is not None and quote_qty is not None:
                quantity = _floor_to(quote_qty / touch, spec.step_size)
            self._check_lot(spec, quantity or ZERO)
            if touch is not None and quantity is not None:
                self._check_notional(spec, quantity * touch)
        else:
            if quantity is None:
                raise _missing("quantity")
            if price is None:
                raise _missing("price")
            if kind == "LIMIT":
                if not tif:
                    raise _missing("timeInForce")
                if tif not in ("GTC", "IOC", "FOK"):
                    raise ApiError(400, -1115, "Invalid timeInForce.")
            elif tif:
                raise ApiError(400, -1106, "Parameter 'timeInForce' sent when not required.")
            else:
                tif = "GTC"
            if price < spec.tick_size or not _is_multiple(price, spec.tick_size):
                raise _filter_failure("PRICE_FILTER")
            self._check_lot(spec, quantity)
            self._check_notional(spec, quantity * price)
            if kind == "LIMIT_MAKER" and self._marketable(side, price, book):
                raise ApiError(400, -2010, "Order would immediately match and take.")
        now = self.clock()
        return _Order(order_id=self._next_order_id, client_order_id=client_id, spec=spec,
                      side=side, type=kind, time_in_force=tif, price=price,
                      quantity=quantity or ZERO, quote_order_qty=quote_qty or ZERO,
                      created_ms=now, updated_ms=now)

    @staticmethod
    def _check_lot(spec: MarketSpec, quantity: Decimal) -> None:
        if (quantity < spec.min_qty or quantity > spec.max_qty
                or not _is_multiple(quantity, spec.step_size)):
            raise _filter_failure("LOT_SIZE")

    @staticmethod
    def _check_notional(spec: MarketSpec, notional: Decimal) -> None:
        if notional < spec.min_notional:
            raise _filter_failure("NOTIONAL")

    @staticmethod
    def _marketable(side: str, price: Decimal, book: _Book) -> bool:
        if side == "BUY":
            return book.ask is not None and price >= book.ask
        return book.bid is not None and price <= book.bid

    def _can_fund(self, order: _Order) -> bool:
        spec, book = order.spec, self._books[order.spec.symbol]
        if order.side == "SELL":
            return self._balances[spec.base].free >= order.quantity
        price = order.price if order.type != "MARKET" else (book.ask or ZERO)
        return self._balances[spec.quote].free >= order.quantity * price

    def _execute(self, order: _Order) -> None:
        spec, book = order.spec, self._books[order.spec.symbol]
        if order.type == "MARKET":
            touch = book.ask if order.side == "BUY" else book.bid
            if touch is None:  # an empty book: Binance expires the order unfilled
                order.status = "EXPIRED"
                return
            self._fill(order, order.quantity, touch, is_maker=False)
            return
        if order.side == "BUY":
            self._move(spec.quote, order.quantity * order.price)
        else:
            self._move(spec.base, order.quantity)
        if self._marketable(order.side, order.price, book):
            touch = book.ask if order.side == "BUY" else book.bid
            assert touch is not None
            self._fill(order, order.quantity, touch, is_maker=False)
        elif order.time_in_force in ("IOC", "FOK"):
            self._release(order)
            order.status = "EXPIRED"

    def _move(self, asset: str, amount: Decimal, *, to_locked: bool = True) -> None:
        balance = self._balances.setdefault(asset, _Balance())
        if to_locked:
            balance.free -= amount
            balance.locked += amount
        else:
            balance.locked -= amount
            balance.free += amount

    def _release(self, order: _Order) -> None:
        """Unlock what an open limit order still holds."""
        if order.side == "BUY":
            self._move(order.spec.quote, order.remaining * order.price, to_locked=False)
        else:
            self._move(order.spec.base, order.remaining, to_locked=False)

    def _fill(self, order: _Order, qty: Decimal, price: Decimal, *, is_maker: bool) -> None:
        spec = order.spec
        base, quote = self._balances[spec.base], self._balances[spec.quote]
        quote_amount = qty * price
        limit = order.type != "MARKET"
        if order.side == "BUY":
            commission, fee_asset = qty * self.fee_rate, spec.base
            if limit:  # the lock was at the limit price: refund any price improvement
                quote.locked -= qty * order.price
                quote.free += qty * order.price - quote_amount
            else:
                quote.free -= quote_amount
            base.free += qty - commission
        else:
            commission, fee_asset = quote_amount * self.fee_rate, spec.quote
            if limit:
                base.locked -= qty
            else:
                base.free -= qty
            quote.free += quote_amount - commission
        now = self.clock()
        order.executed_qty += qty
        order.cumulative_quote_qty += quote_amount
        order.status = "FILLED" if order.executed_qty >= order.quantity else "PARTIALLY_FILLED"
        order.updated_ms = now
        book = self._books[spec.symbol]
        public = self._tape(book, price, qty, buyer_is_maker=(order.side == "BUY") == is_maker)
        self._my_trades.append(TradeRecord(
            trade_id=public.trade_id, order_id=order.order_id,
            client_order_id=order.client_order_id, symbol=spec.symbol, side=order.side,
            price=price, qty=qty, quote_qty=quote_amount, commission=commission,
            commission_asset=fee_asset, is_maker=is_maker, time_ms=now))

    def _tape(self, book: _Book, price: Decimal, qty: Decimal, *,
              buyer_is_maker: bool) -> PublicTrade:
        trade = PublicTrade(trade_id=self._next_trade_id, symbol=book.spec.symbol, price=price,
                            qty=qty, time_ms=self.clock(), buyer_is_maker=buyer_is_maker)
        self._next_trade_id += 1
        book.tape.append(trade)
        book.saw_price(price, trade.time_ms, qty)
        book.last_qty = qty
        book.volume += qty
        book.quote_volume += qty * price
        self._events.append((f"{book.spec.id.lower()}@trade", {
            "e": "trade", "E": trade.time_ms, "s": book.spec.id, "t": trade.trade_id,
            "p": fmt(price), "q": fmt(qty), "T": trade.time_ms, "m": buyer_is_maker,
            "M": True}))
        return trade

    def _resting(self, spec: MarketSpec) -> list[_Order]:
        return [o for o in self._orders.values()
                if o.spec is spec and o.is_open and o.type != "MARKET"]

    def _find(self, params: Mapping[str, str]) -> _Order | None:
        spec = self._spec_by_id(params.get("symbol"))
        order_id = _int_param(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, "
                                       "but both were empty/null!")
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or (client_id and order.client_order_id != client_id):
                return None
        else:
            # The newest order with that client id: ids are reused once an order has closed.
            matches = [o for o in self._orders.values() if o.client_order_id == client_id]
            order = matches[-1] if matches else None
        return order if order is not None and order.spec is spec else None

    def get_order(self, params: Mapping[str, str]) -> Json:
        with self.lock:
            order = self._find(params)
            if order is None:
                raise ApiError(400, -2013, "Order does not exist.")
            return _wire.query_order(order.record(), order.spec.id)

    def cancel_order(self, params: Mapping[str, str]) -> Json:
        with self.lock:
            order = self._find(params)
            if order is None or not order.is_open:
                raise ApiError(400, -2011, "Unknown order sent.")
            self._release(order)
            order.status = "CANCELED"
            order.updated_ms = self.clock()
            cancel_id = params.get("newClientOrderId") or f"fakecancel{order.order_id}"
            return _wire.canceled_order(order.record(), order.spec.id, cancel_id,
                                        order.updated_ms)

    def cancel_open_orders(self, params: Mapping[str, str]) -> list[Json]:
        with self.lock:
            spec = self._spec_by_id(params.get("symbol"))
            rows = [self.cancel_order({"symbol": spec.id, "orderId": str(order.order_id)})
                    for order in self._resting(spec)]
            if not rows:
                raise ApiError(400, -2011, "Unknown order sent.")
            return rows

    def open_orders(self, params: Mapping[str, str]) -> list[Json]:
        with self.lock:
            market_id = params.get("symbol")
            spec = self._spec_by_id(market_id) if market_id else None
            return [_wire.query_order(o.record(), o.spec.id) for o in self._orders.values()
                    if o.is_open and (spec is None or o.spec is spec)]

    def all_orders(self, params: Mapping[str, str]) -> list[Json]:
        with self.lock:
            spec = self._spec_by_id(params.get("symbol"))
            from_id = _int_param(params, "orderId")
            start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
            limit = _int_param(params, "limit") or 500
            rows = [o for o in self._orders.values() if o.spec is spec
                    and (from_id is None or o.order_id >= from_id)
                    and (start is None or o.created_ms >= start)
                    and (end is None or o.created_ms <= end)]
            rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
            return [_wire.query_order(o.record(), spec.id) for o in rows]

    def account_trades(self, params: Mapping[str, str]) -> list[Json]:
        with self.lock:
            spec = self._spec_by_id(params.get("symbol"))
            order_id, from_id = _int_param(params, "orderId"), _int_param(params, "fromId")
            start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
            limit = _int_param(params, "limit") or 500
            rows = [t for t in self._my_trades if t.symbol == spec.symbol
                    and (order_id is None or t.order_id == order_id)
                    and (from_id is None or t.trade_id >= from_id)
                    and (start is None or t.time_ms >= start)
                    and (end is None or t.time_ms <= end)]
            # Binance: from fromId/startTime onwards when given, else the most recent ones.
            rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
            return [_wire.my_trade(t, spec.id) for t in rows]

    # --------------------------------------------------------------- stream payloads
    def _emit_book(self, book: _Book) -> None:
        self._events.append((f"{book.spec.id.lower()}@bookTicker", {
            "u": book.update_id, "s": book.spec.id, "b": fmt(book.bid), "B": fmt(book.bid_qty),
            "a": fmt(book.ask), "A": fmt(book.ask_qty)}))
        self._emit_ticker(book)

    def _emit_ticker(self, book: _Book) -> None:
        row = self._ticker_json(book)
        self._events.append((f"{book.spec.id.lower()}@ticker", {
            "e": "24hrTicker", "E": self.clock(), "s": row["symbol"],
            "p": row["priceChange"], "P": row["priceChangePercent"],
            "w": row["weightedAvgPrice"], "x": row["prevClosePrice"], "c": row["lastPrice"],
            "Q": row["lastQty"], "b": row["bidPrice"], "B": row["bidQty"],
            "a": row["askPrice"], "A": row["askQty"], "o": row["openPrice"],
            "h": row["highPrice"], "l": row["lowPrice"], "v": row["volume"],
            "q": row["quoteVolume"], "O": row["openTime"], "C": row["closeTime"],
            "F": row["firstId"], "L": row["lastId"], "n": row["count"]}))
        # ccxt.pro's watch_ticker/watch_tickers subscribe to @miniTicker unless told otherwise.
        self._events.append((f"{book.spec.id.lower()}@miniTicker", {
            "e": "24hrMiniTicker", "E": self.clock(), "s": row["symbol"],
            "c": row["lastPrice"], "o": row["openPrice"], "h": row["highPrice"],
            "l": row["lowPrice"], "v": row["volume"], "q": row["quoteVolume"]}))

    def _book_ticker_json(self, book: _Book) -> Json:
        return {"symbol": book.spec.id, "bidPrice": fmt(book.bid), "bidQty": fmt(book.bid_qty),
                "askPrice": fmt(book.ask), "askQty": fmt(book.ask_qty)}

    def _ticker_json(self, book: _Book) -> Json:
        now = self.clock()
        last, opened = book.last or ZERO, book.open or ZERO
        change = last - opened
        pct = (change / opened * 100).quantize(Decimal("0.001")) if opened else ZERO
        vwap = book.quote_volume / book.volume if book.volume else last
        tape = list(book.tape)
        return {
            "symbol": book.spec.id,
            "priceChange": fmt(change),
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": fmt(vwap),
            "prevClosePrice": fmt(opened),
            "lastPrice": fmt(book.last),
            "lastQty": fmt(book.last_qty),
            "bidPrice": fmt(book.bid),
            "bidQty": fmt(book.bid_qty),
            "askPrice": fmt(book.ask),
            "askQty": fmt(book.ask_qty),
            "openPrice": fmt(book.open),
            "highPrice": fmt(book.high),
            "lowPrice": fmt(book.low),
            "volume": fmt(book.volume),
            "quoteVolume": fmt(book.quote_volume),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": tape[0].trade_id if tape else -1,
            "lastId": tape[-1].trade_id if tape else -1,
            "count": len(tape),
        }
