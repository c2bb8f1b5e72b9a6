"""``SyncRuntime``: the same cores as the actor system, driven in one thread, in order.

No actors, no queues between threads, no waiting: each tick goes through market data
validation, the paper exchange (if a limit order rests), the pair's orchestrator, and every
message that follows (risk, execution, state, back to the pair) is delivered from a local
FIFO before the next tick. The result is deterministic for a given input, which makes it the
backtest/replay driver and the reference the actor system is compared against in tests.

Group commit: the state is committed every ``commit_ticks`` ticks, at the end of ``run`` and
before ``status``/``close``, not once per change. Messages are still delivered at once (the
run is one thread, so nobody outside can act on an uncommitted change); a crash of the
process loses at most the last ``commit_ticks`` ticks' changes, and a replay is rerun from
its input anyway.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from actors.market import MarketDataCore
from actors.messages import (
    EVENTS,
    EXECUTION,
    RISK,
    STATE,
    Envelope,
    GetBalances,
    GetPortfolio,
    GetRiskStatus,
    MarketTick,
    PortfolioSnapshot,
    RequestBook,
    StrategySpec,
    SwapStrategy,
)
from actors.pair import TradingOrchestrator, close_strategy
from supervision.config import SystemConfig
from supervision.runtime.assembly import (
    MarketSource,
    make_execution,
    make_market_data,
    make_orchestrator,
    make_risk,
    make_strategy,
    open_state,
)
from supervision.status import PairStatus, SystemStatus, pair_figures, portfolio_figures

COMMIT_TICKS = 10_000
"""Ticks between two commits of the state (group commit)."""


class SyncRuntime:
    """Runs ``config`` on ``source`` (default: the configured simulator or replay files);
    ``history`` warms each pair's strategy up before a custom ``source`` (a backtest's data
    before its time range)."""

    def __init__(self, config: SystemConfig, source: Iterable[MarketTick] | None = None,
                 start_ms: int = 1_700_000_000_000, *, commit_ticks: int = COMMIT_TICKS,
                 history: Mapping[str, Sequence[MarketTick]] | None = None) -> None:
        if commit_ticks <= 0:
            raise ValueError(f"commit_ticks must be > 0, got {commit_ticks}")
        self.config = config
        self.commit_ticks = commit_ticks
        self.state = open_state(config)
        self.state.group_commit = True
        self.execution = make_execution(config, self.state.answer(GetBalances()))
        self.risk = make_risk(config)
        self.risk.handle(self.state.ledger.portfolio(0))
        self.market = MarketSource(config, start_ms, source, history=history)
        self.market_data: MarketDataCore = make_market_data(config, self.market)
        self.events: list[object] = []
        self._on_event: Callable[[object], None] | None = None
        self.state.publish = False  # until somebody listens (``on_event``)
        self.ticks = 0
        self.pairs: dict[str, TradingOrchestrator] = {}
        # Every address, the pairs' included (added below), to the core method that takes it.
        self._handlers: dict[str, Callable[[Any], list[Envelope] | None]] = {
            STATE: self.state.handle, RISK: self.risk.handle,
            EXECUTION: self.execution.handle, EVENTS: self._publish,
        }
        persisted = {b.pair: b.strategy for b in self._portfolio().books if b.strategy}
        for pair in config.pairs:
            spec = persisted.get(pair, config.strategy)
            core = self.pairs[pair] = make_orchestrator(config, pair, spec, self._build)
            core.publish = False
            core.mark_to = self._mark
            self._handlers[pair] = core.handle
            self._run([Envelope(STATE, RequestBook(pair=pair))])

    def _build(self, pair: str, spec: StrategySpec) -> Any:
        return make_strategy(spec, self.market_data.history(pair, self.config.history_size))

    def run(self, max_ticks: int | None = None) -> SystemStatus:
        """Feed every tick through the cores; returns the final status."""
        ticks = self.market.ticks()
        accept = self.market_data.accept
        # Bound once: a dict lookup and a method binding less per tick.
        decide = {pair: core.process_market_tick for pair, core in self.pairs.items()}
        run = self._run
        execution = self.execution
        commit = self.state.commit
        every = self.commit_ticks
        count = self.ticks
        next_commit = count + every
        try:
            for tick in ticks:
                if not accept(tick):
                    continue
                count += 1
                pair = tick.pair
                if pair in execution.tick_pairs:
                    run(execution.handle(tick))
                out = decide[pair](tick)
                if out:
                    run(out)
                if count >= next_commit:
                    commit()
                    next_commit = count + every
                if max_ticks is not None and count >= max_ticks:
                    break
        finally:
            self.ticks = count
        commit()
        return self.status()

    def swap_strategy(self, pair: str, spec: StrategySpec) -> None:
        self._run([Envelope(pair, SwapStrategy(pair=pair, spec=spec))])

    def _mark(self, pair: str, price: float, ts_ms: int, generation: int) -> None:
        """A pair's mark on a tick that sends nothing else, straight into the state core
        (``TradingOrchestrator.mark_to``), and a held pair's new value straight to risk:
        the order in which the message and its answer would have been delivered."""
        portfolio = self.state.mark_price(pair, price, ts_ms, generation)
        if portfolio is not None:
            out = self.risk.handle(portfolio)
            if out:
                self._run(out)

    def _run(self, envelopes: list[Envelope]) -> None:
        queue = deque(envelopes)
        pop, extend = queue.popleft, queue.extend
        handlers = self._handlers
        while queue:
            envelope = pop()
            out = handlers[envelope.to](envelope.message)
            if out:
                extend(out)

    @property
    def on_event(self) -> Callable[[object], None] | None:
        """Called with every event (fills, order updates, closed positions, ...), or None."""
        return self._on_event

    @on_event.setter
    def on_event(self, callback: Callable[[object], None] | None) -> None:
        self._on_event = callback
        # Without a listener the cores need not build their events at all.
        self.state.publish = callback is not None
        for core in self.pairs.values():
            core.publish = callback is not None

    def _publish(self, event: object) -> None:
        on_event = self._on_event
        if on_event is not None:
            on_event(event)

    def _portfolio(self) -> PortfolioSnapshot:
        snapshot: PortfolioSnapshot = self.state.answer(GetPortfolio())
        return snapshot

    def status(self) -> SystemStatus:
        self.state.commit()
        portfolio = self._portfolio()
        books = {b.pair: b for b in portfolio.books}
        marks = dict(portfolio.marks)
        pairs = []
        for pair, core in self.pairs.items():
            latest = self.market_data.latest(pair)
            price = latest.price if latest else marks.get(pair, 0.0)
            pairs.append(PairStatus(
                pair=pair, state="running", generation=0, restarts=0,
                strategy=core.strategy.describe(), price=price,
                ticks=self.market_data.accepted(pair), ticks_shed=0,
                ticks_dropped=self.market_data.dropped_for(pair), last_latency_ms=0.0,
                **pair_figures(books.get(pair), price)))
        dropped = tuple(sorted(self.market_data.dropped().items()))
        return SystemStatus(state="finished",
                            **portfolio_figures(portfolio, self.risk.answer(GetRiskStatus())),
                            ticks_accepted=self.ticks, ticks_dropped=dropped, pairs=tuple(pairs))

    def close(self) -> None:
        """Commit what is left, close the database and every strategy (an isolated one's
        child process ends here, not at garbage collection)."""
        try:
            self.state.commit()
        finally:
            self.state.close()
            for orchestrator in self.pairs.values():
                close_strategy(orchestrator.strategy)
