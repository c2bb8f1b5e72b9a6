"""One pair's decisions: the orchestrator actor, its plain core, and the pool that runs them.

``orchestrator`` (``TradingOrchestrator``) turns a tick into messages: the strategy's signal,
stops and exits (``update_open_positions``), entry proposals to risk (``handle_buy_signal``).
``actor`` (``OrchestratorActor``) is the shell around it; ``pool`` (``PairPool``) runs many
pair actors on a few worker threads and replaces a worker stuck in a hung pair (risk, paper
execution and a paper run's state run there too, as ``PooledActor``s, so that an order
crosses no thread on its way).
"""

from actors.pair.actor import OrchestratorActor, with_peaks
from actors.pair.orchestrator import ExitRules, StrategyBuilder, TradingOrchestrator, close_strategy
from actors.pair.pool import PairPool, PooledActor, limits_for

__all__ = [
    "ExitRules",
    "OrchestratorActor",
    "PairPool",
    "PooledActor",
    "StrategyBuilder",
    "TradingOrchestrator",
    "close_strategy",
    "limits_for",
    "with_peaks",
]
