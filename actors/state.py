"""The state actor: the only owner of trading state, persisted in SQLite (``StateCore``).

Runs on its own pykka thread; every state change is one database transaction, then the
actor publishes who must know (the pair's book, the portfolio to risk, events). It is the
last actor to stop, so whatever the others sent before the end is persisted; the database is
closed in ``on_stop``.

Failure: if the core raises (a failed write, a bug), the actor restarts its core in place:
it closes the database, reopens it (the last committed state, nothing acknowledged is lost),
and retries the message once. In place, because pykka drops a dead actor's queued messages,
and those are fills and orders. A retry applies nothing twice: fills are unique by id and
order updates older than what is stored are ignored. More than ``max_restarts`` recoveries
within ``window_s``, or a failed retry, and the actor dies: the supervisor escalates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from actors.messages import EVENTS, STATE, Envelope, ServiceRestarted
from actors.router import Router
from actors.shell import CoreActor
from actors.state_core import StateCore


class StateActor(CoreActor):
    name = STATE
    core: StateCore

    def __init__(self, core: StateCore, router: Router, reopen: Callable[[], StateCore],
                 may_restart: Callable[[float], bool]) -> None:
        super().__init__(core, router)
        self.reopen = reopen
        self.may_restart = may_restart
        self.restarts = 0

    def recover(self, message: Any, error: Exception) -> list[Envelope]:
        if not self.may_restart(time.monotonic()):
            raise error
        self.restarts += 1
        logger.error("state failed on {} ({!r}); reloading from the database, restart {}",
                     type(message).__name__, error, self.restarts)
        self.core.close()
        self.core = self.reopen()
        self.router.tell(EVENTS, ServiceRestarted(name=STATE, restarts=self.restarts,
                                                  error=repr(error)))
        return self.core.handle(message)

    def on_stop(self) -> None:
        self.core.close()
