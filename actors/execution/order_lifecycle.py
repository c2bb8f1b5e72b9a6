"""The decisions of the live order path, without I/O: what to do after an error, how long to
wait, which client id an order carries, what a ccxt reply means, and which events it makes.

The ccxt gateway (``actors.execution.gateway``) and reconciliation
(``actors.execution.reconcile``) do the talking; everything they decide is here, so the tests
drive it with plain values:

- ``classify`` sorts an exception into ``RETRY`` (the exchange refused before acting: rate
  limits, a clock skew), ``LOOKUP`` (it may have acted: a timeout, a dropped connection, a 5xx,
  a reply we cannot read; a create is retried only after asking the exchange for the client
  id) and ``REJECT`` (permanent: funds, order rules, keys, symbol). The exception's *class*
  decides, by name along its MRO, so this module never imports ccxt.
- ``Backoff`` is exponential with "equal jitter" from a seeded RNG, never shorter than what
  the exchange's ``Retry-After`` asks for (up to a cap).
- ``client_order_id`` is a pure function of the order id, inside the exchange's length and
  charset rules (hashed where the id does not fit), so a retry or a restart asks for the same
  order, never a new one.
- ``parse_order``/``parse_trade`` validate what ccxt returns: a 200 reply whose body is not
  JSON makes ccxt hand back dicts full of ``None`` without raising; that is ``MalformedReplyError``
  (retriable, never a fill).
- ``OrderTracker`` follows one order: each validated snapshot (plus its trades) becomes the
  ``OrderFilled`` events not yet reported (fill ids from the exchange's trade ids, so the
  ledger applies each exactly once) and an ``OrderUpdated`` when the status or fill changed.
  An order reported finished whose trades do not appear within a grace period is booked
  from its cumulative fill and average price (``infer``: one inferred fill), and the real
  trades replace it if they come later (``FillReplaced``), so nothing is counted twice.

Plain and single-threaded: time comes in as arguments; randomness from the caller's RNG.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import attrs

from actors.messages import (
    ExitReason,
    Fill,
    FillReplaced,
    Order,
    OrderFilled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
)
from actors.pairs import split_pair

ExchangeEvent = OrderUpdated | OrderFilled | FillReplaced

# -- errors ------------------------------------------------------------------------------------


class MalformedReplyError(Exception):
    """ccxt returned something that is not a usable order or trade (missing id, status,
    filled or price): the exchange's answer is unknown, so it is retried, never booked."""


class Action(enum.Enum):
    RETRY = "retry"
    """The request was refused before anything happened: wait and send it again."""
    LOOKUP = "lookup"
    """It may have happened: ask the exchange before sending a create again."""
    REJECT = "reject"
    """Permanent: sending it again cannot succeed."""


_RETRY = ("RateLimitExceeded", "DDoSProtection", "InvalidNonce", "CancelPending")
_LOOKUP = ("MalformedReplyError", "DuplicateOrderId", "RequestTimeout", "ExchangeNotAvailable",
           "NetworkError", "BadResponse", "OperationFailed")
_PERMANENT = ("BaseError",)


def classify(error: BaseException) -> Action:
    """What to do after ``error`` from a request to the exchange.

    ``DuplicateOrderId`` means the exchange already has the client id (an earlier attempt
    did arrive): look it up and adopt it. Any other ccxt error (insufficient funds, invalid
    order, authentication, permission, bad symbol, unknown exchange errors) is permanent.
    An exception from outside ccxt (a parser choking on a garbled body) is treated like an
    unreadable reply.
    """
    names = [cls.__name__ for cls in type(error).__mro__]
    for name in names:  # most specific class first
        if name in _RETRY:
            return Action.RETRY
        if name in _LOOKUP:
            return Action.LOOKUP
        if name in _PERMANENT or name == "ExchangeError":
            return Action.REJECT
    return Action.LOOKUP


_SECRETISH = re.compile(
    r"(signature|apikey|api_key|secret|password|passphrase|token|sign|x-mbx-apikey)"
    r"([\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")
_CCXT_PREFIX = re.compile(r"^[a-z][a-z0-9]* ")
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_B64 = re.compile(r"\b[A-Za-z0-9+/=_-]{40,}\b")


def clean_reason(error: BaseException | str, secrets: Iterable[str] = (), limit: int = 160) -> str:
    """A short, safe reason for ``error``: its class and the exchange's own message.

    ccxt puts the request URL (with its query string and signature) and the raw body in its
    messages; this keeps the body's ``msg``/``message`` where there is one, drops URLs,
    redacts anything that looks like a key, a signature or one of ``secrets``, and cuts the
    rest to ``limit`` characters.
    """
    if isinstance(error, BaseException):
        kind = type(error).__name__
        text = str(error)
        if "BaseError" in {c.__name__ for c in type(error).__mro__}:
            text = _CCXT_PREFIX.sub("", text)  # ccxt starts every message with the exchange id
    else:
        kind, text = "", error
    message = _exchange_message(text) or text
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    message = _URL.sub("<url>", message)
    message = _SECRETISH.sub(lambda m: m.group(1) + m.group(2) + "***", message)
    message = _HEX.sub("***", message)
    message = _B64.sub("***", message)
    message = " ".join(message.split())
    out = f"{kind}: {message}" if kind and message else (kind or message)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _exchange_message(text: str) -> str:
    """The ``msg``/``message`` of the first JSON object inside ``text``, or ""."""
    start = text.find("{")
    while start != -1:
        try:
            body, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(body, dict):
            for key in ("msg", "message", "error", "err_msg", "errorMessage"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    code = body.get("code")
                    return f"{value} (code {code})" if code is not None else value
        return ""
    return ""


# -- backoff -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff with jitter: attempt ``n`` (0-based) waits a random time in
    ``[d/2, d]`` where ``d = min(max_s, initial_s * 2**n)``, and at least the exchange's
    ``Retry-After`` (capped at ``retry_after_cap_s``: a ban of hours is not waited out by an
    order, which gives up instead)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    retries: int = 5
    retry_after_cap_s: float = 60.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(attempt, 60))
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.retry_after_cap_s))
        return wait

    def gives_up(self, attempt: int, retry_after: float | None = None) -> bool:
        """True once ``attempt`` retries were spent, or the exchange asks for a longer wait
        than the cap."""
        too_long = retry_after is not None and retry_after > self.retry_after_cap_s
        return attempt >= self.retries or too_long


def parse_retry_after(headers: Mapping[str, Any] | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not headers:
        return None
    value = None
    for key, item in headers.items():
        if isinstance(key, str) and key.lower() == "retry-after":
            value = item
            break
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now_s
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


# -- client order ids --------------------------------------------------------------------------


@attrs.frozen
class ClientIdRule:
    max_len: int
    pattern: str
    """A character class (without brackets) of the characters allowed."""


_DASHED_36 = ClientIdRule(36, "A-Za-z0-9_-")
CLIENT_ID_RULES: dict[str, ClientIdRule] = {
    "binance": _DASHED_36,  # newClientOrderId: ^[a-zA-Z0-9-_]{1,36}$
    "binanceus": _DASHED_36,
    "bybit": _DASHED_36,
    "okx": ClientIdRule(32, "A-Za-z0-9"),
    "kucoin": ClientIdRule(40, "A-Za-z0-9_-"),
    "gate": ClientIdRule(28, "A-Za-z0-9_.-"),
}
DEFAULT_CLIENT_ID_RULE = ClientIdRule(32, "A-Za-z0-9")
"""For exchanges not listed: short and alphanumeric, which every exchange that takes a client
id accepts."""


def client_order_id(order_id: str, exchange_id: str) -> str:
    """The client order id of ``order_id`` at ``exchange_id``: the order id itself where the
    exchange accepts it, else ``tc`` and a hash of it (same input, same id, every time)."""
    rule = CLIENT_ID_RULES.get(exchange_id, DEFAULT_CLIENT_ID_RULE)
    if len(order_id) <= rule.max_len and re.fullmatch(f"[{rule.pattern}]+", order_id):
        return order_id
    digest = hashlib.sha256(order_id.encode()).hexdigest()
    return "tc" + digest[: rule.max_len - 2]


# -- validated replies -------------------------------------------------------------------------

CCXT_STATUSES = frozenset({"open", "closed", "canceled", "cancelled", "expired", "rejected"})


@attrs.frozen(kw_only=True)
class ExchangeOrder:
    """A ccxt order structure that passed validation."""

    id: str
    client_id: str | None
    status: str
    filled: float
    amount: float | None
    average: float | None
    price: float | None
    fee: float | None
    """Fee cost as reported, in ``fee_currency``."""
    fee_currency: str | None
    ts_ms: int | None
    trades: tuple[ExchangeTrade, ...] = ()


@attrs.frozen(kw_only=True)
class ExchangeTrade:
    """A ccxt trade structure (one of my trades) that passed validation."""

    id: str
    order_id: str | None
    amount: float
    price: float
    fee: float
    fee_currency: str | None
    ts_ms: int | None
    maker: bool = False


def _number(raw: Mapping[str, Any], key: str, *, required: bool, positive: bool = False,
            what: str = "order") -> float | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise MalformedReplyError(f"{what} without {key}")
        return None
    if isinstance(value, bool):
        raise MalformedReplyError(f"{what} {key} is {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MalformedReplyError(f"{what} {key} is {value!r}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise MalformedReplyError(f"{what} {key} is {value!r}")
    return number


def _fee(raw: Mapping[str, Any]) -> tuple[float | None, str | None]:
    fee = raw.get("fee")
    fees = raw.get("fees")
    items = [fee] if isinstance(fee, Mapping) else []
    if not items and isinstance(fees, list):
        items = [f for f in fees if isinstance(f, Mapping)]
    total, currency = None, None
    for item in items:
        cost = item.get("cost")
        if cost is None:
            continue
        try:
            value = float(cost)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(value):
            continue
        cur = item.get("currency")
        if currency is not None and cur != currency:
            continue  # several currencies: only the first is counted
        currency = cur if isinstance(cur, str) else None
        total = (total or 0.0) + value
    return total, currency


def _ts(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("timestamp")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return None


def parse_order(raw: Any, client_id: str | None = None) -> ExchangeOrder:
    """Validate one ccxt order; ``client_id`` is the one it must carry where it says.

    Raises:
        MalformedReplyError: not a dict, no id, an unknown status, no ``filled``, a fill without
            a price, or another order's client id.
    """
    if not isinstance(raw, Mapping):
        raise MalformedReplyError(f"order reply is {type(raw).__name__}, not a structure")
    order_id = raw.get("id")
    if not isinstance(order_id, str | int) or isinstance(order_id, bool) or order_id == "":
        raise MalformedReplyError("order without id")
    status = raw.get("status")
    if not isinstance(status, str) or status not in CCXT_STATUSES:
        raise MalformedReplyError(f"order {order_id} has status {status!r}")
    filled = _number(raw, "filled", required=True)
    assert filled is not None
    amount = _number(raw, "amount", required=False)
    average = _number(raw, "average", required=False, positive=True)
    price = _number(raw, "price", required=False)
    price = price or None
    if filled > 0 and average is None and price is None:
        raise MalformedReplyError(f"order {order_id} filled {filled} without a price")
    got = raw.get("clientOrderId")
    if client_id is not None and got not in (None, "") and got != client_id:
        raise MalformedReplyError(f"order {order_id} carries client id {got!r}, not {client_id!r}")
    fee, fee_currency = _fee(raw)
    trades: list[ExchangeTrade] = []
    for item in raw.get("trades") or ():
        try:
            trades.append(parse_trade(item, default_order_id=str(order_id)))
        except MalformedReplyError:
            trades = []  # an order's embedded trades are a hint; all or none
            break
    return ExchangeOrder(
        id=str(order_id), client_id=got if isinstance(got, str) and got else None,
        status="canceled" if status == "cancelled" else status, filled=filled, amount=amount,
        average=average, price=price, fee=fee, fee_currency=fee_currency, ts_ms=_ts(raw),
        trades=tuple(trades))


def parse_trade(raw: Any, default_order_id: str | None = None) -> ExchangeTrade:
    """Validate one ccxt trade.

    Raises:
        MalformedReplyError: not a dict, no id, amount or price not a positive number.
    """
    if not isinstance(raw, Mapping):
        raise MalformedReplyError(f"trade reply is {type(raw).__name__}, not a structure")
    trade_id = raw.get("id")
    if not isinstance(trade_id, str | int) or isinstance(trade_id, bool) or trade_id == "":
        raise MalformedReplyError("trade without id")
    amount = _number(raw, "amount", required=True, positive=True, what="trade")
    price = _number(raw, "price", required=True, positive=True, what="trade")
    assert amount is not None
    assert price is not None
    order = raw.get("order")
    fee, fee_currency = _fee(raw)
    return ExchangeTrade(
        id=str(trade_id), order_id=str(order) if order not in (None, "") else default_order_id,
        amount=amount, price=price, fee=fee or 0.0, fee_currency=fee_currency, ts_ms=_ts(raw),
        maker=raw.get("takerOrMaker") == "maker")


# -- following an order ------------------------------------------------------------------------

_EPS = 1e-9


def order_status(xo: ExchangeOrder) -> OrderStatus:
    """Our status for a ccxt status and fill."""
    if xo.status == "closed":
        return OrderStatus.FILLED
    if xo.status in ("canceled", "expired"):
        return OrderStatus.CANCELED
    if xo.status == "rejected":
        return OrderStatus.REJECTED
    return OrderStatus.PARTIALLY_FILLED if xo.filled > 0 else OrderStatus.OPEN


def fill_id_for(order_id: str, trade_id: str) -> str:
    """The fill id of an exchange trade: the same trade always gets the same id."""
    return f"{order_id}-t{trade_id}"


def cumulative_fill_id(order_id: str, filled: float) -> str:
    """The fill id of the step that brought an order's fill to ``filled`` (exchanges
    without trade ids)."""
    return f"{order_id}-c{filled:.12g}"


def trade_fill(order: Order, trade: ExchangeTrade) -> Fill:
    """``trade`` as a ``Fill`` of ``order``, its fee moved into the quote currency.

    The ledger pays fees in the quote. A fee the exchange took in the base (a Binance buy
    without BNB) is booked as a smaller amount bought at the same price with the fee's quote
    value as fee: quote and base then move exactly as at the exchange. A fee in a third
    currency cannot be valued here and is booked as 0.
    """
    base, quote = split_pair(order.pair)
    amount, price, fee = trade.amount, trade.price, trade.fee
    fee_quote = 0.0
    if fee and trade.fee_currency in (None, quote):
        fee_quote = fee
    elif fee and trade.fee_currency == base:
        amount = amount - fee if order.side is Side.BUY else amount + fee
        fee_quote = fee * price
    return Fill(fill_id=fill_id_for(order.order_id, trade.id), order_id=order.order_id,
                pair=order.pair, side=order.side, amount=amount, price=price, fee=fee_quote,
                ts_ms=trade.ts_ms or order.updated_ms, maker=trade.maker)


_INFERRED = "-inferred"


def inferred_fill_id(order_id: str) -> str:
    """The fill id of an order's inferred fill (``OrderTracker.infer``): one per order."""
    return order_id + _INFERRED


def is_inferred(fill_id: str) -> bool:
    return fill_id.endswith(_INFERRED)


def inferred_order(fill: Fill) -> Order:
    """The finished order behind an inferred fill, as much of it as following its late
    trades needs (after a restart, from the fill alone)."""
    return Order(order_id=fill.order_id, pair=fill.pair, side=fill.side,
                 order_type=OrderType.MARKET, reason=ExitReason.ENTRY, amount=fill.amount,
                 status=OrderStatus.FILLED, created_ms=fill.ts_ms, updated_ms=fill.ts_ms,
                 filled=fill.amount, average_price=fill.price, fee=fill.fee)


class OrderTracker:
    """One live order as far as it was reported to state; turns snapshots into events.

    Args:
        order: the order as state holds it (the write-ahead intent, or a row from the
            database at reconciliation).
        client_id: its client order id at the exchange.
        recorded: fills state already holds for it (an inferred one among them is replaced
            once the real trades appear).
        use_trades: fills come from the exchange's trades (ids); otherwise from the growth of
            the order's cumulative ``filled``.
    """

    def __init__(self, order: Order, client_id: str, recorded: Iterable[Fill] = (),
                 *, use_trades: bool = True) -> None:
        self.order = order
        self.client_id = client_id
        self.exchange_id: str | None = None
        self.use_trades = use_trades
        fills = list(recorded)
        self.fill_ids = {f.fill_id for f in fills}
        self.booked = sum(f.amount for f in fills)
        """Exchange amount the reported fills stand for."""
        self.inferred: Fill | None = next(
            (f for f in fills if f.fill_id == inferred_fill_id(order.order_id)), None)
        """The inferred fill booked for trades that did not appear, until they do."""
        self.incomplete_since_ms: int | None = None
        """When the exchange first reported the order finished without all its trades."""
        self._amount = sum(f.amount for f in fills)
        self._value = sum(f.amount * f.price for f in fills)
        self._fees = sum(f.fee for f in fills)
        self._seen_value = 0.0
        """Exchange value (amount x price) of the order's trades seen so far."""

    @property
    def done(self) -> bool:
        """Terminal, and reported as such."""
        return self.order.status.is_terminal

    def observe(self, xo: ExchangeOrder, trades: Sequence[ExchangeTrade] | None,
                now_ms: int) -> tuple[list[ExchangeEvent], bool]:
        """Events for what ``xo`` (and ``trades``, the order's trades; None where not
        fetched) shows that state has not heard yet.

        Returns:
            The events, fills first, and whether the snapshot was complete: False while the
            order's ``filled`` runs ahead of the trades seen (trade lists lag), in which case
            a terminal status is held back until the trades arrive (or ``infer`` books the
            rest). Once every trade behind an inferred fill is seen, the inferred fill gives
            way to them (``FillReplaced``).
        """
        self.exchange_id = xo.id
        ts = max(now_ms, self.order.updated_ms)
        out: list[ExchangeEvent] = []
        tolerance = _EPS * max(1.0, xo.filled)
        if self.use_trades:
            seen: dict[str, ExchangeTrade] = {}
            for trade in (*(trades or ()), *xo.trades):
                if trade.order_id in (None, xo.id):
                    seen.setdefault(trade.id, trade)
            covered = 0.0
            self._seen_value = 0.0
            fresh: list[Fill] = []
            for trade in seen.values():
                covered += trade.amount
                self._seen_value += trade.amount * trade.price
                fill = trade_fill(self.order, trade)
                if fill.fill_id not in self.fill_ids:
                    fresh.append(attrs.evolve(fill, ts_ms=trade.ts_ms or ts))
            if self.inferred is None:
                for fill in fresh:
                    out.append(OrderFilled(fill=fill))
                    self._book(fill)
            elif fresh and covered + tolerance >= xo.filled:
                out.append(self._replace(self.inferred, fresh))
            # An inferred fill stands for every trade not seen (a fee taken in the base
            # makes its amount smaller than the exchange's).
            self.booked = max(self.booked, xo.filled if self.inferred else covered)
        elif xo.filled > self.booked + tolerance:
            fill = self._cumulative_fill(xo, ts)
            out.append(OrderFilled(fill=fill))
            self._book(fill)
            self.booked = xo.filled
        complete = self.booked + tolerance >= xo.filled
        status = order_status(xo)
        if status.is_terminal and not complete:
            status = OrderStatus.PARTIALLY_FILLED if self.booked > 0 else OrderStatus.OPEN
            if self.incomplete_since_ms is None:
                self.incomplete_since_ms = now_ms
        else:
            self.incomplete_since_ms = None
        filled = xo.filled if complete else min(self.booked, xo.filled)
        out.extend(self._update(status, filled, ts, tolerance,
                                booked=any(isinstance(e, OrderFilled) for e in out)))
        return out, complete

    def infer_due(self, now_ms: int, grace_ms: int) -> bool:
        """The exchange has reported the order finished for ``grace_ms`` and its trades
        are still missing."""
        return (self.incomplete_since_ms is not None
                and now_ms - self.incomplete_since_ms >= grace_ms)

    def infer(self, xo: ExchangeOrder, now_ms: int) -> list[ExchangeEvent]:
        """Book what ``xo`` filled beyond the trades seen as one inferred fill, priced so
        that the order's fills average to the exchange's average price, and finish the order
        (as nautilus_trader infers fills in reconciliation). Its fee is the order's own where
        no trade was seen, else 0: the real trades correct both when they come (``observe``).
        Nothing where the trades cover the fill, or an inferred fill exists already."""
        tolerance = _EPS * max(1.0, xo.filled)
        delta = xo.filled - self.booked
        if delta <= tolerance or self.inferred is not None or not self.use_trades:
            return []
        average = xo.average or xo.price
        assert average is not None  # parse_order guarantees a price for a fill
        price = (average * xo.filled - self._seen_value) / delta
        if not (math.isfinite(price) and price > 0):
            price = average
        unseen = self.booked <= 0
        stand_in = ExchangeTrade(
            id="inferred", order_id=xo.id, amount=delta, price=price,
            fee=(xo.fee or 0.0) if unseen else 0.0, fee_currency=xo.fee_currency if unseen
            else None, ts_ms=now_ms)
        fill = attrs.evolve(trade_fill(self.order, stand_in),
                            fill_id=inferred_fill_id(self.order.order_id),
                            ts_ms=max(now_ms, self.order.updated_ms))
        self._book(fill)
        self.inferred = fill
        self.booked = xo.filled
        self.incomplete_since_ms = None
        ts = max(now_ms, self.order.updated_ms)
        return [OrderFilled(fill=fill),
                *self._update(order_status(xo), xo.filled, ts, tolerance, booked=True)]

    def _replace(self, inferred: Fill, fills: list[Fill]) -> FillReplaced:
        self.fill_ids.discard(inferred.fill_id)
        self._amount -= inferred.amount
        self._value -= inferred.amount * inferred.price
        self._fees -= inferred.fee
        for fill in fills:
            self._book(fill)
        self.inferred = None
        return FillReplaced(inferred=inferred, fills=tuple(fills))

    def _update(self, status: OrderStatus, filled: float, ts: int, tolerance: float, *,
                booked: bool) -> list[ExchangeEvent]:
        """The ``OrderUpdated`` for a new status or fill, if anything changed."""
        current = self.order
        if current.status.is_terminal or not (
                booked or status is not current.status
                or abs(filled - current.filled) > tolerance):
            return []
        reason = current.reject_reason
        if status is OrderStatus.REJECTED and not reason:
            reason = "rejected by the exchange"
        self.order = attrs.evolve(
            current, status=status, filled=filled, updated_ms=ts, fee=self._fees,
            average_price=self._value / self._amount if self._amount > 0 else 0.0,
            reject_reason=reason)
        return [OrderUpdated(order=self.order)]

    def finish(self, status: OrderStatus, reason: str, now_ms: int) -> list[ExchangeEvent]:
        """Close the order in state without an exchange snapshot (rejected before it was
        placed, or unknown to the exchange)."""
        if self.order.status.is_terminal:
            return []
        self.order = attrs.evolve(self.order, status=status, reject_reason=reason,
                                  updated_ms=max(now_ms, self.order.updated_ms))
        return [OrderUpdated(order=self.order)]

    def _book(self, fill: Fill) -> None:
        self.fill_ids.add(fill.fill_id)
        self._amount += fill.amount
        self._value += fill.amount * fill.price
        self._fees += fill.fee

    def _cumulative_fill(self, xo: ExchangeOrder, ts: int) -> Fill:
        """The step from what was booked to ``xo.filled``, priced so that the booked fills
        average to the exchange's average."""
        delta = xo.filled - self.booked
        average = xo.average or xo.price
        assert average is not None  # parse_order guarantees a price for a fill
        price = (average * xo.filled - self._value) / delta
        if not (math.isfinite(price) and price > 0):
            price = average
        base, quote = split_pair(self.order.pair)
        fee_total = xo.fee or 0.0
        if xo.fee_currency == base:
            fee_total *= average
        elif xo.fee_currency not in (None, quote):
            fee_total = 0.0
        return Fill(fill_id=cumulative_fill_id(self.order.order_id, xo.filled),
                    order_id=self.order.order_id, pair=self.order.pair, side=self.order.side,
                    amount=delta, price=price, fee=max(0.0, fee_total - self._fees), ts_ms=ts)
