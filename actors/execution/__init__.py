"""Execution: approved orders go to an exchange, and what the exchange reports goes to state.

``core`` (``ExecutionCore``) drives the ``paper_exchange``; with ``--live``, ``live``
(``LiveExecutionCore``) sizes orders to the market rules and ``gateway`` (``CcxtGateway``)
places them through ccxt on its own event loop, following each order with
``order_lifecycle`` and settling the books with ``reconcile`` at start. ``actor``
(``ExecutionActor``) is the shell.
"""

from actors.execution.actor import ExecutionActor
from actors.execution.core import ExecutionCore
from actors.execution.gateway import SETTLE_S, CcxtGateway
from actors.execution.live import LiveExecutionCore
from actors.execution.order_lifecycle import clean_reason, client_order_id, is_inferred
from actors.execution.paper_exchange import PaperConfig, PaperExchange
from actors.execution.reconcile import ReconcileReport, trade_id_of

__all__ = [
    "SETTLE_S",
    "CcxtGateway",
    "ExecutionActor",
    "ExecutionCore",
    "LiveExecutionCore",
    "PaperConfig",
    "PaperExchange",
    "ReconcileReport",
    "clean_reason",
    "client_order_id",
    "is_inferred",
    "trade_id_of",
]
