"""Joining a Ray cluster, and every check that must pass before anything starts.

``connect`` runs on the caller's thread in ``ClusterSystem.start``, before the state database
is opened: an address that does not answer, a cluster of another Ray version, a shard's
resources that no node offers (or more shards than the cluster has room for), a missing token
file, or Ray not installed, each raise one ``ConfigError`` (the CLI exits 2) and leave
nothing running. The returned ``RaySession`` is the head's only door to Ray: it creates shard
actors (never restarted by Ray: the head decides where a lost shard goes, and under which
generation), tells them to stop, and kills them. No call is retried by Ray either: a ``pull``
hands over what it returns and a ``push`` delivers, so neither is idempotent; a failed call
means a lost shard, which the head handles.

Ray is process-wide. A session that started or joined Ray itself shuts it down on ``close``;
one that found Ray already initialised (an embedding program's) leaves it running.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from loguru import logger

from supervision.cluster.plan import NodeOffer, room, shard_needs, unmet
from supervision.cluster.shard import CALL_THREADS, ShardServer
from supervision.cluster.wire import ShardHello, ShardSpec
from supervision.config import AUTO, ClusterConfig, ConfigError

INSTALL_HINT = ('pip install -e ".[cluster]" in the project (or pip install "ray>=2.50" beside '
                "it), on the head and on every node of the cluster")
FAST_HEALTH_CHECKS = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
                      "health_check_timeout_ms": 500}
"""For a Ray started here: a dead node is noticed in about 2 s, not 16 (Ray's default)."""


def import_ray() -> Any:
    """Ray, or a ``ConfigError`` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"cluster: running on a Ray cluster needs Ray, which is not "
                          f"installed; {INSTALL_HINT}") from None
    return ray


class RaySession:
    """This process's place in a Ray cluster, and how the head uses it."""

    def __init__(self, ray: Any, cluster: ClusterConfig, *, owned: bool) -> None:
        self.ray = ray
        self.cluster = cluster
        self.owned = owned
        self.needs = shard_needs(cluster.cpus_per_shard, cluster.memory_mb_per_shard,
                                 cluster.resources)
        self._shard_class = ray.remote(max_concurrency=CALL_THREADS)(ShardServer)

    def nodes(self) -> list[NodeOffer]:
        """The live nodes and what each offers in total."""
        return [NodeOffer(node_id=n["NodeID"], host=n.get("NodeManagerAddress", ""),
                          resources=dict(n.get("Resources", {})))
                for n in self.ray.nodes() if n.get("Alive")]

    def create_shard(self, spec: ShardSpec, node: str | None = None) -> Any:
        """A shard actor, spread over the nodes by Ray, or pinned to ``node`` (a shard placed
        again goes where the head chose: not where its predecessor died)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cluster = self.cluster
        strategy: Any = ("SPREAD" if node is None
                         else NodeAffinitySchedulingStrategy(node_id=node, soft=False))
        options: dict[str, Any] = {
            "num_cpus": cluster.cpus_per_shard, "max_restarts": 0, "max_task_retries": 0,
            "scheduling_strategy": strategy, "resources": dict(cluster.resources),
        }
        if cluster.memory_mb_per_shard:
            options["memory"] = int(cluster.memory_mb_per_shard * 1024 * 1024)
        return self._shard_class.options(**options).remote(spec)

    def started(self, actor: Any, timeout: float) -> ShardHello:
        """Start the shard's pairs; raises if it cannot within ``timeout``."""
        hello: ShardHello = self.ray.get(actor.start.remote(), timeout=timeout)
        return hello

    def fence(self, actor: Any, reason: str) -> None:
        """Tell a shard the head has moved on (it stops trading); never waits."""
        with contextlib.suppress(Exception):
            actor.fence.remote(reason)

    def kill(self, actor: Any) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(actor, no_restart=True)

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()


def connect(cluster: ClusterConfig, *, log_level: str = "WARNING") -> RaySession:
    """Join (or, for ``auto`` with no Ray running here, start) the cluster and check it can
    host the shards.

    Raises:
        ConfigError: Ray missing, the address unreachable or not a Ray cluster of our
            version, a token file missing, or not enough room for the shards.
    """
    ray, owned = join(cluster.address, cluster.auth_token_path, log_level=log_level)
    session = RaySession(ray, cluster, owned=owned)
    try:
        _check_room(session)
    except ConfigError:
        session.close()
        raise
    return session


def join(address: str, auth_token_path: str | None = None, *,
         log_level: str = "WARNING") -> tuple[Any, bool]:
    """Ray, joined to the cluster at ``address`` (or started, for ``auto`` with none running
    here), and whether this call did it (then the caller shuts it down).

    Raises:
        ConfigError: Ray missing, the address unreachable or not a Ray cluster of our
            version, the token file missing.
    """
    ray = import_ray()
    if auth_token_path is not None:
        path = os.path.expanduser(auth_token_path)
        if not os.path.isfile(path):
            raise ConfigError(f"cluster.auth_token_path: {auth_token_path!r} is not a "
                              "file; give the token file of the cluster's Ray")
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN_PATH"] = path
    owned = not ray.is_initialized()
    if owned:
        _init(ray, address, _ray_level(log_level))
    return ray, owned


def check_address(address: str) -> None:
    """Something answers at a ``HOST:PORT`` address (``auto`` and ``ray://`` are Ray's to
    check); costs one TCP connect, and starts nothing.

    Raises:
        ConfigError: Ray is not installed, or nothing answers there.
    """
    import_ray()
    if address == AUTO or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3.0).close()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"cluster.address: nothing answers at {address} ({reason}); start "
                          "the cluster's head there (ray start --head) or use \"auto\"") from None


def _init(ray: Any, address: str, level: str) -> None:
    common: dict[str, Any] = {"include_dashboard": False, "logging_level": level,
                              "namespace": "trade-conductor"}
    if address == AUTO:
        try:
            ray.init(address="auto", **common)
            logger.info("joined the Ray cluster running on this machine")
        except ConnectionError:
            ray.init(_system_config=FAST_HEALTH_CHECKS, **common)
            logger.info("started a local Ray")
        return
    check_address(address)
    try:
        ray.init(address=address, **common)
    except Exception as exc:  # noqa: BLE001 - every way of failing to join is one bad input
        text = str(exc)
        with contextlib.suppress(Exception):
            ray.shutdown()
        if "version mismatch" in text.lower():
            raise ConfigError(f"cluster.address: the cluster at {address} runs another Ray "
                              f"version than this process (Ray {ray.__version__}); install the "
                              f"cluster's version here: {_first_line(text)}") from None
        raise ConfigError(f"cluster.address: cannot join the Ray cluster at {address}: "
                          f"{_first_line(text)}") from None


def _check_room(session: RaySession) -> None:
    nodes = session.nodes()
    why = unmet(nodes, session.needs)
    if why:
        raise ConfigError(f"cluster.resources: {why}; lower cpus_per_shard or "
                          "memory_mb_per_shard, or add such a node")
    space = sum(room(node, session.needs) for node in nodes)
    shards = session.cluster.shards
    if space < shards:
        raise ConfigError(f"cluster.shards: {shards} shards do not fit: the cluster's "
                          f"{len(nodes)} node(s) have room for {space} with "
                          f"cpus_per_shard={session.cluster.cpus_per_shard:g}; lower "
                          "shards or cpus_per_shard")


def _ray_level(level: str) -> str:
    return "DEBUG" if level in ("TRACE", "DEBUG") else "WARNING"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no reason given"
