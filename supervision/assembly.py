"""Builds the plain cores from a ``SystemConfig``.

The actor system and the threadless runtime assemble the very same cores here, so a replay
driven in one thread makes the same decisions as the live system.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from actors.execution_core import ExecutionCore
from actors.market_data_core import MarketDataCore
from actors.messages import MarketTick, StrategySpec
from actors.orchestrator_core import StrategyBuilder, TradingOrchestrator
from actors.paper_exchange import PaperExchange
from actors.replay_feed import open_feeds
from actors.risk_core import RiskBook, RiskCore
from actors.simulator import MarketSimulator, profile_for
from actors.state_core import StateCore
from strategies.base import Strategy
from strategies.registry import build_strategy
from supervision.config import SystemConfig


def tick_size(pair: str) -> float:
    return profile_for(pair).tick_size


def lot_size(pair: str) -> float:
    return profile_for(pair).lot_size


def open_state(config: SystemConfig) -> StateCore:
    """Open (or create) the state database; its directory is made here, at start, never
    during validation, so a bad config leaves nothing behind."""
    if config.state_db != ":memory:":
        parent = os.path.dirname(os.path.abspath(config.state_db))
        os.makedirs(parent, exist_ok=True)
    return StateCore.open(config.state_db, config.quote, config.funding)


def make_execution(config: SystemConfig, balances: dict[str, float]) -> ExecutionCore:
    exchange = PaperExchange(config.paper, dict(balances), tick_size, lot_size)
    return ExecutionCore(exchange)


def make_risk(config: SystemConfig) -> RiskCore:
    return RiskCore(RiskBook(config.risk, lot_size))


class MarketSource:
    """The feed a run trades on and the warm-up history that goes with it.

    ``custom`` (tests, scenarios, embedding tools) replaces the configured simulator or replay
    files; like a replay it brings no warm-up history: strategies warm up on its first ticks.
    """

    def __init__(self, config: SystemConfig, start_ms: int,
                 custom: Iterable[MarketTick] | None = None) -> None:
        self.config = config
        self.custom = custom
        self.simulator: MarketSimulator | None = None
        if custom is None and not config.is_replay:
            self.simulator = MarketSimulator(config.pairs, config.seed, start_ms,
                                             config.tick_interval_ms)

    def warmup(self, pair: str) -> list[MarketTick]:
        """Warm-up history ending at the simulator's current market time."""
        if self.simulator is None:
            return []
        return self.simulator.warmup_history(pair, self.config.warmup_ticks,
                                             self.simulator.now_ms)

    def add_pair(self, pair: str) -> None:
        """Start ticks for a pair added at runtime; only the simulator can make them."""
        if self.simulator is None:
            what = "recorded files" if self.config.is_replay else "a custom source"
            raise ValueError(f"cannot add {pair}: the feed is {what}, which has no data for "
                             "it; pairs can be added at runtime on the simulator")
        self.simulator.add_pair(pair)

    def remove_pair(self, pair: str) -> None:
        if self.simulator is not None:
            self.simulator.remove_pair(pair)

    def ticks(self) -> Iterator[MarketTick]:
        if self.custom is not None:
            return iter(self.custom)
        if self.simulator is not None:
            return self.simulator.ticks()
        return open_feeds(dict(self.config.replay))


def make_market_data(config: SystemConfig, source: MarketSource) -> MarketDataCore:
    core = MarketDataCore(config.pairs, history_size=config.history_size)
    for pair in config.pairs:
        core.seed_history(pair, source.warmup(pair))
    return core


def make_strategy(spec: StrategySpec, history: Iterable[MarketTick]) -> Strategy:
    """Build, validate and warm up; raises ``StrategyError`` and leaves nothing half-built."""
    strategy = build_strategy(spec)
    strategy.warm_up(history)
    return strategy


def make_orchestrator(
    config: SystemConfig,
    pair: str,
    spec: StrategySpec,
    build: StrategyBuilder,
    generation: int = 0,
    *,
    paused: bool = False,
) -> TradingOrchestrator:
    """A pair's core with ``spec`` built and warmed by ``build`` (which it keeps for swaps)."""
    return TradingOrchestrator(pair, build(pair, spec), config.exits, generation=generation,
                               run_id=config.run_id, spec=spec, build=build, paused=paused)
