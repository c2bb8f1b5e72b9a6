"""State: all trading state, persisted, so a restart loses nothing.

``core`` (``StateCore``) applies fills and order updates to the ``ledger`` (balances,
positions, PnL) and writes them through ``store`` (SQLite, one group commit per batch);
``wal_checkpointer`` keeps the write-ahead log bounded. ``actor`` (``StateActor``) is the
shell, the only writer.
"""

from actors.state.actor import StateActor
from actors.state.core import StateCore
from actors.state.ledger import Ledger
from actors.state.store import StateStore, StateStoreError

__all__ = [
    "Ledger",
    "StateActor",
    "StateCore",
    "StateStore",
    "StateStoreError",
]
