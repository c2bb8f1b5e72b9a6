"""``SyncRuntime``: direct marks (``TradingOrchestrator.mark_to``) decide exactly as marks
sent as messages do."""

from __future__ import annotations

from actors.messages import GetEquity, OrderFilled, StrategySpec
from supervision import build_config
from supervision.research.recorder import fill_key
from supervision.runtime.threadless import SyncRuntime
from tests.supervision.research.data import write_candles

PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def run(tmp_path, name: str, *, direct: bool) -> dict[str, object]:
    """Three pairs of minute candles (every tick a mark), a drawdown limit the walk reaches;
    fills (without their ids, which name the run), stored equity points, the risk and
    portfolio figures at the end."""
    files = tuple((pair, str(write_candles(tmp_path / f"{pair[:3]}.csv", 4000, seed=i + 3)))
                  for i, pair in enumerate(PAIRS))
    config = build_config({}, {"replay": files, "speed": "max",
                               "state_db": str(tmp_path / f"{name}.db"),
                               "strategy": StrategySpec.of("ema_cross", fast=3, slow=8),
                               "risk": {"max_drawdown": 0.02}})
    runtime = SyncRuntime(config)
    if not direct:
        for core in runtime.pairs.values():
            core.mark_to = None
    events: list[object] = []
    runtime.on_event = events.append
    try:
        status = runtime.run()
        equity = runtime.state.answer(GetEquity(limit=100_000))
        peak = runtime.state.ledger.peak_equity
    finally:
        runtime.close()
    return {"fills": [fill_key(e.fill) for e in events if isinstance(e, OrderFilled)],
            "equity": equity, "peak": peak, "halt": status.halt_reason,
            "rejections": status.rejections, "value": status.equity}


def test_direct_marks_give_the_same_fills_equity_points_and_halts_as_mark_messages(tmp_path):
    """Coarse data marks on every tick; taken directly (no message) nothing a run produces
    changes: not a fill, not a stored equity point, not the drawdown halt or its moment."""
    direct = run(tmp_path, "direct", direct=True)
    sent = run(tmp_path, "sent", direct=False)
    assert len(direct["fills"]) > 20  # type: ignore[arg-type]
    assert "max_drawdown" in str(direct["halt"])
    assert len(direct["equity"]) > 100  # type: ignore[arg-type]
    assert direct == sent
