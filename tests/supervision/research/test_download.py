"""``download`` against the loopback fake Binance: the real ccxt client pages through seeded
history (klines and aggTrades), and the files it writes replay through the cores."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.market import open_feeds
from supervision.main import main
from supervision.research import Downloader, DownloadError
from supervision.research.datafiles import Gap, data_path, last_ts
from tests.fake_exchange import FakeBinance
from tests.supervision.research.data import START_MS, candle_rows

MINUTE = 60_000


@pytest.fixture
def fake():
    with FakeBinance() as exchange:
        yield exchange


def client(fake: FakeBinance) -> Any:
    return ccxt.binance(fake.ccxt_config(timeout=3000))


def rows_of(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    assert lines[0] in ("timestamp_ms,open,high,low,close,volume",
                        "timestamp_ms,price,amount,side")
    return [line.split(",") for line in lines[1:]]


def test_candles_are_paged_into_one_file_with_the_gap_reported(fake, tmp_path):
    """2,500 minutes with 7 missing: three pages of 1,000, every row once, the gap named."""
    rows = candle_rows(2500)
    kept = rows[:1000] + rows[1007:]
    fake.seed_klines("BTC/USDT", "1m", kept)
    result = Downloader(client(fake)).candles(tmp_path, "BTC/USDT", "1m", START_MS,
                                              START_MS + 2500 * MINUTE)
    path = data_path(tmp_path, "BTC/USDT", "1m")
    written = rows_of(path)
    assert result.added == len(written) == 2493
    assert [int(r[0]) for r in written] == [r[0] for r in kept]
    assert written[0][1:5] == [str(v).rstrip("0").rstrip(".") for v in kept[0][1:5]]
    assert result.gaps == (Gap(START_MS + 999 * MINUTE, START_MS + 1007 * MINUTE, 7),)
    assert result.requests >= 3
    ticks = list(open_feeds({"BTC/USDT": str(path)}))  # the schema --replay reads
    assert len(ticks) == 4 * 2493


def test_a_second_run_appends_only_what_is_missing(fake, tmp_path):
    """The first run stops at 1,200 bars; the second asks from the file's last row on."""
    rows = candle_rows(1500)
    fake.seed_klines("BTC/USDT", "1m", rows)
    downloader = Downloader(client(fake))
    downloader.candles(tmp_path, "BTC/USDT", "1m", START_MS, START_MS + 1200 * MINUTE)
    fake.clear_requests()
    again = downloader.candles(tmp_path, "BTC/USDT", "1m", START_MS, START_MS + 1500 * MINUTE)
    path = data_path(tmp_path, "BTC/USDT", "1m")
    assert again.added == 300
    assert [int(r[0]) for r in rows_of(path)] == [r[0] for r in rows]
    klines = [r for r in fake.requests if r.path.endswith("/klines")]
    assert len(klines) == 1
    assert int(klines[0].params["startTime"]) == START_MS + 1200 * MINUTE


def test_a_run_killed_mid_row_is_resumed_from_its_last_whole_row(fake, tmp_path):
    """A half-written last line is cut, then fetched again whole."""
    rows = candle_rows(50)
    fake.seed_klines("BTC/USDT", "1m", rows)
    downloader = Downloader(client(fake))
    downloader.candles(tmp_path, "BTC/USDT", "1m", START_MS, START_MS + 40 * MINUTE)
    path = data_path(tmp_path, "BTC/USDT", "1m")
    with path.open("a") as f:
        f.write(f"{START_MS + 40 * MINUTE},100.1")  # the run died here
    downloader.candles(tmp_path, "BTC/USDT", "1m", START_MS, START_MS + 50 * MINUTE)
    assert [int(r[0]) for r in rows_of(path)] == [r[0] for r in rows]


def test_rate_limit_answers_are_waited_out_and_retried(fake, tmp_path):
    """Two HTTP 429s: the downloader backs off twice (1 s, then 2 s) and finishes; every
    request keeps the exchange's pace."""
    fake.seed_klines("BTC/USDT", "1m", candle_rows(30))
    fake.inject("http_429", path="/api/v3/klines", times=2)
    waits: list[float] = []
    result = Downloader(client(fake), sleep=waits.append).candles(
        tmp_path, "BTC/USDT", "1m", START_MS, START_MS + 30 * MINUTE)
    assert result.added == 30
    assert result.retries == 2
    assert [w for w in waits if w >= 1] == [1.0, 2.0]
    # Between requests it keeps the client's rateLimit (ccxt's own limiter is off here).
    paced = [w for w in waits if w < 1]
    assert paced
    assert all(0 < w <= client(fake).rateLimit / 1000 for w in paced)


def test_an_exchange_that_keeps_refusing_ends_in_one_clear_error(fake, tmp_path):
    """Past ``retries`` the download stops with a DownloadError naming the call."""
    fake.inject("http_429", path="/api/v3/klines", times=None)
    downloader = Downloader(client(fake), retries=2, sleep=lambda _s: None)
    with pytest.raises(DownloadError, match="fetch_ohlcv BTC/USDT: still failing after 2"):
        downloader.candles(tmp_path, "BTC/USDT", "1m", START_MS, START_MS + 30 * MINUTE)


def trade_rows(count: int, start_ms: int = START_MS) -> list[list[Any]]:
    """Trades three to a millisecond, 9 s apart, alternating sides."""
    return [[start_ms + (i // 3) * 9_000, 100 + (i % 17) / 10, 0.01 * (1 + i % 5),
             "buy" if i % 2 else "sell"] for i in range(count)]


def test_trades_are_paged_by_time_without_losing_or_repeating_a_millisecond(fake, tmp_path):
    """2,500 trades over about two hours, three sharing each millisecond (also across
    page ends): all written once, in order; a second run adds only the new ones."""
    first = trade_rows(2500)
    fake.seed_trades("BTC/USDT", first)
    downloader = Downloader(client(fake))
    result = downloader.trades(tmp_path, "BTC/USDT", START_MS, START_MS + 4 * 3_600_000)
    path = data_path(tmp_path, "BTC/USDT", "trades")
    written = rows_of(path)
    assert result.added == 2500
    assert [(int(r[0]), float(r[1]), float(r[2]), r[3]) for r in written] == \
        [(t[0], pytest.approx(t[1]), pytest.approx(t[2]), t[3]) for t in first]
    later = trade_rows(30, start_ms=first[-1][0])
    fake.seed_trades("BTC/USDT", later)
    again = downloader.trades(tmp_path, "BTC/USDT", START_MS, START_MS + 5 * 3_600_000)
    assert len(rows_of(path)) == 2530
    # The file's last millisecond held one trade (the 2,500th): cut, fetched again with the
    # 30 new ones (the first three of which share it).
    assert again.added == 31
    assert last_ts(path) == later[-1][0]


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def fake_config(fake: FakeBinance, path: Path) -> Path:
    """A trading config whose [exchange] points ccxt at the fake (no keys: none needed)."""
    settings = {k: v for k, v in fake.ccxt_config(timeout=3000).items()
                if k not in ("apiKey", "secret")}
    lines = ['[exchange]', 'id = "binance"', "", "[exchange.ccxt]"]
    lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_download_then_backtest_from_the_command_line(fake, tmp_path, capsys):
    """The commands a user types: download (gap printed), then a backtest of the file."""
    rows = candle_rows(600)
    fake.seed_klines("BTC/USDT", "1m", rows[:300] + rows[305:])
    config = fake_config(fake, tmp_path / "fake.toml")
    data = tmp_path / "data"
    out = io.StringIO()
    code = main(["download", "--config", str(config), "--pairs", "BTC/USDT",
                 "--timeframe", "1m", "--since", "2024-01-01", "--until", "2024-01-01T10:00",
                 "--data-dir", str(data)])
    out.write(capsys.readouterr().out)
    assert code == 0, out.getvalue()
    assert "595 rows added" in out.getvalue()
    assert "gap: 5 candles missing between 2024-01-01 04:59 and 2024-01-01 05:05" \
        in out.getvalue()
    report = tmp_path / "report"
    code = main(["backtest", "--data-dir", str(data), "--pairs", "BTC/USDT",
                 "--timeframe", "1m", "--no-charts", "--no-progress",
                 "--report-dir", str(report)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((report / "report.json").read_text())["run"]["ticks"] == 4 * 595


def test_download_refuses_the_simulator_and_a_bad_timeframe(tmp_path, capsys):
    """Bad input: one line, exit 2, no file."""
    assert main(["download", "--exchange", "sim", "--pairs", "BTC/USDT", "--since",
                 "2024-01-01", "--data-dir", str(tmp_path)]) == 2
    assert "download needs a ccxt exchange id" in capsys.readouterr().err
    assert main(["download", "--exchange", "binance", "--pairs", "BTC/USDT",
                 "--timeframe", "7m", "--since", "2024-01-01", "--data-dir",
                 str(tmp_path)]) == 2
    assert "timeframe: '7m' is not one of 1m, 3m" in capsys.readouterr().err
    assert main(["download", "--exchange", "binance", "--pairs", "BTC/USDT", "--since",
                 "yesterday", "--data-dir", str(tmp_path)]) == 2
    assert "since: 'yesterday' is not a date" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
