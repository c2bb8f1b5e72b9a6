"""How the cores are built from a config, and how they run without threads.

``assembly`` makes each core (state, risk, execution, market data, orchestrators) from a
``SystemConfig``; the actor system and ``threadless`` (``SyncRuntime``, for backtests and
replays in one thread) both use it, so both run the very same cores.
"""

from supervision.runtime.assembly import (
    LoadedMarkets,
    MarketSource,
    load_markets,
    lot_size,
    make_execution,
    make_market_data,
    make_orchestrator,
    make_risk,
    make_strategy,
    open_state,
)
from supervision.runtime.threadless import SyncRuntime

__all__ = [
    "LoadedMarkets",
    "MarketSource",
    "SyncRuntime",
    "load_markets",
    "lot_size",
    "make_execution",
    "make_market_data",
    "make_orchestrator",
    "make_risk",
    "make_strategy",
    "open_state",
]
