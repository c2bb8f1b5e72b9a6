"""What crosses the network between the head and a shard: frozen values, pickled by Ray.

Ticks never do. A shard sends up (``Uplink``) what its pairs and its local supervisor address
to the head's actors: proposals, marks (at most one unread per pair), strategy records, book
requests, fences of restarted pairs, events; and, about twice a second, a ``ShardReport`` of
its pairs' figures for the status table, ``/metrics`` and ``/health``. The head sends down
(``Downlink``) what its actors address to the shard's pairs: books, refusals, commands. Each
batch carries the shard's generation: the head refuses a batch of a generation it has moved
on from (``supervision.cluster.plan.ShardFence``).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

Addressed = tuple[str, Any]
"""(address, message), as the routers use them."""


@attrs.frozen(kw_only=True)
class PairReport:
    """One pair's figures as its shard sees them (what the head's ``PairHandle`` shows)."""

    pair: str
    state: str
    paused: bool
    generation: int
    restarts: int
    last_error: str
    strategy: str
    ticks: int
    shed: int
    last_price: float
    last_ts_ms: int
    tick_age_s: float | None
    """Seconds since the pair last processed a tick (None: never); an age, not a time, so
    that the clocks of two machines never meet."""
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_counts: tuple[int, ...]
    """Cumulative histogram counts (``actors.router.TickLatency.histogram``)."""
    latency_sum_s: float
    accepted: int
    """Ticks the shard's feed accepted for the pair."""
    dropped: tuple[tuple[str, int], ...]
    """The feed's drops for the pair, by reason."""


@attrs.frozen(kw_only=True)
class ShardReport:
    pairs: tuple[PairReport, ...]
    state: str
    """running, finished (its feed ended), fenced (it stopped trading) or stopped."""
    unknown_dropped: int = 0
    """Ticks of pairs the shard does not trade (dropped as ``unknown_pair``)."""
    feed: Any = None
    """The shard's exchange streams' figures (``LiveFeed.stats``), None off an exchange."""


@attrs.frozen(kw_only=True)
class Uplink:
    """Shard -> head: one batch, in the order the shard's actors sent its messages."""

    shard: int
    generation: int
    messages: tuple[Addressed, ...]
    report: ShardReport | None = None


@attrs.frozen(kw_only=True)
class Downlink:
    """Head -> shard: one batch; ``seq`` puts batches back in order (Ray does not keep the
    order of calls into an actor that runs several at once)."""

    seq: int
    messages: tuple[Addressed, ...]
    tick_pairs: frozenset[str] | None = None
    """Pairs with an order resting at the paper exchange, which needs their ticks (None: no
    change)."""


@attrs.frozen(kw_only=True)
class ShardHello:
    """What a started shard says about itself."""

    node: str
    """Ray's node id, shortened."""
    node_id: str
    host: str
    """The node's address."""
    pid: int
    port: int = 0
    """Where the shard's end of its connection to the head listens, on ``host``
    (``supervision.cluster.channel``)."""


@attrs.frozen(kw_only=True)
class ShardSpec:
    """Everything a shard needs to start, built by the head for each shard it places."""

    index: int
    generation: int
    config: Any
    """The ``SystemConfig`` narrowed to the shard's pairs (and their replay files)."""
    start_ms: int
    """The run's market start time: the simulator's paths are the same in every process."""
    generations: tuple[tuple[str, int], ...] = ()
    """Each pair's first generation (above every one the head has fenced)."""
    resume_after_ms: tuple[tuple[str, int], ...] = ()
    """A re-placed shard skips each pair's ticks up to the last one the head saw processed."""
    specs: tuple[tuple[str, Any], ...] = ()
    """The strategy each pair runs."""
    link_key: bytes = attrs.field(default=b"", repr=False)
    """The key the head connects with (a secret: never printed)."""


# -- head-side events and commands ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ShardLost:
    """Head monitor or link -> head supervisor: shard ``index`` of ``generation`` is gone
    (dead, unreachable, or cut off for ``shard_timeout_s``)."""

    index: int
    generation: int
    reason: str


@attrs.frozen(kw_only=True)
class ShardFailed:
    """Shard -> head supervisor: a shared actor of the shard (its market data) failed; the
    shard must be replaced as a whole."""

    reason: str


@attrs.frozen(kw_only=True)
class ShardPlaced:
    """Event: shard ``index`` runs (again) with ``generation`` on ``node``."""

    index: int
    generation: int
    node: str
    pairs: tuple[str, ...]


@attrs.frozen(kw_only=True)
class FromShard:
    """Link -> head supervisor: a message a shard addressed to the supervisor."""

    index: int
    generation: int
    message: Any


class RemoteLatency:
    """A pair's tick latency as its shard last reported it; read like ``TickLatency``."""

    __slots__ = ("counts", "p50", "p99", "sum_s")

    def __init__(self, buckets: int) -> None:
        self.counts: tuple[int, ...] = (0,) * buckets
        self.sum_s = 0.0
        self.p50: float | None = None
        self.p99: float | None = None

    def histogram(self) -> tuple[list[int], float]:
        return list(self.counts), self.sum_s

    def percentiles(self, _now_ns: int, quantiles: Any = (0.5, 0.99),
                    window_ns: int = 0) -> tuple[float, ...] | None:
        if self.p50 is None or self.p99 is None:
            return None
        return self.p50, self.p99


def finite(value: float) -> float:
    """A float safe to show (the head never trusts a shard's NaN)."""
    return value if math.isfinite(value) else 0.0
