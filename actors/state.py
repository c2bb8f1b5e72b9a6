"""The state actor: the only owner of trading state, persisted in SQLite (``StateCore``).

Runs on its own pykka thread; every state change is one database transaction, then the
actor publishes who must know (the pair's book, the portfolio to risk, events). It is the
last actor to stop, so whatever the others sent before the end is persisted; the database is
closed in ``on_stop``. If a write fails the actor dies rather than run ahead of its database:
a restart reloads the last committed state.
"""

from __future__ import annotations

from actors.messages import STATE
from actors.shell import CoreActor
from actors.state_core import StateCore


class StateActor(CoreActor):
    name = STATE
    core: StateCore

    def on_stop(self) -> None:
        self.core.close()
