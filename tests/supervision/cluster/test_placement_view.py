"""The status table shows each pair's shard and node on a cluster, and only there."""

from __future__ import annotations

from supervision import PairStatus, SystemStatus, format_table


def status(**placement: str) -> SystemStatus:
    pair = PairStatus(pair="BTC/USDT", state="running", generation=1, restarts=0,
                      strategy="ema_cross", price=60_000.0, position=0.0, entry_price=0.0,
                      unrealized_pnl=0.0, realized_pnl=0.0, trades=0, open_orders=0,
                      ticks=10, ticks_shed=0, ticks_dropped=0, last_latency_ms=0.1,
                      **placement)
    return SystemStatus(state="running", quote="USDT", cash=1.0, equity=1.0, peak_equity=1.0,
                        realized_pnl=0.0, fills=0, orders=0, halted=False, halt_reason="",
                        rejections=(), ticks_accepted=10, ticks_dropped=(), pairs=(pair,))


def test_the_table_names_the_shard_and_node_of_each_pair_on_a_cluster():
    lines = format_table(status(shard="2", node="10.0.0.7/ab12cd34")).splitlines()

    assert lines[0].split()[-2:] == ["shard", "node"]
    assert lines[1].split()[-2:] == ["2", "10.0.0.7/ab12cd34"]


def test_in_one_process_the_table_has_no_placement_columns():
    assert "shard" not in format_table(status()).splitlines()[0]
