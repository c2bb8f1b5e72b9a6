"""The command line: flags and a config file in, a running system with a status table out.

This is the only place that touches process-wide things: it configures logging
(``supervision.app.logs``: stderr and a rotating file under ``--log-dir``) and installs
SIGINT/SIGTERM handlers (which only ask the main loop to stop; the actual stop runs on the
main thread). Exit codes: 0 after a clean run or a signal, 1 if the system failed, 2 for bad
input (nothing started, no state database created).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import attrs
from loguru import logger

from actors.messages import (
    HaltChanged,
    OrderRejected,
    PairFailed,
    PairRestarted,
    ServiceRestarted,
    StrategySpec,
    StrategySwapped,
)
from actors.state import StateStoreError
from strategies.base import StrategyError
from strategies.isolated import PROCESS, inner_spec
from strategies.registry import BUILTIN_STRATEGIES, parse_param
from supervision.api import jsonable
from supervision.app import logs as logging_setup
from supervision.app.collector import start_frozen
from supervision.app.format import describe_event, format_table
from supervision.config import (
    DEFAULT_LOG_DIR,
    DEFAULT_STATE_DB,
    FEEDS,
    ConfigError,
    SystemConfig,
    build_config,
    load_toml,
    parse_replay,
    parse_speed,
    strategy_spec_from,
)
from supervision.status import SystemStatus
from supervision.system import TradingSystem

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """Reports a bad flag in one line, like every other bad input (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="trade-conductor", allow_abbrev=False,  # --pair must not quietly mean --pairs
        description="Multi-pair crypto trading on supervised actors. Runs offline on the "
                    "embedded market simulator and paper exchange unless told otherwise.")
    p.add_argument("--pairs", help="comma-separated BASE/QUOTE symbols, e.g. BTC/USDT,ETH/USDT")
    p.add_argument("--exchange", help="'sim' (default: embedded simulator + paper exchange) "
                                      "or a ccxt exchange id: paper trading on its live "
                                      "market data")
    p.add_argument("--live", action="store_true", default=None,
                   help="send real orders to the exchange (needs a ccxt exchange id and API "
                        "keys); without it a real exchange is paper-traded")
    p.add_argument("--feed", choices=FEEDS,
                   help="live market data: 'ws' websocket streams (default) or 'rest' polling")
    p.add_argument("--strategy", help=f"built-in ({', '.join(BUILTIN_STRATEGIES)}) or "
                                      "package.module:ClassName; default ema_cross")
    p.add_argument("--strategy-param", action="append", default=[], metavar="KEY=VALUE",
                   help="strategy parameter, repeatable")
    p.add_argument("--config", metavar="FILE.toml", help="TOML config; flags override it")
    p.add_argument("--state-db", metavar="PATH|URL",
                   help=f"state database: an SQLite file (default {DEFAULT_STATE_DB}) or "
                        "postgresql://user@host:5432/dbname (password from "
                        "CONDUCTOR_DB_PASSWORD or [state] secrets_file)")
    p.add_argument("--duration", type=_number, metavar="SECONDS",
                   help="stop after this many wall-clock seconds (default: until Ctrl-C, or "
                        "until replay data ends)")
    p.add_argument("--seed", type=int, help="simulator seed (default 42)")
    p.add_argument("--speed", help="1 = real time or recorded pace (default), 10 = ten times "
                                   "faster, 'max' = as fast as possible")
    p.add_argument("--replay", action="append", default=[], metavar="PAIR=FILE.csv",
                   help="trade recorded CSV data for PAIR instead of the simulator; repeatable")
    p.add_argument("--log-level", help="TRACE, DEBUG, INFO (default), WARNING, ERROR")
    p.add_argument("--status-interval", type=_number, metavar="SECONDS",
                   help="seconds between status tables (default 5)")
    p.add_argument("--summary-json", metavar="FILE", help="write the final status as JSON")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus /metrics and /health on 127.0.0.1:PORT (default: "
                        "off; 0 = any free port)")
    p.add_argument("--log-json", action="store_true", default=None,
                   help="log JSON lines instead of text (stderr and the log file)")
    p.add_argument("--log-dir", metavar="DIR",
                   help=f"folder of the rotating log file (default {DEFAULT_LOG_DIR})")
    p.add_argument("--api-port", type=int, metavar="PORT",
                   help="serve the HTTP API and the dashboard on PORT (default: off; 0 = any "
                        "free port)")
    p.add_argument("--api-host", metavar="HOST",
                   help="address the API listens on (default 127.0.0.1; another needs "
                        "CONDUCTOR_API_TOKEN or [api] secrets_file)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the pairs in shards on a Ray cluster: 'auto' (this machine's "
                        "Ray) or HOST:PORT of its head; needs pip install -e '.[cluster]'")
    return p


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def config_from_args(args: argparse.Namespace) -> SystemConfig:
    """Merge the config file (if any) with the flags; raises ``ConfigError``."""
    file_values = load_toml(args.config) if args.config else {}
    overrides: dict[str, Any] = {
        "pairs": args.pairs, "exchange": args.exchange, "state_db": args.state_db,
        "duration": args.duration, "seed": args.seed, "log_level": args.log_level,
        "summary_json": args.summary_json, "status_interval": args.status_interval,
        "metrics_port": args.metrics_port, "log_json": args.log_json, "log_dir": args.log_dir,
        "live": args.live, "feed": args.feed, "cluster": args.cluster,
        "api_port": args.api_port, "api_host": args.api_host,
    }
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"duration: {args.duration!r} must be a positive number of seconds")
    if args.speed is not None:
        overrides["speed"] = parse_speed(args.speed)
    if args.replay:
        overrides["replay"] = parse_replay(args.replay)
    if args.strategy is not None or args.strategy_param:
        overrides["strategy"] = strategy_override(args, file_values.get("strategy"))
    return build_config(file_values, overrides)


def strategy_override(args: argparse.Namespace, from_file: Any) -> StrategySpec:
    """``--strategy``/``--strategy-param`` laid over the config file's ``[strategy]``."""
    try:
        params = dict(parse_param(item) for item in args.strategy_param)
    except StrategyError as exc:
        raise ConfigError(f"strategy-param: {exc}") from None
    base = strategy_spec_from(from_file) if from_file else StrategySpec.of("ema_cross")
    wrapper = base if base.path == PROCESS else None
    if wrapper is not None:  # the file isolates its strategy: the flags change what it runs
        base = inner_spec(wrapper)
    if args.strategy is not None:  # "" too: an empty name is refused, not ignored
        spec = StrategySpec.of(args.strategy, **params)
    else:
        spec = StrategySpec(path=base.path, members=base.members,
                            params=tuple(sorted({**base.params_dict(), **params}.items())))
    return spec if wrapper is None else attrs.evolve(wrapper, members=((spec, 1.0),))


def configure_logging(level: str, *, json_lines: bool = False,
                      log_dir: str | None = None) -> None:
    """Process-wide logging; see ``supervision.app.logs.configure``."""
    logging_setup.configure(level, json_lines=json_lines, log_dir=log_dir)


def run(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code. ``out`` (default: the current ``sys.stdout``)
    receives the status tables and the summary."""
    out = sys.stdout if out is None else out
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad flag already reported by the parser
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"trade-conductor: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_logging(config.log_level, json_lines=config.log_json, log_dir=config.log_dir)
    stop_requested = threading.Event()
    _install_signal_handlers(stop_requested)
    try:
        system = TradingSystem(config).start()
    except StateStoreError as exc:
        print(f"trade-conductor: error: state database: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConfigError as exc:  # the metrics port cannot be served; nothing was started
        print(f"trade-conductor: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    system.subscribe(log_event)
    started = time.monotonic()
    try:
        with start_frozen():
            _watch(system, config, stop_requested, started, out)
    finally:
        final = system.stop()
    _print_summary(final, time.monotonic() - started, out)
    if config.summary_json and not _write_summary(config.summary_json, final):
        return EXIT_FAILED
    return EXIT_FAILED if final.state == "failed" else EXIT_OK


def _write_summary(path: str, final: SystemStatus) -> bool:
    """Write the final status as JSON (making its folder, like the state database's)."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(jsonable(final.as_dict()), fh, indent=2, default=str)
    except OSError as exc:
        print(f"trade-conductor: error: summary JSON {path!r} not written: {exc.strerror}",
              file=sys.stderr)
        return False
    return True


def log_event(event: object) -> None:
    """One log line per event a person wants to see (runs on an actor's thread, so it only
    formats and logs); failures are errors, refusals by risk only show at DEBUG."""
    text = describe_event(event)
    if text is None:
        return
    fill = getattr(event, "fill", None)
    pair = getattr(event, "pair", None) or (fill.pair if fill is not None else "")
    level = _EVENT_LEVELS.get(type(event), "INFO")
    if isinstance(event, StrategySwapped) and event.error:
        level = "WARNING"
    logger.bind(pair=pair).log(level, text)


_EVENT_LEVELS = {PairRestarted: "WARNING", PairFailed: "ERROR", ServiceRestarted: "WARNING",
                 OrderRejected: "DEBUG", HaltChanged: "WARNING"}


def _install_signal_handlers(stop_requested: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # embedded in a program that owns the signals

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("{} received: stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def _watch(system: TradingSystem, config: SystemConfig, stop_requested: threading.Event,
           started: float, out: TextIO) -> None:
    """Print the status table every ``status_interval`` until the end, a signal or failure."""
    deadline = started + config.duration if config.duration else math.inf
    next_table = started + config.status_interval
    while not stop_requested.is_set() and not system.finished:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_table:
            print(format_table(system.status()), file=out, flush=True)
            print(file=out, flush=True)
            next_table = now + config.status_interval
        # Short waits so a signal is seen promptly; this is a poll of our own loop, not a sync.
        stop_requested.wait(min(0.2, max(0.0, min(deadline, next_table) - now)))


def _print_summary(final: SystemStatus, elapsed: float, out: TextIO) -> None:
    print("final status:", final.state + (f" ({final.error})" if final.error else ""), file=out)
    print(format_table(final), file=out)
    trades = sum(p.trades for p in final.pairs)
    ticks = sum(p.ticks for p in final.pairs)
    rejections = ", ".join(f"{k}={v}" for k, v in final.rejections) or "none"
    print(f"round trips {trades}, realized PnL {final.realized_pnl:+,.2f} {final.quote}, "
          f"equity {final.equity:,.2f} {final.quote}, ticks processed {ticks} in {elapsed:.1f} s"
          f" ({ticks / max(elapsed, 1e-9):,.0f}/s), risk rejections: {rejections}",
          file=out, flush=True)
