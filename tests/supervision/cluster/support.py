"""What the cluster tests share: a local multi-node Ray cluster, configs, files, checks.

Only ever used inside a loopback-only network namespace (see ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
from collections.abc import Iterator
from typing import Any

import attrs

from actors.market import MarketSimulator
from actors.messages import Signal
from actors.state import open_store
from strategies.base import Strategy
from supervision import SystemConfig, build_config
from supervision.cluster.connect import FAST_HEALTH_CHECKS

START_MS = 1_700_000_000_000


@contextlib.contextmanager
def local_cluster(nodes: int = 3, cpus: int = 2) -> Iterator[Any]:
    """A Ray cluster of ``nodes`` on this machine (the first is the head), detecting a dead
    node in about 2 s; this process is not connected to it (the system under test does)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": cpus, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECKS})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=cpus)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def cluster_config(address: str, db: str, **overrides: Any) -> SystemConfig:
    table = {"address": address, "cpus_per_shard": 0.5, "shard_timeout_s": 2.0}
    table.update(overrides.pop("cluster", {}))
    return build_config({"cluster": table}, {"state_db": db, **overrides})


def write_trades(path: str, pair: str, ticks: int, seed: int = 7) -> str:
    """A recorded-trades CSV of ``ticks`` simulated trades (``timestamp_ms,price,amount,side``)."""
    simulator = MarketSimulator([pair], seed, START_MS, 250.0)
    stream = simulator.ticks()
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp_ms", "price", "amount", "side"])
        for _ in range(ticks):
            tick = next(stream)
            writer.writerow([tick.ts_ms, tick.price, tick.amount or 0.01,
                             tick.side.value if tick.side else "buy"])
    return path


def orders_filled_twice(db: str) -> list[tuple[str, int]]:
    """Orders with more than one fill (every paper order here is a market order, filled once:
    a second fill would be an order executed twice)."""
    with sqlite3.connect(db) as conn:
        return [(str(o), int(n)) for o, n in conn.execute(
            "SELECT order_id, COUNT(*) FROM fills GROUP BY order_id HAVING COUNT(*) > 1")]


def order_ids(db: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [str(row[0]) for row in conn.execute("SELECT order_id FROM orders")]


def reloaded(db: str) -> Any:
    """The ledger as the database holds it (what a restarted head would resume from)."""
    store = open_store(db)
    try:
        return store.load()
    finally:
        store.close()


@attrs.frozen(kw_only=True)
class _NoParams:
    timeframe_s: float = 0.0


class NotOnANode(Strategy):
    """Builds on the head (where the config is checked) but not inside a Ray actor: what a
    node without the strategy's package installed does."""

    name = "not_on_a_node"
    Params = _NoParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        import ray

        if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
            raise ModuleNotFoundError("No module named 'my_models' (on this node)")

    @property
    def warmup(self) -> int:
        return 0

    def on_price(self, price: float) -> Signal:
        return Signal.HOLD
