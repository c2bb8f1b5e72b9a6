"""The execution actor's logic: approved orders in, exchange events out to the state actor.

It owns the gateway (here the paper exchange) and the order of what state hears about an order.
An order that rests or is rejected is written ahead: state hears it as ``NEW`` before the
exchange's answer, each answer as its own envelope, in the order they happened. An order the
paper exchange fills on arrival reaches state as one ``OrderFilled`` carrying the finished
order, without a ``NEW`` row: the exchange lives in this process, so a crash that could lose
the order loses the exchange's memory of it too, and nothing stays behind to reconcile. (Live
gateways always write ahead; see ``actors.execution.live``.)

It decides nothing about whether to trade (that is risk) and keeps no books of its own beyond
the gateway. ``tick_pairs`` tells the market data actor which pairs' ticks matter here (those
with resting limit orders); it is replaced, never mutated, so that thread can read it without a
lock. Plain, single-threaded and deterministic: time is the ``ts_ms`` of the messages.
"""

from __future__ import annotations

from actors.execution.paper_exchange import ExchangeEvent, PaperExchange
from actors.messages import (
    STATE,
    CancelOrder,
    CancelPairOrders,
    Envelope,
    GetBalances,
    MarketTick,
    OrderFilled,
    OrderStatus,
    OrderUpdated,
    SubmitOrder,
    builder,
)

_envelope = builder(Envelope)  # one per order: a function call, not a class call


class ExecutionCore:
    """Route orders, cancels and ticks through the exchange and report every change to state.

    Args:
        exchange: the gateway.
        limit_ttl_ms: market time a resting limit may wait before it is canceled.
    """

    def __init__(self, exchange: PaperExchange, limit_ttl_ms: int = 60_000) -> None:
        if limit_ttl_ms <= 0:
            raise ValueError(f"limit_ttl_ms = {limit_ttl_ms!r} is invalid: expected > 0")
        self._exchange = exchange
        self._ttl_ms = limit_ttl_ms
        self.tick_pairs: frozenset[str] = exchange.resting_pairs()
        """Pairs with resting orders: the only pairs whose ticks this core needs. A plain
        attribute (read once per tick) that is replaced, never mutated."""
        self._book_changes = exchange.book_changes
        self.unhandled = 0
        """Messages of a type this core does not know (returned ``[]``)."""

    def handle(self, message: object) -> list[Envelope]:
        if type(message) is SubmitOrder:  # every order, before the ``match`` tries a tick
            return self._submit(message)
        match message:
            case MarketTick():
                if not self._exchange.has_resting(message.pair):
                    return []
                events = self._exchange.on_tick(message)
                events.extend(self._exchange.expire(message.ts_ms, self._ttl_ms))
                return self._to_state(events)
            case SubmitOrder():
                return self._submit(message)
            case CancelOrder():
                return self._to_state(self._exchange.cancel(message.order_id, message.ts_ms))
            case CancelPairOrders():
                return self._to_state(self._exchange.cancel_pair(message.pair, message.ts_ms))
            case _:
                self.unhandled += 1
                return []

    def answer(self, query: object) -> dict[str, float]:
        """Reply to ``GetBalances`` with the exchange's free balances.

        Raises:
            TypeError: for any other query (``ask`` hands it back to the caller).
        """
        if isinstance(query, GetBalances):
            return self._exchange.balances()
        raise TypeError(f"execution core cannot answer {type(query).__name__}")

    def _submit(self, order: SubmitOrder) -> list[Envelope]:
        events = self._exchange.submit(order)
        if not events:
            return []  # a duplicate: already recorded and placed once
        if len(events) == 1 and type(events[0]) is OrderFilled:
            return [_envelope(STATE, events[0])]  # filled on arrival: one message
        intent = order.as_order(OrderStatus.NEW)
        out = [Envelope(STATE, OrderUpdated(order=intent))]
        out.extend(self._to_state(events))
        return out

    def _to_state(self, events: list[ExchangeEvent]) -> list[Envelope]:
        changes = self._exchange.book_changes
        if changes != self._book_changes:
            self._book_changes = changes
            pairs = self._exchange.resting_pairs()
            if pairs != self.tick_pairs:
                self.tick_pairs = pairs
        return [Envelope(STATE, e) for e in events]
