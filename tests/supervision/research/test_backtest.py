"""``backtest``: the threadless cores over recorded files, and the report's figures.

Figures are checked three ways: against each other (equity = starting equity + every
trade's PnL, fees = the trades' fees), against an independent computation with
empyrical-reloaded and pandas on a recorded file, and (``test_metrics``) against values
worked out by hand.
"""

from __future__ import annotations

import json
import re

import pytest

from actors.messages import StrategySpec
from supervision.config import build_config
from supervision.main import main
from supervision.research import build_report, from_files, run_backtest
from supervision.research.outputs import write_report
from supervision.research.timeframes import TimeRange, parse_timerange
from tests.helpers import shared_file
from tests.supervision.research.data import START_MS, write_candles

MONTH = "binance_btcusdt_1m_2021-04-20_2021-05-20.csv"
DIP_BUYER = StrategySpec.of("rsi_reversion", timeframe_s=300)


def config_for(pair: str = "BTC/USDT", spec: StrategySpec | None = None, **values: object):
    return build_config({}, {"pairs": pair, "strategy": spec or StrategySpec.of("ema_cross"),
                             **values})


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    return write_candles(tmp_path_factory.mktemp("data") / "walk.csv", 3000)


def test_the_same_input_gives_the_same_digest_and_figures(walk):
    """Deterministic: two runs, one digest, one report."""
    data = from_files([("BTC/USDT", str(walk))], TimeRange())
    first, second = (run_backtest(config_for(), data) for _ in range(2))
    assert first.recording.fills > 10
    assert first.recording.digest == second.recording.digest
    one, two = build_report(first), build_report(second)
    for report in (one, two):
        report["run"].pop("elapsed_s")
        report["run"].pop("ticks_per_s")
    assert one == two


def test_the_figures_add_up(walk):
    """Equity is the start plus every PnL; fees are the trades' fees; the months chain; the
    trade count is the closed round trips; buy-and-hold is the price change."""
    data = from_files([("BTC/USDT", str(walk))], TimeRange())
    run = run_backtest(config_for(), data)
    report = build_report(run)
    s, trades, still_open = report["summary"], report["trades"], report["open_trades"]
    assert s["trades"] == len(trades) == run.status.pairs[0].trades
    pnl = sum(t["pnl"] for t in trades) + sum(t["pnl"] for t in still_open)
    assert s["final_equity"] == pytest.approx(s["initial_equity"] + pnl)
    assert s["final_equity"] == pytest.approx(run.status.equity)
    assert s["fees_paid"] == pytest.approx(sum(t["fees"] for t in (*trades, *still_open)))
    assert s["net_pnl"] == pytest.approx(run.status.realized_pnl)
    months = report["months"]
    assert months[0]["start_equity"] == s["initial_equity"]
    assert months[-1]["end_equity"] == s["final_equity"]
    rows = walk.read_text().splitlines()
    first_open, last_close = float(rows[1].split(",")[1]), float(rows[-1].split(",")[4])
    assert report["buy_and_hold"]["total_return"] == pytest.approx(last_close / first_open - 1)
    assert report["pairs"][0]["buy_and_hold_return"] == pytest.approx(last_close / first_open - 1)
    assert 0 < s["exposure_time"] <= 1
    assert s["max_drawdown"] >= 0


def test_a_timerange_trades_only_inside_it_and_starts_warm(walk):
    """From bar 1,000 on: the ticks before warm the strategy up; none of them is traded."""
    start = START_MS + 1000 * 60_000
    data = from_files([("BTC/USDT", str(walk))], TimeRange(start, None))
    run = run_backtest(config_for(spec=StrategySpec.of("ema_cross", fast=3, slow=8)), data)
    assert run.recording.ticks == 4 * 2000
    assert run.recording.trades
    assert min(t.entry_ms for t in run.recording.trades) >= start
    assert run.recording.sample_ts[0] == start


def test_the_report_folder_is_self_contained(walk, tmp_path):
    """JSON with every trade, PNG charts, one HTML page whose charts are inline SVG and which
    loads nothing from anywhere."""
    data = from_files([("BTC/USDT", str(walk))], TimeRange())
    run = run_backtest(config_for(), data)
    report, text = write_report(run, tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert len(saved["trades"]) == report["summary"]["trades"]
    assert saved["summary"]["final_equity"] == pytest.approx(report["summary"]["final_equity"])
    for stem in ("equity", "drawdown", "price-BTC_USDT"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page
    assert "buy and hold" in text and "BTC/USDT" in text


def test_backtest_of_a_recorded_month_matches_an_independent_computation():
    """empyrical-reloaded and pandas, from the report's daily equity, the recorder's samples
    and the trade list, agree with our Sharpe, Sortino, drawdown, CAGR and trade figures."""
    empyrical = pytest.importorskip("empyrical")
    pd = pytest.importorskip("pandas")
    path = shared_file(MONTH)
    data = from_files([("BTC/USDT", path)], TimeRange())
    run = run_backtest(config_for(spec=DIP_BUYER), data)
    report = build_report(run)
    s = report["summary"]
    daily = pd.Series([d["equity"] for d in report["daily"]],
                      index=pd.to_datetime([d["date"] for d in report["daily"]]))
    returns = daily.pct_change()
    returns.iloc[0] = daily.iloc[0] / s["initial_equity"] - 1
    assert s["sharpe"] == pytest.approx(empyrical.sharpe_ratio(returns, annualization=365),
                                        rel=1e-9)
    assert s["sortino"] == pytest.approx(empyrical.sortino_ratio(returns, annualization=365),
                                         rel=1e-9)
    samples = pd.Series(list(run.recording.equity))
    sample_returns = samples.pct_change().fillna(samples.iloc[0] / s["initial_equity"] - 1)
    assert s["max_drawdown"] == pytest.approx(-empyrical.max_drawdown(sample_returns), rel=1e-9)
    ts = list(run.recording.sample_ts)
    years = (ts[-1] - ts[0]) / (365 * 86_400_000)
    assert s["cagr"] == pytest.approx((s["final_equity"] / s["initial_equity"]) ** (1 / years)
                                      - 1, rel=1e-9)
    trades = pd.DataFrame(report["trades"])
    assert s["trades"] == len(trades) > 20
    assert s["win_rate"] == pytest.approx((trades.pnl > 0).mean())
    assert s["profit_factor"] == pytest.approx(trades.pnl[trades.pnl > 0].sum()
                                               / -trades.pnl[trades.pnl < 0].sum())
    assert s["expectancy"] == pytest.approx(trades.pnl.mean())
    assert s["avg_trade_duration_ms"] == pytest.approx(trades.duration_ms.mean())
    bh = report["buy_and_hold"]
    closes = pd.read_csv(path)
    assert bh["total_return"] == pytest.approx(closes.close.iloc[-1] / closes.open.iloc[0] - 1,
                                               rel=1e-9)


def test_backtest_command_writes_the_report_of_a_recorded_file(tmp_path, capsys):
    """The command a user types on ../shared/data: tables printed, the folder named."""
    path = shared_file(MONTH)
    code = main(["backtest", "--replay", f"BTC/USDT={path}", "--strategy", "rsi_reversion",
                 "--strategy-param", "timeframe_s=300", "--timerange", "20210510-",
                 "--report-dir", str(tmp_path / "r"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "buy and hold" in out and "2021-05" in out
    assert f"report: {(tmp_path / 'r').resolve()}" in out
    assert (tmp_path / "r" / "report.html").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--timeframe", "2m"], "timeframe: '2m' is not one of 1m, 3m, 5m"),
    (["--timeframe", "1m"], "no file for BTC/USDT at 1m"),
    (["--timerange", "2021-13-01.."], "timerange: '2021-13-01' is not a date"),
])
def test_bad_backtest_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    """Unknown timeframe, missing data, a bad date: exit 2, one line, no report."""
    code = main(["backtest", "--data-dir", str(tmp_path), "--pairs", "BTC/USDT",
                 "--report-dir", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_an_empty_file_and_a_timerange_outside_the_data_are_refused(walk, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp_ms,open,high,low,close,volume\n")
    assert main(["backtest", "--replay", f"BTC/USDT={empty}"]) == 2
    assert "has a header but no rows" in capsys.readouterr().err
    assert main(["backtest", "--replay", f"BTC/USDT={walk}", "--timerange", "2030-01-01.."]) == 2
    err = capsys.readouterr().err
    assert "timerange: 2030-01-01 00:00 to ... is outside the data of BTC/USDT" in err
    assert "2024-01-01 00:00 to 2024-01-03 01:59" in err
    assert parse_timerange("20240101-20240102").end_ms == START_MS + 86_400_000
