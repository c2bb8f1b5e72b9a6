"""The state actor: the only owner of trading state, persisted in SQLite (``StateCore``).

Runs on its own pykka thread. Group commit: the changes of a batch of messages share one
database transaction, committed when the inbox is drained, after ``batch_messages`` messages
or after ``batch_s`` seconds, whichever comes first (an idle system commits every message on
its own). What the batch's messages must tell others (the pair's book, the portfolio to risk,
events) is held back and sent right after the commit, so nobody hears of a change that is not
yet durable. A query (``ask``: books, portfolio, ping) commits and publishes the open batch
before it is answered. It is the last actor to stop, so whatever the others sent before the
end is persisted; the last batch is committed and the database closed in ``on_stop``. The
WAL is checkpointed by a thread of its own (``actors.wal_checkpointer``), never inside a commit
here.

Failure: if the core raises (a failed write or commit, a bug), the actor restarts its core in
place: it closes the database (the uncommitted batch is dropped), reopens it (the last
committed state: nothing published is lost), and handles every message of the batch again, in
order, then commits. In place, because pykka drops a dead actor's queued messages, and those
are fills and orders. A retry applies nothing twice: the batch was rolled back as a whole,
fills are unique by id and order updates older than what is stored are ignored. More than
``max_restarts`` recoveries within ``window_s``, or a failed retry, and the actor dies: the
supervisor escalates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from actors.messages import EVENTS, STATE, Envelope, Ping, Query, ServiceRestarted
from actors.router import Router
from actors.shell import CoreActor
from actors.state_core import StateCore
from actors.wal_checkpointer import WalCheckpointer

BATCH_MESSAGES = 500
"""Most messages in one commit while the inbox never drains."""
BATCH_S = 0.005
"""Longest a change waits for its commit while the inbox never drains. A pair waiting for its
order's answer holds its ticks until this commit: 20 ms made 200 busy pairs' tick -> order
acknowledgement p50 50 ms, 5 ms makes it 15 ms, at no measurable cost in replay throughput."""


class _Die:
    """The actor's note to itself: a commit failed past recovery while answering a query."""


class StateActor(CoreActor):
    name = STATE
    core: StateCore

    def __init__(self, core: StateCore, router: Router, reopen: Callable[[], StateCore],
                 may_restart: Callable[[float], bool], *, batch_messages: int = BATCH_MESSAGES,
                 batch_s: float = BATCH_S) -> None:
        super().__init__(core, router)
        core.group_commit = True
        self.reopen = reopen
        self.may_restart = may_restart
        self.restarts = 0
        self.batch_messages = batch_messages
        self.batch_s = batch_s
        self.commits = 0
        self._batch: list[Any] = []
        """Messages handled since the last commit: what a recovery handles again."""
        self._outbox: list[Envelope] = []
        """What the batch's messages send, held until the batch is committed."""
        self._batch_started = 0.0
        self._broken: Exception | None = None
        self.checkpointer: WalCheckpointer | None = None
        """Checkpoints the WAL on its own thread, so no commit here waits for an fsync."""
        if core.store.hand_off_checkpoints():
            self.checkpointer = WalCheckpointer(core.store.path)

    def on_start(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.start()

    def on_receive(self, message: Any) -> Any:
        if self._broken is not None:
            raise self._broken
        if isinstance(message, Query):
            try:
                self.flush()
            except Exception as exc:
                # An ask hands the error back and keeps the actor alive, with memory ahead of
                # the database: die on the next message instead, as after a failed tell.
                self._broken = exc
                self.actor_ref.tell(_Die())
                raise
            return message if isinstance(message, Ping) else self.core.answer(message)
        batch = self._batch
        if not batch:
            self._batch_started = time.monotonic()
        batch.append(message)
        try:
            self._outbox.extend(self.core.handle(message))
        except Exception as exc:  # noqa: BLE001 - _recover decides: retry the batch or die
            self._recover(exc)
            self._publish()
            return None
        if (self.actor_inbox.empty() or len(batch) >= self.batch_messages
                or time.monotonic() - self._batch_started >= self.batch_s):
            self.flush()
        return None

    def flush(self) -> None:
        """Commit the open batch, then send what its messages produced."""
        if not self._batch and not self.core.uncommitted:
            return
        try:
            self.core.commit()
        except Exception as exc:  # noqa: BLE001 - as in on_receive
            self._recover(exc)
        self._publish()

    def _publish(self) -> None:
        self.commits += 1
        out, self._outbox = self._outbox, []
        self._batch = []
        self.send(out)

    def _recover(self, error: Exception) -> None:
        """Reload from the database and handle the uncommitted batch again, then commit."""
        if not self.may_restart(time.monotonic()):
            raise error
        self.restarts += 1
        logger.error("state failed on {} ({!r}); reloading from the database and retrying "
                     "{} message(s), restart {}", type(self._batch[-1]).__name__
                     if self._batch else "commit", error, len(self._batch), self.restarts)
        fence = self.core.fence
        self.core.close()
        self.core = self.reopen()
        self.core.group_commit = True
        self.core.store.hand_off_checkpoints()
        # Generations are not stored: the supervisor told them to the old core.
        self.core.fence = fence
        self.router.tell(EVENTS, ServiceRestarted(name=STATE, restarts=self.restarts,
                                                  error=repr(error)))
        out: list[Envelope] = []
        for message in self._batch:
            out.extend(self.core.handle(message))
        self.core.commit()
        self._outbox = out

    def release(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()

    def on_stop(self) -> None:
        try:
            self.flush()
        finally:
            self.core.close()
            self.release()
