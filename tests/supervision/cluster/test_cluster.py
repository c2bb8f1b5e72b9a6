"""The pairs in shards on a real local Ray cluster (127.0.0.1 only: see ``conftest.py``).

Each test starts its own Ray (a 3-node ``ray.cluster_utils.Cluster``, or the local Ray of
``--cluster auto``) inside a network namespace of its own and runs the real system against
it: the failure of a node, a partition, the same fills as one process, bad input.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from actors.messages import OrderFilled, PairRestarted, ProposeOrder, order_id_for
from supervision import TradingSystem, build_config
from supervision.app.cli import run
from tests.helpers import EventLog, eventually
from tests.supervision.cluster.support import (
    cluster_config,
    local_cluster,
    order_ids,
    orders_filled_twice,
    reloaded,
    write_trades,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

PAIRS_20 = ",".join(f"C{i:02d}/USDT" for i in range(20))


def test_a_node_killed_mid_run_has_its_pairs_resume_on_the_others_within_10_s(tmp_path):
    """3 nodes, 20 pairs in 4 shards on the simulator: a worker node dies (its raylet and its
    shard processes); its pairs trade again on the surviving nodes within 10 s, the
    database holds what the state actor held, and no order is executed twice."""
    db = str(tmp_path / "state.sqlite")
    with local_cluster(nodes=3, cpus=2) as cluster:
        config = cluster_config(cluster.address, db, pairs=PAIRS_20, speed=20, pair_workers=2,
                                cluster={"shards": 4, "cpus_per_shard": 1.0})
        log = EventLog()
        system = TradingSystem(config)
        system.subscribe(log)
        system.start()
        try:
            head = system.head
            handles = system.router.pairs
            eventually(lambda: all(h.ticks > 20 for h in handles.values())
                       and len(log.of(OrderFilled)) >= 4, timeout=60,
                       message="every pair trading")
            victim = max(cluster.worker_nodes,
                         key=lambda n: sum(s.node == n.node_id[:8] for s in head.slots))
            lost = [s for s in head.slots if s.node == victim.node_id[:8]]
            assert lost, "Ray spread no shard onto a worker node"
            moved = [p for s in lost for p in s.pairs]
            before = {p: (handles[p].ticks, handles[p].generation) for p in moved}

            cluster.remove_node(victim, allow_graceful=False)  # the machine dies:
            for slot in lost:  # its raylet, and its shards' processes with it
                os.kill(slot.pid, signal.SIGKILL)
            killed = time.monotonic()
            eventually(lambda: all(handles[p].state == "running"
                                   and handles[p].ticks > before[p][0] for p in moved)
                       and all(s.state == "running" for s in lost), timeout=10,
                       message="the lost pairs trading again on surviving nodes")
            assert time.monotonic() - killed <= 10.5
            assert all(s.node != victim.node_id[:8] for s in head.slots)
            assert all(handles[p].generation > before[p][1] for p in moved)
            eventually(lambda: len(log.of(OrderFilled)) >= 8, timeout=30,
                       message="trading going on after the loss")
        finally:
            final = system.stop()

    assert orders_filled_twice(db) == []
    fills = log.of(OrderFilled)
    assert len({e.fill.fill_id for e in fills}) == len(fills)
    ids = order_ids(db)
    assert len(ids) == len(set(ids))
    ledger = reloaded(db)
    assert ledger.cash == pytest.approx(final.cash)
    assert ledger.total_realized() == pytest.approx(final.realized_pnl)
    assert ledger.fill_count == final.fills
    for p in final.pairs:
        held = ledger.positions.get(p.pair)
        assert (held.amount if held else 0.0) == pytest.approx(p.position), p.pair


def test_one_pair_replayed_at_full_speed_fills_the_same_on_a_cluster_as_in_one_process(
        tmp_path):
    """The same recorded trades, ``--speed max``: the fills of one process and of a shard
    on a local Ray are the same, in order."""
    data = write_trades(str(tmp_path / "btc.csv"), "BTC/USDT", 6000)
    replay = (("BTC/USDT", data),)

    def fills(config):
        log = EventLog()
        system = TradingSystem(config)
        system.subscribe(log)
        with system:
            assert system.wait(120), "the replay did not end"
        return [(e.fill.ts_ms, e.fill.side, e.fill.price, e.fill.amount)
                for e in log.of(OrderFilled)]

    alone = fills(build_config({}, {"replay": replay, "speed": "max",
                                    "state_db": str(tmp_path / "one.sqlite")}))
    sharded = fills(cluster_config("auto", str(tmp_path / "cluster.sqlite"), replay=replay,
                                   speed="max", cluster={"shards": 1}))

    assert len(alone) >= 10
    assert sharded == alone


def test_a_shard_cut_off_from_the_head_is_fenced_its_late_proposals_refused(tmp_path):
    """A partition, simulated by holding back what one shard sends: the head gives up on it
    after shard_timeout_s and places its pairs again; when its messages arrive late they are
    refused whole (no proposal of the old generation becomes an order) and the old shard has
    stopped trading."""
    import ray

    db = str(tmp_path / "state.sqlite")
    config = cluster_config("auto", db, pairs="BTC/USDT,ETH/USDT,SOL/USDT,XRP/USDT", speed=20,
                            strategy={"name": "tests.helpers:Flip", "params": {"period": 2}},
                            cluster={"shards": 2, "shard_timeout_s": 1.5})
    log = EventLog()
    system = TradingSystem(config)
    system.subscribe(log)
    with system:
        head = system.head
        eventually(lambda: len(log.of(OrderFilled)) >= 4, timeout=60, message="trading")
        slot = head.slots[0]
        link, old_actor = slot.link, slot.actor
        link.hold()
        eventually(lambda: head.fence.current(0) == 1 and slot.state == "running",
                   timeout=20, message="the cut-off shard replaced")
        eventually(lambda: ray.get(old_actor.state.remote(), timeout=5) in ("fenced",
                                                                           "stopped"),
                   timeout=10, message="the old shard to stop trading")
        held = list(link._held)
        proposals = [m.proposal_id for up in held for _, m in up.messages
                     if isinstance(m, ProposeOrder)]
        released = link.release()
        before = len(log.of(OrderFilled))
        eventually(lambda: len(log.of(OrderFilled)) > before, timeout=30,
                   message="the replacement trading")
        refused = head.fence.refused_batches
        refused_proposals = head.fence.refused_proposals
    assert len(proposals) >= 1, "the cut-off shard proposed nothing while held back"
    assert released == len(held) >= 1
    assert refused >= released
    assert refused_proposals == len(proposals)
    in_db = set(order_ids(db))
    assert not in_db & {order_id_for(p) for p in proposals}
    assert orders_filled_twice(db) == []


def test_resources_no_node_offers_are_one_clear_error_before_anything_starts(tmp_path, capsys):
    """A shard asking for a resource no node has: exit 2, the resource named, no database."""
    db = tmp_path / "state.sqlite"
    config = tmp_path / "c.toml"
    config.write_text('[cluster]\naddress = "auto"\nresources = { gpu_x = 1 }\n')

    code = run(["--pairs", "BTC/USDT", "--config", str(config), "--state-db", str(db),
                "--log-dir", str(tmp_path / "logs")])

    assert code == 2
    err = capsys.readouterr().err
    assert "cluster.resources" in err
    assert "gpu_x=1" in err
    assert not Path(db).exists()


def test_a_shard_that_cannot_start_is_one_clear_error_before_the_database_exists(
        tmp_path, capsys):
    """A strategy that cannot be built on the nodes (a package missing there): exit 2, the
    shard and the reason named, no database."""
    db = tmp_path / "state.sqlite"
    config = tmp_path / "c.toml"
    config.write_text('[cluster]\naddress = "auto"\ncpus_per_shard = 0.5\n')

    code = run(["--pairs", "BTC/USDT,ETH/USDT", "--config", str(config), "--state-db", str(db),
                "--strategy", "tests.supervision.cluster.support:NotOnANode",
                "--log-dir", str(tmp_path / "logs")])

    assert code == 2
    err = capsys.readouterr().err
    assert "cluster: shard 0 (2 pair(s) from BTC/USDT) could not start" in err
    assert "No module named 'my_models'" in err
    assert not db.exists()


def test_a_pair_crash_restarts_inside_its_shard_and_placement_is_shown_everywhere(tmp_path):
    """Each pair's strategy crashes once (one pair per shard): each restarts inside its
    shard (a new pair generation, no shard replaced), and each pair's shard and node are in
    the facade's status, the table, /metrics and /health."""
    from supervision import format_table

    config = cluster_config("auto", str(tmp_path / "s.sqlite"),
                            pairs="BTC/USDT,ETH/USDT,SOL/USDT", speed=20,
                            strategy={"name": "tests.helpers:BuyThenCrashOnce",
                                      "params": {"token": "once"}},
                            restart={"backoff_initial_s": 0.01}, cluster={"shards": 3})
    log = EventLog()
    system = TradingSystem(config)
    system.subscribe(log)
    with system:
        handles = system.router.pairs
        log.wait_for(lambda events: {e.pair for e in events if isinstance(e, PairRestarted)}
                     == set(handles), timeout=60, message="every pair restarted once")
        eventually(lambda: all(h.generation == 1 and h.state == "running" and h.restarts == 1
                               for h in handles.values()), timeout=10,
                   message="the restarted pairs reported running")
        shards_moved = [system.head.fence.current(i) for i in range(3)]
        status = system.status()
        table = format_table(status)
        metrics = system.metrics.exposition().decode()
        health = system.health().as_dict()

    assert shards_moved == [0, 0, 0]
    assert sorted(p.shard for p in status.pairs) == ["0", "1", "2"]
    assert all(p.node.startswith("127.0.0.1/") for p in status.pairs)
    assert table.splitlines()[0].split()[-2:] == ["shard", "node"]
    assert 'trade_conductor_pair_placement{node="127.0.0.1/' in metrics
    assert Counter(h["shard"] for h in health["pairs"].values()) == {"0": 1, "1": 1, "2": 1}


def test_each_shard_streams_its_own_pairs_from_the_exchange(tmp_path):
    """Paper trading on live data (the loopback fake Binance) in 2 shards: each shard
    subscribes to its own pairs' streams, and their trades become ticks and fills there."""
    from actors.messages import Side
    from tests.fake_exchange import FakeBinance
    from tests.integration.test_live_feed import feed_table
    from tests.integration.test_live_orders import MARKETS

    pairs = ("BTC/USDT", "ETH/USDT")
    with FakeBinance(markets=MARKETS) as fake:
        config = build_config({"exchange": feed_table(fake), "warmup_ticks": 10,
                               "cluster": {"address": "auto", "shards": 2,
                                           "cpus_per_shard": 0.5}},
                              {"pairs": ",".join(pairs), "state_db": str(tmp_path / "s.sqlite"),
                               "strategy": {"name": "tests.integration.test_live_feed:BuyLive"}})
        log = EventLog()
        system = TradingSystem(config)
        system.subscribe(log)
        with system:
            for pair in pairs:
                fake.wait_for_subscription(pair)
                fake.set_price(pair, 3_000, spread=2)
            for price in (3_000.0, 3_001.0, 3_002.0):
                for pair in pairs:
                    fake.trade(pair, price, 0.01, "buy")
            log.wait_for(lambda events: {e.fill.pair for e in events
                                         if isinstance(e, OrderFilled)} == set(pairs),
                         timeout=30, message="a fill on each pair")
            eventually(lambda: system.live_feed is not None
                       and len(system.head.streams.reports) == 2, timeout=10,
                       message="both shards' stream figures")
            status = system.status()

    assert {p.shard for p in status.pairs} == {"0", "1"}
    assert status.feed["exchange"] == "binance"
    assert sorted(status.feed["dropped"]) == sorted(pairs)
    assert status.feed["stale_pairs"] == []
    fills = [e.fill for e in log.of(OrderFilled)]
    assert all(f.side is Side.BUY and 2_990 < f.price < 3_010 for f in fills)
