"""Starting many pairs: the facade waits for the supervisor in proportion to the pairs."""

from __future__ import annotations

from actors.messages import StrategySpec
from supervision.tree import StartPairs
from supervision.tree.supervisor import PAIR_START_S


def test_the_wait_for_a_start_grows_with_the_pairs():
    spec = StrategySpec(path="ema_cross")
    few = StartPairs(specs=(("BTC/USDT", spec),))
    many = StartPairs(specs=tuple((f"P{i:04d}/USDT", spec) for i in range(1000)))
    assert few.timeout(5.0) == 5.0 + PAIR_START_S
    # 1,000 pairs took about 2 s on a quiet machine and more than 5 s under load.
    assert many.timeout(5.0) == 5.0 + 1000 * PAIR_START_S >= 20.0
