"""The runnable examples, run as another user would run them: subprocesses from the repo root."""

from __future__ import annotations

import csv
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from actors.market.scenarios import scenario_ticks

REPO = Path(__file__).resolve().parents[1]
START_MS = 1_700_000_000_000


def run_example(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def figure(out: str, name: str) -> str:
    """The value of a ``name  value`` line of the backtest's summary."""
    match = re.search(rf"^{name}\s+(\S+)", out, re.MULTILINE)
    assert match, f"no {name!r} line in:\n{out}"
    return match.group(1)


def test_embed_example_trades_swaps_a_strategy_and_stops_cleanly(tmp_path):
    """Four seconds at speed 200: fills, a table while running, ETH swapped, a clean stop."""
    db = tmp_path / "state.sqlite"

    done = run_example("examples/embed.py", "--speed", "200", "--seconds", "4",
                       "--state-db", str(db))

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^fill +(BTC|ETH)/USDT (BUY|SELL) ", out, re.MULTILINE)
    assert re.search(r"^swapped +ETH/USDT -> rsi_reversion\(", out, re.MULTILINE)
    assert out.count("pair      state") >= 2, "a table while running and a final one"
    assert "final status: stopped" in out
    fills = int(re.findall(r"fills (\d+)  ticks", out)[-1])
    assert fills > 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == fills


def test_backtest_example_on_the_simulator_is_deterministic():
    """Two seeded simulator runs of 20,000 ticks trade, and give the same fills digest."""
    args = ("examples/backtest.py", "--ticks", "20000", "--seed", "7")

    first, second = run_example(*args), run_example(*args)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert figure(first.stdout, "ticks") == "20000"
    assert int(figure(first.stdout, "fills")) > 0
    assert figure(first.stdout, "fills digest") == figure(second.stdout, "fills digest")


def test_backtest_example_replays_a_csv_file_with_a_chosen_strategy(tmp_path):
    """A scripted uptrend written as a trades CSV: every row is a tick and the breakout trades."""
    ticks = scenario_ticks("uptrend", "BTC/USDT", seed=2, n=2000, start_ms=START_MS)
    path = tmp_path / "uptrend.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp_ms", "price", "amount", "side"])
        writer.writerows([t.ts_ms, t.price, t.amount, t.side.value] for t in ticks)

    done = run_example("examples/backtest.py", "--replay", f"BTC/USDT={path}",
                       "--strategy", "donchian_breakout", "--param", "entry_period=30")

    assert done.returncode == 0, done.stderr
    assert figure(done.stdout, "strategy").startswith("donchian_breakout(entry_period=30,")
    assert figure(done.stdout, "ticks") == str(len(ticks))
    assert int(figure(done.stdout, "round trips")) >= 1
    assert figure(done.stdout, "dropped") == "0"


def test_backtest_example_refuses_a_malformed_param_with_exit_code_2():
    """A parameter without '=' is bad input: exit 2 and a message naming it, nothing run."""
    done = run_example("examples/backtest.py", "--param", "entry_period")

    assert done.returncode == 2
    assert "entry_period" in done.stderr
    assert done.stdout == ""
