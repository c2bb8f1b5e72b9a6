"""Embedding trade-conductor in another Python program.

Shows the public API of ``supervision`` end to end: build a config with ``build_config``, run
a ``TradingSystem`` as a context manager, ``subscribe`` to its events (fills, closed trades,
restarts, strategy swaps), print ``format_table`` every couple of seconds, swap ETH/USDT to
``rsi_reversion`` half way through while it trades, then stop and print the final status.
Runs offline on the embedded market simulator and paper exchange, in seconds::

    python examples/embed.py --speed 20 --seconds 10

Event callbacks run on actor threads, so this one only formats a line and queues it; the
main thread prints the lines while it waits for the next table.
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path

from actors.messages import (
    StrategySpec,
)
from supervision import (
    ConfigError,
    SystemStatus,
    TradingSystem,
    build_config,
    describe_event,
    format_table,
)

PAIRS = "BTC/USDT,ETH/USDT"
SWAP_PAIR = "ETH/USDT"
SWAP_TO = StrategySpec.of("rsi_reversion")
TABLE_EVERY_S = 2.0


def watch(system: TradingSystem, seconds: float, lines: queue.Queue[str]) -> None:
    """Print queued event lines and a table every couple of seconds; swap half way."""
    started = time.monotonic()
    deadline = started + seconds
    swap_at: float | None = started + seconds / 2
    next_table = started + TABLE_EVERY_S
    while not system.finished:
        now = time.monotonic()
        if now >= deadline:
            return
        if swap_at is not None and now >= swap_at:
            print(f"-- swapping {SWAP_PAIR} to {SWAP_TO.path}", flush=True)
            system.swap_strategy(SWAP_PAIR, SWAP_TO)
            swap_at = None
        if now >= next_table:
            print(format_table(system.status()), "", sep="\n", flush=True)
            next_table += TABLE_EVERY_S
        wake = min(deadline, next_table, swap_at if swap_at is not None else deadline)
        # Waiting for the next event line doubles as the pause until the next table.
        with suppress(queue.Empty):
            print(lines.get(timeout=max(0.0, wake - now)), flush=True)


def summary(final: SystemStatus, lines: queue.Queue[str]) -> None:
    """The event lines still queued, then the final state, table and totals."""
    while not lines.empty():
        print(lines.get_nowait())
    print(f"final status: {final.state}" + (f" ({final.error})" if final.error else ""))
    print(format_table(final))
    trades = sum(p.trades for p in final.pairs)
    print(f"round trips {trades}, realized PnL {final.realized_pnl:+,.2f} {final.quote}, "
          f"equity {final.equity:,.2f} {final.quote}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns the exit code (0, 1 if the system failed, 2 for bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", default="20",
                        help="simulated seconds per wall second, or 'max' (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="wall-clock seconds to run (default 10)")
    parser.add_argument("--state-db", help="state database: an SQLite file (default: in a temp "
                                           "dir) or a postgresql:// URL")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        state_db = args.state_db or str(
            Path(stack.enter_context(tempfile.TemporaryDirectory())) / "state.sqlite")
        try:
            config = build_config({}, {"pairs": PAIRS, "exchange": "sim", "speed": args.speed,
                                       "state_db": state_db})
        except ConfigError as exc:
            print(f"embed: error: {exc}", file=sys.stderr)
            return 2

        lines: queue.Queue[str] = queue.Queue()

        def on_event(event: object) -> None:
            line = describe_event(event)
            if line is not None:
                lines.put(line)

        system = TradingSystem(config)
        system.subscribe(on_event)  # before start: no early fill is missed
        with system:
            print(f"running {PAIRS} at speed {args.speed} for {args.seconds:g} s, "
                  f"state in {state_db}", flush=True)
            watch(system, args.seconds, lines)
            final = system.stop()  # the with-block would also stop it, e.g. on an exception
        summary(final, lines)
    return 1 if final.state == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
