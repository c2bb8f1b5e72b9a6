"""``optimize``: search a strategy's declared ranges (and the exits') with Optuna.

Each trial samples the space (``Strategy.space`` next to the strategy's ``Params``, and
``EXIT_SPACE`` for the exit rules), runs one backtest with those values on the same config as
a live run, and scores it with ``--objective``. A trial is pruned (not counted as a result)
when its values are refused by the strategy's own validation, when it made fewer than
``--min-trades`` trades, when its objective is undefined, or when the median pruner finds it
hopeless at one of ``CHECKPOINTS`` points of its run (its return so far below the median of
earlier trials' at the same point).

The study lives in an Optuna journal file (``<storage>/<study>.journal``), written after each
trial, so Ctrl-C or a crash loses at most the trials in flight: running the same command again
resumes until the study holds ``--trials`` finished trials. ``--jobs N`` runs N processes on
that journal (this one and N-1 started with ``spawn``, never a fork of a threaded process);
each reads the data into memory once when it is small enough (``PRELOAD_TICKS``), so trials do
not parse files. A trial still marked running when a study is opened (its process died) is
marked failed and run again.

The result: a table of the best trials, and the best values written as a TOML snippet that
``--config`` accepts (``[strategy]`` and ``[exits]``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from actors.messages import StrategySpec
from strategies.base import StrategyError
from strategies.space import FloatRange, IntRange, Range, SpaceError, check_space
from supervision.config import ConfigError, SystemConfig, validate_strategy
from supervision.research.backtest import run_backtest
from supervision.research.recorder import RunRecorder
from supervision.research.source import BacktestData
from supervision.research.timeframes import show_ms

DEFAULT_STORAGE = "var/optimize"
CHECKPOINTS = 10
PRELOAD_TICKS = 2_000_000
"""Data up to this many ticks is read into memory once per worker (about 0.25 KB a tick)."""

EXIT_SPACE: dict[str, Range] = {
    "stop_loss": FloatRange(0.005, 0.10),
    "take_profit": FloatRange(0.01, 0.20),
    "trailing_stop": FloatRange(0.005, 0.08),
    "trailing_activation": FloatRange(0.0, 0.05),
}
"""Search ranges of the exit rules (fractions of the entry or peak price)."""

OBJECTIVES: dict[str, Callable[[Mapping[str, Any]], float | None]] = {
    "sharpe": lambda f: f["sharpe"],
    "sortino": lambda f: f["sortino"],
    "calmar": lambda f: f["calmar"],
    "profit": lambda f: f["net_pnl"],
    "return": lambda f: f["total_return"],
    "cagr": lambda f: f["cagr"],
    "profit_factor": lambda f: f["profit_factor"],
    "expectancy": lambda f: f["expectancy"],
    "win_rate": lambda f: f["win_rate"],
    "drawdown": lambda f: -f["max_drawdown"],
}
"""What a trial is scored by (always maximised; ``drawdown`` is the negated max drawdown)."""

RECORDED = ("trades", "total_return", "max_drawdown", "sharpe", "sortino", "calmar",
            "net_pnl", "win_rate", "profit_factor", "cagr", "expectancy", "final_equity")
"""Figures kept with each trial (its user attributes), for the tables and walk-forward."""


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default="strategy",
                   help="what to search: strategy (its declared ranges), exits, all, or a "
                        "comma list of parameter names (default strategy)")
    p.add_argument("--trials", type=int, default=50, help="finished trials the study should "
                   "hold; a resumed study runs only the rest (default 50)")
    p.add_argument("--objective", default="sharpe",
                   help=f"{', '.join(OBJECTIVES)} (default sharpe; always maximised)")
    p.add_argument("--min-trades", type=int, default=10,
                   help="a trial with fewer trades is not a result (default 10)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1); with "
                   "--cluster, trials at a time (default: the cluster's CPUs)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the trials as tasks on a Ray cluster: 'auto' or HOST:PORT "
                        "(needs pip install -e '.[cluster]')")
    p.add_argument("--study", help="study name (default: from strategy, pairs and objective)")
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"folder of study journals (default {DEFAULT_STORAGE})")
    p.add_argument("--seed", type=int, default=42, help="sampler seed (default 42)")
    p.add_argument("--top", type=int, default=10, help="best trials shown (default 10)")
    p.add_argument("--output", metavar="FILE.toml",
                   help="where the best values go (default <storage>/<study>-best.toml)")
    p.add_argument("--walk-forward", action="store_true",
                   help="optimise in-sample and trade out-of-sample, window by window")
    p.add_argument("--wf-mode", default="rolling", choices=("rolling", "anchored"),
                   help="rolling: in-sample windows of fixed length; anchored: all from the "
                        "start (default rolling)")
    p.add_argument("--wf-windows", type=int, default=4, help="out-of-sample windows (4)")
    p.add_argument("--wf-train-ratio", type=float, default=0.75,
                   help="in-sample share of each window (default 0.75)")
    p.add_argument("--report-dir", metavar="DIR", help="walk-forward report folder")


# -- the space ---------------------------------------------------------------------------------


@attrs.frozen
class Dimension:
    """One searched value: its name, the section it sets (strategy or exits), its range."""

    name: str
    section: str
    range: Range


def resolve_space(spec: StrategySpec, text: str) -> tuple[Dimension, ...]:
    """The dimensions ``--space`` names; raises ``ConfigError`` naming what is wrong."""
    from strategies.registry import build_strategy

    try:
        strategy_cls = type(build_strategy(spec))
    except StrategyError as exc:
        raise ConfigError(f"strategy: {exc}") from None
    declared: Mapping[str, Range] = getattr(strategy_cls, "space", {})
    name = getattr(strategy_cls, "name", spec.path)
    try:
        check_space(name, declared, _fields(strategy_cls))
    except SpaceError as exc:
        raise ConfigError(f"space: {exc}") from None
    strategy_dims = [Dimension(k, "strategy", r) for k, r in declared.items()]
    exit_dims = [Dimension(k, "exits", r) for k, r in EXIT_SPACE.items()]
    by_name = {d.name: d for d in (*strategy_dims, *exit_dims)}
    chosen: list[Dimension] = []
    for item in (part.strip() for part in text.split(",")):
        if item in ("strategy", "all") and not strategy_dims:
            raise ConfigError(f"space: strategy {name} declares no search space; declare "
                              "ranges next to its Params (space = {\"period\": IntRange(5, 50)"
                              "}, see strategies.space) or search its exits: --space exits")
        if item == "strategy":
            chosen += strategy_dims
        elif item == "exits":
            chosen += exit_dims
        elif item == "all":
            chosen += strategy_dims + exit_dims
        elif item in by_name:
            chosen.append(by_name[item])
        else:
            raise ConfigError(f"space: {item!r} is not strategy, exits, all or a parameter; "
                              f"parameters: {', '.join(by_name) or 'none'}")
    unique = {d.name: d for d in chosen}
    return tuple(unique.values())


def _fields(strategy_cls: type) -> dict[str, Any]:
    return {f.name: f for f in attrs.fields(strategy_cls.Params)}  # type: ignore[attr-defined]


def suggest(trial: Any, dims: Sequence[Dimension]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sample each dimension; returns the strategy's values and the exits'."""
    values: dict[str, dict[str, Any]] = {"strategy": {}, "exits": {}}
    for dim in dims:
        r = dim.range
        if isinstance(r, IntRange):
            value: Any = trial.suggest_int(dim.name, r.low, r.high, step=r.step)
        elif isinstance(r, FloatRange):
            value = trial.suggest_float(dim.name, r.low, r.high, log=r.log)
        else:
            value = trial.suggest_categorical(dim.name, list(r.values))
        values[dim.section][dim.name] = value
    return values["strategy"], values["exits"]


def apply_values(config: SystemConfig, strategy: Mapping[str, Any],
                 exits: Mapping[str, Any]) -> SystemConfig:
    """``config`` with these values; raises ``ConfigError`` when the strategy or the exit
    rules refuse them (``fast >= slow``)."""
    base = config.strategy
    spec = StrategySpec(path=base.path, members=base.members,
                        params=tuple(sorted({**base.params_dict(), **strategy}.items())))
    validate_strategy(spec)
    try:
        rules = attrs.evolve(config.exits, **exits)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"exits: {exc}") from None
    return attrs.evolve(config, strategy=spec, exits=rules)


# -- one study ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StudyJob:
    """What a worker process needs to run trials of a study (picklable)."""

    config: SystemConfig
    data: BacktestData
    dims: tuple[Dimension, ...]
    objective: str
    min_trades: int
    name: str
    journal: str
    trials: int
    seed: int
    checkpoints: int = CHECKPOINTS


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(job: StudyJob, worker: int = 0) -> Any:
    """Create or load the job's study on its journal file."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(job.journal).parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(job.journal))
    return optuna.create_study(
        study_name=job.name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=job.seed + worker),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))


def finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False,
                                states=(TrialState.COMPLETE, TrialState.PRUNED)))


def evaluate(job: StudyJob, data: BacktestData, trial: Any, worker: int = 0) -> float:
    """One trial: sample, backtest, score (or prune)."""
    from optuna import TrialPruned

    from supervision.research.report import summary_figures

    trial.set_user_attr("worker", worker)
    strategy_values, exit_values = suggest(trial, job.dims)
    try:
        config = apply_values(job.config, strategy_values, exit_values)
    except ConfigError as exc:
        trial.set_user_attr("refused", str(exc))
        raise TrialPruned(str(exc)) from None
    initial = config.funding[config.quote]

    def checkpoint(index: int, recorder: RunRecorder) -> None:
        trial.report(recorder.equity_now() / initial - 1, index)
        if trial.should_prune():
            trial.set_user_attr("refused", f"pruned at {index}/{job.checkpoints} of the run")
            raise TrialPruned

    run = run_backtest(config, data, checkpoint=checkpoint, checkpoints=job.checkpoints)
    figures = summary_figures(run)
    for key in RECORDED:
        value = figures[key]
        trial.set_user_attr(key, value if not isinstance(value, float) or math.isfinite(value)
                            else None)
    if figures["trades"] < job.min_trades:
        trial.set_user_attr("refused", f"{figures['trades']} trades < --min-trades "
                                       f"{job.min_trades}")
        raise TrialPruned
    value = OBJECTIVES[job.objective](figures)
    if value is None or not math.isfinite(value):
        trial.set_user_attr("refused", f"{job.objective} is undefined for this run")
        raise TrialPruned
    return float(value)


def work(job: StudyJob, worker: int = 0, on_trial: Callable[[Any], None] | None = None) -> None:
    """Run trials until the study holds ``job.trials`` finished ones."""
    optuna = _optuna()
    study = open_study(job, worker)
    if finished(study) >= job.trials:
        return
    data = job.data
    if data.estimated_ticks() <= PRELOAD_TICKS:
        data = data.preload(job.config.history_size)
    # Trials in flight in other workers count too: a worker that counted only finished ones
    # started one trial past the target while another ran the last (12 trials on 2 workers
    # took 7 trials' time, not 6: jobs 2 at most 1.7x jobs 1 however long the run).
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
              optuna.trial.TrialState.RUNNING)
    callbacks: list[Any] = [optuna.study.MaxTrialsCallback(job.trials, states=states)]
    if on_trial is not None:
        callbacks.append(lambda study, _trial: on_trial(study))
    study.optimize(lambda trial: evaluate(job, data, trial, worker), n_trials=job.trials,
                   callbacks=callbacks, gc_after_trial=False)


def _worker_main(job: StudyJob, worker: int) -> None:
    """A worker process: trials until the study is full (Ctrl-C ends it quietly)."""
    with contextlib.suppress(KeyboardInterrupt):
        work(job, worker)


def recover_study(study: Any) -> None:
    """Mark failed the trials still running in the journal: their process died."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)


def run_study(job: StudyJob, jobs: int, *, progress: bool = True,
              cluster: str | None = None) -> Any:
    """Run ``job`` with ``jobs`` processes (this one included), or as tasks on the Ray
    cluster at ``cluster`` (``jobs`` at a time); returns the study."""
    if cluster is not None:
        from supervision.cluster import run_on_cluster

        return run_on_cluster(job, cluster, jobs if jobs > 1 else None, progress=progress)
    from tqdm import tqdm

    study = open_study(job)
    recover_study(study)
    done = finished(study)
    bar = tqdm(total=job.trials, initial=min(done, job.trials), unit="trial", desc=job.name,
               disable=None if progress else True, leave=False)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker_main, args=(job, i), daemon=True)
               for i in range(1, jobs)]
    for process in workers:
        process.start()

    def update(study: Any) -> None:
        bar.n = min(finished(study), job.trials)
        bar.refresh()

    try:
        work(job, 0, on_trial=update)
    finally:
        for process in workers:
            process.join()
        bar.close()
    failed = [p.exitcode for p in workers if p.exitcode not in (0, None)]
    if failed:
        print(f"trade-conductor optimize: {len(failed)} worker(s) failed (exit codes "
              f"{failed}); the study holds what they finished", file=sys.stderr)
    return open_study(job)


# -- results -----------------------------------------------------------------------------------


def best_trials(study: Any, top: int) -> list[Any]:
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: (-t.value, t.number))[:top]


def trials_table(trials: Sequence[Any], objective: str) -> str:
    from supervision.research.tables import num, pct, table

    rows = [(str(t.number), num(t.value, 3), str(t.user_attrs.get("trades", "-")),
             pct(t.user_attrs.get("total_return")),
             pct(-(t.user_attrs.get("max_drawdown") or 0)),
             ", ".join(f"{k}={_show(v)}" for k, v in sorted(t.params.items())))
            for t in trials]
    return table(["trial", objective, "trades", "return", "max dd", "values"], rows,
                 right=[True, True, True, True, True, False])


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def snippet(config: SystemConfig, trial: Any, dims: Sequence[Dimension], header: str) -> str:
    """The best values as TOML that ``--config`` accepts: ``[strategy]`` with its name and
    every param, ``[exits]`` with every exit rule."""
    strategy_values = {d.name: trial.params[d.name] for d in dims if d.section == "strategy"}
    exit_values = {d.name: trial.params[d.name] for d in dims if d.section == "exits"}
    best = apply_values(config, strategy_values, exit_values)
    from strategies.registry import build_strategy

    typed = attrs.asdict(build_strategy(best.strategy).params)  # "300" from a flag -> 300.0
    params = ", ".join(f"{k} = {_toml(typed.get(k, v))}" for k, v in best.strategy.params)
    exits = attrs.asdict(best.exits, recurse=False)
    lines = [*(f"# {line}" for line in header.splitlines()), "", "[strategy]",
             f"name = {_toml(best.strategy.path)}", f"params = {{ {params} }}", "", "[exits]"]
    lines += [f"{k} = {_toml(getattr(v, 'value', v))}" for k, v in exits.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


# -- the command -------------------------------------------------------------------------------


def check_flags(args: argparse.Namespace) -> None:
    if args.jobs < 1:
        raise ConfigError(f"jobs: {args.jobs} must be at least 1 (worker processes)")
    if args.trials < 1:
        raise ConfigError(f"trials: {args.trials} must be at least 1")
    if args.min_trades < 0:
        raise ConfigError(f"min-trades: {args.min_trades} must be 0 or more")
    if args.objective not in OBJECTIVES:
        raise ConfigError(f"objective: {args.objective!r} is not one of "
                          f"{', '.join(OBJECTIVES)}")
    if args.top < 1:
        raise ConfigError(f"top: {args.top} must be at least 1")
    if args.study is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", args.study):
        raise ConfigError(f"study: {args.study!r} must be letters, digits, '_', '.', '-'")


def make_job(args: argparse.Namespace, config: SystemConfig, data: BacktestData,
             dims: tuple[Dimension, ...], name: str) -> StudyJob:
    return StudyJob(config=config, data=data, dims=dims, objective=args.objective,
                    min_trades=args.min_trades, name=name,
                    journal=str(Path(args.storage) / f"{name}.journal"), trials=args.trials,
                    seed=args.seed)


def default_name(config: SystemConfig, objective: str, dims: Sequence[Dimension]) -> str:
    strategy = config.strategy.path.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    pairs = "+".join(p.replace("/", "") for p in config.pairs)
    sections = "+".join(sorted({d.section for d in dims}))
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{strategy}-{pairs}-{objective}-{sections}")[:100]


def check_study_matches(study: Any, identity: dict[str, Any]) -> None:
    """A study is resumed only with the same search; refuse another under its name."""
    known = study.user_attrs.get("identity")
    if known is None:
        study.set_user_attr("identity", identity)
    elif known != identity:
        differs = sorted(k for k in identity if known.get(k) != identity[k])
        raise ConfigError(f"study: {study.study_name!r} was made for another search "
                          f"(different {', '.join(differs)}); give another --study name or "
                          "the same flags as before")


def identity_of(job: StudyJob) -> dict[str, Any]:
    return {"strategy": job.config.strategy.path, "objective": job.objective,
            "space": [d.name for d in job.dims], "files": [list(f) for f in job.data.files],
            "first_ms": job.data.first_ms, "last_ms": job.data.last_ms,
            "min_trades": job.min_trades}


def run_optimize(args: argparse.Namespace, out: TextIO) -> int:
    from supervision.research.cli import EXIT_FAILED, EXIT_OK, research_config, research_data

    check_flags(args)
    if args.cluster is not None:  # before any study file exists
        from supervision.cluster import check_address

        check_address(args.cluster)
    data = research_data(args)
    config = research_config(args, data.pairs)
    dims = resolve_space(config.strategy, args.space)
    name = args.study or default_name(config, args.objective, dims)
    if args.walk_forward:
        from supervision.research.walk_forward import run_walk_forward

        return run_walk_forward(args, config, data, dims, name=name, out=out)
    job = make_job(args, config, data, dims, name)
    check_study_matches(open_study(job), identity_of(job))
    try:
        study = run_study(job, args.jobs, progress=not args.no_progress,
                          cluster=args.cluster)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the study {name!r} keeps its finished trials; run the same "
              "command again to resume", file=out, flush=True)
        return 130
    best = best_trials(study, args.top)
    print(f"study {name}: {finished(study)} finished trials, journal {job.journal}",
          file=out)
    if not best:
        print("no trial produced a result (all were pruned: too few trades, refused values "
              "or an undefined objective); widen --timerange, lower --min-trades or choose "
              "another --objective", file=out)
        return EXIT_FAILED
    print(trials_table(best, args.objective), file=out)
    top = best[0]
    header = (f"best of study {name} (trial {top.number}): {args.objective} {top.value:.4g}, "
              f"{top.user_attrs.get('trades')} trades\nover {', '.join(data.pairs)} "
              f"from {show_ms(data.first_ms)} to {show_ms(data.last_ms)} UTC; use it with "
              "--config (or merge it into your config)")
    path = Path(args.output) if args.output else Path(args.storage) / f"{name}-best.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(snippet(config, top, dims, header), encoding="utf-8")
    print(f"\nbest values: {path}", file=out, flush=True)
    return EXIT_OK
