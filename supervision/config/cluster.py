"""``[cluster]`` and ``--cluster``: run the pairs in shards on a Ray cluster (off by default).

Only the values are checked here (numbers, the shard count against the pairs); whether the
address answers, runs our Ray version and has nodes that offer a shard's resources is checked
when the system starts, before the state database is opened (``supervision.cluster.connect``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from supervision.config.values import ConfigError, is_number

AUTO = "auto"
"""The address that means: the Ray of this machine (a running ``ray start``, else a new local
one)."""


@attrs.frozen(kw_only=True)
class ClusterConfig:
    """Where and how the pairs run on a Ray cluster; ``shards`` is always resolved."""

    address: str
    """``auto``, ``HOST:PORT`` of a cluster's head (GCS), or a ``ray://HOST:PORT`` client."""
    shards: int
    """Ray actors, each hosting a slice of the pairs with their market data."""
    cpus_per_shard: float = 1.0
    memory_mb_per_shard: float = 0.0
    """Memory Ray reserves for each shard (0: none)."""
    resources: tuple[tuple[str, float], ...] = ()
    """Custom Ray resources each shard needs (e.g. ``{ region_eu = 1 }``): shards go only to
    nodes that offer them."""
    shard_timeout_s: float = 5.0
    """A shard the head has not heard from for this long is lost: it is fenced and its pairs
    are placed on the surviving nodes. A shard that has not heard from the head for this long
    stops trading by itself."""
    auth_token_path: str | None = None
    """Ray's token file for a cluster with token authentication (else ``RAY_AUTH_TOKEN_PATH``
    or Ray's default)."""


CLUSTER_KEYS = ("address", "shards", "pairs_per_shard", "cpus_per_shard",
                "memory_mb_per_shard", "resources", "shard_timeout_s", "auth_token_path")


def cluster_table(from_file: Any, flag: Any) -> dict[str, Any] | None:
    """The ``[cluster]`` table with ``--cluster ADDRESS`` laid over it; None: run on one
    machine (no table, no flag, or a table without an address)."""
    if from_file is None:
        table: dict[str, Any] = {}
    elif isinstance(from_file, Mapping):
        table = dict(from_file)
    else:
        raise ConfigError(f"cluster: {from_file!r} is not a table; e.g. [cluster] "
                          'address = "auto"')
    if flag is not None:
        table["address"] = flag
    return table if table.get("address") is not None else None


def cluster_config_from(table: Mapping[str, Any], pairs: tuple[str, ...]) -> ClusterConfig:
    """Check the table and resolve the number of shards for ``pairs``."""
    unknown = [k for k in table if k not in CLUSTER_KEYS]
    if unknown:
        raise ConfigError(f"[cluster] unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(CLUSTER_KEYS)}")
    address = table["address"]
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(f"cluster.address: {address!r} is not an address; use \"auto\" (the "
                          "Ray of this machine) or HOST:PORT of the cluster's head")
    address = address.strip()
    if address != AUTO and not address.startswith("ray://") and not _host_port(address):
        raise ConfigError(f"cluster.address: {address!r} is not \"auto\", HOST:PORT or "
                          "ray://HOST:PORT")
    shards = _shard_count(table.get("shards"), table.get("pairs_per_shard"), len(pairs))
    resources = table.get("resources", {})
    if not isinstance(resources, Mapping) or not all(
            isinstance(k, str) and is_number(v) and v > 0 for k, v in resources.items()):
        raise ConfigError(f"cluster.resources: {resources!r} is not a table of resource names "
                          "and positive amounts; e.g. resources = { region_eu = 1 }")
    token = table.get("auth_token_path")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ConfigError(f"cluster.auth_token_path: {token!r} is not a file name")
    return ClusterConfig(
        address=address, shards=shards,
        cpus_per_shard=_number(table, "cpus_per_shard", 1.0, minimum=0.0),
        memory_mb_per_shard=_number(table, "memory_mb_per_shard", 0.0, minimum=0.0),
        resources=tuple(sorted((k, float(v)) for k, v in resources.items())),
        shard_timeout_s=_number(table, "shard_timeout_s", 5.0, minimum=0.5),
        auth_token_path=token)


def _host_port(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def _shard_count(shards: Any, per_shard: Any, pairs: int) -> int:
    for key, value in (("shards", shards), ("pairs_per_shard", per_shard)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"cluster.{key}: {value!r} is not a whole number")
    if shards is None:
        per = 50 if per_shard is None else per_shard
        if per < 1:
            raise ConfigError(f"cluster.pairs_per_shard: {per} must be at least 1")
        return -(-pairs // int(per))  # ceiling division, in ints
    if not 1 <= shards <= pairs:
        raise ConfigError(f"cluster.shards: {shards} must be from 1 to the number of pairs "
                          f"({pairs}): every shard hosts at least one pair")
    if per_shard is not None and shards * per_shard < pairs:
        raise ConfigError(f"cluster.pairs_per_shard: {shards} shards of {per_shard} pairs "
                          f"cannot host {pairs} pairs; give one of the two")
    return int(shards)


def _number(table: Mapping[str, Any], key: str, default: float, *, minimum: float) -> float:
    value = table.get(key, default)
    if not (is_number(value) and math.isfinite(value) and value >= minimum):
        raise ConfigError(f"cluster.{key}: {value!r} must be a number >= {minimum:g}")
    return float(value)
