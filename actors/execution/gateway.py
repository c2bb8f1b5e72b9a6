"""The live order gateway: real orders through a ``ccxt.async_support`` client.

It owns an asyncio event loop on its own thread (``ccxt-gateway``), the async ccxt client
and one worker task per pair. The execution actor calls ``submit``/``cancel``/``cancel_pair``
from its own thread; they only queue the command and return at once. Results go to the state
actor by ``tell`` (``OrderUpdated``/``OrderFilled``), exactly as the paper exchange's do.
Every decision (retry or not, how long to wait, which events a reply makes) is taken by the
plain functions of ``actors.execution.order_lifecycle``; this module only does the talking.

Life of an order (see ``order_lifecycle`` for the rules):

1. **Write-ahead.** The execution core has told state the ``NEW`` intent; the worker sends
   the create only once state has committed it (it watches the event bus for that ``NEW``).
   No commit within ``ack_timeout_s``: the order is not sent, and is rejected as not sent.
2. **Create**, with the client id derived from the order id. A refused request (rate limit)
   is retried after a backoff that honours ``Retry-After``; an ambiguous one (timeout,
   network, 5xx, unreadable reply) is first looked up by client id and adopted where the
   exchange has it; a permanent error rejects the order with the exchange's reason (after
   one look-up where an earlier attempt was ambiguous, as it may have arrived after all).
   Where even the look-up keeps failing, the order is in doubt: it is asked about (never
   created again) until the exchange answers, then followed or rejected as never placed.
3. **Follow**: poll the order (and its trades) with backoff until it is terminal; each new
   trade is a fill; a limit order older than ``limit_timeout_s`` is cancelled (a failed
   cancel is tried again on the next poll). A reply that already carries every trade
   (Binance's FULL response to a market order) needs no further request. An order reported
   finished whose trades do not appear within ``infer_fill_after_s`` is booked from its
   cumulative fill (an inferred fill, logged); its trades are then looked for now and then
   for ``LATE_TRADES_WATCH_S`` and replace it when they come.

Pairs are independent: each has its own queue and worker, and following runs in a task per
order, so one pair's slow exchange calls or retry waits never hold another pair's orders.

Failure: every exception from ccxt is caught and classified; nothing escapes into the loop.
``close`` first settles what is in flight (a graceful stop, up to ``SETTLE_S``): orders not
sent yet are closed as not sent, so no intent stays ``NEW`` without ever reaching the
exchange; orders at the exchange are followed until they finish or rest. Then it cancels the
tasks, closes the client and stops the loop; orders still open then stay open in the database
and are reconciled at the next start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs
from loguru import logger

from actors.exchange import Credentials, make_client
from actors.execution.order_lifecycle import (
    Action,
    Backoff,
    ExchangeEvent,
    ExchangeOrder,
    ExchangeTrade,
    MalformedReplyError,
    OrderTracker,
    classify,
    clean_reason,
    client_order_id,
    inferred_order,
    parse_order,
    parse_retry_after,
    parse_trade,
)
from actors.execution.reconcile import OrderCheck, ReconcileReport, reconcile
from actors.messages import (
    STATE,
    Fill,
    FillReplaced,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdated,
)

Tell = Callable[[str, object], None]
Subscribe = Callable[[Callable[[object], None]], Callable[[], None]]

LOOKUP_BY_CLIENT_ID = frozenset({"binance", "binanceus", "bybit", "okx", "kucoin", "gate"})
"""Exchanges whose ``fetch_order`` takes the client id in params; the others are searched
among their open and recent closed orders."""


LATE_TRADES_WATCH_S = 3600.0
"""How long the trades behind an inferred fill are looked for (the next start's
reconciliation looks again)."""

SETTLE_S = 5.0
"""How long a graceful stop waits for the orders in flight to finish."""


class LookupFailedError(Exception):
    """The exchange could not be asked whether it has an order (it kept failing)."""


@attrs.frozen
class _Submit:
    order: Order


@attrs.frozen
class _Cancel:
    order_id: str


class CcxtGateway:
    """Real orders at ``exchange_id``; see the module docstring.

    Args:
        exchange_id: a ccxt exchange id.
        settings: ``ExchangeSettings`` (``ccxt`` table, retries, limit timeout).
        credentials: the API keys.
        tell: delivers an event to an address (``Router.tell``).
        subscribe: the event bus (``Router.subscribe``) for write-ahead acknowledgements;
            None sends without waiting (tests of the gateway alone).
        markets: ``(markets, currencies)`` already loaded, given to the client so it never
            loads them again; None loads them at start.
        seed: the jitter RNG's seed.
        clock: wall time in seconds.
        client_factory: builds the async client (tests); default ``make_client``.
    """

    def __init__(
        self,
        exchange_id: str,
        settings: Any,
        credentials: Credentials | None,
        tell: Tell,
        *,
        subscribe: Subscribe | None = None,
        markets: tuple[Any, Any] | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        ack_timeout_s: float = 10.0,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self._settings = settings
        self._credentials = credentials
        self._secrets = tuple(s for s in (
            credentials.api_key, credentials.secret, credentials.password) if s) \
            if credentials is not None else ()
        self._tell = tell
        self._subscribe = subscribe
        self._markets = markets
        self._rng = random.Random(seed)
        self._clock = clock
        self._ack_timeout_s = ack_timeout_s
        self._factory = client_factory or (lambda: make_client(
            exchange_id, settings.ccxt, credentials, flavour="async"))
        self.backoff = Backoff(initial_s=settings.retry_initial_s, max_s=settings.retry_max_s,
                               retries=settings.order_retries)
        self.poll = Backoff(initial_s=settings.retry_initial_s,
                            max_s=max(settings.retry_initial_s, min(settings.retry_max_s, 5.0)),
                            retries=1 << 30)
        self.late = Backoff(initial_s=max(settings.retry_initial_s, 1.0), max_s=60.0,
                            retries=1 << 30)
        """Between two looks for the trades behind an inferred fill."""
        self._infer_after_ms = int(settings.infer_fill_after_s * 1000)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="ccxt-gateway", daemon=True)
        self._client: Any = None
        self._queues: dict[str, asyncio.Queue[_Submit | _Cancel | None]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._trackers: dict[str, OrderTracker] = {}
        """Orders being placed or followed, by order id (loop thread only)."""
        self._cancel_wanted: set[str] = set()
        """Orders to cancel (asked for, or limits past their timeout)."""
        self._cancel_sent: set[str] = set()
        self._acks: dict[str, concurrent.futures.Future[None]] = {}
        self._acks_lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._busy = 0
        self._idle = threading.Condition()
        self.use_trades = True
        self.balances: dict[str, float] = {}
        """The exchange's free balances as last fetched."""
        self.requests = 0
        self.closed = False
        self._closing = False
        """A graceful stop has begun: nothing more is sent (see ``_settle``)."""
        self._stopping = asyncio.Event()
        """Set with ``_closing``: wakes creates waiting to retry."""

    # -- life cycle (any thread) ---------------------------------------------------------

    def start(self, timeout: float = 30.0) -> CcxtGateway:
        """Start the loop thread and the client (markets shared or loaded)."""
        self._thread.start()
        try:
            self._call(self._open(), timeout)
        except BaseException:
            self.close()
            raise
        if self._subscribe is not None:
            self._unsubscribe = self._subscribe(self._on_event)
        return self

    def close(self, timeout: float = 10.0, settle_s: float | None = None) -> None:
        """Settle what is in flight (``_settle``, up to ``settle_s``, default ``SETTLE_S``),
        then cancel every task, close the client and stop the loop; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        settle_s = SETTLE_S if settle_s is None else settle_s
        if self._thread.is_alive():
            try:
                self._call(self._settle(settle_s), settle_s + 1.0)
            except Exception as exc:  # noqa: BLE001 - closing must not raise
                logger.warning("ccxt gateway: settling: {}", clean_reason(exc, self._secrets))
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread.is_alive():
            try:
                self._call(self._shutdown(), timeout)
            except Exception as exc:  # noqa: BLE001 - closing must not raise
                logger.warning("ccxt gateway: close: {}", clean_reason(exc, self._secrets))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._loop.is_running():
            self._loop.close()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _open(self) -> None:
        client = self._client = self._factory()
        if self._markets is not None:
            client.set_markets(*self._markets)
        else:
            await client.load_markets()
        has = getattr(client, "has", {}) or {}
        self.use_trades = bool(has.get("fetchOrderTrades") or has.get("fetchMyTrades"))

    async def _settle(self, timeout_s: float) -> None:
        """A graceful stop: no order is left as an intent that was never sent. Orders not
        sent yet (queued, waiting for their write-ahead, or waiting to retry a create the
        exchange refused before acting) are closed as not sent; orders already at the
        exchange, or possibly there, are followed until they finish or rest (a limit order
        at the exchange), for up to ``timeout_s``. What is still in flight then stays open
        in the records and is reconciled at the next start."""
        self._closing = True
        self._stopping.set()
        for queue in self._queues.values():
            while not queue.empty():
                job = queue.get_nowait()
                if isinstance(job, _Submit):
                    self._not_sent(OrderTracker(job.order, client_order_id(
                        job.order.order_id, self.exchange_id), use_trades=self.use_trades))
                if job is not None:
                    self._done()
        with self._acks_lock:
            waiting = list(self._acks.values())
        for future in waiting:  # their _place sees _closing and closes them as not sent
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                future.set_result(None)
        deadline = self._loop.time() + timeout_s
        while self._loop.time() < deadline and self._unsettled():
            await asyncio.sleep(0.02)
        left = self._unsettled()
        if left:
            logger.warning("ccxt gateway: {} order(s) still in flight at the stop ({}); the "
                           "next start reconciles them", len(left), ", ".join(left))

    def _unsettled(self) -> list[str]:
        """Orders at (or possibly at) the exchange that have neither finished nor come to
        rest as a limit order."""
        return [oid for oid, t in self._trackers.items()
                if not t.done and not (t.exchange_id is not None
                                       and t.order.order_type is OrderType.LIMIT
                                       and t.order.status in (OrderStatus.OPEN,
                                                              OrderStatus.PARTIALLY_FILLED))]

    def _not_sent(self, tracker: OrderTracker) -> None:
        logger.info("{}: order {} not sent: the system is stopping", tracker.order.pair,
                    tracker.order.order_id)
        self._emit(tracker.finish(OrderStatus.REJECTED, "not_sent: the system stopped before "
                                  "the order was sent", self._now_ms()))

    async def _shutdown(self) -> None:
        tasks = [*self._workers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    # -- commands (execution actor's thread) ---------------------------------------------

    def submit(self, order: Order) -> None:
        """Place ``order`` (its NEW intent is on its way to state); returns at once."""
        if self._subscribe is not None:
            with self._acks_lock:
                self._acks[order.order_id] = concurrent.futures.Future()
        self._enqueue(order.pair, _Submit(order))

    def cancel(self, order_id: str, pair: str) -> None:
        self._enqueue(pair, _Cancel(order_id))

    def cancel_pair(self, pair: str) -> None:
        self._loop.call_soon_threadsafe(self._cancel_pair, pair)

    def _enqueue(self, pair: str, job: _Submit | _Cancel) -> None:
        with self._idle:
            self._busy += 1
        self._loop.call_soon_threadsafe(self._put, pair, job)

    def _on_event(self, event: object) -> None:
        """On the state actor's thread: a committed NEW releases its create."""
        if isinstance(event, OrderUpdated) and event.order.status is OrderStatus.NEW:
            with self._acks_lock:
                future = self._acks.pop(event.order.order_id, None)
            if future is not None:
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    future.set_result(None)  # unless its wait just timed out

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no command is queued and no order is being placed or followed."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    # -- loop thread ---------------------------------------------------------------------

    def _put(self, pair: str, job: _Submit | _Cancel) -> None:
        queue = self._queues.get(pair)
        if queue is None:
            queue = self._queues[pair] = asyncio.Queue()
            self._workers[pair] = self._loop.create_task(self._worker(pair, queue))
        queue.put_nowait(job)

    def _cancel_pair(self, pair: str) -> None:
        for order_id, tracker in list(self._trackers.items()):
            if tracker.order.pair == pair:
                self._spawn(self._cancel(order_id))

    def _done(self) -> None:
        with self._idle:
            self._busy -= 1
            if self._busy == 0:
                self._idle.notify_all()

    def _spawn(self, coro: Any) -> None:
        """Run ``coro`` as a task that counts as work in progress until it ends."""
        with self._idle:
            self._busy += 1
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            # No traceback: a chained ccxt error would print its URL and signature.
            logger.error("ccxt gateway: a task failed: {}", clean_reason(error, self._secrets))
        self._done()

    def _emit(self, events: Iterable[ExchangeEvent]) -> None:
        for event in events:
            self._tell(STATE, event)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _worker(self, pair: str, queue: asyncio.Queue[_Submit | _Cancel | None]) -> None:
        while True:
            job = await queue.get()
            if job is None:
                return
            try:
                if isinstance(job, _Submit):
                    await self._place(job.order)
                else:
                    await self._cancel(job.order_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the pair's worker
                logger.error("ccxt gateway: {} job failed: {}", pair,
                             clean_reason(exc, self._secrets))
            finally:
                self._done()

    async def _wait_ack(self, order: Order) -> bool:
        with self._acks_lock:
            future = self._acks.get(order.order_id)
        if future is None:
            return True
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), self._ack_timeout_s)
        except TimeoutError:
            with self._acks_lock:
                self._acks.pop(order.order_id, None)
            logger.error("{}: order {} not sent: its intent was not recorded within {} s",
                         order.pair, order.order_id, self._ack_timeout_s)
            return False
        return True

    async def _place(self, order: Order) -> None:
        if order.order_id in self._trackers:
            return
        cid = client_order_id(order.order_id, self.exchange_id)
        tracker = OrderTracker(order, cid, use_trades=self.use_trades)
        if not await self._wait_ack(order):
            self._emit(tracker.finish(OrderStatus.REJECTED, "not_sent: the intent was not "
                                      "recorded in time", self._now_ms()))
            return
        if self._closing:
            self._not_sent(tracker)
            return
        self._trackers[order.order_id] = tracker
        try:
            xo = await self._create(tracker)
        except LookupFailedError as exc:
            logger.error("{}: order {} is in doubt ({}); asking the exchange until it says",
                         order.pair, order.order_id, exc)
            self._spawn(self._resolve(tracker))
            return
        if xo is None:
            self._trackers.pop(order.order_id, None)
            return
        self._spawn(self._follow(tracker, xo))

    async def _resolve(self, tracker: OrderTracker) -> None:
        """An order whose create failed ambiguously and whose look-up failed too: ask until
        the exchange answers; then follow it, or reject it as never placed."""
        attempt = 0
        while True:
            await asyncio.sleep(self.poll.delay(attempt, self._rng))
            attempt += 1
            try:
                found = await self._lookup_once(tracker)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - still in doubt: ask again later
                logger.debug("{}: order {} still in doubt: {}", tracker.order.pair,
                             tracker.order.order_id, clean_reason(exc, self._secrets))
                continue
            if found is not None:
                await self._follow(tracker, found)
                return
            self._trackers.pop(tracker.order.order_id, None)
            self._reject(tracker, "never_placed: the create failed and the exchange has no "
                                  "order with this client id")
            return

    async def _create(self, tracker: OrderTracker) -> ExchangeOrder | None:
        """Place the order once; its first snapshot, or None where it ended (rejected).

        Raises:
            LookupFailedError: a create failed ambiguously and the exchange could not be
                asked whether it has the order.
        """
        order, cid = tracker.order, tracker.client_id
        client = self._client
        params = {"clientOrderId": cid}
        price = order.limit_price if order.order_type is OrderType.LIMIT else None
        ambiguous = False
        attempt = 0
        while True:
            try:
                self.requests += 1
                raw = await client.create_order(order.pair, order.order_type.value,
                                                order.side.value, order.amount, price, params)
                xo = parse_order(raw, cid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                action = classify(exc)
                reason = clean_reason(exc, self._secrets)
                retry_after = self._retry_after() if action is Action.RETRY else None
                if action is Action.LOOKUP or (action is Action.REJECT and ambiguous):
                    ambiguous = True
                    found = await self._lookup(tracker)  # LookupFailedError: in doubt
                    if found is not None:
                        logger.info("{}: order {} found at the exchange after {}; adopted",
                                    order.pair, order.order_id, reason)
                        return found
                if action is Action.REJECT:
                    self._reject(tracker, reason)
                    return None
                if self.backoff.gives_up(attempt, retry_after):
                    if ambiguous and action is not Action.LOOKUP:
                        found = await self._lookup(tracker)  # an earlier attempt may have landed
                        if found is not None:
                            return found
                    self._reject(tracker, f"gave up after {attempt + 1} attempts: {reason}")
                    return None
                delay = self.backoff.delay(attempt, self._rng, retry_after)
                logger.warning("{}: order {}: {}; retry {} in {:.3g} s", order.pair,
                               order.order_id, reason, attempt + 1, delay)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._closing and not ambiguous:
                    # Every attempt was refused before the exchange acted: it has no order.
                    self._not_sent(tracker)
                    return None
                continue
            return xo

    def _reject(self, tracker: OrderTracker, reason: str) -> None:
        logger.warning("{}: order {} rejected: {}", tracker.order.pair, tracker.order.order_id,
                       reason)
        self._emit(tracker.finish(OrderStatus.REJECTED, reason, self._now_ms()))

    def _retry_after(self) -> float | None:
        headers = getattr(self._client, "last_response_headers", None)
        return parse_retry_after(headers if isinstance(headers, Mapping) else None,
                                 self._clock())

    async def _lookup(self, tracker: OrderTracker) -> ExchangeOrder | None:
        """The exchange's order for the tracker's client id, or None where it has none.

        Raises:
            LookupFailedError: the exchange could not be asked (after the retries).
        """
        attempt = 0
        while True:
            try:
                return await self._lookup_once(tracker)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                reason = clean_reason(exc, self._secrets)
                action = classify(exc)
                retry_after = self._retry_after() if action is Action.RETRY else None
                if action is Action.REJECT or self.backoff.gives_up(attempt, retry_after):
                    raise LookupFailedError(reason) from None
                logger.info("{}: looking up order {} failed: {}; asking again",
                            tracker.order.pair, tracker.order.order_id, reason)
                attempt += 1
                await asyncio.sleep(self.backoff.delay(attempt, self._rng, retry_after))

    async def _lookup_once(self, tracker: OrderTracker) -> ExchangeOrder | None:
        client, order, cid = self._client, tracker.order, tracker.client_id
        self.requests += 1
        if self.exchange_id in LOOKUP_BY_CLIENT_ID:
            try:
                raw = await client.fetch_order(cid, order.pair, {"clientOrderId": cid})
            except Exception as exc:
                if "OrderNotFound" in {c.__name__ for c in type(exc).__mro__}:
                    return None
                raise
            return parse_order(raw, cid)
        since = max(0, order.created_ms - 60_000)
        for method, kwargs in (("fetch_open_orders", {}), ("fetch_closed_orders",
                                                          {"since": since})):
            if not (getattr(client, "has", {}) or {}).get(
                    "fetchOpenOrders" if method == "fetch_open_orders" else "fetchClosedOrders"):
                continue
            rows = await getattr(client, method)(order.pair, **kwargs)
            for raw in rows or ():
                if isinstance(raw, Mapping) and raw.get("clientOrderId") == cid:
                    return parse_order(raw, cid)
        return None

    async def _fetch_trades(self, tracker: OrderTracker, xo: ExchangeOrder
                            ) -> list[ExchangeTrade] | None:
        """The order's trades; None where this exchange gives none (fills then come from
        the order's cumulative ``filled``)."""
        if not self.use_trades or xo.filled <= 0:
            return [] if self.use_trades else None
        embedded = sum(t.amount for t in xo.trades)
        if embedded >= xo.filled * (1 - 1e-9):
            return []  # the reply carried every trade (Binance's FULL response): no request
        client, order = self._client, tracker.order
        has = getattr(client, "has", {}) or {}
        self.requests += 1
        if self.exchange_id.startswith("binance"):
            # fetchOrderTrades is fetchMyTrades by orderId there, and a since would add a
            # time window the order's trades do not need
            rows = await client.fetch_my_trades(order.pair, None, None, {"orderId": xo.id})
        elif has.get("fetchOrderTrades"):
            rows = await client.fetch_order_trades(xo.id, order.pair)
        else:
            since = max(0, order.created_ms - 60_000)
            rows = await client.fetch_my_trades(order.pair, since)
        trades = [parse_trade(raw) for raw in rows or ()]
        return [t for t in trades if t.order_id in (None, xo.id)]

    async def _follow(self, tracker: OrderTracker, first: ExchangeOrder) -> None:
        """Report ``first`` and poll until the order is terminal."""
        order = tracker.order
        placed_ms = self._now_ms()
        xo: ExchangeOrder | None = first
        attempt = 0
        try:
            while True:
                if xo is not None:
                    trades: list[ExchangeTrade] | None = []
                    try:
                        trades = await self._fetch_trades(tracker, xo)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - the next poll tries again
                        logger.warning("{}: trades of {}: {}", order.pair, order.order_id,
                                       clean_reason(exc, self._secrets))
                        trades = [] if self.use_trades else None
                    now_ms = self._now_ms()
                    events, _complete = tracker.observe(xo, trades, now_ms)
                    if tracker.infer_due(now_ms, self._infer_after_ms):
                        events += self._infer(tracker, xo, now_ms)
                    self._emit(events)
                    if tracker.done:
                        if tracker.inferred is not None:
                            self._watch(self._late_trades(tracker, xo))
                        return
                    attempt = 0 if events else attempt
                overdue = (order.order_type is OrderType.LIMIT
                           and self._now_ms() - placed_ms >= self._settings.limit_timeout_s * 1000)
                if overdue and order.order_id not in self._cancel_wanted:
                    logger.info("{}: limit order {} unfilled after {:g} s; cancelling",
                                order.pair, order.order_id, self._settings.limit_timeout_s)
                    self._cancel_wanted.add(order.order_id)
                oid = order.order_id
                if oid in self._cancel_wanted and oid not in self._cancel_sent:
                    await self._cancel(oid)
                await asyncio.sleep(self.poll.delay(attempt, self._rng))
                attempt += 1
                xo = await self._poll(tracker)
        finally:
            self._trackers.pop(order.order_id, None)
            self._cancel_wanted.discard(order.order_id)
            self._cancel_sent.discard(order.order_id)

    def _infer(self, tracker: OrderTracker, xo: ExchangeOrder, now_ms: int
               ) -> list[ExchangeEvent]:
        events = tracker.infer(xo, now_ms)
        if tracker.inferred is not None:
            fill = tracker.inferred
            logger.warning("{}: order {} is {} at the exchange, but its trades have not "
                           "appeared within {:g} s; booked an inferred fill of {:g} at {:g} "
                           "from its cumulative fill (the trades replace it if they come)",
                           fill.pair, fill.order_id, xo.status, self._infer_after_ms / 1000,
                           fill.amount, fill.price)
        return events

    def _watch(self, coro: Any) -> None:
        """Run ``coro`` as a task that a stop cancels but does not wait for."""
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _late_trades(self, tracker: OrderTracker, xo: ExchangeOrder) -> None:
        """After an inferred fill: ask for the order's trades now and then, for up to
        ``LATE_TRADES_WATCH_S``; once they all appear they replace it (``FillReplaced``)."""
        started = self._clock()
        attempt = 0
        xo = attrs.evolve(xo, trades=())  # what it carried then is not what is listed now
        while tracker.inferred is not None and self._clock() - started < LATE_TRADES_WATCH_S:
            await asyncio.sleep(self.late.delay(attempt, self._rng))
            attempt += 1
            try:
                trades = await self._fetch_trades(tracker, xo)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - asked again later
                logger.debug("{}: late trades of {}: {}", tracker.order.pair,
                             tracker.order.order_id, clean_reason(exc, self._secrets))
                continue
            events, _complete = tracker.observe(xo, trades, self._now_ms())
            for event in events:
                if isinstance(event, FillReplaced):
                    logger.info("{}: the trades of order {} arrived; they replace its "
                                "inferred fill", tracker.order.pair, tracker.order.order_id)
            self._emit(events)
        if tracker.inferred is not None:
            logger.warning("{}: no trades of order {} within {:g} s; its inferred fill stands",
                           tracker.order.pair, tracker.order.order_id, LATE_TRADES_WATCH_S)

    async def _poll(self, tracker: OrderTracker) -> ExchangeOrder | None:
        """The order's current snapshot, or None where this poll failed (retried later)."""
        client, order = self._client, tracker.order
        try:
            self.requests += 1
            if tracker.exchange_id is not None:
                raw = await client.fetch_order(tracker.exchange_id, order.pair)
                return parse_order(raw, tracker.client_id)
            return await self._lookup_once(tracker)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - polling goes on
            logger.warning("{}: polling order {}: {}", order.pair, order.order_id,
                           clean_reason(exc, self._secrets))
            return None

    async def _cancel(self, order_id: str) -> None:
        """Ask the exchange to cancel; the follow loop reports what became of the order."""
        tracker = self._trackers.get(order_id)
        if tracker is None:
            return
        self._cancel_wanted.add(order_id)
        if tracker.exchange_id is None:
            return  # not placed yet: the follow loop cancels once it is
        self._cancel_sent.add(order_id)
        attempt = 0
        while True:
            try:
                self.requests += 1
                await self._client.cancel_order(tracker.exchange_id, tracker.order.pair)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                names = {c.__name__ for c in type(exc).__mro__}
                if names & {"OrderNotFound", "InvalidOrder", "OperationRejected"}:
                    return  # already finished (Binance: -2011): the next poll says how
                action = classify(exc)
                retry_after = self._retry_after() if action is Action.RETRY else None
                if action is Action.REJECT or self.backoff.gives_up(attempt, retry_after):
                    logger.warning("{}: cancel of {} failed: {}; trying again on the next "
                                   "poll", tracker.order.pair, order_id,
                                   clean_reason(exc, self._secrets))
                    self._cancel_sent.discard(order_id)
                    return
                await asyncio.sleep(self.backoff.delay(attempt, self._rng, retry_after))
                attempt += 1

    # -- reconciliation (start-up, blocking) ---------------------------------------------

    def reconcile(self, orders: Sequence[Order], recorded: Mapping[str, Sequence[Fill]],
                  db_balances: Mapping[str, float], pairs: Sequence[str],
                  timeout: float = 60.0, *, booked_trade_ids: Collection[str] = (),
                  trades_since_ms: int | None = None,
                  inferred: Sequence[Fill] = ()) -> ReconcileReport:
        """Compare the database's unfinished ``orders`` (with the fills it ``recorded`` per
        order id) and balances with the exchange, tell state what resolves them, follow the
        orders still open, and return the report (also logged). With ``trades_since_ms``,
        the account's trades since then are checked against ``booked_trade_ids`` too. The
        trades of orders booked with an ``inferred`` fill replace it where they appeared
        meanwhile, and are looked for again where they still have not.

        Raises:
            LookupFailedError: the exchange could not be asked about an order.
        """
        result: ReconcileReport = self._call(
            self._reconcile(orders, recorded, db_balances, pairs,
                            booked_trade_ids=booked_trade_ids, trades_since_ms=trades_since_ms,
                            inferred=inferred),
            timeout)
        for line in result.lines():
            logger.warning(line) if not result.clean else logger.info(line)
        return result

    async def _reconcile(self, orders: Sequence[Order], recorded: Mapping[str, Sequence[Fill]],
                         db_balances: Mapping[str, float], pairs: Sequence[str], *,
                         booked_trade_ids: Collection[str], trades_since_ms: int | None,
                         inferred: Sequence[Fill]) -> ReconcileReport:
        late = await self._late_checks(inferred)
        checks = []
        for order in orders:
            cid = client_order_id(order.order_id, self.exchange_id)
            probe = OrderTracker(order, cid, use_trades=self.use_trades)
            found = await self._lookup(probe)
            trades = None
            if found is not None:
                trades = await self._retrying(functools.partial(self._fetch_trades, probe, found))
            checks.append(OrderCheck(order=order, client_id=cid,
                                     recorded=tuple(recorded.get(order.order_id, ())),
                                     found=found, trades=None if trades is None
                                     else tuple(trades)))
        open_rows: list[ExchangeOrder] = []
        for pair in pairs:
            rows = await self._retrying(functools.partial(self._client.fetch_open_orders, pair))
            for raw in rows or ():
                try:
                    open_rows.append(parse_order(raw))
                except MalformedReplyError:
                    continue
        recent: list[ExchangeTrade] = []
        if trades_since_ms is not None and self.use_trades:
            for pair in pairs:
                rows = await self._retrying(functools.partial(
                    self._client.fetch_my_trades, pair, trades_since_ms))
                for raw in rows or ():
                    try:
                        recent.append(parse_trade(raw))
                    except MalformedReplyError:
                        continue
        balance = await self._retrying(self._fetch_balance)
        totals = {k: float(v) for k, v in (balance.get("total") or {}).items()
                  if isinstance(v, int | float)}
        self.balances = {k: float(v) for k, v in (balance.get("free") or {}).items()
                         if isinstance(v, int | float)}
        result = reconcile(checks, open_at_exchange=open_rows, recent_trades=recent,
                           booked_trade_ids=booked_trade_ids, db_balances=db_balances,
                           exchange_balances=totals, now_ms=self._now_ms(),
                           use_trades=self.use_trades, late=late)
        self._emit(result.events)
        for tracker, found in late:
            if tracker.inferred is not None:
                self._watch(self._late_trades(tracker, found))
        for tracker in result.resume:
            self._trackers[tracker.order.order_id] = tracker
            snapshot = next(c.found for c in checks if c.order.order_id == tracker.order.order_id)
            assert snapshot is not None
            self._spawn(self._follow(tracker, snapshot))
        return result.report

    async def _late_checks(self, inferred: Sequence[Fill]
                           ) -> list[tuple[OrderTracker, ExchangeOrder]]:
        """Each order booked with an inferred fill, as the exchange has it now with its
        trades seen so far; its tracker decides whether they replace the fill."""
        out = []
        for fill in inferred:
            tracker = OrderTracker(inferred_order(fill), client_order_id(
                fill.order_id, self.exchange_id), [fill], use_trades=self.use_trades)
            try:
                found = await self._lookup(tracker)
                if found is None:
                    continue
                trades = await self._retrying(
                    functools.partial(self._fetch_trades, tracker, found))
            except LookupFailedError as exc:  # the open orders matter more: go on
                logger.warning("{}: the trades of order {} (booked from an inferred fill) "
                               "could not be asked for: {}", fill.pair, fill.order_id, exc)
                continue
            out.append((tracker, attrs.evolve(found, trades=(*found.trades, *(trades or ())))))
        return out

    async def _fetch_balance(self) -> Mapping[str, Any]:
        """The account's balances. A reply whose body was not JSON comes back from ccxt as
        an empty balance (every asset 0), which would read as a difference: refused here,
        so it is asked again."""
        balance = await self._client.fetch_balance()
        if not isinstance(balance, Mapping) or not isinstance(balance.get("info"),
                                                              Mapping | list):
            raise MalformedReplyError("balance reply is not the exchange's structure")
        return balance

    async def _retrying(self, call: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                self.requests += 1
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                action = classify(exc)
                retry_after = self._retry_after() if action is Action.RETRY else None
                if action is Action.REJECT or self.backoff.gives_up(attempt, retry_after):
                    raise LookupFailedError(clean_reason(exc, self._secrets)) from None
                await asyncio.sleep(self.backoff.delay(attempt, self._rng, retry_after))
                attempt += 1
