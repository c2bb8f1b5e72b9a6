"""``optimize``: declared spaces, a study that resumes, worker processes, the best values as
a config, walk-forward windows and report, and the refusals."""

from __future__ import annotations

import json

import pytest

from actors.messages import StrategySpec
from strategies.registry import BUILTIN_STRATEGIES, build_strategy
from strategies.space import IntRange, SpaceError, check_space
from supervision.config import ConfigError, build_config, load_toml
from supervision.main import main
from supervision.research.optimize import EXIT_SPACE, resolve_space
from supervision.research.walk_forward import windows
from tests.helpers import shared_file
from tests.supervision.research.data import write_candles

DAY = 86_400_000


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    return write_candles(tmp_path_factory.mktemp("data") / "walk.csv", 2000, seed=5)


@pytest.mark.parametrize("name", [n for n in BUILTIN_STRATEGIES if n != "aggregate"])
def test_every_builtin_declares_a_searchable_space_and_its_defaults_lie_in_it(name):
    """Each range is valid, names a parameter, and contains the default value."""
    strategy = build_strategy(StrategySpec.of(name))
    space = type(strategy).space
    assert space
    check_space(name, space, {a.name: a for a in type(strategy.params).__attrs_attrs__})
    for key, rng in space.items():
        assert rng.low <= getattr(strategy.params, key) <= rng.high


def test_a_bad_declared_range_is_named():
    """An empty range, a name that is no parameter: SpaceError naming it."""
    with pytest.raises(SpaceError, match="range of fast is empty"):
        check_space("x", {"fast": IntRange(5, 5)}, {"fast": None})
    with pytest.raises(SpaceError, match="'speed', which is not a parameter"):
        check_space("x", {"speed": IntRange(1, 5)}, {"fast": None})


def test_space_choices_resolve_to_dimensions_and_refuse_what_is_not_there():
    """strategy, exits, names; an unknown name and a strategy without ranges are refused."""
    ema = StrategySpec.of("ema_cross")
    assert [d.name for d in resolve_space(ema, "strategy")] == ["fast", "slow"]
    assert [d.name for d in resolve_space(ema, "exits")] == list(EXIT_SPACE)
    assert [d.section for d in resolve_space(ema, "slow,stop_loss")] == ["strategy", "exits"]
    with pytest.raises(ConfigError, match="'speed' is not strategy, exits, all or a param"):
        resolve_space(ema, "speed")
    aggregate = StrategySpec(path="aggregate", members=((ema, 1.0),))
    with pytest.raises(ConfigError, match="strategy aggregate declares no search space"):
        resolve_space(aggregate, "strategy")
    assert resolve_space(aggregate, "exits")


def optimize(walk, tmp_path, *extra: str) -> int:
    return main(["optimize", "--replay", f"BTC/USDT={walk}", "--strategy", "ema_cross",
                 "--storage", str(tmp_path / "studies"), "--study", "s", "--min-trades", "2",
                 "--no-progress", *extra])


def test_a_study_resumes_and_its_best_values_are_a_config_that_backtests(walk, tmp_path,
                                                                        capsys):
    """Four trials, then six: the second run adds two; the snippet loads as a config with
    the best trial's values, and a backtest with it runs them."""
    assert optimize(walk, tmp_path, "--trials", "4") == 0
    assert optimize(walk, tmp_path, "--trials", "6") == 0
    out = capsys.readouterr().out
    assert "study s: 6 finished trials" in out
    study = open_study_at(tmp_path)
    assert len(study.trials) == 6
    best = study.best_trial
    snippet = tmp_path / "studies" / "s-best.toml"
    values = load_toml(str(snippet))
    config = build_config(values, {"pairs": "BTC/USDT"})
    assert config.strategy.params_dict()["fast"] == best.params["fast"]
    assert config.strategy.params_dict()["slow"] == best.params["slow"]
    report = tmp_path / "bt"
    assert main(["backtest", "--replay", f"BTC/USDT={walk}", "--config", str(snippet),
                 "--no-charts", "--no-progress", "--report-dir", str(report)]) == 0
    summary = json.loads((report / "report.json").read_text())["summary"]
    assert summary["trades"] == best.user_attrs["trades"]
    assert summary["sharpe"] == pytest.approx(best.value)


def open_study_at(tmp_path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "studies" / "s.journal")))
    return optuna.load_study(study_name="s", storage=storage)


def test_two_jobs_run_trials_in_two_processes(walk, tmp_path):
    """--jobs 2: this process and a spawned one share the journal; both ran trials."""
    assert optimize(walk, tmp_path, "--trials", "8", "--jobs", "2", "--space", "all",
                    "--min-trades", "0") == 0
    study = open_study_at(tmp_path)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 8
    assert {t.user_attrs["worker"] for t in finished} == {0, 1}


def test_a_worker_counts_the_trials_running_elsewhere_toward_the_target(walk, tmp_path):
    """A trial in flight in another worker is one of the ``--trials``: a worker stops once
    finished and running trials make the target, rather than starting one too many (on 2
    workers that cost a whole trial's time at the end of every study)."""
    import argparse

    from supervision.research import from_files, make_job
    from supervision.research.optimize import open_study, work
    from supervision.research.timeframes import TimeRange

    config = build_config({}, {"pairs": "BTC/USDT", "strategy": StrategySpec.of("ema_cross")})
    args = argparse.Namespace(objective="profit", min_trades=0, storage=str(tmp_path),
                              trials=3, seed=1)
    job = make_job(args, config, from_files([("BTC/USDT", str(walk))], TimeRange()),
                   resolve_space(config.strategy, "strategy"), "running")
    elsewhere = open_study(job).ask()  # another worker's trial, still running

    work(job)

    states = [t.state.name for t in open_study(job).trials]
    assert elsewhere.number == 0
    assert states[0] == "RUNNING" and len(states) == 3


def test_a_study_refuses_another_search_under_its_name(walk, tmp_path, capsys):
    """Resuming with other flags would mix two searches: refused, exit 2."""
    assert optimize(walk, tmp_path, "--trials", "1", "--min-trades", "0") == 0
    assert optimize(walk, tmp_path, "--trials", "2", "--objective", "profit") == 2
    assert "study: 's' was made for another search (different min_trades, objective)" \
        in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--jobs", "0"], "jobs: 0 must be at least 1"),
    (["--objective", "luck"], "objective: 'luck' is not one of sharpe, sortino"),
    (["--space", "speed"], "space: 'speed' is not strategy, exits, all or a parameter"),
    (["--walk-forward", "--wf-train-ratio", "1.5"], "wf-train-ratio: 1.5 must be between"),
])
def test_bad_optimize_input_is_one_line_and_exit_2(walk, tmp_path, capsys, args, message):
    """--jobs 0, an unknown objective or space, a bad ratio: one line, exit 2, no study."""
    assert optimize(walk, tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "studies").exists()


def test_a_strategy_without_a_space_is_refused(walk, tmp_path, capsys):
    """A user strategy that declares no ranges cannot be optimised: it says how to fix it."""
    code = main(["optimize", "--replay", f"BTC/USDT={walk}", "--strategy",
                 "tests.helpers:BuyOnce", "--storage", str(tmp_path)])
    assert code == 2
    assert "strategy buy_once declares no search space" in capsys.readouterr().err


def test_rolling_and_anchored_windows_tile_the_span():
    """70 days, 4 windows, 3:1: out-of-sample stretches of 10 days after 30 days in sample;
    rolling moves the in-sample start, anchored keeps it."""
    rolling = windows(0, 70 * DAY, 4, 0.75, "rolling")
    assert [(w.train.start_ms, w.train.end_ms, w.test.end_ms) for w in rolling] == [
        (0, 30 * DAY, 40 * DAY), (10 * DAY, 40 * DAY, 50 * DAY),
        (20 * DAY, 50 * DAY, 60 * DAY), (30 * DAY, 60 * DAY, 70 * DAY)]
    anchored = windows(0, 70 * DAY, 4, 0.75, "anchored")
    assert {w.train.start_ms for w in anchored} == {0}
    assert [w.test.start_ms for w in anchored] == [w.test.start_ms for w in rolling]


def test_walk_forward_on_a_recorded_file_finishes_with_its_report(tmp_path, capsys):
    """Three windows over the month of BTC/USDT: each optimised in sample and traded out of
    sample; the report stitches the out-of-sample equity and measures the degradation."""
    path = shared_file("binance_btcusdt_1m_2021-04-20_2021-05-20.csv")
    code = main(["optimize", "--walk-forward", "--replay", f"BTC/USDT={path}",
                 "--strategy", "ema_cross", "--strategy-param", "timeframe_s=300",
                 "--trials", "4", "--min-trades", "1", "--wf-windows", "3",
                 "--storage", str(tmp_path / "studies"), "--report-dir", str(tmp_path / "wf"),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "wf" / "walk_forward.json").read_text())
    assert len(report["windows"]) == 3
    done = [w for w in report["windows"] if w["in_sample"]["figures"]]
    assert done
    stitched = report["stitched"]
    assert stitched["ts"] == sorted(stitched["ts"])
    assert stitched["ts"][0] >= 1_619_000_000_000
    assert report["degradation"]["windows"] == len(done)
    assert "stitched out-of-sample" in out and "degradation" in out
    assert (tmp_path / "wf" / "stitched-equity.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (tmp_path / "wf" / "walk_forward.html").read_text()
