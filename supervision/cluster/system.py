"""``ClusterSystem``: the embedding facade when the pairs run in shards on a Ray cluster.

``TradingSystem(config)`` returns one when ``config.cluster`` is set, so embedding code, the
CLI, ``/metrics`` and ``/health`` work unchanged. This process is the head: it keeps what must
be one (the supervisor, risk with the portfolio-wide limits, execution with the one account
and its rate limit, and state) and the shards keep the pairs and their market data
(``supervision.cluster.head``).

Start-up: Ray is joined and checked first (``supervision.cluster.connect``): bad input raises
``ConfigError`` before the database exists. Then state, execution and risk start as in one
process; the shards are placed and their pairs read their books from state across the
network; then every shard's feed starts. Stop: the feeds stop, what is in flight drains
across the network, the shards stop, then risk, execution and state, and Ray is left.

Where PostgreSQL plugs in: the head's state is whatever ``open_state`` opens for
``config.state_db`` (SQLite works for a head that stays on one machine). A head that must be
restartable on another machine needs its state there too: a PostgreSQL ``state_db`` (the
state wing's PostgreSQL store), and nothing here changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from loguru import logger

from actors.messages import SUPERVISOR, MarketTick, PortfolioSnapshot, StrategySpec
from supervision.cluster.connect import RaySession, connect
from supervision.cluster.head import ClusterHead, ClusterSupervisorActor, ServicesWatchdog
from supervision.config import ConfigError, SystemConfig
from supervision.runtime import MarketSource
from supervision.system import TradingSystem


class ClusterSystem(TradingSystem):
    """A ``TradingSystem`` whose pairs run in shards on a Ray cluster."""

    def __init__(self, config: SystemConfig, *, source: Iterable[MarketTick] | None = None):
        if config.cluster is None:
            raise ConfigError("cluster: ClusterSystem needs [cluster] (or --cluster)")
        if source is not None:
            raise ConfigError("cluster: a custom tick source cannot be split into shards "
                              "(ticks never cross the network); use the simulator, replay "
                              "files or an exchange")
        super().__init__(config)
        self.session: RaySession | None = None
        self.head: ClusterHead | None = None

    def start(self) -> ClusterSystem:
        """Join the cluster, then start as ``TradingSystem.start`` does.

        Raises:
            ConfigError: the cluster cannot host the shards (nothing was started).
        """
        config = self.config
        if self._state == "new" and self.session is None:
            cluster = config.cluster
            assert cluster is not None
            self.session = connect(cluster, log_level=config.log_level)
        try:
            # The shards first: one that cannot start is bad input, and no database exists yet.
            self.head = ClusterHead(config, self.router, self.session,
                                    start_ms=int(time.time() * 1000),
                                    specs=((p, config.strategy) for p in config.pairs))
            self.head.place(timeout=max(60.0, config.ask_timeout))
            super().start()
        except BaseException:
            if self.head is not None:
                self.head.close()
            if self.session is not None:
                self.session.close()
            raise
        return self

    def _services_pool(self) -> None:
        """None: the head runs no pairs, and risk and execution keep a thread each (their
        messages come from the shards, not from a worker's turn)."""

    def _start_trading(self, snapshot: PortfolioSnapshot, market: MarketSource) -> None:
        config, router = self.config, self.router
        market.close()  # the head trades no ticks: each shard has its own feed
        self._market = None
        head = self.head
        assert head is not None
        self._pair_specs(snapshot)  # logs the strategies the database keeps (the pairs adopt
        # them with their books)
        self._market_core = head.feeds  # type: ignore[assignment]
        execution = self._execution_core
        head.tick_pairs = lambda: execution.tick_pairs  # type: ignore[attr-defined]
        self._start(SUPERVISOR, ClusterSupervisorActor.start(
            head, self._on_feed_ended, self._on_escalation))
        head.link()
        self._cancel_orphaned_orders(snapshot)
        self.drain(max(10.0, config.ask_timeout))
        self._state = "running"
        self._watchdog = ServicesWatchdog(router, config.restart.heartbeat_interval_s,
                                          config.restart.heartbeat_timeout_s)
        self._watchdog.start()
        head.start_feeds()
        self._feed_started_ns = time.perf_counter_ns()
        logger.info("trade-conductor running: {} pair(s) in {} shard(s) on a Ray cluster, "
                    "state in {}", len(config.pairs), len(head.slots), config.state_db)

    @property
    def live_feed(self) -> Any:
        """The shards' exchange streams as one (``ShardStreams``: ``stats()``,
        ``stale_pairs()``), once a shard has reported them; None off an exchange."""
        head = self.head
        return head.streams if head is not None and head.streams.reports else None

    def drain(self, timeout: float = 5.0) -> None:
        if self.head is not None:
            self.head.drain(timeout)

    def _stop_feed(self, deadline: float) -> None:
        if self.head is not None:
            self.head.shutting_down = True
            self.head.stop_feeds(max(0.1, deadline - time.monotonic()))

    def _stop_pairs(self, deadline: float) -> None:
        if self.head is not None:
            self.head.close(max(0.5, deadline - time.monotonic()))
        for handle in self.router.pairs.values():
            handle.state = "failed" if handle.state == "failed" else "stopped"

    def stop(self, timeout: float = 10.0) -> object:  # type: ignore[override]
        try:
            return super().stop(timeout)
        finally:
            if self.session is not None:
                self.session.close()

    def add_pair(self, pair: str, spec: StrategySpec | None = None,
                 timeout: float | None = None, *, by: str = "python") -> None:
        raise ValueError("pairs cannot be added while running on a cluster; restart with "
                         "the new --pairs")

    def remove_pair(self, pair: str, policy: str = "hold", timeout: float | None = None, *,
                    by: str = "python") -> None:
        raise ValueError("pairs cannot be removed while running on a cluster; restart with "
                         "the new --pairs")
