"""A backtester on the threadless core: the same cores as the actor system, in one thread.

``SyncRuntime`` drives market data validation, the strategy, risk, the paper exchange and the
ledger for every tick in order, with no actors and no waiting, on an in-memory state database.
Replay recorded CSV files (trades or candles, see ``../shared/data/README.md``)::

    python examples/backtest.py --replay BTC/USDT=btc.csv --strategy donchian_breakout \\
        --param timeframe_s=300

or, without ``--replay``, a seeded simulator run of ``--ticks`` ticks::

    python examples/backtest.py --ticks 200000

It prints the figures of the run and the status table. The fills digest shows determinism:
the same input and seed give the same digest on every run and every machine.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import Any

from actors.messages import OrderFilled, StrategySpec
from strategies.base import StrategyError
from strategies.registry import parse_param
from supervision import ConfigError, SystemConfig, build_config, format_table
from supervision.config import parse_replay
from supervision.runtime import SyncRuntime

DEFAULT_SIM_TICKS = 200_000


def parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replay", action="append", default=[], metavar="PAIR=FILE.csv",
                   help="recorded data for PAIR; repeatable (default: the simulator)")
    p.add_argument("--strategy", default="ema_cross",
                   help="built-in name or package.module:ClassName (default ema_cross)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="strategy parameter, repeatable")
    p.add_argument("--ticks", type=int, metavar="N",
                   help="stop after N ticks (default: the whole replay, or 200000 simulated)")
    p.add_argument("--pairs", default="BTC/USDT,ETH/USDT",
                   help="simulated pairs (default BTC/USDT,ETH/USDT; ignored with --replay)")
    p.add_argument("--seed", type=int, default=42, help="simulator seed (default 42)")
    return p


def config_from(args: argparse.Namespace) -> SystemConfig:
    """The run's ``SystemConfig``; raises ``ConfigError`` naming a bad option."""
    try:
        params = dict(parse_param(item) for item in args.param)
    except StrategyError as exc:
        raise ConfigError(f"param: {exc}") from None
    values: dict[str, Any] = {"strategy": StrategySpec.of(args.strategy, **params),
                              "state_db": ":memory:", "seed": args.seed}
    if args.replay:
        values["replay"] = parse_replay(args.replay)
    else:
        values["pairs"] = args.pairs
    return build_config({}, values)


def max_drawdown(equity: list[float]) -> float:
    """Largest fall from a running peak, as a fraction of that peak."""
    peak, worst = 0.0, 0.0
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst


def main(argv: list[str] | None = None) -> int:
    """Run the backtest; returns the exit code (0, or 2 for bad input)."""
    args = parser().parse_args(argv)
    try:
        config = config_from(args)
    except ConfigError as exc:
        print(f"backtest: error: {exc}", file=sys.stderr)
        return 2
    if args.ticks is not None and args.ticks < 1:
        print(f"backtest: error: ticks: {args.ticks} must be >= 1", file=sys.stderr)
        return 2
    limit = args.ticks if args.ticks or config.is_replay else DEFAULT_SIM_TICKS
    events: list[object] = []
    runtime = SyncRuntime(config)
    try:
        runtime.on_event = events.append
        started = time.perf_counter()
        final = runtime.run(max_ticks=limit)
        elapsed = time.perf_counter() - started
        # Equity is stored about once a market minute; the first and last values frame it.
        curve = [config.funding[config.quote],
                 *(e for _, e in runtime.state.store.equity_history()), final.equity]
    finally:
        runtime.close()

    fills = [e.fill for e in events if isinstance(e, OrderFilled)]
    digest = hashlib.sha256(repr([(f.ts_ms, f.side.value, f.price, f.amount)
                                  for f in fills]).encode()).hexdigest()[:16]
    source = (", ".join(f"{p}={path}" for p, path in config.replay) if config.is_replay
              else f"simulator {','.join(config.pairs)} seed {config.seed}")
    print(f"backtest of {source}")
    print(f"strategy     {final.pairs[0].strategy}")
    print(format_table(final))
    print(f"ticks        {final.ticks_accepted}")
    print(f"ticks/s      {final.ticks_accepted / max(elapsed, 1e-9):,.0f} ({elapsed:.2f} s)")
    print(f"fills        {final.fills}")
    print(f"round trips  {sum(p.trades for p in final.pairs)}")
    print(f"realized PnL {final.realized_pnl:+,.2f} {final.quote}")
    print(f"max drawdown {100 * max_drawdown(curve):.2f} %")
    print(f"dropped      {sum(n for _, n in final.ticks_dropped)}")
    if final.halted:
        print(f"halted       {final.halt_reason}")
    print(f"fills digest {digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
