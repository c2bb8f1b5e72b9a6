"""The research commands: ``trade-conductor download | backtest | optimize``.

``supervision.main`` hands an argument list whose first word is one of ``COMMANDS`` here;
everything else is the trading run, unchanged. Each command checks all of its input first:
a bad flag, date, timeframe, time range, data file, strategy or space is one line on stderr
naming the problem and the valid choices, and exit 2 with nothing written. Exit 1 means the
work itself failed (the exchange kept refusing, a strategy raised); 0 means done.

Runs on the main thread; ``optimize --jobs N`` starts worker processes (see ``optimize``).
The backtest's config is the trading run's: ``--config`` takes the same file, with its
``[strategy]``, ``[risk]``, ``[exits]`` and ``[paper]``; keys that only make sense live (the
exchange, the state database, speed, ports) are ignored, since a backtest always trades the
paper exchange on recorded data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from supervision.app import strategy_override
from supervision.config import ConfigError, SystemConfig, build_config, load_toml, parse_replay
from supervision.research.download import Downloader, DownloadError, DownloadResult
from supervision.research.source import BacktestData, from_data_dir, from_files
from supervision.research.timeframes import (
    TIMEFRAMES,
    TRADES,
    parse_date,
    parse_timerange,
    show_ms,
    timeframe_ms,
)

COMMANDS = ("download", "backtest", "optimize")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_DATA_DIR = "var/data"
DEFAULT_REPORTS = "var/backtests"

IGNORED_IN_BACKTESTS = ("exchange", "replay", "state_db", "speed", "duration", "metrics_port",
                        "summary_json", "status_interval", "log_json", "log_dir",
                        "pair_workers", "gil_switch_ms", "seed", "log_level")
"""Config keys of a live run that a backtest leaves aside (it always trades the paper
exchange on recorded data, in one thread, in a temporary state database)."""


class _Parser(argparse.ArgumentParser):
    """Reports a bad flag in one line, like every other bad input (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help=f"folder of downloaded data (default {DEFAULT_DATA_DIR})")
    p.add_argument("--pairs", help="comma-separated pairs (default: the config file's)")
    p.add_argument("--timeframe", default="1m",
                   help=f"candles: {', '.join(TIMEFRAMES)}; or '{TRADES}' (default 1m)")
    p.add_argument("--replay", action="append", default=[], metavar="PAIR=FILE.csv",
                   help="a recorded file for PAIR instead of --data-dir; repeatable")
    p.add_argument("--timerange", metavar="START-END",
                   help="e.g. 20210501-20210520, 20210501- or -20210520 (UTC; default: all)")
    p.add_argument("--config", metavar="FILE.toml",
                   help="the trading config: its [strategy], [risk], [exits], [paper] apply")
    p.add_argument("--strategy", help="built-in name or package.module:ClassName")
    p.add_argument("--strategy-param", action="append", default=[], metavar="KEY=VALUE",
                   help="strategy parameter, repeatable")
    p.add_argument("--initial-balance", type=float, metavar="AMOUNT",
                   help="starting quote balance (default 10,000 USD worth)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="trade-conductor", allow_abbrev=False,
                description="Research: download history, backtest, optimise.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = sub.add_parser("download", allow_abbrev=False,
                       help="candles or trades from an exchange into --data-dir")
    d.add_argument("--exchange", help="a ccxt exchange id, e.g. binance (or the config's)")
    d.add_argument("--pairs", help="comma-separated pairs (default: the config file's)")
    d.add_argument("--timeframe", default="1m", help=f"{', '.join(TIMEFRAMES)} (default 1m)")
    d.add_argument("--trades", action="store_true", help="public trades instead of candles")
    d.add_argument("--since", required=True, help="first date, e.g. 2024-01-01 (UTC)")
    d.add_argument("--until", help="end date, exclusive (default: now)")
    d.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help=f"where the files go (default {DEFAULT_DATA_DIR})")
    d.add_argument("--config", metavar="FILE.toml",
                   help="its [exchange] table (ccxt settings) and pairs apply")
    b = sub.add_parser("backtest", allow_abbrev=False,
                       help="trade recorded data through the live cores and report")
    _data_flags(b)
    b.add_argument("--report-dir", metavar="DIR",
                   help=f"where the report goes (default {DEFAULT_REPORTS}/<time>-<strategy>)")
    b.add_argument("--no-charts", action="store_true", help="no HTML or PNG, only JSON")
    o = sub.add_parser("optimize", allow_abbrev=False,
                       help="search the strategy's (and exits') parameters with Optuna")
    _data_flags(o)
    from supervision.research.optimize import add_flags

    add_flags(o)
    return p


# -- the config a research run trades ----------------------------------------------------------


def research_config(args: argparse.Namespace, pairs: Sequence[str]) -> SystemConfig:
    """The trading config (file + flags) for a backtest over ``pairs``."""
    file_values = load_toml(args.config) if args.config else {}
    values = {k: v for k, v in file_values.items() if k not in IGNORED_IN_BACKTESTS}
    overrides: dict[str, Any] = {"pairs": ",".join(pairs),
                                 "initial_balance": args.initial_balance}
    if args.strategy is not None or args.strategy_param:
        overrides["strategy"] = strategy_override(args, file_values.get("strategy"))
    return build_config(values, overrides)


def research_data(args: argparse.Namespace) -> BacktestData:
    """The files and the time range of a backtest or optimisation; raises ``ConfigError``."""
    timerange = parse_timerange(args.timerange)
    if args.replay:
        if args.pairs:
            raise ConfigError("pairs: give either --replay PAIR=FILE (the pairs are the "
                              "files') or --pairs with --data-dir, not both")
        return from_files(parse_replay(args.replay), timerange)
    timeframe_ms(args.timeframe, allow_trades=True)
    pairs = _pairs(args)
    return from_data_dir(args.data_dir, pairs, args.timeframe, timerange)


def _pairs(args: argparse.Namespace) -> list[str]:
    if args.pairs:
        text = args.pairs
    else:
        from_file = load_toml(args.config).get("pairs") if args.config else None
        if not from_file:
            raise ConfigError("pairs: none given; e.g. --pairs BTC/USDT,ETH/USDT (or pairs in "
                              "the --config file)")
        text = from_file if isinstance(from_file, str) else ",".join(map(str, from_file))
    # The trading config's own check (symbols, one quote currency) names any problem.
    return list(build_config({}, {"pairs": text}).pairs)


# -- download ----------------------------------------------------------------------------------


def _download(args: argparse.Namespace, out: TextIO) -> int:
    file_values = load_toml(args.config) if args.config else {}
    exchange_values = file_values.get("exchange", {})
    if args.exchange:
        exchange_values = ({**exchange_values, "id": args.exchange}
                           if isinstance(exchange_values, dict) else args.exchange)
    pairs = _pairs(args)
    config = build_config({"exchange": exchange_values} if exchange_values else {},
                          {"pairs": ",".join(pairs)})
    if config.exchange == "sim":
        raise ConfigError("exchange: download needs a ccxt exchange id, e.g. --exchange "
                          "binance ('sim' has no history)")
    if not args.trades:
        timeframe_ms(args.timeframe)
    since = parse_date(args.since, "since")
    until = parse_date(args.until, "until") if args.until else None
    if until is not None and until <= since:
        raise ConfigError(f"until: {args.until!r} is not after --since {args.since!r}")
    from actors.exchange import make_client

    client = make_client(config.exchange, config.exchange_settings.ccxt, flavour="sync")
    downloader = Downloader(client)
    failed = False
    for pair in pairs:
        try:
            result = (downloader.trades(args.data_dir, pair, since, until) if args.trades
                      else downloader.candles(args.data_dir, pair, args.timeframe, since, until))
        except DownloadError as exc:
            print(f"trade-conductor: download {pair}: {exc}", file=sys.stderr)
            failed = True
            continue
        _print_download(result, out)
    return EXIT_FAILED if failed else EXIT_OK


def _print_download(result: DownloadResult, out: TextIO) -> None:
    span = ("nothing new" if result.first_ms is None or result.last_ms is None
            else f"{show_ms(result.first_ms)} to {show_ms(result.last_ms)}")
    print(f"{result.pair} {result.timeframe}: {result.added} rows added ({span}) in "
          f"{result.requests} requests ({result.retries} retried) -> {result.path}", file=out)
    if result.note:
        print(f"  note: {result.note}", file=out)
    for gap in result.gaps[:20]:
        print(f"  gap: {gap.missing} candles missing between {show_ms(gap.after_ms)} and "
              f"{show_ms(gap.before_ms)}", file=out)
    if len(result.gaps) > 20:
        print(f"  ... and {len(result.gaps) - 20} more gaps", file=out)
    if result.gaps:
        missing = sum(g.missing for g in result.gaps)
        print(f"  {len(result.gaps)} gaps, {missing} candles missing in all", file=out)


# -- backtest ----------------------------------------------------------------------------------


def progress_bar(data: BacktestData, enabled: bool) -> tuple[Callable[[int], None], Any]:
    """A tqdm bar over the market time of ``data`` (in days); off when stderr is no
    terminal, unless ``enabled`` is False anyway."""
    from tqdm import tqdm

    total_days = (data.last_ms - data.first_ms) / 86_400_000
    bar = tqdm(total=round(total_days, 2), unit="day", desc="backtest",
               disable=None if enabled else True, leave=False, mininterval=0.5,
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} market days [{elapsed}<{remaining}]")
    state = {"last": data.first_ms}

    def advance(ts_ms: int) -> None:
        if ts_ms - state["last"] >= 3_600_000:
            bar.update((ts_ms - state["last"]) / 86_400_000)
            state["last"] = ts_ms

    return advance, bar


def _backtest(args: argparse.Namespace, out: TextIO) -> int:
    from supervision.research.backtest import run_backtest
    from supervision.research.outputs import write_report

    data = research_data(args)
    config = research_config(args, data.pairs)
    folder = Path(args.report_dir) if args.report_dir else _report_folder(config)
    advance, bar = progress_bar(data, not args.no_progress)
    try:
        run = run_backtest(config, data, progress=advance)
    finally:
        bar.close()
    _, text = write_report(run, folder, charts=not args.no_charts)
    print(text, file=out)
    print(f"\nreport: {folder.resolve()}", file=out, flush=True)
    return EXIT_OK


def _report_folder(config: SystemConfig) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    name = config.strategy.path.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    return Path(DEFAULT_REPORTS) / f"{stamp}-{name}"


# -- entry ------------------------------------------------------------------------------------


def run(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Run a research command; returns the exit code."""
    out = sys.stdout if out is None else out
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    commands: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
        "download": _download, "backtest": _backtest, "optimize": _optimize}
    try:
        return commands[args.command](args, out)
    except ConfigError as exc:
        print(f"trade-conductor {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _optimize(args: argparse.Namespace, out: TextIO) -> int:
    from supervision.research.optimize import run_optimize

    return run_optimize(args, out)

