"""The peer's run: nautilus_trader's ``BacktestEngine`` on the bench's GBM trades CSV.

Started by ``bench.peer`` as ``python -m bench.peer_child CSV FAST SLOW AMOUNT`` in a process of
its own, so that its memory is its own; prints one JSON line (ticks, the seconds of
``engine.run()`` alone, fills, peak RSS, the version). Loading the CSV and building the
``TradeTick`` objects happen before the clock starts, as the published nautilus_trader figures
are taken. Only this module imports nautilus_trader (the optional ``bench`` extra); nothing in
the product or the tests does.

The strategy is the benchmark's definition in nautilus_trader's own idiom: EMA(FAST) and
EMA(SLOW) of trade prices (its ``ExponentialMovingAverage``, registered for trade ticks), a
market order of AMOUNT on each cross once both are initialized, long only (a buy while flat,
a sell while long). The cross rule is ours (``strategies.ema_cross``): a change of the strict
side after a baseline. Its EMA is seeded with the first price, ours with the simple average
of the first ``period`` prices, which is the one difference in definition (see
``bench.peer``).
"""

from __future__ import annotations

import csv
import json
import resource
import sys
import time
from decimal import Decimal
from importlib.metadata import version
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AccountType, AggressorSide, OmsType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId, Venue
from nautilus_trader.model.objects import Money, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy


class PeerConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    fast: int
    slow: int
    amount: Decimal


class PeerEmaCross(Strategy):
    """EMA(fast)/EMA(slow) cross, long only, a market order on each cross."""

    def __init__(self, config: PeerConfig) -> None:
        super().__init__(config)
        self.fast = ExponentialMovingAverage(config.fast)
        self.slow = ExponentialMovingAverage(config.slow)
        self.side = 2  # no baseline yet
        self.fills = 0
        self.quantity: Quantity | None = None

    def on_start(self) -> None:
        instrument = self.cache.instrument(self.config.instrument_id)
        self.quantity = instrument.make_qty(self.config.amount)
        self.register_indicator_for_trade_ticks(self.config.instrument_id, self.fast)
        self.register_indicator_for_trade_ticks(self.config.instrument_id, self.slow)
        self.subscribe_trade_ticks(self.config.instrument_id)

    def on_trade_tick(self, tick: TradeTick) -> None:
        if not self.slow.initialized:
            return
        fast, slow = self.fast.value, self.slow.value
        if fast > slow:
            now = 1
        elif fast < slow:
            now = -1
        else:
            if self.side == 2:
                self.side = 0
            return
        if now == self.side:
            return
        previous, self.side = self.side, now
        if previous == 2:
            return
        instrument_id = self.config.instrument_id
        if now > 0 and self.portfolio.is_flat(instrument_id):
            self._market(OrderSide.BUY)
        elif now < 0 and self.portfolio.is_net_long(instrument_id):
            self._market(OrderSide.SELL)

    def _market(self, side: OrderSide) -> None:
        assert self.quantity is not None
        self.submit_order(self.order_factory.market(self.config.instrument_id, side,
                                                    self.quantity))

    def on_order_filled(self, event: Any) -> None:
        self.fills += 1


def load_ticks(path: str, instrument: Any) -> list[TradeTick]:
    """The CSV's rows (timestamp_ms, price, amount, side) as nautilus trade ticks."""
    ticks = []
    instrument_id, make_price, make_qty = instrument.id, instrument.make_price, \
        instrument.make_qty
    sides = {"buy": AggressorSide.BUYER, "sell": AggressorSide.SELLER}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        for n, (ts_ms, price, amount, side) in enumerate(rows):
            ns = int(ts_ms) * 1_000_000
            ticks.append(TradeTick(instrument_id, make_price(float(price)),
                                   make_qty(float(amount)), sides[side], TradeId(str(n)),
                                   ns, ns))
    return ticks


def run(path: str, fast: int, slow: int, amount: str) -> dict[str, Any]:
    instrument = TestInstrumentProvider.btcusdt_binance()
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    venue = Venue("BINANCE")
    engine.add_venue(venue=venue, oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                     base_currency=None,
                     starting_balances=[Money(1_000_000_000, USDT), Money(0, BTC)])
    engine.add_instrument(instrument)
    ticks = load_ticks(path, instrument)
    engine.add_data(ticks)
    strategy = PeerEmaCross(PeerConfig(instrument_id=instrument.id, fast=fast, slow=slow,
                                       amount=Decimal(amount)))
    engine.add_strategy(strategy)
    t0 = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - t0
    out = {"peer": f"nautilus_trader {version('nautilus_trader')}", "ticks": len(ticks),
           "seconds": seconds, "ticks_per_s": len(ticks) / seconds, "fills": strategy.fills,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    engine.dispose()
    return out


if __name__ == "__main__":
    csv_path, fast_n, slow_n, size = sys.argv[1:5]
    print(json.dumps(run(csv_path, int(fast_n), int(slow_n), size)))
