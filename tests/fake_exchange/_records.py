"""Value records of the fake Binance: market specs in, ledger snapshots and request log out.

All records are frozen; the fake hands out snapshots, never its live state, so a test may keep
them across calls without seeing them change.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs


def to_decimal(value: object) -> Decimal:
    """A Decimal from an int, float, str or Decimal (floats go through ``str`` to stay exact)."""
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def _optional_decimal(value: object) -> Decimal | None:
    return None if value is None else to_decimal(value)


def _check_symbol(_instance: object, _attribute: object, value: str) -> None:
    base, sep, quote = value.partition("/")
    if not (sep and base and quote and base.isalnum() and quote.isalnum()):
        raise ValueError(f"market symbol must look like 'BTC/USDT', got {value!r}")


@attrs.frozen(kw_only=True)
class MarketSpec:
    """One spot market and its exchange filters (Binance's PRICE_FILTER, LOT_SIZE, NOTIONAL)."""

    symbol: str = attrs.field(validator=_check_symbol)
    tick_size: Decimal = attrs.field(default=Decimal("0.01"), converter=to_decimal)
    step_size: Decimal = attrs.field(default=Decimal("0.00001"), converter=to_decimal)
    min_qty: Decimal = attrs.field(default=Decimal("0.00001"), converter=to_decimal)
    max_qty: Decimal = attrs.field(default=Decimal("9000"), converter=to_decimal)
    min_notional: Decimal = attrs.field(default=Decimal("5"), converter=to_decimal)
    # Initial mid price (bid = ask = price) so market orders fill before any set_price.
    price: Decimal | None = attrs.field(default=None, converter=_optional_decimal)

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def id(self) -> str:
        """Binance's market id, e.g. ``BTCUSDT``."""
        return self.base + self.quote


def market_specs(markets: object) -> dict[str, MarketSpec]:
    """Normalise the ``markets=`` argument: symbols, MarketSpecs, or symbol -> kwargs/spec."""
    if markets is None:
        markets = ("BTC/USDT", "ETH/USDT")
    specs: list[MarketSpec] = []
    if isinstance(markets, Mapping):
        for symbol, spec in markets.items():
            if isinstance(spec, MarketSpec):
                specs.append(spec)
            elif spec is None:
                specs.append(MarketSpec(symbol=symbol))
            elif isinstance(spec, Mapping):
                specs.append(MarketSpec(symbol=symbol, **spec))
            else:
                raise TypeError(f"markets[{symbol!r}] must be a MarketSpec, a dict or None")
    else:
        specs.extend(item if isinstance(item, MarketSpec) else MarketSpec(symbol=item)
                     for item in markets)  # type: ignore[attr-defined]
    return {spec.symbol: spec for spec in specs}


@attrs.frozen(kw_only=True)
class OrderRecord:
    """A snapshot of one order in the fake's ledger (Binance's field meanings and enums)."""

    order_id: int
    client_order_id: str
    symbol: str  # unified, e.g. "BTC/USDT"
    side: str  # "BUY" | "SELL"
    type: str  # "LIMIT" | "MARKET" | "LIMIT_MAKER"
    time_in_force: str  # "GTC" | "IOC" | "FOK"
    price: Decimal  # 0 for market orders
    quantity: Decimal  # origQty (for a quoteOrderQty market order: what it bought/sold)
    quote_order_qty: Decimal  # origQuoteOrderQty, 0 unless the order was sized in quote
    executed_qty: Decimal
    cumulative_quote_qty: Decimal
    status: str  # "NEW" | "PARTIALLY_FILLED" | "FILLED" | "CANCELED" | "EXPIRED"
    created_ms: int
    updated_ms: int

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@attrs.frozen(kw_only=True)
class TradeRecord:
    """One fill of one of the account's orders (what ``GET /api/v3/myTrades`` reports)."""

    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # "BUY" | "SELL"
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int


@attrs.frozen(kw_only=True)
class RequestRecord:
    """One HTTP request as the fake received it; ``params`` exclude ``signature``."""

    method: str
    path: str
    params: dict[str, str]
    time_ms: int
    api_key: str | None = None
    fault: str | None = None
    """The injected fault that hit this request (its kind), if any."""
    handled: bool = True
    """The exchange acted on it (False: a fault answered in its place, or no such route)."""

    def get(self, key: str, default: Any = None) -> Any:
        """A request parameter, e.g. ``record.get("newClientOrderId")``."""
        return self.params.get(key, default)
