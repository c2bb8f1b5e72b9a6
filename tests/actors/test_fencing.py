"""Generation fencing: after a restart, nothing the old actor sends reaches an order or a row."""

from __future__ import annotations

import attrs

from actors.messages import (
    EXECUTION,
    MarkPrices,
    PairGeneration,
    RaisePeak,
    Side,
    StrategyAssigned,
    StrategySpec,
)
from actors.risk.core import RiskCore
from actors.state.core import StateCore
from tests.actors.risk.test_core import entry, make_book, portfolio
from tests.actors.state.test_core import filled

BTC = "BTC/USDT"


def test_risk_drops_a_proposal_from_a_replaced_generation():
    """Generation 3 proposes after generation 4 was announced: no order, counted."""
    risk = RiskCore(make_book())
    risk.handle(portfolio())
    risk.handle(PairGeneration(pair=BTC, generation=4))

    stale = risk.handle(entry("p1"))  # entry() proposes as generation 3
    current = risk.handle(attrs.evolve(entry("p2"), generation=4))

    assert stale == []
    assert risk.fence.fenced == 1
    assert [e.to for e in current] == [EXECUTION]


def test_state_ignores_writes_from_a_replaced_generation(tmp_path):
    """Peaks, marks and strategy specs from a stale actor change nothing in the database."""
    core = StateCore.open(str(tmp_path / "s.db"), "USDT", {"USDT": 10_000.0})
    core.handle(filled("f-1", Side.BUY, 1.0, 100.0))
    core.handle(PairGeneration(pair=BTC, generation=2))

    out = [
        core.handle(RaisePeak(pair=BTC, price=500.0, generation=1)),
        core.handle(MarkPrices(ts_ms=5_000, marks=((BTC, 1.0),), generation=1)),
        core.handle(StrategyAssigned(pair=BTC, spec=StrategySpec.of("x"), generation=1)),
    ]

    assert out == [[], [], []]
    assert core.fence.fenced == 3
    book = core.ledger.book(BTC)
    assert book.position is not None and book.position.peak_price < 500.0
    assert book.strategy is None
    core.close()
