"""Builds the plain cores from a ``SystemConfig``.

The actor system and the threadless runtime assemble the very same cores here, so a replay
driven in one thread makes the same decisions as the live system.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from loguru import logger

from actors.exchange import Credentials, MarketRules, make_client
from actors.execution import (
    CcxtGateway,
    ExecutionCore,
    LiveExecutionCore,
    PaperExchange,
    clean_reason,
)
from actors.market import (
    ExchangeUnavailableError,
    FeedUnsupportedError,
    LiveFeed,
    MarketDataCore,
    MarketSimulator,
    UnknownMarketError,
    open_feeds,
    profile_for,
)
from actors.messages import FeedStale, MarketTick, StrategySpec
from actors.pair import StrategyBuilder, TradingOrchestrator
from actors.risk import RiskBook, RiskCore
from actors.router import Router
from actors.state import StateCore, StateStoreError
from strategies.base import Strategy
from strategies.registry import build_strategy
from supervision.config import (
    SIM,
    ConfigError,
    SystemConfig,
    check_location,
    load_db_password,
)


def tick_size(pair: str) -> float:
    return profile_for(pair).tick_size


def lot_size(pair: str) -> float:
    return profile_for(pair).lot_size


def open_state(config: SystemConfig, markets: LoadedMarkets | None = None, *,
               existing: bool = False) -> StateCore:
    """Open (or create) the state database; an SQLite file's directory is made here, at
    start, never during validation, so a bad config leaves nothing behind. With a real
    exchange's ``markets``, a position's remainder below the exchange's lot is dust (after a
    fee taken in the base, the exit can only sell whole lots).

    Args:
        existing: a reopen during the run (the state actor's): the database must hold state.

    Raises:
        ConfigError: at start (not ``existing``), the database cannot be opened: a server
            that cannot be reached, a wrong password, a missing database, a bad file.
        StateStoreError: the same while ``existing`` (``StateUnavailableError`` for a server
            that is away).
    """
    location = check_location(config.state_db)
    if not location.is_postgresql and location.path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(location.path)), exist_ok=True)
    password = load_db_password(config.state_settings) if location.is_postgresql else None
    lots = None if markets is None else {p: markets.rules.lot_size(p) for p in config.pairs}
    try:
        return StateCore.open(config.state_db, config.quote, config.funding,
                              password=password, lots=lots, existing=existing)
    except StateStoreError as exc:
        if existing:
            raise
        raise ConfigError(f"state_db: {exc}") from None


@attrs.frozen
class LoadedMarkets:
    """An exchange's markets, loaded once per run and shared by every client and core."""

    markets: dict[str, Any] = attrs.field(hash=False)
    currencies: dict[str, Any] | None = attrs.field(hash=False)
    rules: MarketRules = attrs.field(hash=False)


MARKETS_RETRY_S = (0.5, 1.0, 2.0, 4.0)
"""Waits between attempts to load the markets after an error that may pass (ccxt's
``OperationFailed``: unreachable, timeout, 5xx, rate limit, 418, a garbled answer or one
with no markets): a bot started during a blip of its exchange starts, about 7.5 s later at
most. Any other error (``ExchangeError``: refused) fails at once."""


def load_markets(config: SystemConfig) -> LoadedMarkets | None:
    """Load the markets of ``config.exchange`` with a plain ccxt client (None on ``sim``),
    retrying passing errors (``MARKETS_RETRY_S``).

    Raises:
        ConfigError: the exchange could not be reached, or refused (the message is cleaned
            of keys and says how many attempts were made).
    """
    if config.exchange == SIM:
        return None
    import ccxt

    client = make_client(config.exchange, config.exchange_settings.ccxt, flavour="sync")
    waits = iter(MARKETS_RETRY_S)
    attempts = 1
    while True:
        try:
            markets = client.load_markets(reload=attempts > 1)
            if not markets:  # ccxt reads a garbled answer (a proxy's error page) as none
                raise ccxt.BadResponse("the exchange's answer held no markets")
            break
        except ccxt.OperationFailed as exc:
            wait = next(waits, None)
            if wait is None:
                raise ConfigError(f"exchange {config.exchange}: markets could not be loaded "
                                  f"after {attempts} attempts: {clean_reason(exc)}") from None
            logger.warning("exchange {}: markets could not be loaded ({}); trying again in "
                           "{:.1f} s", config.exchange, clean_reason(exc), wait)
            time.sleep(wait)
            attempts += 1
        except Exception as exc:  # noqa: BLE001 - any other failure here means: cannot start
            raise ConfigError(f"exchange {config.exchange}: markets could not be loaded: "
                              f"{clean_reason(exc)}") from None
    rules = MarketRules.from_ccxt(markets, getattr(client, "precisionMode", 4))
    return LoadedMarkets(markets=dict(markets), currencies=client.currencies, rules=rules)


def make_execution(config: SystemConfig, balances: dict[str, float], *,
                   markets: LoadedMarkets | None = None, router: Router | None = None,
                   credentials: Credentials | None = None,
                   ) -> ExecutionCore | LiveExecutionCore:
    """The execution core: the paper exchange (with the real exchange's steps where
    ``markets`` are given), or with ``exchange_settings.live`` the live gateway."""
    if markets is None:
        return ExecutionCore(PaperExchange(config.paper, dict(balances), tick_size, lot_size))
    rules = markets.rules
    if not config.exchange_settings.live:
        return ExecutionCore(PaperExchange(config.paper, dict(balances), rules.tick_size,
                                           rules.lot_size))
    if router is None or credentials is None:
        raise ValueError("live execution needs the router and credentials")
    gateway = CcxtGateway(config.exchange, config.exchange_settings, credentials, router.tell,
                          subscribe=router.subscribe,
                          markets=(markets.markets, markets.currencies), seed=config.seed)
    return LiveExecutionCore(gateway.start(), rules)


def make_risk(config: SystemConfig, markets: LoadedMarkets | None = None) -> RiskCore:
    """Risk sized to the simulator's lots, or to the exchange's lots, minimum amounts and
    minimum notionals, pair by pair."""
    if markets is None:
        return RiskCore(RiskBook(config.risk, lot_size))
    rules = markets.rules
    return RiskCore(RiskBook(config.risk, rules.lot_size,
                             exchange_min_notional=rules.min_notional,
                             exchange_min_amount=rules.min_amount))


class MarketSource:
    """The feed a run trades on and the warm-up history that goes with it.

    ``custom`` (tests, scenarios, embedding tools) replaces the configured simulator or replay
    files; like a replay it brings no warm-up history (strategies warm up on its first ticks)
    unless it has a ``warmup(pair)`` method that returns the pair's ticks before its first.
    A real exchange id (not ``sim``) means live market data through ccxt (``live_feed``): its
    markets are loaded here, before anything starts, and warm-up comes from its recent 1-minute
    candles where it serves them.

    Args:
        markets: the exchange's markets and currencies when already loaded (the feed then asks
            the exchange nothing at start); else the feed loads them.
        history: warm-up ticks per pair for ``custom`` (a backtest's data before its time
            range), instead of none.
        on_notice: receives the live feed's ``FeedStale`` changes (on its thread).

    Raises:
        ConfigError: a pair is not a market at the exchange, or its markets cannot be loaded.
    """

    def __init__(self, config: SystemConfig, start_ms: int,
                 custom: Iterable[MarketTick] | None = None, *,
                 markets: tuple[dict[str, Any], dict[str, Any] | None] | None = None,
                 on_notice: Callable[[FeedStale], None] | None = None,
                 history: Mapping[str, Sequence[MarketTick]] | None = None) -> None:
        self.config = config
        self.custom = custom
        self.history = history
        self.simulator: MarketSimulator | None = None
        self.live_feed: LiveFeed | None = None
        if custom is None and not config.is_replay and config.exchange != SIM:
            feed = LiveFeed(config.exchange, config.exchange_settings, config.pairs,
                            on_notice=on_notice, seed=config.seed)
            try:
                self.live_feed = feed.open(markets)
            except (UnknownMarketError, ExchangeUnavailableError, FeedUnsupportedError) as exc:
                raise ConfigError(str(exc)) from None
        elif custom is None and not config.is_replay:
            self.simulator = MarketSimulator(config.pairs, config.seed, start_ms,
                                             config.tick_interval_ms)

    @property
    def is_live(self) -> bool:
        """Market data from a real exchange, in real time: never paced, shed when behind."""
        return self.live_feed is not None

    def close(self) -> None:
        """Stop the live feed (if any) and end its ticks; safe to call more than once."""
        if self.live_feed is not None:
            self.live_feed.close()

    def warmup(self, pair: str) -> list[MarketTick]:
        """Warm-up history ending at the simulator's current market time (or, live, the
        exchange's last closed candles)."""
        if self.live_feed is not None:
            return self.live_feed.warmup(pair, self.config.warmup_ticks)
        if self.history is not None:
            return list(self.history.get(pair, ()))
        own = getattr(self.custom, "warmup", None)
        if callable(own):  # a custom source that has ticks from before its first
            return list(own(pair))
        if self.simulator is None:
            return []
        return self.simulator.warmup_history(pair, self.config.warmup_ticks,
                                             self.simulator.now_ms)

    def add_pair(self, pair: str) -> None:
        """Start ticks for a pair added at runtime; only the simulator can make them."""
        if self.simulator is None:
            what = ("recorded files" if self.config.is_replay else
                    f"live data from {self.config.exchange}" if self.is_live else
                    "a custom source")
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
        if self.live_feed is not None:
            return self.live_feed.ticks()
        return open_feeds(dict(self.config.replay))


def make_market_data(config: SystemConfig, source: MarketSource, *,
                     packed: bool = False) -> MarketDataCore:
    """The market data core, its history seeded; ``packed`` for a long-running system (see
    ``MarketDataCore``)."""
    core = MarketDataCore(config.pairs, history_size=config.history_size, packed=packed)
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
