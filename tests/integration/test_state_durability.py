"""kill -9 of a trading process, on SQLite and on PostgreSQL: the database holds whole
batches only (every stored fill with its order and its balances), and the next run continues
from it, storing no fill twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.balances import apply_fill
from actors.state.store import open_store
from tests.helpers import db_rows, eventually

REPO = Path(__file__).resolve().parents[2]
PAIRS = "BTC/USDT,ETH/USDT,SOL/USDT"
FUNDING = {"USDT": 10_000.0}


def trade(state_db: str, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """The CLI trading three pairs that enter and exit every few ticks, at full speed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # tests.helpers:Flip, by dotted path
    return subprocess.Popen(
        [sys.executable, "-m", "supervision.main", "--pairs", PAIRS, "--speed", "max",
         "--strategy", "tests.helpers:Flip", "--strategy-param", "period=3",
         "--seed", "3", "--state-db", state_db,
         "--log-dir", str(tmp_path / "logs"), "--status-interval", "60", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def fill_count(state_db: str) -> int:
    try:
        return int(db_rows(state_db, "SELECT COUNT(*) FROM fills")[0][0])
    except Exception:  # the first run has not created the tables yet
        return 0


def assert_consistent(state_db: str) -> int:
    """Every stored fill once, with its order; the balances are the funding moved by exactly
    the stored fills (a half-written batch would break this). Returns the fill count."""
    with open_store(state_db) as store:
        fills = store.fills()
        balances = store.balances()
        ledger = store.load()
    expected = dict(FUNDING)
    for fill in sorted(fills, key=lambda f: f.ts_ms):
        apply_fill(expected, fill)
    ids = [f.fill_id for f in fills]

    assert len(ids) == len(set(ids))
    assert db_rows(state_db, "SELECT COUNT(*) FROM fills WHERE order_id NOT IN"
                             " (SELECT order_id FROM orders)") == [(0,)]
    assert set(balances) <= set(expected)
    for asset, amount in expected.items():
        assert balances.get(asset, 0.0) == pytest.approx(amount, abs=1e-6), asset
    for pair, position in ledger.positions.items():
        assert balances[pair.split("/")[0]] >= position.amount - 1e-9
    return len(ids)


def test_a_kill_9_mid_run_leaves_whole_batches_and_the_next_run_continues(
        state_db: str, tmp_path: Path) -> None:
    first = trade(state_db, tmp_path)
    try:
        eventually(lambda: fill_count(state_db) >= 60, timeout=60,
                   message="the first run to store fills")
    finally:
        first.kill()  # SIGKILL: no stop, no last commit
        first.wait(30)
        assert first.stderr is not None
        first.stderr.close()

    assert first.returncode == -9
    killed_at = assert_consistent(state_db)
    second = trade(state_db, tmp_path, "--duration", "3")
    _, err = second.communicate(timeout=60)

    assert second.returncode == 0, err.decode()
    assert assert_consistent(state_db) > killed_at
