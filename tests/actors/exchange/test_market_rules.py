"""MarketRules: steps and minimums from ccxt markets, rounding and the pre-send check."""

from __future__ import annotations

import pytest

from actors.exchange.market_rules import DECIMAL_PLACES, TICK_SIZE, MarketRules

MARKETS = {
    "BTC/USDT": {
        "symbol": "BTC/USDT", "active": True,
        "precision": {"amount": 0.00001, "price": 0.01},
        "limits": {"amount": {"min": 0.00001, "max": 9000.0}, "cost": {"min": 5.0},
                   "price": {"min": 0.01}},
    },
    "ETH/USDT": {
        "symbol": "ETH/USDT", "active": False,
        "precision": {"amount": 0.0001, "price": 0.01},
        "limits": {"amount": {"min": 0.0001, "max": None}, "cost": {"min": None}},
    },
}


def rules() -> MarketRules:
    return MarketRules.from_ccxt(MARKETS, TICK_SIZE)


def test_steps_and_minimums_come_from_the_markets() -> None:
    """Tick, lot, minimum amount and notional are read from precision and limits."""
    r = rules()
    assert r.tick_size("BTC/USDT") == 0.01
    assert r.lot_size("BTC/USDT") == 0.00001
    assert r.min_amount("BTC/USDT") == 0.00001
    assert r.min_notional("BTC/USDT") == 5.0
    assert r.min_notional("ETH/USDT") == 0.0


def test_decimal_places_precision_reads_as_a_power_of_ten() -> None:
    """An exchange counting decimal places gives 10**-n steps."""
    markets = {"BTC/USDT": {"precision": {"amount": 3, "price": 2}, "limits": {}}}
    r = MarketRules.from_ccxt(markets, DECIMAL_PLACES)
    assert r.lot_size("BTC/USDT") == pytest.approx(0.001)
    assert r.tick_size("BTC/USDT") == pytest.approx(0.01)


def test_amounts_floor_to_the_lot_and_prices_round_in_the_traders_favour() -> None:
    """Amounts never grow; a buy limit rounds down, a sell limit up, no side to nearest."""
    r = rules()
    assert r.round_amount("BTC/USDT", 0.123456789) == 0.12345
    assert r.round_price("BTC/USDT", 100.129, "buy") == 100.12
    assert r.round_price("BTC/USDT", 100.121, "sell") == 100.13
    assert r.round_price("BTC/USDT", 100.126) == 100.13
    assert r.round_price("BTC/USDT", 1.1, "sell") == 1.1


def test_check_accepts_an_order_that_fits() -> None:
    """An order above every minimum passes."""
    assert rules().check("BTC/USDT", 0.001, 60_000.0) is None


@pytest.mark.parametrize(("amount", "price", "reason"), [
    (0.0, 60_000.0, "below_lot_size"),
    (0.00005, 60_000.0, "below_min_notional"),
    (9001.0, 60_000.0, "above_max_amount"),
    (0.001, 0.0, "invalid_price"),
])
def test_check_names_what_is_wrong(amount: float, price: float, reason: str) -> None:
    """Too small, too large or unpriced orders get a reason code and the numbers."""
    why = rules().check("BTC/USDT", amount, price)
    assert why is not None
    assert why.startswith(reason + ":")


def test_check_refuses_an_unknown_or_inactive_market() -> None:
    """Pairs the exchange does not list, or has halted, are refused before sending."""
    r = rules()
    assert (r.check("DOGE/USDT", 1.0, 1.0) or "").startswith("unknown_market")
    assert (r.check("ETH/USDT", 1.0, 3000.0) or "").startswith("market_inactive")


def test_below_min_amount_is_checked_before_notional() -> None:
    """An amount under the exchange minimum is reported as such."""
    markets = {"X/USDT": {"precision": {"amount": 0.001, "price": 0.01},
                          "limits": {"amount": {"min": 0.01}, "cost": {"min": 1.0}}}}
    why = MarketRules.from_ccxt(markets).check("X/USDT", 0.005, 1000.0)
    assert (why or "").startswith("below_min_amount")
