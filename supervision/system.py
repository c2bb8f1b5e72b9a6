"""``TradingSystem``: start, watch, steer and stop trade-conductor from any Python program.

Every method runs on the caller's thread and talks to the actors only by ``tell`` or by an
``ask`` with a timeout, and no actor ever asks the caller: the embedding thread cannot
deadlock with the actors. It touches no process-global state (no signal handlers, no logging
set-up, no ``ActorRegistry.stop_all()``), so several systems can live in one process.

Start-up order: state (opens the database), execution (funded from the state's balances),
risk, market data, supervisor, then one orchestrator per pair; then the feed starts. Stop:
the feed stops, in-flight messages drain, and the actors stop in the reverse order, the state
actor last so that everything is persisted.

Monitoring: every system counts its own Prometheus metrics (``metrics``, its own registry)
and judges its health (``health()``). With ``metrics_port`` set, ``start()`` binds a small
HTTP server on 127.0.0.1 before anything else (a port in use fails the start before the
database exists), serves ``/metrics`` and ``/health`` once the feed runs, and ``stop()``
closes it first.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.execution import (
    SETTLE_S,
    CcxtGateway,
    ExecutionActor,
    LiveExecutionCore,
    ReconcileReport,
    clean_reason,
    is_inferred,
    trade_id_of,
)
from actors.market import DUPLICATE, LiveFeed, MarketDataActor, MarketDataCore, StartFeed
from actors.messages import (
    EVENTS,
    EXECUTION,
    MARKET_DATA,
    RISK,
    STATE,
    SUPERVISOR,
    AuditRecord,
    ClosedTrade,
    FeedEnded,
    FeedStale,
    Fill,
    ForceExit,
    GetAudit,
    GetBalances,
    GetEquity,
    GetFills,
    GetOrders,
    GetPairBook,
    GetPortfolio,
    GetRiskStatus,
    GetTrades,
    HaltChanged,
    HaltEntries,
    HistoryQuery,
    KeepManualHalt,
    MarketTick,
    Order,
    OrderStatus,
    OrderUpdated,
    PairBook,
    Ping,
    PortfolioSnapshot,
    ResetHalt,
    ResumeEntries,
    RiskStatus,
    StrategySpec,
    SwapStrategy,
    SystemFailed,
)
from actors.pair import PairPool, limits_for
from actors.pairs import PairError, split_pair
from actors.risk import RiskActor
from actors.router import EventCallback, PairHandle, Router
from actors.state import DatabaseAvailability, StateActor, StateCore
from supervision.api import (
    EquityPoint,
    EventJournal,
    RiskReport,
    audit_record,
    audited,
    check_page,
    equity_points,
    redacted,
)
from supervision.config import (
    POSITION_POLICIES,
    SIM,
    ConfigError,
    SystemConfig,
    require_credentials,
    validate_strategy,
)
from supervision.monitoring import HealthReport, MonitoringServer, SystemMetrics, check_health
from supervision.runtime import (
    LoadedMarkets,
    MarketSource,
    load_markets,
    make_execution,
    make_market_data,
    make_risk,
    open_state,
)
from supervision.status import PairStatus, SystemStatus, pair_figures, portfolio_figures
from supervision.tree import (
    AddPair,
    RemovePair,
    RestartTracker,
    SetPaused,
    Shutdown,
    StartPairs,
    SupervisorActor,
    Watchdog,
)


class SystemNotRunningError(RuntimeError):
    """The call needs a started, not yet stopped, system."""


class SwitchInterval:
    """Sets the interpreter's GIL switch interval while a system runs, and puts back what it
    found unless someone changed it meanwhile (it is one setting for the whole process)."""

    def __init__(self) -> None:
        self._previous: float | None = None
        self._set: float | None = None

    def apply(self, milliseconds: float | None) -> None:
        if milliseconds is None:
            return
        self._previous = sys.getswitchinterval()
        sys.setswitchinterval(milliseconds / 1000.0)
        self._set = sys.getswitchinterval()

    def restore(self) -> None:
        if self._previous is not None and sys.getswitchinterval() == self._set:
            sys.setswitchinterval(self._previous)
        self._previous = self._set = None


class TradingSystem:
    """The whole system behind one object; also a context manager that stops it on exit.

    Args:
        config: a validated ``SystemConfig`` (``supervision.config.build_config``).
        source: ticks to trade on instead of the configured simulator or replay files
            (tests and scenarios); a finite source ends the run like a replay.
    """

    def __new__(cls, config: SystemConfig, *, source: Iterable[MarketTick] | None = None
                ) -> TradingSystem:
        # With ``config.cluster`` the same facade runs the pairs in shards on a Ray cluster.
        if cls is TradingSystem and config.cluster is not None:
            from supervision.cluster import ClusterSystem

            return super().__new__(ClusterSystem)
        return super().__new__(cls)

    def __init__(self, config: SystemConfig, *, source: Iterable[MarketTick] | None = None):
        self.config = config
        self._source = source
        self.router = Router()
        self._done = threading.Event()
        self._feed_ended: FeedEnded | None = None
        self._error = ""
        self._state = "new"
        self.state_availability = DatabaseAvailability()
        """Whether the state database can be written now (the state actor keeps it)."""
        self._final: SystemStatus | None = None
        self._switch = SwitchInterval()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._market_core: MarketDataCore | None = None
        self._market: MarketSource | None = None
        self._watchdog: Watchdog | None = None
        self._pool: PairPool | None = None
        self._feed_started_ns = 0
        self._monitor: MonitoringServer | None = None
        self.markets: LoadedMarkets | None = None
        """The exchange's markets, loaded once at start (None on ``sim``)."""
        self._execution_core: object = None
        self._recorded: dict[str, list[Fill]] = {}
        self._db_balances: dict[str, float] = {}
        self._booked_trades: set[str] = set()
        self._inferred: list[Fill] = []
        self._trades_since_ms: int | None = None
        self.reconcile_report: ReconcileReport | None = None
        """What start-up reconciliation found and did (live mode)."""
        self.metrics = SystemMetrics(
            self.router, lambda: self._market_core,
            lambda: self.status(timeout=min(2.0, self.config.ask_timeout)),
            lambda: self._pool)
        self.journal = EventJournal(config.api.event_replay)
        """The last events, numbered (``events``; the API's stream replays from it)."""
        self.router.subscribe(self.journal.record)
        self._api: Any = None
        self._notifier: Any = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> TradingSystem:
        """Start every actor and the feed; returns once all pairs are up.

        Raises:
            ConfigError: ``metrics_port`` cannot be served (nothing else was started).
        """
        if self._state != "new":
            raise SystemNotRunningError(f"a system can be started once; this one is {self._state}")
        self._switch.apply(self.config.gil_switch_ms)
        port = self.config.metrics_port
        monitor = None if port is None else MonitoringServer(port, self.metrics, self.health)
        try:
            self._bind_control_plane()
            self._start_actors()
        except BaseException:
            self._stop_started()
            self._close_control_plane()
            if monitor is not None:
                monitor.close()
            if self._market is not None:
                self._market.close()
            if self._pool is not None:
                self._pool.close()
            self._switch.restore()
            raise
        if monitor is not None:
            self._monitor = monitor.start()
            logger.info("metrics on http://127.0.0.1:{}/metrics, health on /health",
                        monitor.port)
        if self._api is not None:
            self._api.start()
        return self

    @property
    def live_feed(self) -> LiveFeed | None:
        """The exchange's market data feed (``stats()``, ``stale_pairs()``, its loaded
        ``markets``), or None on the simulator, replays and custom sources."""
        return self._market.live_feed if self._market is not None else None

    @property
    def metrics_port(self) -> int | None:
        """The port ``/metrics`` and ``/health`` are served on while the system runs (the
        bound one when ``metrics_port`` was 0), or None without a server."""
        return None if self._monitor is None else self._monitor.port

    def _start_actors(self) -> None:
        config, router = self.config, self.router
        live = config.exchange != SIM and config.exchange_settings.live
        # Keys and markets first: a run that cannot trade leaves no database behind.
        credentials = require_credentials(config.exchange, config.exchange_settings) \
            if live else None
        if live or (config.exchange != SIM and self._source is None and not config.is_replay):
            self.markets = load_markets(config)
        loaded = self.markets
        # The feed before the database too: a pair the exchange does not list starts nothing.
        market = self._market = MarketSource(
            config, int(time.time() * 1000), self._source, on_notice=self._on_feed_notice,
            markets=None if loaded is None else (loaded.markets, loaded.currencies))
        state_core = open_state(config, self.markets)
        try:
            snapshot: PortfolioSnapshot = state_core.answer(GetPortfolio())
            balances = state_core.answer(GetBalances())
            if live:
                self._recorded = unfinished_fills(state_core, snapshot)
                self._db_balances = dict(balances)
                self._trades_since_ms = int(time.time() * 1000) - RECONCILE_TRADES_MS
                recent = state_core.store.fills(since_ms=self._trades_since_ms)
                self._booked_trades = booked_trade_ids(recent, config.pairs)
                self._inferred = [f for f in recent if is_inferred(f.fill_id)]
        except Exception:
            state_core.close()
            raise
        tracker = RestartTracker(config.restart)
        # Real orders wait for durable state; paper trading answers first (actors.state.actor).
        # Risk, paper execution and paper state run on the pairs' pool: an order crosses no
        # thread on its way (``actors.pair.pool``); on PostgreSQL a paper fill's rows go with
        # the batch's commit, so a turn waits on the server only there. Live execution, and
        # state whose commits come before any answer, keep a thread each.
        pool = self._services_pool()
        self._start(STATE, StateActor.start(
            state_core, router, lambda: open_state(config, self.markets, existing=True),
            lambda now: tracker.on_failure(STATE, now).restart, answer_first=not live,
            availability=self.state_availability,
            pool=None if live else pool))
        execution_core = self._execution_core = make_execution(
            config, balances, markets=self.markets, router=router, credentials=credentials)
        self._start(EXECUTION, ExecutionActor.start(
            execution_core, router,
            pool=None if isinstance(execution_core, LiveExecutionCore) else pool))
        risk_core = make_risk(config, self.markets)
        # Risk knows the portfolio before the first tick, so an entry on it is sized properly.
        risk_core.handle(state_core.ledger.portfolio(0))
        manual_halt = state_core.store.manual_halt()
        if manual_halt is not None:  # the kill switch by hand outlives the run that set it
            risk_core.answer(HaltEntries(reason=manual_halt))
            logger.warning("entries stay halted by hand, as when the last run ended ({}); "
                           "resume_entries lifts it", manual_halt or "no reason given")
        self._start(RISK, RiskActor.start(risk_core, router, pool=pool))
        self._start_trading(snapshot, market)

    def _start_trading(self, snapshot: PortfolioSnapshot, market: MarketSource) -> None:
        """Market data, the supervisor and the pairs, then the feed (risk, execution and
        state run). ``supervision.cluster.ClusterSystem`` starts them in shards instead."""
        config, router = self.config, self.router
        execution_core = self._execution_core
        market_core = self._market_core = make_market_data(config, market, packed=True)
        self._start(MARKET_DATA, MarketDataActor.start(
            market_core, router, market.ticks(), config.speed, lambda: execution_core.tick_pairs,
            live=market.is_live, close_source=market.close))
        self._start(SUPERVISOR, SupervisorActor.start(
            config, router, market_core.history, self._on_feed_ended, self._on_escalation,
            pool=self._pool))

        specs = self._pair_specs(snapshot)
        start = StartPairs(specs=specs)
        self._refs[SUPERVISOR].ask(start, timeout=start.timeout(config.ask_timeout))
        self._cancel_orphaned_orders(snapshot)
        # Readiness: once state has answered every pair's RequestBook and each pair has read
        # its book, the first tick can be traded on.
        self.drain(config.ask_timeout)
        self._state = "running"
        self._watchdog = Watchdog(router, config.restart.heartbeat_interval_s,
                                  config.restart.heartbeat_timeout_s)
        self._watchdog.start()
        self._refs[MARKET_DATA].tell(StartFeed())
        self._feed_started_ns = time.perf_counter_ns()
        logger.info("trade-conductor running: {} pair(s) on {}, state in {}",
                    len(config.pairs), "a custom source" if self._source is not None
                    else "recorded files" if config.is_replay
                    else f"live market data from {config.exchange}" if market.is_live
                    else "the simulator", config.state_db)

    def _services_pool(self) -> PairPool | None:
        """The pair pool (started here, first: risk and execution run on it too), or None
        where pairs have a thread each (``pair_workers = 0``)."""
        config = self.config
        if config.pair_workers and self._pool is None:
            stall_s, monitor_s = limits_for(config.restart.heartbeat_timeout_s)
            self._pool = PairPool(config.pair_workers, stall_s=stall_s,
                                  monitor_s=monitor_s).start()
        return self._pool

    def _pair_specs(self, snapshot: PortfolioSnapshot) -> tuple[tuple[str, StrategySpec], ...]:
        """Each pair's strategy: the one the database records, else the configured one."""
        config = self.config
        persisted = {b.pair: b.strategy for b in snapshot.books if b.strategy is not None}
        for pair, spec in persisted.items():
            if pair in config.pairs and spec != config.strategy:
                logger.info("{}: keeping the strategy the database records ({}); swap it to "
                            "change it", pair, spec.path)
        return tuple((p, persisted.get(p, config.strategy)) for p in config.pairs)

    def _start(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        self._refs[name] = ref
        self.router.services[name] = ref

    def _stop_started(self) -> None:
        """A start that failed half way stops the actors it had started, newest first: one
        left running would keep the process from exiting after the error."""
        deadline = time.monotonic() + self.config.ask_timeout
        for name, ref in reversed(list(self._refs.items())):
            with contextlib.suppress(pykka.ActorDeadError):
                self._stop_actor(name, ref, deadline)
        self._refs.clear()

    def _cancel_orphaned_orders(self, snapshot: PortfolioSnapshot) -> None:
        """Orders a previous run left open died with its paper exchange: close them in the
        records (reported), so no pair waits on an order that can never fill. Live, they are
        reconciled with the exchange instead (``actors.execution.reconcile``)."""
        if isinstance(self._execution_core, LiveExecutionCore):
            self._reconcile(snapshot, self._execution_core)
            return
        now_ms = int(time.time() * 1000)
        for book in snapshot.books:
            for order in book.open_orders:
                logger.warning("{}: order {} from a previous run is no longer at the paper "
                               "exchange; marking it canceled", book.pair, order.order_id)
                self.router.tell(STATE, OrderUpdated(order=attrs.evolve(
                    order, status=OrderStatus.CANCELED, updated_ms=now_ms,
                    reject_reason="paper exchange restarted")))

    def _reconcile(self, snapshot: PortfolioSnapshot, core: LiveExecutionCore) -> None:
        """Compare the database with the exchange and resolve the differences; the report is
        logged and kept in ``reconcile_report``. If the exchange cannot be asked, the orders
        stay open in the records (their pairs stay busy, so nothing is placed twice)."""
        orders = [o for book in snapshot.books for o in book.open_orders]
        gateway = core.gateway
        if not isinstance(gateway, CcxtGateway):
            return
        try:
            self.reconcile_report = gateway.reconcile(
                orders, self._recorded, self._db_balances,
                self.config.pairs, timeout=max(30.0, self.config.ask_timeout),
                booked_trade_ids=self._booked_trades, trades_since_ms=self._trades_since_ms,
                inferred=self._inferred)
        except Exception as exc:  # noqa: BLE001 - trading can go on; the orders stay open
            logger.error("ALERT reconciliation with {} failed ({}); {} unfinished order(s) "
                         "stay open in the records until the next start", self.config.exchange,
                         clean_reason(exc), len(orders))

    def _on_feed_notice(self, notice: FeedStale) -> None:
        """The live feed's staleness changes: risk gates entries on them, subscribers see
        them (runs on the feed's thread: two tells)."""
        self.router.tell(RISK, notice)
        self.router.tell(EVENTS, notice)

    def _on_feed_ended(self, ended: FeedEnded) -> None:
        self._feed_ended = ended
        self._done.set()

    def _on_escalation(self, reason: str) -> None:
        self._error = reason
        self.router.tell(EVENTS, SystemFailed(reason=reason))
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the data ends or the system fails; True if it did within ``timeout``."""
        return self._done.wait(timeout)

    @property
    def finished(self) -> bool:
        """The feed ended (a replay ran out) or the system failed."""
        return self._done.is_set()

    @property
    def error(self) -> str:
        """Why the system failed, or "" while it has not."""
        return self._error

    def stop(self, timeout: float = 10.0) -> SystemStatus:
        """Stop gracefully and return the final status. Safe to call more than once."""
        if self._final is not None:
            return self._final
        if self._state == "new":
            raise SystemNotRunningError("the system was never started")
        deadline = time.monotonic() + timeout
        refs = self._refs
        if self._api is not None:
            self._api.close()  # first: no request steers the actors going down
        if self._monitor is not None:
            self._monitor.close()  # first: no scrape races the actors going down
        if self._watchdog is not None:
            self._watchdog.stop()
        self._ask(SUPERVISOR, Shutdown(), deadline)
        self._stop_feed(deadline)
        self.drain(max(0.1, deadline - time.monotonic()))
        try:
            final = self.status(timeout=max(0.1, deadline - time.monotonic()))
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            logger.error("final status unavailable: {!r}", exc)
            final = None
        self._stop_pairs(deadline)
        for name in (SUPERVISOR, RISK, EXECUTION, STATE):
            if name in refs:
                # Live execution settles the orders in flight as it stops; it gets that long
                # even where the drain used up the budget, so that state stops only after it
                # has heard how they ended.
                floor = time.monotonic() + SETTLE_S + 1.0 if name == EXECUTION else deadline
                self._stop_ref(name, max(deadline, floor))
        if self._pool is not None:  # last: risk and execution ran on it
            self._pool.close(max(0.1, deadline - time.monotonic()))
        state = "failed" if self._error else ("finished" if self._feed_ended else "stopped")
        self._state = state
        if final is not None:
            pairs = tuple(attrs.evolve(p, state=self.router.pairs[p.pair].state)
                          for p in final.pairs)
            final = attrs.evolve(final, state=state, error=self._error, pairs=pairs)
        self._final = final or self._empty_status(state)
        if self._notifier is not None:
            self._notifier.close()  # last: the final events are queued; it never waits long
        self._switch.restore()
        self._done.set()
        logger.info("trade-conductor stopped ({})", state)
        return self._final

    def _stop_feed(self, deadline: float) -> None:
        self._stop_ref(MARKET_DATA, deadline)  # its on_stop ends the feed thread

    def _stop_pairs(self, deadline: float) -> None:
        for pair, handle in self.router.pairs.items():
            if handle.ref is not None:
                self._stop_actor(pair, handle.ref, deadline)
            handle.state = "failed" if handle.state == "failed" else "stopped"

    def _stop_ref(self, name: str, deadline: float) -> None:
        self._stop_actor(name, self._refs[name], deadline)

    @staticmethod
    def _stop_actor(name: str, ref: pykka.ActorRef[Any], deadline: float) -> None:
        try:
            ref.stop(block=True, timeout=max(0.1, deadline - time.monotonic()))
        except pykka.Timeout:
            logger.error("{} did not stop in time; abandoning it", name)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until the messages in flight have been handled.

        One round pings along the order path (pairs -> risk -> execution -> state); since
        every inbox is first in, first out, a round covers one step of every cascade. Rounds
        repeat until one changes nothing (same ticks processed, same orders and fills), or
        until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        last: tuple[int, int, int] | None = None
        while time.monotonic() < deadline:
            for handle in list(self.router.pairs.values()):
                if handle.ref is not None:
                    self._ask_ref(handle.ref, Ping(), deadline)
            for name in (RISK, EXECUTION, STATE):
                self._ask(name, Ping(), deadline)
            portfolio = self._ask(STATE, GetPortfolio(), deadline)
            progress = (sum(h.ticks for h in self.router.pairs.values()),
                        portfolio.orders if portfolio else 0, portfolio.fills if portfolio else 0)
            if progress == last:
                return
            last = progress

    def _ask(self, name: str, message: object, deadline: float) -> Any:
        ref = self._refs.get(name)
        return None if ref is None else self._ask_ref(ref, message, deadline)

    @staticmethod
    def _ask_ref(ref: pykka.ActorRef[Any], message: object, deadline: float) -> Any:
        try:
            return ref.ask(message, timeout=max(0.05, deadline - time.monotonic()))
        except (pykka.Timeout, pykka.ActorDeadError):
            return None

    def __enter__(self) -> TradingSystem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "new":
            self.stop()

    # -- queries and steering -------------------------------------------------------------------

    def status(self, timeout: float | None = None) -> SystemStatus:
        """A snapshot of every pair and the portfolio; each ask bounded by ``timeout``."""
        if self._final is not None:
            return self._final
        if self._state == "new":
            raise SystemNotRunningError("the system was never started")
        timeout = self.config.ask_timeout if timeout is None else timeout
        portfolio: PortfolioSnapshot = self._refs[STATE].ask(GetPortfolio(), timeout=timeout)
        risk = self._refs[RISK].ask(GetRiskStatus(), timeout=timeout)
        # Counters the feed thread keeps: plain int and fixed-key dict reads, safe from here.
        feed = self._market_core
        assert feed is not None
        books = {b.pair: b for b in portfolio.books}
        marks = dict(portfolio.marks)
        pairs = []
        now_ns = time.perf_counter_ns()
        live = self.live_feed
        stats = live.stats() if live is not None else None
        stale = set(stats.stale_pairs) if stats is not None else set()
        # Resent trades (``duplicate``) are no loss: the feed's own stats count them.
        feed_drops = {pair: tuple((r, n) for r, n in counts if r != DUPLICATE)
                      for pair, counts in stats.dropped} if stats is not None else {}
        for pair, h in self.router.pairs.items():
            price = h.last_price or marks.get(pair, 0.0)
            p50, p99 = h.latency.percentiles(now_ns) or (None, None)
            pairs.append(PairStatus(
                pair=pair, state="paused" if h.paused and h.state == "running" else h.state,
                generation=h.generation, restarts=h.restarts,
                strategy=h.strategy, price=price, ticks=h.ticks, ticks_shed=h.shed,
                ticks_dropped=feed.dropped_for(pair) + sum(n for _, n in feed_drops.get(pair, ())),
                last_latency_ms=h.last_latency_ns / 1e6,
                last_error=h.last_error, latency_p50_ms=p50, latency_p99_ms=p99,
                stale=pair in stale, shard=h.shard, node=h.node,
                **pair_figures(books.get(pair), price)))
        dropped = feed.dropped()
        for counts in feed_drops.values():
            for reason, n in counts:
                dropped[reason] = dropped.get(reason, 0) + n
        return SystemStatus(
            state=self._state, **portfolio_figures(portfolio, risk),
            ticks_accepted=sum(feed.accepted(p) for p in self.router.pairs),
            ticks_dropped=tuple(sorted(dropped.items())), pairs=tuple(pairs),
            error=self._error, feed=None if stats is None else stats.as_dict())

    def health(self) -> HealthReport:
        """Whether the system is healthy, and why not (what ``/health`` answers). It never
        asks an actor, so it answers even while they are stuck; see
        ``supervision.monitoring.health``."""
        live = not self.config.is_replay and not self.finished
        return check_health(
            state=self._state, error=self._error, services=self.router.services,
            pairs=self.router.pairs, now_ns=time.perf_counter_ns(),
            feed_started_ns=self._feed_started_ns,
            max_tick_age_s=self.config.health_max_tick_age_s if live else None,
            stale_pairs=self.live_feed.stale_pairs() if self.live_feed is not None else (),
            state_database=self.state_availability.view())

    def _empty_status(self, state: str) -> SystemStatus:
        return SystemStatus(state=state, quote=self.config.quote, cash=0.0, equity=0.0,
                            peak_equity=0.0, realized_pnl=0.0, fills=0, orders=0, halted=False,
                            halt_reason="", rejections=(), ticks_accepted=0, ticks_dropped=(),
                            pairs=(), error=self._error)

    @audited
    def swap_strategy(self, pair: str, spec: StrategySpec, *, by: str = "python") -> None:
        """Swap a pair's strategy while it trades. The spec is checked here first, so a bad
        one raises ``ConfigError`` at once; the pair then builds and warms it itself."""
        self._require_running()
        handle = self.router.pairs.get(pair)
        if handle is None:
            raise KeyError(f"no pair {pair!r}; running: {', '.join(self.router.pairs)}")
        if handle.state != "running" or handle.ref is None:
            raise ValueError(f"{pair} is {handle.state}; swap its strategy once it runs")
        validate_strategy(spec)
        self.router.tell(pair, SwapStrategy(pair=pair, spec=spec))

    @audited
    def add_pair(self, pair: str, spec: StrategySpec | None = None,
                 timeout: float | None = None, *, by: str = "python") -> None:
        """Start trading ``pair`` (with ``spec``, default the configured strategy) while the
        others go on. Pairs can be added while the simulator is the feed.

        Raises:
            ConfigError: a malformed pair, another quote currency, or a bad strategy.
            ValueError: the pair already trades, or the feed cannot produce it.
        """
        self._require_running()
        try:
            quote = split_pair(pair)[1]
        except PairError as exc:
            raise ConfigError(str(exc)) from None
        if quote != self.config.quote:
            raise ConfigError(f"{pair}: every pair must be quoted in {self.config.quote}")
        if pair in self.router.pairs:
            raise ValueError(f"{pair} is already trading")
        spec = spec or self.config.strategy
        validate_strategy(spec)
        market, core = self._market, self._market_core
        assert market is not None
        assert core is not None
        market.add_pair(pair)  # raises for a replay; the simulator begins at its next tick
        core.add_pair(pair)
        core.seed_history(pair, market.warmup(pair))
        self._refs[SUPERVISOR].ask(AddPair(pair=pair, spec=spec),
                                   timeout=self._timeout(timeout))

    @audited
    def remove_pair(self, pair: str, policy: str = "hold", timeout: float | None = None, *,
                    by: str = "python") -> None:
        """Stop trading ``pair``; ``policy`` ``hold`` keeps its position, ``flatten`` sells it
        at market."""
        self._require_running()
        if policy not in POSITION_POLICIES:
            raise ConfigError(f"policy: {policy!r} is not one of {', '.join(POSITION_POLICIES)}")
        self._refs[SUPERVISOR].ask(RemovePair(pair=pair, policy=policy),
                                   timeout=self._timeout(timeout))
        assert self._market is not None
        self._market.remove_pair(pair)

    @audited
    def pause(self, pair: str, timeout: float | None = None, *, by: str = "python") -> None:
        """No new entries on ``pair``; its open position is still managed (stops, exits)."""
        self._require_running()
        self._refs[SUPERVISOR].ask(SetPaused(pair=pair, paused=True),
                                   timeout=self._timeout(timeout))

    @audited
    def resume(self, pair: str, timeout: float | None = None, *, by: str = "python") -> None:
        """Allow new entries on ``pair`` again."""
        self._require_running()
        self._refs[SUPERVISOR].ask(SetPaused(pair=pair, paused=False),
                                   timeout=self._timeout(timeout))

    def _timeout(self, timeout: float | None) -> float:
        return self.config.ask_timeout if timeout is None else timeout

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Receive events (fills, order updates, restarts, swaps, rejections); returns a
        function that unsubscribes. ``callback`` runs on an actor's thread: keep it short."""
        return self.router.subscribe(callback)

    def _require_running(self) -> None:
        if self._state != "running":
            raise SystemNotRunningError(f"the system is {self._state}")

    # -- control plane: what the HTTP API, the dashboard and Telegram call --------------------
    # Each route of ``supervision.api.routes`` is this class's method of the same name; the
    # rules (which pair, which page, what a halt does) live here or below, once.

    def _bind_control_plane(self) -> None:
        """Before any actor: a token or port problem, or a missing alert secret, fails the
        start (``ConfigError``) before the database exists."""
        if self.config.api.port is not None:
            from supervision.api import ApiServer

            self._api = ApiServer(self)
        if self.config.notify.channels:
            from supervision.notify import Notifier

            self._notifier = Notifier(self, self.config.notify).start()

    def _close_control_plane(self) -> None:
        for part in (self._api, self._notifier):
            if part is not None:
                part.close()

    @property
    def api_url(self) -> str | None:
        """The dashboard's address while the API is served (None without it)."""
        return None if self._api is None else self._api.url

    def events(self, after: int = 0, limit: int | None = None) -> tuple[list[tuple[int, object]],
                                                                        int]:
        """The kept events numbered above ``after``, oldest first, and how many after it are
        no longer kept (``[api] event_replay`` are kept)."""
        return self.journal.since(after, limit)

    def pair_names(self) -> tuple[str, ...]:
        """The pairs that trade, in the order they were added."""
        return tuple(self.router.pairs)

    def record_audit(self, entry: AuditRecord) -> None:
        """Log, store and publish an audit record made outside a steering call (the API's
        refusal of a strategy it does not allow)."""
        audit_record(self.router, entry)

    def pair_status(self, pair: str, timeout: float | None = None) -> PairStatus:
        """One pair's status (``KeyError`` for a pair that does not trade)."""
        self._require_pair(pair)
        return self.status(timeout).pair(pair)

    def orders(self, pair: str | None = None, *, open_only: bool = False,
               since_ms: int | None = None, until_ms: int | None = None, limit: int = 100,
               offset: int = 0, timeout: float | None = None) -> tuple[Order, ...]:
        """Orders, newest first (``open_only``: not yet finished)."""
        return self._history(GetOrders(pair=pair, since_ms=since_ms, until_ms=until_ms,
                                       limit=limit, offset=offset, open_only=open_only), timeout)

    def fills(self, pair: str | None = None, *, since_ms: int | None = None,
              until_ms: int | None = None, limit: int = 100, offset: int = 0,
              timeout: float | None = None) -> tuple[Fill, ...]:
        """Fills, newest first."""
        return self._history(GetFills(pair=pair, since_ms=since_ms, until_ms=until_ms,
                                      limit=limit, offset=offset), timeout)

    def trades(self, pair: str | None = None, *, since_ms: int | None = None,
               until_ms: int | None = None, limit: int = 100, offset: int = 0,
               timeout: float | None = None) -> tuple[ClosedTrade, ...]:
        """Closed round trips, newest first."""
        return self._history(GetTrades(pair=pair, since_ms=since_ms, until_ms=until_ms,
                                       limit=limit, offset=offset), timeout)

    def equity(self, *, since_ms: int | None = None, until_ms: int | None = None,
               limit: int = 1000, timeout: float | None = None) -> tuple[EquityPoint, ...]:
        """The equity curve (one point per market minute at most), oldest first, each with
        its drawdown from the highest equity before it in the same window."""
        points = self._history(GetEquity(since_ms=since_ms, until_ms=until_ms, limit=limit),
                               timeout)
        return equity_points(reversed(points))

    def audit(self, *, since_ms: int | None = None, until_ms: int | None = None,
              limit: int = 100, offset: int = 0, timeout: float | None = None
              ) -> tuple[AuditRecord, ...]:
        """What was done by hand, newest first."""
        return self._history(GetAudit(since_ms=since_ms, until_ms=until_ms, limit=limit,
                                      offset=offset), timeout)

    def _history(self, query: HistoryQuery, timeout: float | None) -> Any:
        self._require_running()
        check_page(query.limit, query.offset, query.since_ms, query.until_ms)
        if query.pair is not None:  # a removed pair's history stays: any pair may be asked
            try:
                split_pair(query.pair)
            except PairError as exc:
                raise ConfigError(f"pair: {exc}") from None
        return self._refs[STATE].ask(query, timeout=self._timeout(timeout))

    def risk(self, timeout: float | None = None) -> RiskReport:
        """Halts, limits, rejections by reason."""
        self._require_running()
        status = self._refs[RISK].ask(GetRiskStatus(), timeout=self._timeout(timeout))
        return RiskReport(status=status, limits=self.config.risk)

    def effective_config(self) -> dict[str, Any]:
        """The configuration this run uses, every secret redacted."""
        return redacted(self.config)

    def allowed_strategies(self) -> tuple[str, ...]:
        """What a request from outside the process may swap in: the built-ins, the configured
        strategy's paths and ``[api] allowed_strategies``."""
        from strategies.registry import BUILTIN_STRATEGIES

        def paths(spec: StrategySpec) -> list[str]:
            return [spec.path, *(p for member, _ in spec.members for p in paths(member))]

        names = [*BUILTIN_STRATEGIES, *paths(self.config.strategy),
                 *self.config.api.allowed_strategies]
        return tuple(dict.fromkeys(names))

    @audited
    def force_exit(self, pair: str, timeout: float | None = None, *, by: str = "python") -> float:
        """Sell ``pair``'s whole position at market on its next tick, through the pair's own
        exit path (reason ``flatten``); returns the amount held. An order in flight is waited
        for, never doubled; a restart of the pair meanwhile does not lose the request (on a
        cluster it does: the shard restarts the pair).

        Raises:
            KeyError: no such pair. ValueError: it holds no position, or is not running.
        """
        self._require_running()
        handle = self._require_pair(pair)
        book: PairBook = self._refs[STATE].ask(GetPairBook(pair=pair),
                                               timeout=self._timeout(timeout))
        if book.position is None:
            raise ValueError(f"{pair} holds no position")
        if handle.ref is None:
            raise ValueError(f"{pair} is {handle.state}; it exits once it runs again")
        handle.exit_requested = True  # until flat, whichever generation does it
        self.router.tell(pair, ForceExit(pair=pair))
        return book.position.amount

    @audited
    def force_exit_all(self, timeout: float | None = None, *,
                       by: str = "python") -> tuple[str, ...]:
        """``force_exit`` every pair that holds a position; returns those pairs."""
        self._require_running()
        portfolio: PortfolioSnapshot = self._refs[STATE].ask(GetPortfolio(),
                                                             timeout=self._timeout(timeout))
        pairs = tuple(b.pair for b in portfolio.books
                      if b.position is not None and b.pair in self.router.pairs)
        for pair in pairs:
            self.router.pairs[pair].exit_requested = True
            self.router.tell(pair, ForceExit(pair=pair))
        return pairs

    @audited
    def halt_entries(self, reason: str = "", timeout: float | None = None, *,
                     by: str = "python") -> RiskStatus:
        """The kill switch by hand: no pair opens a position until ``resume_entries``; exits
        and stops still run."""
        status = self._steer_risk(HaltEntries(reason=reason), timeout)
        self.router.tell(STATE, KeepManualHalt(halted=True, reason=reason))
        return status

    @audited
    def resume_entries(self, timeout: float | None = None, *, by: str = "python") -> RiskStatus:
        """Lift a halt made by hand (a drawdown or daily-loss halt stays: ``reset_halt``)."""
        status = self._steer_risk(ResumeEntries(), timeout)
        self.router.tell(STATE, KeepManualHalt(halted=False))
        return status

    @audited
    def reset_halt(self, timeout: float | None = None, *, by: str = "python") -> RiskStatus:
        """Lift the drawdown and daily-loss halts; the current equity becomes the new peak."""
        return self._steer_risk(ResetHalt(), timeout)

    def _steer_risk(self, command: HaltEntries | ResumeEntries | ResetHalt,
                    timeout: float | None) -> RiskStatus:
        self._require_running()
        before: RiskStatus = self._refs[RISK].ask(GetRiskStatus(),
                                                  timeout=self._timeout(timeout))
        after: RiskStatus = self._refs[RISK].ask(command, timeout=self._timeout(timeout))
        if (after.halted, after.halt_reason) != (before.halted, before.halt_reason):
            self.router.tell(EVENTS, HaltChanged(halted=after.halted,
                                                 reason=after.halt_reason or before.halt_reason,
                                                 ts_ms=int(time.time() * 1000)))
        return after

    def _require_pair(self, pair: str) -> PairHandle:
        """The pair's handle; ``KeyError`` naming the pairs that trade."""
        handle = self.router.pairs.get(pair)
        if handle is None:
            raise KeyError(f"no pair {pair!r}; trading: {', '.join(self.router.pairs)}")
        return handle


RECONCILE_TRADES_MS = 24 * 3600 * 1000
"""How far back start-up reconciliation compares the exchange's trades with the fills."""


def booked_trade_ids(recent: Iterable[Fill], pairs: Iterable[str]) -> set[str]:
    """Exchange trade ids of the ``recent`` fills of ``pairs`` (read before the state actor
    owns the database)."""
    traded = set(pairs)
    out: set[str] = set()
    for fill in recent:
        trade_id = trade_id_of(fill.fill_id) if fill.pair in traded else None
        if trade_id is not None:
            out.add(trade_id)
    return out


def unfinished_fills(state: StateCore, snapshot: PortfolioSnapshot) -> dict[str, list[Fill]]:
    """The recorded fills of every unfinished order, by order id (read before the state actor
    owns the database)."""
    open_ids = [o.order_id for book in snapshot.books for o in book.open_orders]
    out: dict[str, list[Fill]] = {}
    for fill in state.store.fills(order_ids=open_ids) if open_ids else ():
        out.setdefault(fill.order_id, []).append(fill)
    return out

