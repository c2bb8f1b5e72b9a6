"""The child's side of process isolation: builds the strategy and answers ticks until EOF.

Started by ``ProcessStrategy`` (``strategies.isolated``) in a fresh interpreter that imports
only this module, the registry and the strategy's own module. It imports the registry, which
imports the parent's module; the parent imports neither, so the two sides share no import
circle.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import traceback
from multiprocessing.connection import Connection

from actors.messages import MarketTick, Signal, StrategySpec
from strategies.base import Strategy, StrategyError
from strategies.isolated import StrategyProcessError
from strategies.isolated_wire import (
    ERROR,
    OP_FEED,
    OP_PRICE,
    OP_TICK,
    OP_WARM,
    PRICE,
    READY,
    SIDES,
    SIGNAL_CODE,
    TICK,
    WARM_BIT,
)
from strategies.registry import build_strategy


def serve(fd: int) -> None:
    """The child's main loop: build the strategy, then answer frames until EOF."""
    # Ctrl-C reaches the whole process group; the parent shuts down gracefully and then
    # closes this child, which must not die first and crash its pair mid-shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    try:
        spec, priority = pickle.loads(conn.recv_bytes())  # noqa: S301 - from our parent
        _lower_priority(priority)
        strategy = _build(spec)
    except EOFError:
        return
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent
        _send_error(conn, exc)
        return
    conn.send_bytes(bytes([READY]) + pickle.dumps(
        (strategy.describe(), strategy.warmup, strategy.is_warm)))
    decode = TICK.unpack_from
    size = TICK.size
    codes = SIGNAL_CODE
    while True:
        try:
            frame = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent closed us or died: nothing to clean up
        try:
            op = frame[:1]
            if op == OP_TICK:
                _, ts_ms, price, bid, ask, amount, recv_ns, side = decode(frame)
                signal_ = strategy.on_tick(MarketTick(
                    pair=frame[size:].decode(), ts_ms=ts_ms, price=price, bid=bid, ask=ask,
                    amount=amount, side=SIDES[side], recv_ns=recv_ns))
            elif op == OP_FEED:
                signal_ = strategy.feed_price(PRICE.unpack(frame)[1])
            elif op == OP_PRICE:
                signal_ = strategy.on_price(PRICE.unpack(frame)[1])
            elif op == OP_WARM:
                strategy.warm_up(MarketTick(pair=p, ts_ms=ts, price=pr, bid=b, ask=a, amount=am,
                                            side=SIDES[s], recv_ns=r)
                                 for p, ts, pr, b, a, am, s, r in pickle.loads(frame[1:])  # noqa: S301
                                 )
                signal_ = Signal.HOLD
            else:
                raise StrategyProcessError(f"unknown frame {frame[:16]!r}")
        except Exception as exc:  # noqa: BLE001 - reported; the parent kills this process
            _send_error(conn, exc)
            return
        conn.send_bytes(bytes([codes[signal_] | (WARM_BIT if strategy.is_warm else 0)]))


def _lower_priority(priority: str) -> None:
    if priority == "low":
        os.nice(19)
    elif priority == "idle":
        if not hasattr(os, "SCHED_IDLE"):
            raise StrategyError("priority='idle' needs Linux (SCHED_IDLE); use 'low'")
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _build(spec: StrategySpec) -> Strategy:
    return build_strategy(spec)


def _send_error(conn: Connection, exc: Exception) -> None:
    text = "".join(traceback.format_exception(exc))
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        conn.send_bytes(bytes([ERROR]) + pickle.dumps((type(exc).__name__, str(exc), text)))


__all__ = ["serve"]
