"""The command line: bad input is one line and exit 2; real runs print tables, stop on signals.

Bad input is checked in-process with ``supervision.app.cli.run`` (fast, nothing may start); real
runs go through ``python -m supervision.main`` in a subprocess, which owns its signals.
"""

from __future__ import annotations

import json
import math
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.messages import StrategySpec
from strategies.isolated import isolated
from supervision.app.cli import config_from_args, parser, run

TABLE_HEADER = re.compile(r"^pair\s+state\s+price\s+position", re.MULTILINE)
TRADES_CSV = """timestamp_ms,price,amount,side
1700000000000,60000.0,0.01,buy
1700000001000,60010.5,0.02,sell
1700000002000,60020.0,0.01,buy
1700000003000,60005.0,0.03,sell
1700000004000,60030.0,0.01,buy
"""
CANDLES_CSV = """timestamp_ms,open,high,low,close,volume
1700000000000,60000,60100,59900,60050,10
1700000060000,60050,60200,60000,60150,12
1700000120000,60150,60160,59950,60000,8
"""
SUBPROCESS_TIMEOUT = 30.0


# -- helpers -------------------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str, timeout: float = SUBPROCESS_TIMEOUT
        ) -> subprocess.CompletedProcess[str]:
    """Run ``python -m supervision.main`` in ``tmp_path`` (the project is installed)."""
    return subprocess.run([sys.executable, "-m", "supervision.main", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout, check=False)


def strategy_rows(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT pair, spec FROM strategies").fetchall()
    return {pair: json.loads(spec)["path"] for pair, spec in rows}


class LineReader:
    """Reads a pipe on a thread so the test can wait for lines with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> str:
        """The first line matching ``pattern`` within ``timeout`` seconds, or fail."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
                if line is None:
                    pytest.fail(f"output ended before {pattern.pattern!r}:\n{''.join(self.seen)}")
                self.seen.append(line)
                if pattern.search(line):
                    return line
        except queue.Empty:
            pytest.fail(f"no {pattern.pattern!r} within {timeout} s:\n{''.join(self.seen)}")

    def rest(self, timeout: float) -> str:
        """Everything printed, once the pipe has closed."""
        self._thread.join(timeout)
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], LineReader, Path]]:
    """A CLI run with no end of its own, tables every 0.5 s; killed if a test leaves it."""
    db = tmp_path / "sub" / "state.sqlite"
    with open(tmp_path / "stderr.log", "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervision.main", "--pairs", "BTC/USDT,ETH/USDT",
             "--speed", "20", "--status-interval", "0.5", "--state-db", str(db),
             "--summary-json", str(tmp_path / "s.json")],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        yield proc, LineReader(proc.stdout), db
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(SUBPROCESS_TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def assert_refused(code: int, out: str, err: str, db: Path, *fragments: str) -> None:
    """Exit 2, one error line naming every fragment, no traceback, nothing created."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trade-conductor: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in err
    assert out == ""
    assert not db.exists()
    assert not db.parent.exists()


# -- bad input, in-process ----------------------------------------------------------------------


@pytest.fixture
def never_started(monkeypatch):
    """In-process runs must stop at validation: building a system fails the test at once
    (a real run here would also take over this process's signal handlers and logging)."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        pytest.fail("the CLI started a system on bad input")

    monkeypatch.setattr("supervision.app.cli.TradingSystem", refuse)

BAD_FLAGS = [
    pytest.param(["--pairs", "BTCUSDT"], ["'BTCUSDT'", "BASE/QUOTE", "e.g. BTC/USDT"],
                 id="pair-without-slash"),
    pytest.param(["--pairs", "BTC//USDT"], ["'BTC//USDT'", "BASE/QUOTE"],
                 id="pair-with-double-slash"),
    pytest.param(["--pairs", ""], ["invalid pair list ''", "BTC/USDT,ETH/USDT"],
                 id="empty-pair-list"),
    pytest.param([], ["pairs: none given", "--pairs BTC/USDT,ETH/USDT"], id="no-pairs"),
    pytest.param(["--pairs", "BTC/USDT,ETH/BTC"], ["one quote currency", "BTC, USDT"],
                 id="two-quote-currencies"),
    pytest.param(["--strategy", "nope"],
                 ["'nope'", "ema_cross", "rsi_reversion", "donchian_breakout",
                  "'package.module:ClassName'"], id="unknown-strategy"),
    pytest.param(["--strategy", ""], ["unknown strategy ''", "ema_cross"], id="empty-strategy"),
    pytest.param(["--strategy", "strategies.x:"], ["'strategies.x:'", "package.module:ClassName"],
                 id="malformed-strategy-path"),
    pytest.param(["--strategy", "no_such.mod:X"], ["'no_such.mod'", "ModuleNotFoundError"],
                 id="unimportable-strategy-module"),
    pytest.param(["--strategy", "strategies.ema_cross:Nope"],
                 ["'Nope'", "strategy classes there: EmaCross"], id="missing-strategy-class"),
    pytest.param(["--strategy-param", "fats=5"],
                 ["'fats'", "valid parameters: fast, slow, timeframe_s"],
                 id="unknown-strategy-param"),
    pytest.param(["--strategy-param", "fast=quick"], ["fast='quick'", "not a valid int"],
                 id="param-of-the-wrong-type"),
    pytest.param(["--strategy-param", "fast"], ["'fast'", "key=value"],
                 id="param-without-a-value"),
    pytest.param(["--strategy-param", "fast=50", "--strategy-param", "slow=10"],
                 ["fast=50", "slow=10"], id="params-that-contradict"),
    pytest.param(["--exchange", "notanexchange"],
                 ["'notanexchange'", "'sim'", "ccxt exchange id", "binance"],
                 id="unknown-exchange"),
    pytest.param(["--exchange", "binanse"], ["'binanse'", "similar: binance"],
                 id="misspelt-exchange"),
    pytest.param(["--exchange", "sim", "--live"], ["exchange.live: true needs a real exchange"],
                 id="live-on-the-simulator"),
    pytest.param(["--live"], ["exchange.live: true needs a real exchange"],
                 id="live-without-an-exchange"),
    pytest.param(["--exchange", "binance", "--feed", "fix"],
                 ["--feed: invalid choice: 'fix'", "'ws', 'rest'"], id="unknown-feed"),
    pytest.param(["--exchange", "binance", "--speed", "10"],
                 ["speed: 10.0 paces the simulator", "real time"], id="speed-on-live-data"),
    pytest.param(["--duration", "-1"], ["duration: -1.0", "positive number of seconds"],
                 id="negative-duration"),
    pytest.param(["--duration", "0"], ["duration: 0.0", "positive number of seconds"],
                 id="zero-duration"),
    pytest.param(["--duration", "long"], ["--duration", "'long' is not a number"],
                 id="duration-not-a-number"),
    pytest.param(["--speed", "0"], ["speed: '0'", "'max'"], id="zero-speed"),
    pytest.param(["--speed", "fast"], ["speed: 'fast'", "'max'"], id="speed-not-a-number"),
    pytest.param(["--seed", "x"], ["--seed", "invalid int value: 'x'"],
                 id="seed-not-an-integer"),
    pytest.param(["--log-level", "loud"], ["'LOUD'", "DEBUG, INFO"], id="unknown-log-level"),
    pytest.param(["--status-interval", "0"], ["status_interval: 0"], id="zero-status-interval"),
    pytest.param(["--colour", "red"], ["unrecognized arguments: --colour red", "--help"],
                 id="unknown-flag"),
    pytest.param(["--pairs", "BTC/USDT", "--replay", "ETH/USDT={trades}"],
                 ["one file per pair", "pairs BTC/USDT", "files for ETH/USDT"],
                 id="replay-for-a-pair-not-traded"),
    pytest.param(["--replay", "BTC/USDT"], ["'BTC/USDT' is not PAIR=FILE.csv"],
                 id="replay-without-a-file"),
    pytest.param(["--replay", "BTC/USDT=missing.csv"], ["'missing.csv'", "does not exist"],
                 id="missing-replay-file"),
    pytest.param(["--replay", "BTC/USDT={bad_csv}"],
                 ["'time,price'", "timestamp_ms,price,amount,side",
                  "timestamp_ms,open,high,low,close,volume"], id="replay-file-with-a-bad-header"),
    pytest.param(["--config", "missing.toml"], ["config file 'missing.toml' does not exist"],
                 id="missing-config-file"),
]


@pytest.mark.parametrize(("flags", "fragments"), BAD_FLAGS)
def test_bad_flags_give_one_error_line_exit_2_and_start_nothing(
        tmp_path, monkeypatch, capsys, never_started, flags, fragments):
    """Each bad flag is named with the valid choices; no actor, no file, no database."""
    monkeypatch.chdir(tmp_path)
    files = {"trades": write(tmp_path, "trades.csv", TRADES_CSV),
             "bad_csv": write(tmp_path, "bad.csv", "time,price\n1,2\n")}
    before = set(tmp_path.iterdir())
    db = tmp_path / "sub" / "state.sqlite"
    if flags and "--pairs" not in flags and "--replay" not in flags:
        flags = ["--pairs", "BTC/USDT", *flags]
    argv = [flag.format(**files) for flag in flags] + ["--state-db", str(db)]

    code = run(argv)

    out, err = capsys.readouterr()
    assert_refused(code, out, err, db, *fragments)
    assert set(tmp_path.iterdir()) == before
    assert pykka.ActorRegistry.get_all() == []


BAD_CONFIGS = [
    pytest.param("pairs = [\n", ["config.toml' is not valid TOML"], id="unparsable"),
    pytest.param("[risk]\nstake_fraction = 5\n",
                 ["risk.stake_fraction = 5 is invalid", "fraction in (0, 1]"],
                 id="stake-fraction-out-of-range"),
    pytest.param('[risk]\nstake_fraction = "high"\n', ["risk.stake_fraction = 'high'"],
                 id="stake-fraction-of-the-wrong-type"),
    pytest.param("[risk]\nstake = 0.1\n", ["[risk] unknown key 'stake'", "stake_fraction"],
                 id="unknown-risk-key"),
    pytest.param("colour = 'red'\n", ["unknown config key 'colour'", "valid keys: pairs"],
                 id="unknown-top-level-key"),
    pytest.param("seed = 1.5\n", ["seed: 1.5 is not an integer"], id="seed-of-the-wrong-type"),
    pytest.param("[restart]\nmax_restarts = \"x\"\n",
                 ["restart.max_restarts = 'x'", "integer >= 0"], id="restart-of-the-wrong-type"),
    pytest.param("[exits]\nentry_order_type = \"stop\"\n",
                 ["entry_order_type: 'stop'", "market, limit"], id="unknown-order-type"),
    pytest.param("[paper]\ntaker_fee = 0.5\n", ["paper.taker_fee = 0.5", "[0.0, 0.05]"],
                 id="fee-out-of-range"),
    pytest.param("[exchange]\nid = \"nope\"\n", ["'nope'", "ccxt exchange id"],
                 id="unknown-exchange-id"),
    pytest.param("[exchange]\nid = \"binance\"\n[exchange.ccxt]\napiKey = \"k\"\n",
                 ["exchange.ccxt.apiKey", "environment", "secrets_file"], id="key-in-ccxt-table"),
    pytest.param("[exchange]\nid = \"binance\"\nstale_after_s = -1\n",
                 ["exchange.stale_after_s: -1", "positive"], id="negative-stale-after"),
    pytest.param("[strategy]\nparams = {fast = 5}\n", ['needs name = "ema_cross"'],
                 id="strategy-without-name"),
    pytest.param("[strategy]\nname = \"aggregate\"\n", ["an aggregate needs members"],
                 id="aggregate-without-members"),
    pytest.param("pairs = 5\n", ["pairs: 5 is not a list"], id="pairs-of-the-wrong-type"),
]


@pytest.mark.parametrize(("toml", "fragments"), BAD_CONFIGS)
def test_a_bad_config_file_gives_one_error_line_exit_2_and_starts_nothing(
        tmp_path, monkeypatch, capsys, never_started, toml, fragments):
    """Unparsable TOML, unknown keys, wrong types and out-of-range values are named."""
    monkeypatch.chdir(tmp_path)
    config = write(tmp_path, "config.toml", toml)
    db = tmp_path / "sub" / "state.sqlite"
    pairs = [] if toml.startswith("pairs") else ["--pairs", "BTC/USDT"]

    code = run([*pairs, "--config", config, "--state-db", str(db)])

    out, err = capsys.readouterr()
    assert_refused(code, out, err, db, *fragments)
    assert pykka.ActorRegistry.get_all() == []


def test_a_config_file_that_is_a_directory_is_refused(tmp_path, capsys, never_started):
    """``--config`` naming a directory says it cannot be read, exit 2."""
    db = tmp_path / "sub" / "state.sqlite"

    code = run(["--pairs", "BTC/USDT", "--config", str(tmp_path), "--state-db", str(db)])

    out, err = capsys.readouterr()
    assert_refused(code, out, err, db, "cannot be read")


def test_help_lists_every_flag_and_exits_0(capsys, never_started):
    """``--help`` returns 0 and documents each flag of the issue."""
    code = run(["--help"])

    out = capsys.readouterr().out
    assert code == 0
    for flag in ("--pairs", "--exchange", "--strategy", "--strategy-param", "--config",
                 "--state-db", "--duration", "--seed", "--speed", "--log-level",
                 "--summary-json", "--replay", "--status-interval", "--live", "--feed"):
        assert flag in out


# -- good flags become a config, in-process ------------------------------------------------------


def config_of(*argv: str):
    return config_from_args(parser().parse_args(list(argv)))


def test_every_flag_reaches_the_config(tmp_path):
    """Each flag lands in its SystemConfig field, repeatable flags included (the exchange
    flags, which do not go with ``--speed``, have a test of their own)."""
    config = config_of(
        "--pairs", "BTC/USDT,ETH/USDT", "--exchange", "sim", "--strategy", "rsi_reversion",
        "--strategy-param", "period=10", "--strategy-param", "oversold=25",
        "--state-db", str(tmp_path / "s.sqlite"), "--duration", "3.5", "--seed", "7",
        "--speed", "max", "--log-level", "debug", "--summary-json", "out.json",
        "--status-interval", "0.5")

    assert config.pairs == ("BTC/USDT", "ETH/USDT")
    assert config.exchange == "sim"
    assert config.strategy == StrategySpec.of("rsi_reversion", period="10", oversold="25")
    assert config.state_db == str(tmp_path / "s.sqlite")
    assert (config.duration, config.seed, config.speed) == (3.5, 7, math.inf)
    assert (config.log_level, config.summary_json, config.status_interval) == (
        "DEBUG", "out.json", 0.5)


def test_the_exchange_flags_reach_the_config():
    """``--exchange``, ``--live`` and ``--feed`` set the id and the exchange settings."""
    paper = config_of("--pairs", "BTC/USDT,ETH/USDT", "--exchange", "binance")
    live = config_of("--pairs", "BTC/USDT", "--exchange", "binance", "--live", "--feed", "rest")

    assert (paper.exchange, paper.exchange_settings.live, paper.exchange_settings.feed) == (
        "binance", False, "ws")
    assert (live.exchange, live.exchange_settings.live, live.exchange_settings.feed) == (
        "binance", True, "rest")


def test_a_strategy_can_be_any_importable_class():
    """``package.module:ClassName`` with params is accepted like a built-in."""
    config = config_of("--pairs", "BTC/USDT", "--strategy",
                       "strategies.donchian_breakout:DonchianBreakout",
                       "--strategy-param", "entry_period=30")

    assert config.strategy == StrategySpec.of("strategies.donchian_breakout:DonchianBreakout",
                                              entry_period="30")


def test_replay_flags_give_the_pairs_and_a_numeric_speed(tmp_path):
    """``--replay`` alone names the pairs; ``--speed 10`` is a factor of ten."""
    trades = write(tmp_path, "trades.csv", TRADES_CSV)
    candles = write(tmp_path, "candles.csv", CANDLES_CSV)

    config = config_of("--replay", f"BTC/USDT={trades}", "--replay", f"ETH/USDT={candles}",
                       "--speed", "10")

    assert config.pairs == ("BTC/USDT", "ETH/USDT")
    assert config.replay == (("BTC/USDT", trades), ("ETH/USDT", candles))
    assert config.speed == 10.0


def test_flags_override_the_config_file(tmp_path):
    """The file sets everything; each flag given wins, the rest stays as the file says."""
    config_file = write(tmp_path, "c.toml", """
pairs = ["SOL/USDT"]
seed = 7
speed = 2
[exchange]
id = "kraken"
[risk]
stake_fraction = 0.2
""")

    config = config_of("--config", config_file, "--pairs", "BTC/USDT", "--seed", "9",
                       "--exchange", "sim")

    assert (config.pairs, config.seed, config.speed) == (("BTC/USDT",), 9, 2.0)
    assert config.exchange == "sim"
    assert config.risk.stake_fraction == 0.2


def test_strategy_params_from_flags_merge_into_the_file_strategy(tmp_path):
    """``--strategy-param`` alone tweaks the file's strategy; the flag's value wins."""
    config_file = write(tmp_path, "c.toml", """
pairs = ["BTC/USDT"]
[strategy]
name = "ema_cross"
params = { fast = 12, slow = 26 }
""")

    config = config_of("--config", config_file, "--strategy-param", "fast=5")

    assert config.strategy == StrategySpec.of("ema_cross", fast="5", slow=26)


def test_a_strategy_flag_replaces_the_file_strategy(tmp_path):
    """``--strategy`` is a new strategy: the file's params for another one are not kept."""
    config_file = write(tmp_path, "c.toml", """
pairs = ["BTC/USDT"]
[strategy]
name = "ema_cross"
params = { fast = 12, slow = 26 }
""")

    config = config_of("--config", config_file, "--strategy", "donchian_breakout")

    assert config.strategy == StrategySpec.of("donchian_breakout")


ISOLATED_FILE = """
pairs = ["BTC/USDT"]
[strategy]
name = "ema_cross"
params = { fast = 12, slow = 26 }
isolation = "process"
isolation_timeout_s = 2.0
"""


def test_strategy_params_from_flags_reach_an_isolated_file_strategy(tmp_path):
    """The file isolates its strategy: ``--strategy-param`` changes the isolated strategy's
    params, and the isolation (with its own settings) stays."""
    config = config_of("--config", write(tmp_path, "c.toml", ISOLATED_FILE),
                       "--strategy-param", "fast=5")

    assert config.strategy == isolated(StrategySpec.of("ema_cross", fast="5", slow=26),
                                       timeout_s=2.0)


def test_a_strategy_flag_runs_isolated_where_the_file_isolates(tmp_path):
    """``--strategy`` replaces what the file's isolated process runs, not the isolation."""
    config = config_of("--config", write(tmp_path, "c.toml", ISOLATED_FILE),
                       "--strategy", "donchian_breakout")

    assert config.strategy == isolated(StrategySpec.of("donchian_breakout"), timeout_s=2.0)


# -- real runs in a subprocess ------------------------------------------------------------------


def test_a_malformed_pair_is_refused_by_the_real_program(tmp_path):
    """``python -m supervision.main --pairs BTC//USDT`` exits 2 with one line, no database."""
    db = tmp_path / "sub" / "state.sqlite"

    result = cli(tmp_path, "--pairs", "BTC//USDT", "--state-db", str(db))

    assert_refused(result.returncode, result.stdout, result.stderr, db, "'BTC//USDT'",
                   "BASE/QUOTE")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_out_of_range_config_value_is_refused_by_the_real_program(tmp_path):
    """``[risk] stake_fraction = 5`` exits 2 naming the key and the valid range."""
    config = write(tmp_path, "c.toml", "pairs = ['BTC/USDT']\n[risk]\nstake_fraction = 5\n")
    db = tmp_path / "sub" / "state.sqlite"

    result = cli(tmp_path, "--config", config, "--state-db", str(db))

    assert_refused(result.returncode, result.stdout, result.stderr, db,
                   "risk.stake_fraction = 5", "(0, 1]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_a_timed_run_prints_tables_and_a_summary_and_persists_both_pairs(tmp_path):
    """Four seconds at 20x: tables, "final status", a JSON summary and the strategies table."""
    result = cli(tmp_path, "--pairs", "BTC/USDT,ETH/USDT", "--duration", "4", "--speed", "20",
                 "--status-interval", "1", "--state-db", "tmp/state.sqlite",
                 "--summary-json", "tmp/s.json")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    before_final = out.split("final status")[0]
    assert len(TABLE_HEADER.findall(before_final)) >= 2
    assert "final status: stopped" in out
    assert re.search(r"round trips \d+, realized PnL", out)
    summary = json.loads((tmp_path / "tmp" / "s.json").read_text())
    assert summary["state"] == "stopped"
    pairs = {p["pair"]: p for p in summary["pairs"]}
    assert set(pairs) == {"BTC/USDT", "ETH/USDT"}
    assert all(p["ticks"] > 0 and p["state"] == "stopped" for p in pairs.values())
    assert strategy_rows(tmp_path / "tmp" / "state.sqlite") == {
        "BTC/USDT": "ema_cross", "ETH/USDT": "ema_cross"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_gracefully_with_exit_0(running, tmp_path, signum):
    """After the first table, SIGINT or SIGTERM ends the run: summary printed, state flushed."""
    proc, reader, db = running
    reader.wait_for(TABLE_HEADER, timeout=20)
    reader.wait_for(re.compile(r"^equity "), timeout=5)

    proc.send_signal(signum)

    assert proc.wait(timeout=20) == 0
    out = reader.rest(timeout=5)
    assert "final status: stopped" in out
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["state"] == "stopped"
    assert {p["pair"] for p in summary["pairs"]} == {"BTC/USDT", "ETH/USDT"}
    assert strategy_rows(db) == {"BTC/USDT": "ema_cross", "ETH/USDT": "ema_cross"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == summary["fills"]


@pytest.mark.parametrize(("name", "text", "ticks"), [
    pytest.param("trades.csv", TRADES_CSV, 5, id="trades"),
    pytest.param("candles.csv", CANDLES_CSV, 3 * 4, id="candles"),
])
def test_a_replay_runs_to_the_end_of_its_file_by_itself(tmp_path, name, text, ticks):
    """``--replay BTC/USDT=FILE --speed max`` ends on its own: every row traded, "finished"."""
    write(tmp_path, name, text)

    result = cli(tmp_path, "--replay", f"BTC/USDT={name}", "--speed", "max",
                 "--state-db", "s.sqlite", "--summary-json", "s.json")

    assert result.returncode == 0, result.stderr
    assert "final status: finished" in result.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["state"] == "finished"
    [pair] = summary["pairs"]
    assert (pair["pair"], pair["ticks"]) == ("BTC/USDT", ticks)


def test_a_second_run_on_the_same_database_continues(tmp_path):
    """Run 2 keeps the strategies run 1 recorded (even if told another) and its history."""
    args = ["--pairs", "BTC/USDT,ETH/USDT", "--duration", "1", "--speed", "50",
            "--state-db", "var/state.sqlite", "--summary-json", "s.json"]
    first = cli(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    fills_before = json.loads((tmp_path / "s.json").read_text())["fills"]

    second = cli(tmp_path, *args, "--strategy", "rsi_reversion")

    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert "keeping the strategy the database records" in second.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["fills"] >= fills_before
    assert all(p["strategy"].startswith("ema_cross") for p in summary["pairs"])
    assert strategy_rows(tmp_path / "var" / "state.sqlite") == {
        "BTC/USDT": "ema_cross", "ETH/USDT": "ema_cross"}


def test_abbreviated_flags_are_refused_not_guessed(capsys, tmp_path):
    """--pair is not --pairs: an abbreviation is an unknown flag, exit 2."""
    code = run(["--pair", "BTC/USDT", "--state-db", str(tmp_path / "s.sqlite")])

    assert code == 2
    assert "--pair" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()


def test_the_run_keeps_what_the_start_built_out_of_full_collections(tmp_path, monkeypatch):
    """While the CLI trades, the objects the start made are frozen (a full collection at
    1,000 pairs walked them for about 50 ms); when it returns they are the collector's
    again, so a program that runs the CLI in-process loses nothing to the freeze."""
    import gc

    import supervision.app.cli as cli_module

    seen: list[int] = []
    watch = cli_module._watch

    def watching(system: Any, *args: Any) -> None:
        seen.append(gc.get_freeze_count())
        assert system.status().pairs, "the pairs are started before the freeze"
        watch(system, *args)

    monkeypatch.setattr(cli_module, "_watch", watching)
    code = run(["--pairs", "BTC/USDT", "--duration", "0.5", "--speed", "20",
                "--state-db", str(tmp_path / "s.sqlite")])
    assert code == 0
    assert seen and seen[0] > 1000
    assert gc.get_freeze_count() == 0
