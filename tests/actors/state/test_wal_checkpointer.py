"""WAL checkpoints leave the state's commits: the writer never copies the log back, the
checkpointer's thread does."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from actors.state.store import StateStore, open_store
from actors.state.wal_checkpointer import WalCheckpointer
from tests.helpers import eventually

PAGE = 4096
AUTO_CHECKPOINT_PAGES = 1000  # SQLite's default


def _commit_many(store: StateStore, n: int) -> None:
    for i in range(n):  # autocommit: each is a transaction of its own, at least one WAL frame
        store.record_equity(i, float(i))


def _handed_off_store(tmp_path: Path) -> tuple[str, StateStore]:
    """A fresh store whose WAL nobody checkpoints inside its commits."""
    path = str(tmp_path / "state.sqlite")
    store = open_store(path)
    store.initialize("USDT", {"USDT": 1_000.0})
    assert store.hand_off_checkpoints()
    return path, store


def test_a_store_that_hands_checkpoints_off_lets_its_wal_grow_past_the_automatic_size(
        tmp_path: Path) -> None:
    sizes = {}
    for hand_off in (False, True):
        path = str(tmp_path / f"state-{hand_off}.sqlite")
        store = open_store(path)
        store.initialize("USDT", {"USDT": 1_000.0})
        if hand_off:
            assert store.hand_off_checkpoints()
        _commit_many(store, 1_300)
        sizes[hand_off] = os.path.getsize(path + "-wal")
        store.close()
    # SQLite's own checkpoints restart the log at about 1,000 pages; handed off, it grows.
    assert sizes[False] <= (AUTO_CHECKPOINT_PAGES + 50) * (PAGE + 24)
    assert sizes[True] > 1_200 * PAGE


def test_the_checkpointer_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path, store = _handed_off_store(tmp_path)
    _commit_many(store, 2_000)
    before = os.path.getsize(path)
    checkpointer = WalCheckpointer(path, interval_s=60.0)
    checkpointer.start()
    checkpointer.stop()  # a last checkpoint, then the thread ends
    after = os.path.getsize(path)
    store.close()

    assert checkpointer.checkpoints == 1 and checkpointer.failures == 0
    assert after > before  # the equity rows' pages now live in the database file


def test_an_in_memory_store_has_no_wal_to_hand_off() -> None:
    store = open_store(":memory:")
    assert store.hand_off_checkpoints() is False
    store.close()


def test_the_state_actor_checkpoints_on_its_own_thread_and_stops_it(tmp_path: Path) -> None:
    from actors.router import Router
    from actors.state.actor import StateActor
    from actors.state.core import StateCore

    core = StateCore.open(str(tmp_path / "s.sqlite"), "USDT", {"USDT": 10_000.0})
    actor = StateActor(core, Router(), reopen=lambda: core, may_restart=lambda now: False)
    checkpointer = actor.checkpointer
    assert checkpointer is not None
    actor.on_start()  # what pykka runs on the actor's thread
    actor.on_stop()

    assert checkpointer.checkpoints >= 1 and checkpointer.failures == 0
    assert checkpointer.stopped


def test_a_round_that_finds_the_log_full_asks_the_writer_to_empty_it(tmp_path: Path) -> None:
    path, store = _handed_off_store(tmp_path)
    _commit_many(store, 1_500)
    checkpointer = WalCheckpointer(path, interval_s=60.0, truncate_pages=1_000)
    checkpointer.start()
    checkpointer.stop()
    asked = checkpointer.log_full
    emptied = store.truncate_wal()
    wal = os.path.getsize(path + "-wal")
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM equity").fetchone()[0]

    assert (asked, emptied, checkpointer.failures) == (True, True, 0)
    assert wal == 0
    assert rows == 1_500  # nothing lost on the way


@pytest.mark.parametrize("writer_empties", [True, False])
def test_the_log_stays_bounded_under_a_writer_that_never_pauses(
        tmp_path: Path, writer_empties: bool) -> None:
    """A writer committing back to back, as the state actor does under load. PASSIVE rounds
    alone never let the log start over, so it only grows (the writer that ignores the
    checkpointer shows it); a writer that empties the log when asked, as
    ``StateActor.flush`` does, starts it over at its next commit every time a round finds it
    full. How far the log grows between two rounds depends on how fast the disk copies a
    round's pages back (9-11 rounds in this loop here, 700-1,300 pages at the largest), so the
    bound asserted is the writer's: the log emptied at once when it was asked. The writer
    waits once for a whole round after 300 commits (a loaded machine may give the
    checkpointer no round at all), which must find the log full."""
    path, store = _handed_off_store(tmp_path)
    checkpointer = WalCheckpointer(path, interval_s=0.002, truncate_pages=200)
    checkpointer.start()
    largest = asked = 0
    left_after_emptying: list[int] = []
    try:
        for i in range(3_000):
            store.record_equity(i, float(i))
            if i == 300:  # one whole round after the log passed 200 pages, however loaded
                rounds = checkpointer.checkpoints
                eventually(lambda r=rounds: checkpointer.checkpoints >= r + 2, timeout=10,
                           message="a checkpoint round to begin and end")
            if writer_empties and checkpointer.log_full:
                checkpointer.log_full = False
                asked += 1
                if store.truncate_wal():
                    left_after_emptying.append(os.path.getsize(path + "-wal"))
            if i % 50 == 0:
                largest = max(largest, os.path.getsize(path + "-wal"))
    finally:
        checkpointer.stop()
        store.close()

    if writer_empties:
        # Each ask emptied the log at once (an ask that met a checkpoint round in progress is
        # busy and waits for the next round, as in the state actor).
        assert asked >= 1
        assert left_after_emptying
        assert set(left_after_emptying) == {0}
    else:
        assert largest > 2_500 * PAGE, largest


def test_the_state_actor_empties_a_full_log_after_its_commit(tmp_path: Path) -> None:
    from actors.messages import GetPortfolio
    from actors.router import Router
    from actors.state.actor import StateActor
    from actors.state.core import StateCore

    path = str(tmp_path / "s.sqlite")
    core = StateCore.open(path, "USDT", {"USDT": 10_000.0})
    actor = StateActor(core, Router(), reopen=lambda: core, may_restart=lambda now: False)
    assert actor.checkpointer is not None
    _commit_many(core.store, 300)
    actor.checkpointer.log_full = True  # what a round finds past truncate_pages
    actor.on_receive(GetPortfolio())  # an ask commits first
    wal = os.path.getsize(path + "-wal")
    actor.on_stop()

    assert (actor.wal_truncations, actor.checkpointer.log_full) == (1, False)
    assert wal == 0
