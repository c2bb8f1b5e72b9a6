"""State: all trading state, persisted, so a restart loses nothing.

``core`` (``StateCore``) applies fills and order updates to the ``ledger`` (balances,
positions, PnL) and writes them through a ``store`` (one group commit per batch): SQLite
(``sqlite``, the default) or PostgreSQL (``postgres``), picked by ``open_store`` from the
``location`` (a path or a URL), with one layout and its migrations in ``schema``.
``wal_checkpointer`` keeps SQLite's write-ahead log bounded. ``actor`` (``StateActor``) is the
shell, the only writer; it reconnects to a database server that went away and tells who
must know (``availability``).
"""

from actors.state.actor import StateActor
from actors.state.availability import AvailabilityView, DatabaseAvailability
from actors.state.core import StateCore
from actors.state.ledger import Ledger
from actors.state.location import StateLocation, StateLocationError, parse_location
from actors.state.schema import SCHEMA_VERSION
from actors.state.store import StateStore, StateStoreError, StateUnavailableError, open_store

__all__ = [
    "SCHEMA_VERSION",
    "AvailabilityView",
    "DatabaseAvailability",
    "Ledger",
    "StateActor",
    "StateCore",
    "StateLocation",
    "StateLocationError",
    "StateStore",
    "StateStoreError",
    "StateUnavailableError",
    "open_store",
    "parse_location",
]
