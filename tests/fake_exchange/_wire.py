"""Binance spot's JSON shapes, rendered from the fake's records.

Field names and formats follow what ``ccxt.binance`` parses (``parse_market``, ``parse_order``,
``parse_trade``, ``parse_ticker``, ``parse_balance``) and what ``ccxt.pro.binance`` parses from
the ``@trade``, ``@bookTicker`` and ``@ticker`` streams. Pure functions, no state.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ._records import MarketSpec, OrderRecord, TradeRecord

ZERO = Decimal(0)
Json = dict[str, Any]


def fmt(value: Decimal | None) -> str:
    """Binance renders every decimal as a string with eight places."""
    return f"{(value if value is not None else ZERO):.8f}"


def error(code: int, msg: str) -> Json:
    return {"code": code, "msg": msg}


def exchange_info(specs: Iterable[MarketSpec], now_ms: int) -> Json:
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(spec) for spec in specs],
    }


def symbol_info(spec: MarketSpec) -> Json:
    return {
        "symbol": spec.id,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        # ccxt refuses client-side any type not listed here, so list only what the fake fills.
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt(spec.tick_size),
             "maxPrice": "1000000.00000000", "tickSize": fmt(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": fmt(spec.min_qty), "maxQty": fmt(spec.max_qty),
             "stepSize": fmt(spec.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
             "maxQty": fmt(spec.max_qty), "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": fmt(spec.min_notional),
             "applyMinToMarket": True, "maxNotional": "9000000.00000000",
             "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _fill(trade: TradeRecord) -> Json:
    return {
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "commission": fmt(trade.commission),
        "commissionAsset": trade.commission_asset,
        "tradeId": trade.trade_id,
    }


def new_order(order: OrderRecord, market_id: str, resp_type: str,
              fills: Iterable[TradeRecord]) -> Json:
    """The reply to ``POST /api/v3/order`` for newOrderRespType ACK, RESULT or FULL."""
    reply: Json = {
        "symbol": market_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.created_ms,
    }
    if resp_type == "ACK":
        return reply
    reply.update(_order_body(order))
    reply["workingTime"] = order.created_ms
    reply["selfTradePreventionMode"] = "EXPIRE_MAKER"
    if resp_type == "FULL":
        reply["fills"] = [_fill(t) for t in fills]
    return reply


def _order_body(order: OrderRecord) -> Json:
    return {
        "price": fmt(order.price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.quote_order_qty),
        "cummulativeQuoteQty": fmt(order.cumulative_quote_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    }


def query_order(order: OrderRecord, market_id: str) -> Json:
    """An order as ``GET /api/v3/order``, ``openOrders`` and ``allOrders`` report it."""
    reply: Json = {
        "symbol": market_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
    }
    reply.update(_order_body(order))
    reply.update({
        "stopPrice": fmt(ZERO),
        "icebergQty": fmt(ZERO),
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "isWorking": True,
        "workingTime": order.created_ms,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    })
    return reply


def canceled_order(order: OrderRecord, market_id: str, cancel_client_id: str,
                   now_ms: int) -> Json:
    reply: Json = {
        "symbol": market_id,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": now_ms,
    }
    reply.update(_order_body(order))
    reply["selfTradePreventionMode"] = "EXPIRE_MAKER"
    return reply


def my_trade(trade: TradeRecord, market_id: str) -> Json:
    return {
        "symbol": market_id,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.quote_qty),
        "commission": fmt(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time_ms,
        "isBuyer": trade.side == "BUY",
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }
