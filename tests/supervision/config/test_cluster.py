"""``[cluster]`` and ``--cluster``: checked before anything starts, shards resolved."""

from __future__ import annotations

import pytest

from supervision.app.cli import config_from_args, parser
from supervision.config import AUTO, ClusterConfig, ConfigError, build_config

PAIRS = "BTC/USDT,ETH/USDT,SOL/USDT,XRP/USDT,ADA/USDT"


def test_without_a_cluster_address_the_system_runs_in_one_process():
    """No flag and no table (or a table without an address): cluster is None."""
    assert build_config({}, {"pairs": PAIRS}).cluster is None
    assert build_config({"cluster": {"shards": 2}}, {"pairs": PAIRS}).cluster is None


def test_the_flag_gives_the_address_and_the_table_the_rest():
    """--cluster lays its address over the [cluster] table from the file."""
    args = parser().parse_args(["--pairs", PAIRS, "--cluster", "10.0.0.5:6379"])
    file_values = {"cluster": {"address": "auto", "shards": 2, "shard_timeout_s": 3,
                               "resources": {"region_eu": 1}}}
    config = build_config(file_values, {"pairs": PAIRS, "cluster": args.cluster})

    assert config.cluster == ClusterConfig(address="10.0.0.5:6379", shards=2,
                                           shard_timeout_s=3.0,
                                           resources=(("region_eu", 1.0),))
    assert config_from_args(parser().parse_args(
        ["--pairs", PAIRS, "--cluster", "auto"])).cluster.address == AUTO


def test_shards_come_from_pairs_per_shard_when_not_given():
    """50 pairs per shard by default; pairs_per_shard rounds up."""
    assert build_config({}, {"pairs": PAIRS, "cluster": "auto"}).cluster.shards == 1
    table = {"address": "auto", "pairs_per_shard": 2}
    assert build_config({"cluster": table}, {"pairs": PAIRS}).cluster.shards == 3


@pytest.mark.parametrize(("table", "named"), [
    ({"shards": 0}, "cluster.shards: 0 must be from 1 to the number of pairs (5)"),
    ({"shards": 6}, "cluster.shards: 6 must be from 1 to the number of pairs (5)"),
    ({"shards": 2, "pairs_per_shard": 2}, "2 shards of 2 pairs cannot host 5 pairs"),
    ({"shards": 1.5}, "cluster.shards: 1.5 is not a whole number"),
    ({"pairs_per_shard": 0}, "cluster.pairs_per_shard: 0 must be at least 1"),
    ({"shard_timeout_s": 0.1}, "cluster.shard_timeout_s: 0.1 must be a number >= 0.5"),
    ({"cpus_per_shard": -1}, "cluster.cpus_per_shard: -1 must be a number >= 0"),
    ({"resources": {"gpu": 0}}, "cluster.resources: {'gpu': 0} is not a table"),
    ({"nodes": 3}, "[cluster] unknown key 'nodes'; valid keys: address, shards"),
    ({"address": "nowhere"}, "cluster.address: 'nowhere' is not \"auto\", HOST:PORT"),
    ({"address": ""}, "cluster.address: '' is not an address"),
])
def test_bad_cluster_values_name_the_key_and_the_valid_choices(table, named):
    """Each bad value is one ConfigError naming the key, the value and what would do."""
    with pytest.raises(ConfigError) as error:
        build_config({"cluster": {"address": "auto", **table}}, {"pairs": PAIRS})

    assert named in str(error.value)


def test_cluster_must_be_a_table():
    with pytest.raises(ConfigError, match="cluster: 'auto' is not a table"):
        build_config({"cluster": "auto"}, {"pairs": PAIRS})
