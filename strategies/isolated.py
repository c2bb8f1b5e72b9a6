"""Process isolation: a pair's strategy evaluated in a child process of its own.

``ProcessStrategy`` is a ``Strategy`` to the orchestrator and a proxy underneath: it starts a
fresh interpreter (``subprocess`` with ``sys.executable``, never a fork of this threaded
process), builds the real strategy there from its spec, and forwards every tick over a
socket pair, waiting for the signal with a timeout. While the pair's thread waits on the
socket it does not hold the GIL, so a strategy that burns CPU in pure Python slows only its
own pair: the other pairs keep their latency (see README, "Strategy isolation").

The child is started with ``subprocess`` rather than ``multiprocessing``: the "spawn" and
"forkserver" start methods re-import the parent's ``__main__`` module in the child, which for
an embedding script without a ``__main__`` guard would start a second trading system, and for
``python -m supervision.main`` costs an extra 0.4 s of imports. Here the child imports this
module, the registry and the strategy's own module, nothing else.

Wire format (framed by ``multiprocessing.connection.Connection``): a tick travels as one
struct-packed frame of its fields (57 bytes for a 9-character pair), about 9 µs cheaper per
tick than a pickled ``MarketTick``; a decision comes back as one byte (signal and warm flag).
Warm-up history travels as one pickled batch.

Threads: ``on_tick``, ``feed_price``, ``on_price`` and ``warm_up`` run on the owning pair's
thread; ``close`` may be called from any thread (the supervisor closes the strategy of a
pair it replaces while that pair's thread is stuck waiting on the child).

Failure semantics, each raising ``StrategyProcessError`` after the child has been killed and
reaped (so the pair's actor crashes and the supervisor restarts it with a new child):
- the child exits or is killed (a crash in C code, ``os._exit``, the OOM killer);
- the child does not answer within ``timeout_s`` (a hung strategy);
- the strategy raises (the child's traceback is chained as the cause).
``close`` kills the child (SIGTERM, then SIGKILL) and reaps it; it is idempotent, and a
finalizer does the same when a proxy is garbage collected or the interpreter exits.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
import weakref
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any

import attrs

from actors.messages import MarketTick, Side, Signal, StrategySpec
from strategies.base import Strategy, StrategyError, float_between, one_of

ISOLATIONS = ("thread", "process")
"""Where a pair's strategy runs: on the pair's own thread (default) or in its own process."""

PROCESS = "process"
"""The wrapper spec's path: ``StrategySpec(path="process", members=((inner, 1.0),))``."""

_SIGNALS = (Signal.HOLD, Signal.BUY, Signal.SELL)
_SIGNAL_CODE = {signal: code for code, signal in enumerate(_SIGNALS)}
_WARM_BIT = 4
_SIDES = (None, Side.BUY, Side.SELL)
_SIDE_CODE = {side: code for code, side in enumerate(_SIDES)}

# op, ts_ms, price, bid, ask, amount, recv_ns, side; the pair's UTF-8 bytes follow.
_TICK = struct.Struct("<cqddddqB")
_PRICE = struct.Struct("<cd")
_OP_TICK, _OP_FEED, _OP_PRICE, _OP_WARM = b"T", b"F", b"P", b"W"
_READY, _ERROR = ord("R"), ord("E")

_KILL_WAIT_S = 1.0
"""How long a SIGTERM gets before SIGKILL."""


class StrategyProcessError(RuntimeError):
    """The strategy's process died, did not answer in time, or its strategy raised (then
    ``remote_kind`` and ``remote_message`` say what it raised)."""

    def __init__(self, message: str, remote_kind: str = "", remote_message: str = "") -> None:
        super().__init__(message)
        self.remote_kind = remote_kind
        self.remote_message = remote_message


class RemoteStrategyError(Exception):
    """The exception raised inside the strategy's process, as its formatted traceback."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _timeout_zero(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value != 0:
        raise StrategyError(
            f"{attribute.name}={value!r} is invalid: the isolated strategy aggregates candles "
            "itself; set timeframe_s on the inner strategy")


_seconds = float_between(0.0, math.inf, low_open=True, high_open=True)


PRIORITIES = ("normal", "low", "idle")


@attrs.frozen(kw_only=True)
class ProcessParams:
    timeout_s: float = attrs.field(default=3.0, validator=_seconds)
    """Longest wait for one decision; a child slower than this is taken as hung. Below the
    watchdog's 5 s heartbeat timeout, so the pair reports the clearer error."""
    start_timeout_s: float = attrs.field(default=30.0, validator=_seconds)
    """Longest wait for the child to start and build the strategy, and for a warm-up."""
    priority: str = attrs.field(default="normal", validator=one_of(*PRIORITIES))
    """The child's CPU priority: ``normal`` (as this process), ``low`` (nice 19) or ``idle``
    (Linux ``SCHED_IDLE``: it runs only on a core nothing else wants, and any pair's thread
    that wakes up takes the core from it at once). Below normal, the other pairs keep their
    latency even when the cores are all busy, and the isolated pair pays: on a saturated
    machine an ``idle`` child can starve until ``timeout_s`` declares it hung."""
    timeframe_s: float = attrs.field(default=0.0, validator=_timeout_zero)


def isolated(inner: StrategySpec, **params: Any) -> StrategySpec:
    """The spec that runs ``inner`` in its own process, e.g.
    ``isolated(StrategySpec.of("ema_cross", fast=12))``; ``params``: ``timeout_s``,
    ``start_timeout_s``."""
    return StrategySpec(path=PROCESS, params=tuple(sorted(params.items())),
                        members=((inner, 1.0),))


def inner_spec(spec: StrategySpec) -> StrategySpec:
    """The strategy a ``process`` spec isolates; the message says what a valid one is."""
    if len(spec.members) != 1:
        raise StrategyError(
            f"{PROCESS!r} isolates exactly one strategy: members=((inner_spec, 1.0),); got "
            f"{len(spec.members)} members (isolate an aggregate to run several in one process)")
    inner = spec.members[0][0]
    if inner.path == PROCESS:
        raise StrategyError(f"{PROCESS!r} cannot isolate another {PROCESS!r} strategy")
    return inner


class ProcessStrategy(Strategy):
    """A strategy built and evaluated in a child process; see the module docstring.

    Construction starts the child and waits (up to ``start_timeout_s``) until it has built
    the strategy; a spec the child cannot build raises ``StrategyError`` with the child's
    message, and the child is gone.
    """

    name = PROCESS
    Params = ProcessParams

    def __init__(self, inner: StrategySpec, **params: Any) -> None:
        super().__init__(**params)
        self.inner = inner
        self._timeout_ms = max(1, round(self.params.timeout_s * 1000))
        self._start_timeout_ms = max(1, round(self.params.start_timeout_s * 1000))
        self._warm_flag = False
        self._pair = ""
        self._pair_bytes = b""
        self._child = _Child.start()
        # Killed and reaped when this proxy is collected or the interpreter exits, whoever
        # forgot to close it (the threadless runtime never closes its strategies).
        self._finalizer = weakref.finalize(self, self._child.close)
        try:
            reply = self._exchange(pickle.dumps((inner, self.params.priority)),
                                   self._start_timeout_ms, "start")
        except StrategyProcessError as exc:
            # The child could not build what the parent validated: say why, as a bad spec.
            if exc.remote_kind == StrategyError.__name__:
                raise StrategyError(exc.remote_message) from exc.__cause__
            raise StrategyError(f"{PROCESS}: {exc}") from exc.__cause__
        if reply[0] != _READY:
            self.close()
            raise StrategyProcessError(f"unexpected first answer {reply[:16]!r}")
        # Our own child, over a private socket: pickle is safe here.
        description, warmup, warm = pickle.loads(reply[1:])  # noqa: S301
        self._description: str = str(description)
        self._warmup: int = int(warmup)
        self._warm_flag = bool(warm)

    # -- the Strategy contract, forwarded ----------------------------------------------------

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._child.process.pid

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self._child.process

    @property
    def warmup(self) -> int:
        return self._warmup

    @property
    def is_warm(self) -> bool:
        return self._warm_flag

    def on_tick(self, tick: MarketTick) -> Signal:
        pair = tick.pair
        if pair != self._pair:
            self._pair, self._pair_bytes = pair, pair.encode()
        frame = _TICK.pack(_OP_TICK, tick.ts_ms, tick.price, tick.bid, tick.ask, tick.amount,
                           tick.recv_ns, _SIDE_CODE[tick.side]) + self._pair_bytes
        return self._signal(self._exchange(frame, self._timeout_ms, "tick"))

    def feed_price(self, price: float) -> Signal:
        return self._signal(self._exchange(_PRICE.pack(_OP_FEED, price), self._timeout_ms,
                                           "price"))

    def on_price(self, price: float) -> Signal:
        return self._signal(self._exchange(_PRICE.pack(_OP_PRICE, price), self._timeout_ms,
                                           "price"))

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        """All of the history in one message; the child feeds it to the strategy."""
        batch = [(t.pair, t.ts_ms, t.price, t.bid, t.ask, t.amount, _SIDE_CODE[t.side],
                  t.recv_ns) for t in ticks]
        # Sent even when empty: a strategy may take its warm_up call as "live from now".
        self._signal(self._exchange(_OP_WARM + pickle.dumps(batch, 5), self._start_timeout_ms,
                                    "warm-up"))

    def describe(self) -> str:
        """``process(ema_cross(fast=10, slow=30))``, with the timeouts where not default."""
        shown = [f"{f.name}={_show(getattr(self.params, f.name))}"
                 for f in attrs.fields(ProcessParams)
                 if f.name != "timeframe_s" and getattr(self.params, f.name) != f.default]
        head = f"{', '.join(shown)}; " if shown else ""
        return f"{self.name}({head}{self._description})"

    def close(self) -> None:
        """Kill and reap the child; safe from any thread, and more than once."""
        self._child.close()

    @property
    def closed(self) -> bool:
        return self._child.closed

    # -- internals -----------------------------------------------------------------------------

    def _signal(self, reply: bytes) -> Signal:
        if len(reply) != 1:
            self.close()
            raise StrategyProcessError(f"{self.inner.path}: unexpected answer {reply[:16]!r}")
        code = reply[0]
        self._warm_flag = bool(code & _WARM_BIT)
        return _SIGNALS[code & 3]

    def _exchange(self, frame: bytes, timeout_ms: int, what: str) -> bytes:
        """Send one frame and wait for its answer; on any failure kill the child and raise."""
        child = self._child
        with child.lock:
            if child.closed:
                raise StrategyProcessError(f"{self.inner.path}: the strategy's process was "
                                           "closed")
            try:
                child.conn.send_bytes(frame)
                if not child.poller.poll(timeout_ms):
                    child.shutdown()
                    raise StrategyProcessError(
                        f"{self.inner.path}: the strategy's process (pid {child.process.pid}) "
                        f"did not answer a {what} within {timeout_ms / 1000:g} s; killed it")
                reply = child.conn.recv_bytes()
            except (OSError, EOFError):
                code = child.shutdown()
                raise StrategyProcessError(
                    f"{self.inner.path}: the strategy's process (pid {child.process.pid}) "
                    f"{_exit_text(code)} during a {what}") from None
            if reply and reply[0] == _ERROR:
                child.shutdown()
                kind, message, text = pickle.loads(reply[1:])  # noqa: S301 - our child
                raise StrategyProcessError(
                    f"{self.inner.path}: the strategy raised {kind}: {message}", kind, message,
                ) from RemoteStrategyError(text)
            return reply


def _show(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Child:
    """The child process and our end of its socket; ``lock`` serialises calls."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.lock = threading.Lock()
        self.closed = False
        self._reap_lock = threading.Lock()
        self.poller = select.poll()
        self.poller.register(conn.fileno(), select.POLLIN)

    @classmethod
    def start(cls) -> _Child:
        ours, theirs = socket.socketpair()
        try:
            # A fresh interpreter with this process's import path: it imports this module and
            # the strategy's, nothing of the parent's __main__.
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and code
                [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(process, Connection(ours.detach()))

    def shutdown(self) -> int | None:
        """Kill, reap and close (the caller holds ``lock``); returns the exit code."""
        self.closed = True
        code = self.kill()
        self.conn.close()
        return code

    def kill(self) -> int | None:
        """SIGTERM, SIGKILL after ``_KILL_WAIT_S``, then reap; any thread, idempotent."""
        process = self.process
        with self._reap_lock:
            if process.poll() is None:
                # It may have exited on its own just before (our end closed, an error).
                try:
                    process.wait(0.02)
                except subprocess.TimeoutExpired:
                    process.terminate()
                    try:
                        process.wait(_KILL_WAIT_S)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            return process.returncode

    def close(self) -> None:
        if self.lock.acquire(blocking=False):
            try:
                if not self.closed:
                    self.shutdown()
            finally:
                self.lock.release()
            return
        # A call is in flight (perhaps stuck on a hung child): killing the child wakes it
        # with EOF, and it closes the socket itself.
        self.closed = True
        self.kill()


_BOOT = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from strategies.isolated import serve; serve(int(sys.argv[2]))"
)


# -- the child's side -------------------------------------------------------------------------


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
    conn.send_bytes(bytes([_READY]) + pickle.dumps(
        (strategy.describe(), strategy.warmup, strategy.is_warm)))
    decode = _TICK.unpack_from
    size = _TICK.size
    codes = _SIGNAL_CODE
    while True:
        try:
            frame = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent closed us or died: nothing to clean up
        try:
            op = frame[:1]
            if op == _OP_TICK:
                _, ts_ms, price, bid, ask, amount, recv_ns, side = decode(frame)
                signal_ = strategy.on_tick(MarketTick(
                    pair=frame[size:].decode(), ts_ms=ts_ms, price=price, bid=bid, ask=ask,
                    amount=amount, side=_SIDES[side], recv_ns=recv_ns))
            elif op == _OP_FEED:
                signal_ = strategy.feed_price(_PRICE.unpack(frame)[1])
            elif op == _OP_PRICE:
                signal_ = strategy.on_price(_PRICE.unpack(frame)[1])
            elif op == _OP_WARM:
                strategy.warm_up(MarketTick(pair=p, ts_ms=ts, price=pr, bid=b, ask=a, amount=am,
                                            side=_SIDES[s], recv_ns=r)
                                 for p, ts, pr, b, a, am, s, r in pickle.loads(frame[1:])  # noqa: S301
                                 )
                signal_ = Signal.HOLD
            else:
                raise StrategyProcessError(f"unknown frame {frame[:16]!r}")
        except Exception as exc:  # noqa: BLE001 - reported; the parent kills this process
            _send_error(conn, exc)
            return
        conn.send_bytes(bytes([codes[signal_] | (_WARM_BIT if strategy.is_warm else 0)]))


def _lower_priority(priority: str) -> None:
    if priority == "low":
        os.nice(19)
    elif priority == "idle":
        if not hasattr(os, "SCHED_IDLE"):
            raise StrategyError("priority='idle' needs Linux (SCHED_IDLE); use 'low'")
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _build(spec: StrategySpec) -> Strategy:
    from strategies.registry import build_strategy

    return build_strategy(spec)


def _send_error(conn: Connection, exc: Exception) -> None:
    text = "".join(traceback.format_exception(exc))
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        conn.send_bytes(bytes([_ERROR]) + pickle.dumps((type(exc).__name__, str(exc), text)))


__all__ = ["ISOLATIONS", "PROCESS", "ProcessStrategy", "RemoteStrategyError",
           "StrategyProcessError", "inner_spec", "isolated", "serve"]
