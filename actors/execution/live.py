"""The execution actor's logic in live mode: approved orders to a real exchange.

``LiveExecutionCore`` has ``ExecutionCore``'s interface (``handle``, ``answer``,
``tick_pairs``), so ``ExecutionActor`` hosts either. For each ``SubmitOrder`` it rounds the
amount to the lot and a limit to the tick (``MarketRules``), checks the exchange's minimums,
and then:

- too small (or an unknown market): it returns the ``NEW`` intent and its ``REJECTED`` update
  with the reason, and nothing goes out. The same refusal again for the pair and side within
  ``REPEAT_WINDOW_MS`` of market time (a stop-loss on a position the exchange will not buy
  back proposes its exit on every tick) is answered to risk and the pair only, like a risk
  rejection, without writing another order to the database;
- otherwise it hands the rounded intent to the gateway and returns the ``NEW`` intent for
  state (write-ahead). The gateway sends the create only once state has committed that intent
  and reports everything after it to state itself, from its own thread.

Cancels are passed on. It keeps no book: the exchange and the state database have it. Ticks
are never needed (``tick_pairs`` is empty): limit orders rest at the exchange.

Plain and single-threaded (the execution actor's thread); the gateway's calls return at once.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from actors.exchange import MarketRules
from actors.messages import (
    RISK,
    STATE,
    CancelOrder,
    CancelPairOrders,
    Envelope,
    GetBalances,
    MarketTick,
    Order,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
)
from actors.recent_ids import RecentIds

RECENT_ORDERS = 10_000
"""Order ids remembered to refuse a replayed submit."""

REPEAT_WINDOW_MS = 60_000
"""A local refusal repeated within this much market time is not recorded again."""


class OrderGateway(Protocol):
    balances: dict[str, float]

    def submit(self, order: Order) -> None: ...

    def cancel(self, order_id: str, pair: str) -> None: ...

    def cancel_pair(self, pair: str) -> None: ...

    def close(self, timeout: float = 10.0) -> None: ...


class LiveExecutionCore:
    """See the module docstring.

    Args:
        gateway: the live gateway (``actors.execution.gateway.CcxtGateway``), started.
        rules: the exchange's steps and minimums.
    """

    def __init__(self, gateway: OrderGateway, rules: MarketRules) -> None:
        self.gateway = gateway
        self.rules = rules
        self._seen: RecentIds[str] = RecentIds(RECENT_ORDERS)
        self.tick_pairs: frozenset[str] = frozenset()
        self.unhandled = 0
        self.local_rejections = 0
        self.repeated_rejections = 0
        self._recorded_refusals: dict[tuple[str, Side, str], int] = {}

    def handle(self, message: object) -> list[Envelope]:
        match message:
            case SubmitOrder():
                return self._submit(message)
            case CancelOrder():
                self.gateway.cancel(message.order_id, message.pair)
            case CancelPairOrders():
                self.gateway.cancel_pair(message.pair)
            case MarketTick():
                pass
            case _:
                self.unhandled += 1
        return []

    def answer(self, query: object) -> dict[str, float]:
        """Reply to ``GetBalances`` with the exchange's free balances as last fetched.

        Raises:
            TypeError: for any other query.
        """
        if isinstance(query, GetBalances):
            return dict(self.gateway.balances)
        raise TypeError(f"live execution core cannot answer {type(query).__name__}")

    def close(self) -> None:
        """Stop the gateway (the execution actor's ``on_stop``)."""
        self.gateway.close()

    def _submit(self, order: SubmitOrder) -> list[Envelope]:
        if order.order_id in self._seen:
            return []  # a duplicate: recorded and sent once already
        self._seen.add(order.order_id)
        rules, pair = self.rules, order.pair
        amount = rules.round_amount(pair, order.amount) if order.amount > 0 else order.amount
        side = "buy" if order.side is Side.BUY else "sell"
        limit = None
        if order.order_type is OrderType.LIMIT and order.limit_price is not None:
            limit = rules.round_price(pair, order.limit_price, side)
            price = limit
        else:
            price = order.ask if order.side is Side.BUY else order.bid
        intent = order.as_order(OrderStatus.NEW, amount, limit)
        out = [Envelope(STATE, OrderUpdated(order=intent))]
        if order.order_type is OrderType.LIMIT and limit is None:
            why: str | None = "invalid_limit_price: a limit order without a price"
        else:
            why = rules.check(pair, amount, price)
        if why is not None:
            self.local_rejections += 1
            rejected = attrs.evolve(intent, status=OrderStatus.REJECTED, reject_reason=why)
            code = why.split(":", 1)[0]
            key = (pair, order.side, code)
            last = self._recorded_refusals.get(key)
            if last is not None and 0 <= order.ts_ms - last < REPEAT_WINDOW_MS:
                self.repeated_rejections += 1
                return [Envelope(RISK, OrderUpdated(order=rejected)),
                        Envelope(pair, OrderRejected(proposal_id=order.proposal_id, pair=pair,
                                                     reason=code, detail=why,
                                                     ts_ms=order.ts_ms))]
            self._recorded_refusals[key] = order.ts_ms
            out.append(Envelope(STATE, OrderUpdated(order=rejected)))
            return out
        self.gateway.submit(intent)
        return out
