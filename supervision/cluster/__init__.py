"""Beyond one machine: the pairs in shards on a Ray cluster (``[cluster]``, ``--cluster``).

``system`` (``ClusterSystem``, what ``TradingSystem(config)`` is when ``config.cluster`` is
set) keeps the supervisor, risk, execution and state in this process, the head; ``head``
(``ClusterHead``) places the shards, links them and replaces the lost ones; ``shard``
(``ShardServer``, a Ray actor; ``ShardRuntime``, the pykka system inside it) runs a slice of
the pairs with their market data; ``connect`` joins Ray and checks the cluster before
anything starts; ``trials`` runs ``optimize``'s trials as Ray tasks;
``plan`` (which pairs where, which node, shard generations) and ``wire``
(what crosses the network) are plain values. Ray is an optional extra: without it,
``--cluster`` says how to install it.
"""

from supervision.cluster.connect import (
    INSTALL_HINT,
    RaySession,
    check_address,
    connect,
    import_ray,
)
from supervision.cluster.head import ClusterHead, ShardFeeds, ShardLink
from supervision.cluster.plan import NodeOffer, ShardFence, pick_node, plan_shards, unmet
from supervision.cluster.shard import Outbox, ShardRuntime, ShardServer, skip_seen
from supervision.cluster.system import ClusterSystem
from supervision.cluster.trials import run_on_cluster
from supervision.cluster.wire import ShardLost, ShardPlaced, ShardReport, ShardSpec, Uplink

__all__ = [
    "INSTALL_HINT",
    "ClusterHead",
    "ClusterSystem",
    "NodeOffer",
    "Outbox",
    "RaySession",
    "ShardFeeds",
    "ShardFence",
    "ShardLink",
    "ShardLost",
    "ShardPlaced",
    "ShardReport",
    "ShardRuntime",
    "ShardServer",
    "ShardSpec",
    "Uplink",
    "check_address",
    "connect",
    "import_ray",
    "pick_node",
    "plan_shards",
    "run_on_cluster",
    "skip_seen",
    "unmet",
]
