"""Process isolation: a pair's strategy evaluated in a child process of its own.

``ProcessStrategy`` is a ``Strategy`` to the orchestrator and a proxy underneath: it starts a
fresh interpreter (``subprocess`` with ``sys.executable``, never a fork of this threaded
process), builds the real strategy there from its spec, and forwards every tick over a
socket pair, waiting for the signal with a timeout. While the pair's thread waits on the
socket it does not hold the GIL, so a strategy that burns CPU in pure Python slows only its
own pair: the other pairs keep their latency (see docs/strategy-isolation.md).

The child is started with ``subprocess`` rather than ``multiprocessing``: the "spawn" and
"forkserver" start methods re-import the parent's ``__main__`` module in the child, which for
an embedding script without a ``__main__`` guard would start a second trading system, and for
``python -m supervision.main`` costs an extra 0.4 s of imports. Here the child imports this
child's module (``strategies.isolated_child``), the registry and the strategy's own module,
nothing else.

Wire format (framed by ``multiprocessing.connection.Connection``): a tick travels as one
struct-packed frame of its fields (50 bytes and the pair's name), about 9 µs cheaper per
tick than a pickled ``MarketTick``; a decision comes back as one byte (signal and warm flag).
Warm-up history travels as one pickled batch.

Threads: construction and ``warm_up`` run where the strategy is built (the supervisor's
thread, or the pair's on a swap) and never wait for the child; ``on_tick``, ``feed_price``
and ``on_price`` run on the owning pair's thread and wait; ``close`` may be called from any
thread (the supervisor closes the strategy of a pair it replaces while that pair's thread
is stuck waiting on the child). A lock serialises the socket between them.

Failure semantics, each raising ``StrategyProcessError`` after the child has been killed and
reaped (so the pair's actor crashes and the supervisor restarts it with a new child):
- the child exits or is killed (a crash in C code, ``os._exit``, the OOM killer);
- the child does not answer within ``timeout_s`` (a hung strategy), or does not start, build
  the strategy and take its warm-up within ``start_timeout_s``;
- the strategy raises, or cannot be built in the child (the child's traceback is chained as
  the cause).
``close`` kills the child (SIGTERM, then SIGKILL) and reaps it; it is idempotent, and a
finalizer does the same when a proxy is garbage collected or the interpreter exits.
"""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import weakref
from collections import deque
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any, NoReturn

import attrs

from actors import cpus
from actors.messages import MarketTick, Signal, StrategySpec
from strategies.base import Strategy, StrategyError, float_between, one_of
from strategies.isolated_wire import (
    ERROR,
    OP_FEED,
    OP_PRICE,
    OP_TICK,
    OP_WARM,
    PRICE,
    SIDE_CODE,
    SIGNALS,
    TICK,
    WARM_BIT,
)

ISOLATIONS = ("thread", "process")
"""Where a pair's strategy runs: on the pair's own thread (default) or in its own process."""

PROCESS = "process"
"""The wrapper spec's path: ``StrategySpec(path="process", members=((inner, 1.0),))``."""

_KILL_WAIT_S = 1.0
"""How long a SIGTERM gets before SIGKILL."""


class StrategyProcessError(RuntimeError):
    """The strategy's process died, did not answer in time, or its strategy raised (then
    the child's traceback is the cause, a ``RemoteStrategyError``)."""


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

    Construction and ``warm_up`` do not wait for the child: they send it the spec and the
    history and return, so a supervisor starting many isolated pairs starts their children
    side by side (each takes about 0.3 s to import and build). The first call that needs an
    answer (a tick, ``warmup``, ``describe``, ``ready``) waits for those first, up to
    ``start_timeout_s`` each. A spec the child cannot build (it built in the parent, so only
    a different import path does that) fails that first call like any other crash.
    """

    name = PROCESS
    Params = ProcessParams

    def __init__(self, inner: StrategySpec, **params: Any) -> None:
        super().__init__(**params)
        self.inner = inner
        self._timeout_ms = max(1, round(self.params.timeout_s * 1000))
        self._start_timeout_ms = max(1, round(self.params.start_timeout_s * 1000))
        self._warm_flag = False
        self._description: str | None = None
        self._warmup = 0
        self._failure = ""
        self._owed: deque[tuple[str, int]] = deque()
        """Frames sent whose answers have not been read yet: (what, timeout in ms)."""
        self._pair = ""
        self._pair_bytes = b""
        self._child = _Child.start()
        # Killed and reaped when this proxy is collected or the interpreter exits, whoever
        # forgot to close it (the threadless runtime never closes its strategies).
        self._finalizer = weakref.finalize(self, self._child.close)
        with self._child.lock:
            self._send(pickle.dumps((inner, self.params.priority)), "start",
                       self._start_timeout_ms)

    # -- the Strategy contract, forwarded ----------------------------------------------------

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._child.process.pid

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self._child.process

    def ready(self) -> None:
        """Wait until the child has built the strategy and taken the warm-up sent so far.

        Raises:
            StrategyProcessError: it could not, or did not within ``start_timeout_s``.
        """
        with self._child.lock:
            self._receive()

    @property
    def warmup(self) -> int:
        self.ready()
        return self._warmup

    @property
    def is_warm(self) -> bool:
        """As of the last answer (False until the child has answered)."""
        return self._warm_flag

    def on_tick(self, tick: MarketTick) -> Signal:
        pair = tick.pair
        if pair != self._pair:
            self._pair, self._pair_bytes = pair, pair.encode()
        frame = TICK.pack(OP_TICK, tick.ts_ms, tick.price, tick.bid, tick.ask, tick.amount,
                           tick.recv_ns, SIDE_CODE[tick.side]) + self._pair_bytes
        return self._call(frame, "tick")

    def feed_price(self, price: float) -> Signal:
        return self._call(PRICE.pack(OP_FEED, price), "price")

    def on_price(self, price: float) -> Signal:
        return self._call(PRICE.pack(OP_PRICE, price), "price")

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        """All of the history in one message, not waited for (see the class docstring)."""
        batch = [(t.pair, t.ts_ms, t.price, t.bid, t.ask, t.amount, SIDE_CODE[t.side],
                  t.recv_ns) for t in ticks]
        # Sent even when empty: a strategy may take its warm_up call as "live from now".
        with self._child.lock:
            self._send(OP_WARM + pickle.dumps(batch, 5), "warm-up", self._start_timeout_ms)

    def describe(self) -> str:
        """``process(ema_cross(fast=10, slow=30))``, with the params that are not default.
        Never raises: the pair's actor shows it when it starts, where an exception would
        stop the actor silently; a child that failed says so here and on its next tick."""
        shown = [f"{f.name}={_show(getattr(self.params, f.name))}"
                 for f in attrs.fields(ProcessParams)
                 if f.name != "timeframe_s" and getattr(self.params, f.name) != f.default]
        head = f"{', '.join(shown)}; " if shown else ""
        if self._description is None:
            with contextlib.suppress(StrategyProcessError):
                self.ready()
        inner = self._description or f"{self.inner.path}: not running"
        return f"{self.name}({head}{inner})"

    def close(self) -> None:
        """Kill and reap the child; safe from any thread, and more than once."""
        self._child.close()

    @property
    def closed(self) -> bool:
        return self._child.closed

    # -- internals (the caller holds the child's lock) -----------------------------------------

    def _call(self, frame: bytes, what: str) -> Signal:
        with self._child.lock:
            self._send(frame, what, self._timeout_ms)
            reply = self._receive()
        code = reply[0]
        self._warm_flag = bool(code & WARM_BIT)
        return SIGNALS[code & 3]

    def _send(self, frame: bytes, what: str, timeout_ms: int) -> None:
        child = self._child
        if child.closed:
            after = f" after: {self._failure}" if self._failure else ""
            raise StrategyProcessError(f"{self.inner.path}: the strategy's process was "
                                       f"closed{after}")
        try:
            child.conn.send_bytes(frame)
        except OSError:
            self._fail(f"{_exit_text(child.shutdown())} before a {what}")
        self._owed.append((what, timeout_ms))

    def _receive(self) -> bytes:
        """Read every answer owed, in order; the last one. Any failure kills the child."""
        child = self._child
        reply = b""
        while self._owed:
            what, timeout_ms = self._owed[0]
            try:
                if not child.poller.poll(timeout_ms):
                    child.shutdown()
                    self._fail(f"did not answer a {what} within {timeout_ms / 1000:g} s; "
                               "killed it")
                reply = child.conn.recv_bytes()
            except (OSError, EOFError):
                self._fail(f"{_exit_text(child.shutdown())} during a {what}")
            self._owed.popleft()
            if reply[0] == ERROR:
                child.shutdown()
                kind, message, text = pickle.loads(reply[1:])  # noqa: S301 - our child
                self._fail(f"raised {kind} during a {what}: {message}", text)
            if what == "start":
                # Our own child, over a private socket: pickle is safe here.
                description, warmup, warm = pickle.loads(reply[1:])  # noqa: S301
                self._description, self._warmup = str(description), int(warmup)
                self._warm_flag = bool(warm)
            elif len(reply) == 1:
                self._warm_flag = bool(reply[0] & WARM_BIT)
        return reply

    def _fail(self, what: str, remote_traceback: str = "") -> NoReturn:
        pid = self._child.process.pid
        self._failure = f"{self.inner.path}: the strategy's process (pid {pid}) {what}"
        self._owed.clear()
        error = StrategyProcessError(self._failure)
        if remote_traceback:
            raise error from RemoteStrategyError(remote_traceback)
        raise error from None


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
        cpus.release_child(process.pid)  # not on trading's CPUs (``[api] cpus``)
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
    "from strategies.isolated_child import serve; serve(int(sys.argv[2]))"
)


__all__ = ["ISOLATIONS", "PROCESS", "ProcessStrategy", "RemoteStrategyError",
           "StrategyProcessError", "inner_spec", "isolated"]
