"""Live market data from a real exchange through ccxt: websocket streams, or REST polling.

``LiveFeed`` loads the exchange's markets once (``open``, on the caller's thread, before
anything else starts: a pair the exchange does not list is refused with the close matches),
keeps them for the order side (``client``, ``markets``, ``share_markets``), and can fetch
warm-up candles. Its ``ticks()`` is the iterable the market data actor consumes, like the
simulator's: the first ``next()`` starts an asyncio event loop on a thread of its own
("feed", which the logs show as the market data actor), which runs
- with ``feed = "ws"``: one ``ccxt.pro`` ``watch_trades`` task per pair, plus best bid/ask from
  ``watch_bids_asks`` (or ``watch_ticker`` per pair) where the exchange streams them; without
  quotes, bid/ask are modelled from the trade price and the market's tick size;
- with ``feed = "rest"``: one poller per pair, ``fetch_ticker`` and ``fetch_trades`` every
  ``poll_interval_s``;
- a timer that marks pairs stale after ``stale_after_s`` without valid data, even when nothing
  arrives at all.

Every record goes through ``FeedCore`` (validation, de-duplication, freshness) before it becomes
a ``MarketTick``; what it drops is counted, never traded on. Ticks go into a bounded queue
(when the consumer falls that far behind, the oldest tick goes: live data is only worth its
latest price); ``ticks()`` reads it and ends once ``close()`` is called. A stream that fails
(disconnect, timeout, rate limit, 5xx) retries after a backoff with jitter; an outage logs one
WARNING when it starts and one INFO when every stream works again. Staleness changes are logged
once each way and handed to ``on_notice`` (the system tells risk and publishes the event).

Failure: an error in a stream is retried forever (a stale pair says so meanwhile); only a bug
in this module's own loop ends the feed, and ``ticks()`` then raises it on the market data
actor's feed thread, which reports it to the supervisor like any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
from loguru import logger

from actors.exchange import DECIMAL_PLACES, TICK_SIZE, make_client, precision_step, share_markets
from actors.market.live_feed_core import (
    DROP_REASONS,
    Converted,
    FeedCore,
    LinkChange,
    Links,
    candle_ticks,
)
from actors.messages import FeedStale, MarketTick

_CLOSED = object()
ERROR_CHARS = 200
"""An exchange's error text is cut to this in logs (some echo whole replies)."""


class FeedSettings(Protocol):
    """The ``[exchange]`` settings the feed reads (``supervision.config.ExchangeSettings``)."""

    @property
    def ccxt(self) -> dict[str, Any]: ...
    @property
    def feed(self) -> str: ...
    @property
    def poll_interval_s(self) -> float: ...
    @property
    def stale_after_s(self) -> float: ...
    @property
    def reconnect_initial_s(self) -> float: ...
    @property
    def reconnect_max_s(self) -> float: ...


class UnknownMarketError(ValueError):
    """A configured pair is not a market at the exchange (bad input)."""


class ExchangeUnavailableError(RuntimeError):
    """The exchange's markets could not be loaded at start (network, exchange down)."""


class FeedUnsupportedError(ValueError):
    """The exchange cannot serve the chosen feed (no websocket trades in ccxt.pro)."""


@attrs.frozen(kw_only=True)
class FeedStats:
    """What the feed has done so far; read from any thread."""

    exchange: str
    feed: str
    running: bool
    stale_pairs: tuple[str, ...]
    dropped: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    """Per pair, records dropped by reason (every reason present)."""
    overflow: int
    """Ticks dropped because the consumer fell a whole queue behind."""
    disconnects: int
    reconnects: int
    down_streams: tuple[str, ...]

    def dropped_for(self, pair: str) -> dict[str, int]:
        return dict(dict(self.dropped).get(pair, ()))

    def as_dict(self) -> dict[str, Any]:
        """For the status JSON: drops as ``{pair: {reason: count}}``."""
        out = attrs.asdict(self)
        out["dropped"] = {pair: dict(counts) for pair, counts in self.dropped}
        out["stale_pairs"] = list(self.stale_pairs)
        out["down_streams"] = list(self.down_streams)
        return out


def tick_size_of(market: Mapping[str, Any], precision_mode: int) -> float:
    """A market's price step from ccxt's ``precision.price`` (read as ``MarketRules`` reads
    it, so modelled quotes sit on the paper exchange's grid); 0.0 when unknown or neither a
    tick size nor decimal places (quotes are then modelled on a grid near 1e-4 of the price)."""
    value = (market.get("precision") or {}).get("price")
    if (precision_mode not in (TICK_SIZE, DECIMAL_PLACES) or not isinstance(value, int | float)
            or isinstance(value, bool) or not value > 0):
        return 0.0
    return precision_step(value, precision_mode) or 0.0


def _short(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "..."


class LiveFeed:
    """Market data of ``pairs`` at ``exchange_id``; see the module docstring.

    Args:
        settings: the ``[exchange]`` settings (``ccxt`` options, feed kind, timings).
        on_notice: receives each ``FeedStale`` change, on the feed's thread; keep it short.
        seed: seeds the reconnect jitter.
        queue_size: ticks buffered for the consumer.
    """

    def __init__(self, exchange_id: str, settings: FeedSettings, pairs: Sequence[str], *,
                 on_notice: Callable[[FeedStale], None] | None = None, seed: int = 0,
                 queue_size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.exchange_id = exchange_id
        self.settings = settings
        self.pairs = tuple(pairs)
        self.on_notice = on_notice
        self._rng = random.Random(seed)
        self._clock = clock
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._client: Any = None
        self._core: FeedCore | None = None
        self._links: Links | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._overflow = 0
        self._start_wall_ms = 0

    # -- start-up, on the caller's thread ------------------------------------------------------

    def open(self, loaded: tuple[dict[str, Any], dict[str, Any] | None] | None = None
             ) -> LiveFeed:
        """Load the markets (once; or take ``loaded``, the markets and currencies another
        client already loaded) and check every pair is one of them.

        Raises:
            ExchangeUnavailableError: the markets could not be loaded.
            UnknownMarketError: a pair is not listed; the message names close matches.
        """
        import ccxt

        if self.settings.feed == "ws":
            import ccxt.pro

            pro = getattr(ccxt.pro, self.exchange_id, None)
            if pro is None or not pro.describe(object.__new__(pro))["has"].get("watchTrades"):
                raise FeedUnsupportedError(
                    f"exchange.feed: 'ws' needs websocket trades, which ccxt.pro does not "
                    f"offer for {self.exchange_id}; use feed = \"rest\" (--feed rest)")
        client = make_client(self.exchange_id, self.settings.ccxt, flavour="sync")
        try:
            if loaded is not None:
                client.set_markets(*loaded)
            else:
                client.load_markets()
        except (ccxt.BaseError, OSError, ValueError, TypeError, KeyError) as exc:
            raise ExchangeUnavailableError(
                f"exchange {self.exchange_id}: markets could not be loaded ({_short(exc)})"
            ) from None
        markets = client.markets or {}
        for pair in self.pairs:
            if pair not in markets:
                close = difflib.get_close_matches(pair, list(markets), n=5, cutoff=0.6)
                hint = f"; close matches: {', '.join(close)}" if close else ""
                raise UnknownMarketError(
                    f"pairs: {pair} is not a market at {self.exchange_id} ({len(markets)} "
                    f"markets loaded){hint}")
        self._client = client
        ticks = {p: tick_size_of(markets[p], client.precisionMode) for p in self.pairs}
        self._core = FeedCore(ticks, self.settings.stale_after_s, self._clock())
        streams = self._streams(client)
        self._links = Links(streams, self.settings.reconnect_initial_s,
                            self.settings.reconnect_max_s, self._rng)
        return self

    def _streams(self, client: Any) -> list[str]:
        if self.settings.feed == "rest":
            return [f"poll:{p}" for p in self.pairs]
        return [f"trades:{p}" for p in self.pairs] + [f"quotes:{p}" for p in self.pairs]

    @property
    def client(self) -> Any:
        """The synchronous ccxt client whose markets are loaded (``share_markets`` from it)."""
        if self._client is None:
            raise RuntimeError("open() the feed first")
        return self._client

    @property
    def markets(self) -> dict[str, Any]:
        """The exchange's markets as ccxt loaded them (precision, limits)."""
        return dict(self.client.markets)

    def share_markets(self, target: Any) -> None:
        """Give another ccxt client of this exchange the loaded markets."""
        share_markets(self.client, target)

    def warmup(self, pair: str, count: int, timeframe: str = "1m") -> list[MarketTick]:
        """About ``count`` warm-up ticks of ``pair`` from recent closed candles (four ticks per
        candle, as a candle replay makes them); [] where the exchange has no candles or the
        request fails (strategies then warm up on live ticks)."""
        client = self.client
        if count <= 0 or not client.has.get("fetchOHLCV"):
            return []
        bar_ms = client.parse_timeframe(timeframe) * 1000
        try:
            candles = client.fetch_ohlcv(pair, timeframe, limit=math.ceil(count / 4) + 1)
        except Exception as exc:  # noqa: BLE001 - warm-up is optional; say why it is skipped
            logger.warning("{}: no warm-up candles ({}); strategies warm up on live ticks",
                           pair, _short(exc))
            return []
        now_ms = int(time.time() * 1000)
        closed = [c for c in candles or []
                  if isinstance(c, list | tuple) and len(c) >= 6
                  and isinstance(c[0], int) and c[0] + bar_ms <= now_ms]
        tick = tick_size_of(client.markets[pair], client.precisionMode)
        return candle_ticks(pair, closed, tick, bar_ms)[-count:]

    # -- the iterable the market data actor reads -----------------------------------------------

    def __iter__(self) -> Iterator[MarketTick]:
        return self.ticks()

    def ticks(self) -> Iterator[MarketTick]:
        """Live ticks until ``close()``; the first ``next()`` starts the feed."""
        self._start()
        get = self._queue.get
        while True:
            item = get()
            if item is _CLOSED:
                if self._error is not None:
                    raise RuntimeError(f"live feed failed: {self._error!r}") from self._error
                return
            yield item

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed.is_set():
                if self._closed.is_set():
                    self._put_closed()
                return
            if self._core is None:
                raise RuntimeError("open() the feed before reading its ticks")
            self._core.reset_clock(self._clock())
            self._start_wall_ms = int(time.time() * 1000)
            self._thread = threading.Thread(target=self._run, name="feed", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the streams, close the clients and end ``ticks()``; safe to call twice."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.error("live feed thread did not stop within {} s; abandoning it",
                             timeout)
        self._put_closed()
        session = getattr(self._client, "session", None)
        if session is not None:
            session.close()

    def _put_closed(self) -> None:
        while True:
            try:
                self._queue.put_nowait(_CLOSED)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    # -- reporting, from any thread ------------------------------------------------------------

    def stale_pairs(self) -> frozenset[str]:
        return self._core.stale_pairs if self._core is not None else frozenset()

    def stats(self) -> FeedStats:
        core, links = self._core, self._links
        dropped = tuple((p, tuple(core.dropped(p).items())) for p in self.pairs) if core else ()
        return FeedStats(
            exchange=self.exchange_id, feed=self.settings.feed,
            running=self._thread is not None and self._thread.is_alive(),
            stale_pairs=tuple(sorted(self.stale_pairs())), dropped=dropped,
            overflow=self._overflow,
            disconnects=links.disconnects if links else 0,
            reconnects=links.reconnects if links else 0,
            down_streams=tuple(sorted(links.down)) if links else ())

    # -- the event loop thread -----------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except BaseException as exc:  # noqa: BLE001 - reported through ticks() to the actor
            logger.exception("live feed loop failed")
            self._error = exc
        finally:
            loop.close()
            self._put_closed()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        stopping = asyncio.Event()
        with self._lock:
            self._loop, self._stopping = loop, stopping
            if self._closed.is_set():
                return
        ws = self.settings.feed == "ws"
        client = make_client(self.exchange_id, self.settings.ccxt,
                             flavour="pro" if ws else "async")
        share_markets(self.client, client)
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._stale_timer(stopping))]
        if ws:
            tasks += [asyncio.create_task(self._watch_trades(client, p)) for p in self.pairs]
            tasks += self._quote_tasks(client)
        else:
            tasks += [asyncio.create_task(self._poll(client, p)) for p in self.pairs]
        logger.info("live market data from {} ({}) for {}", self.exchange_id,
                    "websocket streams" if ws else
                    f"REST polling every {self.settings.poll_interval_s:g} s",
                    ", ".join(self.pairs))
        stop_wait = asyncio.create_task(stopping.wait())
        tasks.append(stop_wait)
        try:
            pending = set(tasks)
            while stop_wait in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = None if task.cancelled() else task.exception()
                    if error is not None:
                        raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await client.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                logger.debug("closing the ccxt client: {!r}", exc)

    def _quote_tasks(self, client: Any) -> list[asyncio.Task[None]]:
        has = client.has
        if has.get("watchBidsAsks"):
            return [asyncio.create_task(self._watch_quotes(
                client, "watch_bids_asks", [f"quotes:{p}" for p in self.pairs]))]
        if has.get("watchTicker"):
            return [asyncio.create_task(self._watch_quotes(client, "watch_ticker", [f"quotes:{p}"]))
                    for p in self.pairs]
        logger.info("{} streams no quotes; bid/ask are modelled from trades and the tick size",
                    self.exchange_id)
        for pair in self.pairs:
            self._drop_stream(f"quotes:{pair}")
        return []

    # -- streams -------------------------------------------------------------------------------

    async def _watch_trades(self, client: Any, pair: str) -> None:
        stream = f"trades:{pair}"
        while True:
            try:
                trades = await client.watch_trades(pair)
            except Exception as exc:  # noqa: BLE001 - sorted by _failed
                if not await self._failed(stream, pair, exc):
                    return
                continue
            self._succeeded(stream)
            self._deliver(self._core_().trades(pair, trades or (), self._clock(), _wall_ms()))

    async def _watch_quotes(self, client: Any, method: str, streams: list[str]) -> None:
        pairs = [s.split(":", 1)[1] for s in streams]
        watch = getattr(client, method)
        while True:
            try:
                if method == "watch_bids_asks":
                    got = await watch(pairs)
                    records = list((got or {}).values())
                else:
                    records = [await watch(pairs[0])]
            except Exception as exc:  # noqa: BLE001 - sorted by _failed
                if not await self._failed(streams[0], pairs[0], exc, also=streams[1:]):
                    return
                continue
            core, now = self._core_(), self._clock()
            for stream in streams:
                self._succeeded(stream)
            for record in records:
                symbol = record.get("symbol") if isinstance(record, Mapping) else None
                pair = symbol if symbol in pairs else pairs[0] if len(pairs) == 1 else None
                if pair is None:
                    continue
                notice = core.quote(pair, record, now)
                if notice is not None:
                    self._notify(notice)

    async def _poll(self, client: Any, pair: str) -> None:
        stream = f"poll:{pair}"
        interval = self.settings.poll_interval_s
        since = self._start_wall_ms
        trades_ok = bool(client.has.get("fetchTrades"))
        while True:
            started = self._clock()
            try:
                ticker = await client.fetch_ticker(pair)
                trades: list[Any] = []
                if trades_ok:
                    try:
                        trades = await client.fetch_trades(pair, since=since, limit=100) or []
                    except Exception as exc:
                        if not _is_refusal(exc):
                            raise
                        trades_ok = False
                        logger.info("{}: {} does not serve recent trades ({}); polling its "
                                    "ticker only", pair, self.exchange_id, _short(exc))
            except Exception as exc:  # noqa: BLE001 - sorted by _failed
                if not await self._failed(stream, pair, exc):
                    return
                continue
            self._succeeded(stream)
            core, now, wall = self._core_(), self._clock(), _wall_ms()
            converted = Converted(ticks=())
            if trades:
                notice = core.quote(pair, ticker, now)
                if notice is not None:
                    self._notify(notice)
                converted = core.trades(pair, trades, now, wall)
            if converted.ticks:
                since = max(since, converted.ticks[-1].ts_ms)
            else:
                converted = core.ticker(pair, ticker, now, wall)
            self._deliver(converted)
            await asyncio.sleep(max(0.0, interval - (self._clock() - started)))

    async def _stale_timer(self, stopping: asyncio.Event) -> None:
        period = min(1.0, self.settings.stale_after_s / 4)
        core = self._core_()
        while not stopping.is_set():
            for notice in core.check_stale(self._clock()):
                self._notify(notice)
            await asyncio.sleep(period)

    # -- shared steps --------------------------------------------------------------------------

    async def _failed(self, stream: str, pair: str, exc: BaseException,
                      also: Sequence[str] = ()) -> bool:
        """Log (once per outage), wait out the backoff; False when the stream gives up."""
        import ccxt

        if isinstance(exc, asyncio.CancelledError):
            raise exc
        if _is_unsupported(exc) and stream.startswith("quotes:"):
            logger.info("{}: no quote stream at {} ({}); bid/ask are modelled from trades",
                        pair, self.exchange_id, _short(exc))
            for name in (stream, *also):
                self._drop_stream(name)
            return False
        if isinstance(exc, ccxt.BadSymbol):
            logger.error("{}: {} refuses the symbol ({}); no market data for it", pair,
                         self.exchange_id, _short(exc))
            for name in (stream, *also):
                self._drop_stream(name)
            return False
        if not isinstance(exc, ccxt.BaseError):
            self._core_().failed_request(pair)  # ccxt choked on the reply
        links = self._links_()
        delay, change = links.failed(stream, _short(exc), self._clock())
        for name in also:
            links.failed(name, "", self._clock())
        if change is not None:
            self._log_link(change)
        else:
            logger.debug("{} failed again ({}); retrying in {:.2f} s", stream, _short(exc), delay)
        await asyncio.sleep(delay)
        return True

    def _succeeded(self, stream: str) -> None:
        change = self._links_().succeeded(stream, self._clock())
        if change is not None:
            self._log_link(change)

    def _drop_stream(self, stream: str) -> None:
        change = self._links_().drop_stream(stream, self._clock())
        if change is not None:
            self._log_link(change)

    def _log_link(self, change: LinkChange) -> None:
        s = self.settings
        if change.kind == "down":
            logger.warning("market data from {} interrupted ({}: {}); reconnecting with "
                           "backoff from {:g} s up to {:g} s", self.exchange_id, change.stream,
                           change.error, s.reconnect_initial_s, s.reconnect_max_s)
        else:
            logger.info("market data from {} flowing again after {:.1f} s ({} failed "
                        "attempt(s))", self.exchange_id, change.down_s, change.failures)

    def _deliver(self, converted: Converted) -> None:
        if converted.fresh is not None:
            self._notify(converted.fresh)  # first: risk hears it before any resulting order
        put = self._queue.put_nowait
        for tick in converted.ticks:
            try:
                put(tick)
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()  # the oldest goes: live data is its latest price
                self._overflow += 1
                put(tick)

    def _notify(self, notice: FeedStale) -> None:
        notice = attrs.evolve(notice, ts_ms=_wall_ms())
        if notice.stale:
            logger.bind(pair=notice.pair).warning(
                "{}: no market data for {:.1f} s; no new positions until it returns",
                notice.pair, notice.age_s)
        else:
            logger.bind(pair=notice.pair).info(
                "{}: market data is back after {:.1f} s; new positions allowed again",
                notice.pair, notice.age_s)
        if self.on_notice is not None:
            try:
                self.on_notice(notice)
            except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the feed
                logger.exception("feed notice subscriber failed")

    def _core_(self) -> FeedCore:
        assert self._core is not None
        return self._core

    def _links_(self) -> Links:
        assert self._links is not None
        return self._links


def _is_unsupported(exc: BaseException) -> bool:
    import ccxt

    return isinstance(exc, ccxt.NotSupported | ccxt.BadRequest) and not isinstance(
        exc, ccxt.BadSymbol)


def _is_refusal(exc: BaseException) -> bool:
    """The exchange answered and said no (not a network or server trouble): asking again will
    not change it."""
    import ccxt

    return isinstance(exc, ccxt.ExchangeError) and not isinstance(exc, ccxt.BadSymbol)


def _wall_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["DROP_REASONS", "ExchangeUnavailableError", "FeedStats", "FeedUnsupportedError",
           "LiveFeed", "UnknownMarketError", "tick_size_of"]
