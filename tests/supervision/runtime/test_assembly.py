"""Assembly on a real exchange: markets loaded once give the paper exchange and risk their
steps and minimums; live mode gets the gateway (all against the loopback fake Binance)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from actors.execution.core import ExecutionCore
from actors.messages import (
    STATE,
    ExitReason,
    OrderFilled,
    OrderType,
    PortfolioChanged,
    ProposeOrder,
    Side,
    SubmitOrder,
)
from supervision.config import ConfigError, build_config
from supervision.runtime.assembly import load_markets, make_execution, make_risk
from tests.fake_exchange import FakeBinance

MARKETS = {"BTC/USDT": {"price": 60_000, "step_size": "0.001", "tick_size": "0.1",
                        "min_notional": 50}}


def config_for(fake: FakeBinance | None, live: bool = False) -> Any:
    table: dict[str, Any] = {"id": "binance", "live": live}
    if fake is not None:
        conf = fake.ccxt_config()
        table["ccxt"] = {"urls": conf["urls"], "options": conf["options"], "timeout": 1000}
    else:
        table["ccxt"] = {"urls": {"api": {"public": "http://127.0.0.1:9/api/v3"}},
                         "timeout": 300}
    return build_config({"exchange": table}, {"pairs": "BTC/USDT", "state_db": ":memory:"})


def test_markets_load_once_into_rules_with_the_exchanges_filters() -> None:
    """exchangeInfo's PRICE_FILTER, LOT_SIZE and NOTIONAL become tick, lot and min notional."""
    with FakeBinance(MARKETS) as fake:
        loaded = load_markets(config_for(fake))
        assert [r.path for r in fake.requests] == ["/api/v3/exchangeInfo"]
    assert loaded is not None
    rules = loaded.rules
    assert (rules.tick_size("BTC/USDT"), rules.lot_size("BTC/USDT")) == (0.1, 0.001)
    assert rules.min_notional("BTC/USDT") == 50.0


def test_an_unreachable_exchange_is_a_config_error_after_the_retries(monkeypatch) -> None:
    """No markets, no start: one clear error, once the retries are spent."""
    import supervision.runtime.assembly as assembly

    monkeypatch.setattr(assembly, "MARKETS_RETRY_S", (0.01, 0.01))
    with pytest.raises(ConfigError, match="markets could not be loaded after 3 attempts"):
        load_markets(config_for(None))


@pytest.mark.parametrize("fault", ["http_429", "http_418", "http_5xx", "malformed_json"])
def test_markets_load_after_passing_errors(monkeypatch, fault: str) -> None:
    """A rate limit, a ban, a 5xx or a garbled answer (which ccxt reads as no markets) at
    start is a blip: the markets load on a later try."""
    import supervision.runtime.assembly as assembly

    monkeypatch.setattr(assembly, "MARKETS_RETRY_S", (0.01, 0.01, 0.01))
    with FakeBinance(MARKETS) as fake:
        options = {"retry_after": 0} if fault in ("http_429", "http_418") else {}
        fake.inject(fault, "/api/v3/exchangeInfo", times=2, **options)
        loaded = load_markets(config_for(fake))
        assert [r.path for r in fake.requests] == ["/api/v3/exchangeInfo"] * 3
    assert loaded is not None and loaded.rules.lot_size("BTC/USDT") == 0.001


def test_paper_trading_a_real_exchange_rounds_to_its_lots_and_risk_to_its_minimum() -> None:
    """Paper fills floor to the exchange's lot; risk refuses entries under its min notional."""
    with FakeBinance(MARKETS) as fake:
        config = config_for(fake)
        loaded = load_markets(config)
    core = make_execution(config, {"USDT": 10_000.0}, markets=loaded)
    assert isinstance(core, ExecutionCore)
    out = core.handle(SubmitOrder(
        order_id="o-1", proposal_id="p-1", pair="BTC/USDT", generation=0, side=Side.BUY,
        order_type=OrderType.MARKET, reason=ExitReason.ENTRY, amount=0.012345,
        bid=60_000.0, ask=60_000.0, ts_ms=1))
    (filled,) = [e.message for e in out if e.to == STATE and isinstance(e.message, OrderFilled)]
    assert filled.order is not None
    assert filled.order.filled == filled.fill.amount == pytest.approx(0.012)
    risk = make_risk(with_stake(config, 40.0), loaded)
    risk.handle(PortfolioChanged(ts_ms=1, cash=10_000.0, equity=10_000.0,
                                 peak_equity=10_000.0, exposure=(), realized_pnl=0.0))
    envelope, *_ = risk.handle(ProposeOrder(
        proposal_id="p-2", pair="BTC/USDT", generation=0, side=Side.BUY,
        order_type=OrderType.MARKET, reason=ExitReason.ENTRY, price=60_000.0, bid=60_000.0,
        ask=60_000.0, ts_ms=2))
    assert envelope.message.reason == "below_min_notional"


def with_stake(config: Any, stake: float) -> Any:
    return attrs.evolve(config, risk=attrs.evolve(config.risk, stake_amount=stake))


def test_risk_applies_each_pairs_own_exchange_minimums() -> None:
    """BTC's minimum amount refuses a BTC entry that ETH's rules would let through."""
    markets = {"BTC/USDT": {"price": 60_000, "step_size": "0.001", "min_qty": "0.01"},
               "ETH/USDT": {"price": 3_000, "step_size": "0.001", "min_qty": "0.001"}}
    with FakeBinance(markets) as fake:
        config = with_stake(config_for(fake), 400.0)
        loaded = load_markets(config)
    risk = make_risk(config, loaded)
    risk.handle(PortfolioChanged(ts_ms=1, cash=10_000.0, equity=10_000.0,
                                 peak_equity=10_000.0, exposure=(), realized_pnl=0.0))

    def propose(pair: str, price: float) -> object:
        envelope, *_ = risk.handle(ProposeOrder(
            proposal_id=f"p-{pair}", pair=pair, generation=0, side=Side.BUY,
            order_type=OrderType.MARKET, reason=ExitReason.ENTRY, price=price, bid=price,
            ask=price, ts_ms=2))
        return envelope.message

    btc = propose("BTC/USDT", 60_000.0)
    assert getattr(btc, "reason", "") == "below_min_amount"
    assert isinstance(propose("ETH/USDT", 3_000.0), SubmitOrder)
