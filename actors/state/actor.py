"""The state actor: the only owner of trading state, persisted in SQLite or PostgreSQL
(``StateCore``).

Thread: paper trading runs it on the pair pool (``pool``), as a ``PooledActor`` beside risk
and execution: a fill is booked on the worker that made it, and its answers go to a pair and
risk that run there next, with no thread woken on the way (one order through the actors
crossed five threads; see ``actors.pair.pool``). Its commits there are SQLite's (no fsync at
commit, ``synchronous=NORMAL``), or PostgreSQL's without waiting for the server's flush, with
the batch's fill and trade rows sent along (``StateStore.defer_inserts``): one round trip per
batch, not per fill. On PostgreSQL that made the replay 1.7-2x faster (0.4x of SQLite's
rate to 0.8x). A turn that waits on a server longer than the pool's stall limit (a reconnect
to an unreachable host) costs only its worker, which the pool replaces. Live trading, whose
commits come before any answer, keeps a pykka thread of its own. Either way one message at a
time, in inbox order; a turn that hangs is the watchdog's to report.

Group commit: the changes of a batch of messages share one database transaction. It is the
last actor to stop, so whatever the others sent before the end is persisted; the last batch
is committed and the database closed in ``on_stop``. SQLite's WAL is checkpointed by a
thread of its own (``actors.state.wal_checkpointer``), never inside a commit here.
A query (``ask``: books, portfolio, ping) commits and publishes the open batch before it is
answered. What the batch's messages tell others goes out in one of two ways:

- **Durable first** (live orders on an exchange): everything (the pair's book, risk's
  portfolio, events) is held back and sent right after the commit, so nobody acts on a change
  that is not yet durable; the order gateway writes its intent ahead this way. A batch is
  committed when the inbox is drained, after ``batch_messages`` messages or after ``batch_s``
  seconds, whichever comes first (an idle system commits every message on its own).
- **Answer first** (paper trading: the simulator, replays, paper on live data): the actors'
  answers go out as soon as a message is handled, and only the events for the world outside
  wait for the commit, which comes after ``batch_messages`` messages or ``batch_s`` seconds
  (a thread of the actor's rings for a batch left open; ``ANSWER_FIRST_BATCH_S``, longer
  than durable first's, as nobody trades on the commit), not whenever the inbox drains. The
  paper exchange lives in this process, so a crash loses its orders together with the
  uncommitted batch, and the database stays a consistent prefix of the run. With one pair at
  full speed, every order waited for its own commit: 20,000 ticks/s answered after the
  commit, 30,000 answered first.

Failure: if the core raises (a failed write or commit, a bug), the actor restarts its core in
place: it closes the database (the uncommitted batch is dropped), reopens it (the last
committed state), and handles every message of the batch again, in order, then commits; the
answers already sent (answer first) are not sent twice, as the retry reaches the same state.
In place, because pykka drops a dead actor's queued messages, and those are fills and orders.
A retry applies nothing twice: the batch was rolled back as a whole, fills are unique by id
and order updates older than what is stored are ignored; and a batch whose COMMIT reached the
server but whose answer was lost with the connection is recognised by its number
(``StateStore.commit_seq``) and not handled again. More than ``max_restarts`` recoveries
within ``window_s``, or a failed retry, and the actor dies: the supervisor escalates.

A lost database server (``StateUnavailableError``: the connection broke, the server restarts)
is no bug and counts against no limit. If it cannot be reopened at once the actor is
*unavailable*: it tells risk (which refuses new entries with ``state_unavailable``; exits
still pass) and the events (``StateAvailabilityChanged``), ``availability`` says so to
``/health``, and it keeps every message that changes state, in order, unhandled, while it
answers pings and queries from memory. A timer of its own rings for a reconnect after
``reconnect_initial_s``, doubling to ``reconnect_max_s``; once the database opens, the
unfinished batch is handled again (or not: see the batch number above), committed and
published, the waiting messages follow in order, and risk hears the database is back.
Meanwhile pairs hold their marks (a mark is read only when handled), so a long outage keeps
only fills, orders and few marks in memory. A stop during an outage tries once more and then
logs what was not written.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.messages import (
    EVENTS,
    RISK,
    STATE,
    Envelope,
    MarkPrices,
    Ping,
    Query,
    ServiceRestarted,
    StateAvailabilityChanged,
)
from actors.pair import PairPool, PooledActor
from actors.router import Router
from actors.shell import CoreActor
from actors.state.availability import DatabaseAvailability
from actors.state.core import StateCore
from actors.state.store import StateStoreError, StateUnavailableError
from actors.state.wal_checkpointer import WalCheckpointer

BATCH_MESSAGES = 500
"""Most messages in one commit."""
BATCH_S = 0.005
"""Longest a change waits for its commit (durable first: while the inbox never drains). There,
a pair waiting for its order's answer holds its ticks until this commit: 20 ms made 200 busy
pairs' tick -> order acknowledgement p50 50 ms, 5 ms made it 15 ms."""
ANSWER_FIRST_BATCH_S = 0.02
"""The same for answer first, where nobody waits for a commit but the events' subscribers.
A commit costs its rows' pages in the WAL however few the batch holds (about 0.45 ms of CPU
at 1,000 pairs), and each statement gives up the GIL and may wait to get it back behind busy
pairs: at 1,000 pairs (700 fills a second) 5 ms meant 120 commits a second and 20 ms about
45, for a tenth less CPU for the same work (0.62-0.73 cores against 0.72-0.81, alternating
runs). 50 ms saved no more and made each commit a longer stretch under the GIL."""


class _Die:
    """The actor's note to itself: a commit failed past recovery while answering a query."""


@attrs.frozen
class _FlushDue:
    """The batch ringer -> the actor: a batch has been open ``batch_s`` (answer first)."""


_FLUSH_DUE = _FlushDue()


@attrs.frozen
class _Reconnect:
    """The reconnect timer -> the actor: try to reopen the database."""


_RECONNECT = _Reconnect()
RECONNECT_INITIAL_S = 0.1
RECONNECT_MAX_S = 5.0


class StateActor(PooledActor, CoreActor):
    name = STATE
    core: StateCore
    thread_name = "StateActor-0"  # a pykka thread's name: logs say "state"

    def __init__(self, core: StateCore, router: Router, reopen: Callable[[], StateCore],
                 may_restart: Callable[[float], bool], *, batch_messages: int = BATCH_MESSAGES,
                 batch_s: float | None = None, answer_first: bool = False,
                 availability: DatabaseAvailability | None = None,
                 reconnect_initial_s: float = RECONNECT_INITIAL_S,
                 reconnect_max_s: float = RECONNECT_MAX_S,
                 pool: PairPool | None = None) -> None:
        self.pool = pool  # first: pykka's __init__ builds the inbox, which depends on it
        super().__init__(core, router)
        self.answer_first = answer_first
        self._configure(core)
        self.reopen = reopen
        self.may_restart = may_restart
        self.restarts = 0
        self.batch_messages = batch_messages
        self.batch_s = batch_s if batch_s is not None else (
            ANSWER_FIRST_BATCH_S if answer_first else BATCH_S)
        self.commits = 0
        self._batch: list[Any] = []
        """Messages handled since the last commit: what a recovery handles again."""
        self._outbox: list[Envelope] = []
        """What the batch's messages send, held until the batch is committed."""
        self._batch_started = 0.0
        self._broken: Exception | None = None
        self._answered = 0
        """Messages of the batch whose answers went out already (answer first)."""
        self._batch_opened = threading.Event()
        self._stopping = threading.Event()
        self._ringer: threading.Thread | None = None
        self.wal_truncations = 0
        self.availability = availability or DatabaseAvailability()
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.reconnects = 0
        """Times the database was reopened after it had been lost."""
        self._lost: StateUnavailableError | None = None
        """Set while the database cannot be written (see the module doc)."""
        self._attempted = 0
        """The number the unfinished batch commits under (``StateStore.commit_seq``)."""
        self._waiting: list[Any] = []
        """Messages received while the database was lost, not yet handled."""
        self._delay = reconnect_initial_s
        self._timer: threading.Timer | None = None
        self.checkpointer: WalCheckpointer | None = None
        """Checkpoints the WAL on its own thread, so no commit here waits for an fsync."""
        if core.store.hand_off_checkpoints():
            self.checkpointer = WalCheckpointer(core.store.path)

    def _configure(self, core: StateCore, *, checked: bool = False) -> None:
        """Group commit. Answer first (paper) claims durability against a crash of this process
        only, as SQLite's synchronous=NORMAL does: a server need not flush each commit to disk,
        and a fill's row need not be a round trip of its own (``StateStore.defer_inserts``)
        unless ``checked``: a recovery's replay checks each fill, as the failure may have been
        a stored id."""
        core.group_commit = True
        store = core.store
        store.wait_for_flush(not self.answer_first)
        store.defer_inserts = self.answer_first and store.on_server and not checked

    def on_start(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.start()
        if self.answer_first:
            self._ringer = threading.Thread(target=self._ring_for_open_batches,
                                            name="state-batch", daemon=True)
            self._ringer.start()

    def _ring_for_open_batches(self) -> None:
        """Answer first commits no batch on a drained inbox: this makes sure an open batch is
        committed (and its events published) ``batch_s`` after it opened, even if no further
        message comes. One wake-up per open batch, none while there is none."""
        while self._batch_opened.wait() and not self._stopping.wait(self.batch_s):
            self._batch_opened.clear()
            try:
                self.actor_ref.tell(_FLUSH_DUE)
            except pykka.ActorDeadError:
                return

    def on_receive(self, message: Any) -> Any:
        if self._broken is not None:
            raise self._broken
        if self._lost is not None:
            return self._while_lost(message)
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
        if message is _RECONNECT:  # rang after the database was back already
            return None
        if message is _FLUSH_DUE:
            if self._batch:
                if time.monotonic() - self._batch_started >= self.batch_s:
                    self.flush()
                else:  # a younger batch than the ring was for: ring again for this one
                    self._batch_opened.set()
            return None
        if type(message) is MarkPrices:
            pairs = self.router.pairs
            for pair, _ in message.marks:  # read: the pair may send its next mark
                handle = pairs.get(pair)
                if handle is not None:
                    handle.mark_unread = False
        batch = self._batch
        if not batch:
            self._batch_started = time.monotonic()
            if self.answer_first:
                self._batch_opened.set()
        batch.append(message)
        try:
            out = self.core.handle(message)
        except Exception as exc:  # noqa: BLE001 - _recover decides: retry the batch or die
            self._recover(exc)
            if not self.database_lost:
                self._publish()
            return None
        if self.answer_first:
            self._answer(out)
            if (len(batch) >= self.batch_messages
                    or time.monotonic() - self._batch_started >= self.batch_s):
                self.flush()
            return None
        self._outbox.extend(out)
        if (self.actor_inbox.empty() or len(batch) >= self.batch_messages
                or time.monotonic() - self._batch_started >= self.batch_s):
            self.flush()
        return None

    @property
    def database_lost(self) -> bool:
        """The database cannot be written now; messages wait (see the module doc)."""
        return self._lost is not None

    def _while_lost(self, message: Any) -> Any:
        """The database is lost: keep what changes state, answer what can be answered."""
        if message is _RECONNECT:
            self._reconnect()
        elif isinstance(message, Query):
            # From memory: the ledger as the handled messages left it.
            return message if isinstance(message, Ping) else self.core.answer(message)
        elif message is not _FLUSH_DUE:
            self._waiting.append(message)
        return None

    def _answer(self, out: list[Envelope]) -> None:
        """Answer first: send the actors' share now, keep the events for the commit."""
        events = [e for e in out if e.to == EVENTS]
        if events:
            self._outbox.extend(events)
            out = [e for e in out if e.to != EVENTS]
        self.send(out)
        self._answered = len(self._batch)

    def flush(self) -> None:
        """Commit the open batch, then send what its messages produced."""
        if self._lost is not None or (not self._batch and not self.core.uncommitted):
            return
        try:
            self.core.commit()
        except Exception as exc:  # noqa: BLE001 - as in on_receive
            self._recover(exc)
            if self.database_lost:
                return
        self._publish()
        checkpointer = self.checkpointer
        if checkpointer is not None and checkpointer.log_full:
            self._truncate_wal(checkpointer)

    def _truncate_wal(self, checkpointer: WalCheckpointer) -> None:
        """Empty the WAL that the checkpointer found full, between two of our transactions."""
        checkpointer.log_full = False
        try:
            if self.core.store.truncate_wal():
                self.wal_truncations += 1
        except StateStoreError as exc:  # the log keeps growing; the next full round asks again
            logger.warning("state: emptying the WAL failed: {!r}", exc)

    def _publish(self) -> None:
        self.commits += 1
        out, self._outbox = self._outbox, []
        self._batch = []
        self._answered = 0
        self.send(out)

    def _recover(self, error: Exception) -> None:
        """Reload from the database and handle the uncommitted batch again, then commit; or,
        if the database server is lost, wait for it (see the module doc)."""
        lost = isinstance(error, StateUnavailableError)
        if not lost and not self.may_restart(time.monotonic()):
            raise error
        self._attempted = self.core.store.commit_seq + 1
        what = type(self._batch[-1]).__name__ if self._batch else "commit"
        if lost:
            logger.warning("state: the database went away on {} ({}); reconnecting to write "
                           "{} message(s) again", what, error, len(self._batch))
        else:
            self.restarts += 1
            logger.error("state failed on {} ({!r}); reloading from the database and retrying "
                         "{} message(s), restart {}", what, error, len(self._batch),
                         self.restarts)
        self.core.close()
        if not lost:
            self.router.tell(EVENTS, ServiceRestarted(name=STATE, restarts=self.restarts,
                                                      error=repr(error)))
        try:
            self._outbox = self._reopen_and_replay()
        except StateUnavailableError as exc:
            self._lose(exc)

    def _reopen_and_replay(self) -> list[Envelope]:
        """A fresh core on the reopened database, with the unfinished batch written: handled
        again, or not at all where its commit had landed. Returns what is to be published.

        Raises:
            StateUnavailableError: the database cannot be opened or written (yet).
        """
        fence = self.core.fence
        core = self.reopen()
        try:
            self._configure(core, checked=True)
            core.store.hand_off_checkpoints()
            # Generations are not stored: the supervisor told them to the old core.
            core.fence = fence
            if core.store.commit_seq >= self._attempted:
                logger.info("state: the unfinished batch of {} message(s) had been committed "
                            "before the connection was lost; not handling it again",
                            len(self._batch))
                out = self._outbox
            else:
                out = []
                for i, message in enumerate(self._batch):
                    answers = core.handle(message)
                    if i < self._answered:  # sent before the failure: only its events are due
                        answers = [e for e in answers if e.to == EVENTS]
                    out.extend(answers)
            core.commit()
            self._configure(core)
        except BaseException:
            core.close()
            raise
        self.core = core
        return out

    def _lose(self, error: StateUnavailableError) -> None:
        """The database cannot be reopened now: refuse entries, keep messages, retry later."""
        first = self._lost is None
        self._lost = error
        waiting = len(self._batch) + len(self._waiting)
        self.availability.lost(str(error), waiting)
        if first:
            self._delay = self.reconnect_initial_s
            logger.error("ALERT state database unavailable ({}); new entries are refused, "
                         "{} message(s) wait to be written; reconnecting", error, waiting)
            self._tell_availability(available=False, reason=str(error), waiting=waiting)
        self._ring_for_reconnect()

    def _ring_for_reconnect(self) -> None:
        delay, self._delay = self._delay, min(self._delay * 2, self.reconnect_max_s)
        if self._stopping.is_set():
            return
        timer = self._timer = threading.Timer(delay, self._tell_reconnect)
        timer.daemon = True
        timer.start()

    def _tell_reconnect(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_RECONNECT)

    def _reconnect(self) -> bool:
        """Try to reopen the lost database and write everything that waits; True if done."""
        try:
            self._outbox = self._reopen_and_replay()
        except StateUnavailableError as exc:
            self._lose(exc)
            return False
        self._lost = None
        self.reconnects += 1
        waiting, self._waiting = self._waiting, []
        logger.warning("state database back after {:.1f} s; the unfinished batch is written, "
                       "{} waiting message(s) follow", self.availability.view().down_s,
                       len(waiting))
        self._publish()
        self.availability.restored()
        self._tell_availability(available=True, reason="", waiting=len(waiting))
        for message in waiting:
            self.on_receive(message)
        return True

    def _tell_availability(self, *, available: bool, reason: str, waiting: int) -> None:
        change = StateAvailabilityChanged(available=available, reason=reason, waiting=waiting,
                                          ts_ms=int(time.time() * 1000))
        self.router.tell(RISK, change)
        self.router.tell(EVENTS, change)

    def release(self) -> None:
        self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
        self._batch_opened.set()  # let the ringer see the stop
        if self.checkpointer is not None:
            self.checkpointer.stop()

    def on_stop(self) -> None:
        try:
            if self._lost is not None and not self._reconnect():
                logger.error("ALERT state stopped while its database was unavailable: {} "
                             "message(s) were not written ({})",
                             len(self._batch) + len(self._waiting), self._lost)
            self.flush()
        finally:
            self.core.close()
            self.release()
