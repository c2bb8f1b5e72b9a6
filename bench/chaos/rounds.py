"""The chaos driver: the real program, killed at random moments while the exchange fails.

Each round starts ``python -m supervision.main`` as a process of its own on one state
database, lets it trade, injects the round's faults at their moments, then stops it: SIGKILL
(most rounds) or SIGTERM (a graceful stop). After every round the database is read and
checked (``bench.chaos.checks``); after the last one, a clean run without faults reconciles,
trades a little, stops gracefully, and everything must agree.

Two targets:
- ``live``: ``--live`` against the loopback fake Binance (``tests.fake_exchange``) in this
  process. Its ledger outlives every kill, which is what the database is checked against.
  A thread of this process moves its prices and prints public trades (the system's
  websocket feed); the strategy is a fast EMA cross, so orders are frequent.
- ``paper``: the simulator and paper exchange. The paper exchange dies with the process, so
  the database is checked against its own fills.

The state store is a parameter (``STORES``): each entry says where a run keeps its state and
how to read it back.

Runs on the caller's thread (plus the fake's loop and the price thread); every wait is
bounded. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs

from actors.execution import client_order_id
from actors.state import open_store
from bench.chaos.checks import (
    Database,
    Findings,
    exchange_view,
    live_findings,
    paper_findings,
)
from bench.chaos.plan import Fault, RoundPlan, plan_round
from tests.fake_exchange import FakeBinance, to_toml
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
PAIRS = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0}
API_KEY = "chaosKEY" + "Q7r8S9t0" * 6
SECRET = "chaosSECRET" + "M1n2B3v4" * 6
CLIENT_TIMEOUT_S = 1.0
"""ccxt's request timeout in the live rounds (a held reply outlasts it)."""
PRICE_EVERY_S = 0.025
EXIT_BAD_INPUT = 2
"""The program's exit code for a start it refuses (e.g. markets that cannot be loaded)."""
GRACEFUL_WAIT_S = 40.0
"""Longest wait for a SIGTERM'd or clean run to exit by itself before it is killed."""
STRATEGY = {"name": "ema_cross", "params": {"fast": 2, "slow": 5}}
RISK = {"daily_loss_limit": 1.0, "max_drawdown": 1.0}
"""A fast EMA pays its fees on every cross: without these the kill switch would end the
trading (and the test) within a hundred rounds."""


# -- stores ------------------------------------------------------------------------------------


@attrs.frozen
class Store:
    """Where a run keeps its state (the ``state_db`` value) and how to read it back."""

    name: str
    locate: Callable[[Path], str]
    read: Callable[[str], Database]


def read_state(location: str) -> Database:
    """The run's orders, fills and balances, from an SQLite file or a PostgreSQL URL."""
    with open_store(location) as store:
        return Database(orders=tuple(store.orders()), fills=tuple(store.fills()),
                        balances=store.balances(), initial_balances=store.initial_balances())


def postgres_store(server: PostgresServer) -> Store:
    """Runs on a fresh database of ``server`` (a throwaway server on 127.0.0.1)."""
    return Store("postgresql", lambda _run_dir: server.url(server.new_database()), read_state)


def _own_postgres(run_dir: Path) -> str:
    """A database on a server this process starts on first use and destroys at exit."""
    global _SERVER
    if _SERVER is None:
        _SERVER = PostgresServer.start_new(durable=True)
        atexit.register(_SERVER.destroy)
    return postgres_store(_SERVER).locate(run_dir)


_SERVER: PostgresServer | None = None

STORES: dict[str, Store] = {
    "sqlite": Store("sqlite", lambda run_dir: str(run_dir / "state.sqlite"), read_state),
    "postgresql": Store("postgresql", _own_postgres, read_state),
}
"""Every store the suite can run on, by name (``--store``); ``postgresql`` starts Debian's
server in a temporary folder (``tests.postgres_server``), as the tests do."""


# -- targets -----------------------------------------------------------------------------------


class Target(Protocol):
    name: str

    def config(self) -> dict[str, Any]: ...

    def env(self) -> dict[str, str]: ...

    def inject(self, fault: Fault) -> None: ...

    def calm(self) -> None: ...

    def findings(self, db: Database, *, final: bool, graceful: bool) -> Findings: ...

    def figures(self) -> dict[str, int]: ...


class LiveTarget:
    """The fake Binance in this process, its prices moved by a thread of ours."""

    name = "live"

    def __init__(self, seed: int) -> None:
        self.fake = FakeBinance({p: {"price": px} for p, px in PAIRS.items()},
                                {"USDT": 10_000}, API_KEY, SECRET, fee_rate=0.001)
        self._seed = seed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._move_prices, name="chaos-prices",
                                        daemon=True)
        self.injected: Counter[str] = Counter()

    def __enter__(self) -> LiveTarget:
        self.fake.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.fake.stop()

    def _move_prices(self) -> None:
        """A random walk per pair: the book and one public trade each step."""
        rng = random.Random(self._seed)
        prices = dict(PAIRS)
        while not self._stop.wait(PRICE_EVERY_S):
            for pair, last in prices.items():
                price = prices[pair] = round(max(last * (1 + rng.gauss(0, 0.002)), 1.0), 2)
                with contextlib.suppress(RuntimeError, TimeoutError):
                    self.fake.set_price(pair, price, spread=0.02)
                    self.fake.trade(pair, price, 0.01, rng.choice(("buy", "sell")))

    def config(self) -> dict[str, Any]:
        ccxt = {k: v for k, v in self.fake.ccxt_config(timeout=int(CLIENT_TIMEOUT_S * 1000))
                .items() if k not in ("apiKey", "secret")}
        return {"exchange": {"id": "binance", "live": True, "ccxt": ccxt,
                             "retry_initial_s": 0.05, "retry_max_s": 0.5, "order_retries": 5,
                             "reconnect_initial_s": 0.05, "reconnect_max_s": 0.5}}

    def env(self) -> dict[str, str]:
        return {"CONDUCTOR_BINANCE_API_KEY": API_KEY, "CONDUCTOR_BINANCE_SECRET": SECRET}

    def inject(self, fault: Fault) -> None:
        self.injected[fault.kind] += 1
        with contextlib.suppress(RuntimeError, TimeoutError):
            self.fake.inject(fault.kind, fault.path, fault.times, method=fault.method,
                             **fault.options)

    def calm(self) -> None:
        self.fake.clear_faults()

    def findings(self, db: Database, *, final: bool, graceful: bool) -> Findings:
        fake = self.fake
        exchange = exchange_view(fake.orders(), fake.my_trades(), fake.balances(),
                                 fake.requests)
        ids = {o.order_id: client_order_id(o.order_id, "binance") for o in db.orders}
        return live_findings(db, exchange, ids, final=final, graceful=graceful)

    def figures(self) -> dict[str, int]:
        return {"exchange orders": len(self.fake.orders()),
                "exchange trades": len(self.fake.my_trades()),
                **{f"faults {k}": n for k, n in sorted(self.injected.items())}}


class PaperTarget:
    """The simulator and the paper exchange, inside the system's process."""

    name = "paper"

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def __enter__(self) -> PaperTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {"exchange": {"id": "sim"}, "seed": self._seed, "speed": 20}

    def env(self) -> dict[str, str]:
        return {}

    def inject(self, fault: Fault) -> None:
        raise ValueError(f"the paper exchange takes no exchange faults ({fault.kind})")

    def calm(self) -> None:
        pass

    def findings(self, db: Database, *, final: bool, graceful: bool) -> Findings:
        return paper_findings(db, final=final or graceful)

    def figures(self) -> dict[str, int]:
        return {}


TARGETS: dict[str, Callable[[int], Any]] = {"live": LiveTarget, "paper": PaperTarget}


# -- running -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RoundResult:
    plan: RoundPlan
    findings: Findings
    exit_code: int | None
    """The process's exit code; None where it was still running when stopped."""
    orders: int
    fills: int
    seconds: float


@attrs.frozen(kw_only=True)
class SuiteResult:
    target: str
    store: str
    seed: int
    rounds: tuple[RoundResult, ...]
    final: Findings
    final_exit_code: int | None
    orders: int
    fills: int
    seconds: float
    figures: dict[str, int]
    run_dir: str

    @property
    def ok(self) -> bool:
        return (self.final.ok and self.final_exit_code == 0
                and all(r.findings.ok for r in self.rounds))


class Suite:
    """One chaos run on one target and one store; ``run()`` returns its result."""

    def __init__(self, target: str, store: str | Store, *, rounds: int, seed: int,
                 run_dir: Path,
                 longest_s: float, final_s: float,
                 say: Callable[[str], None] = print) -> None:
        if target not in TARGETS:
            raise ValueError(f"target {target!r}: valid targets are {', '.join(TARGETS)}")
        if isinstance(store, str) and store not in STORES:
            raise ValueError(f"store {store!r}: valid stores are {', '.join(STORES)}")
        self.target_name = target
        self.store = STORES[store] if isinstance(store, str) else store
        self.rounds = rounds
        self.seed = seed
        self.run_dir = run_dir
        self.longest_s = longest_s
        self.final_s = final_s
        self.say = say
        self.state_db = self.store.locate(run_dir)
        self.early_terms = 0
        """SIGTERMs that came while the process was still loading (see ``_round``)."""
        self.refused_starts = 0
        """Rounds whose process refused to start (exit 2: a fault hit the market load)."""

    def run(self) -> SuiteResult:
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with TARGETS[self.target_name](self.seed) as target:
            config = self.run_dir / "chaos.toml"
            config.write_text(to_toml({
                "pairs": list(PAIRS), "state_db": self.state_db, "warmup_ticks": 10,
                "strategy": STRATEGY, "risk": RISK, **target.config()}))
            results = []
            for index in range(1, self.rounds + 1):
                plan = plan_round(self.seed, index, live=target.name == "live",
                                  longest_s=self.longest_s, client_timeout_s=CLIENT_TIMEOUT_S)
                result = self._round(target, config, plan)
                results.append(result)
                verdict = "ok" if result.findings.ok else "DIFFERENCES"
                self.say(f"{target.name} round {index}/{self.rounds}: {plan.describe()}; "
                         f"exit {_code(result.exit_code)}; {result.orders} orders, "
                         f"{result.fills} fills: {verdict}")
                for line in result.findings.lines():
                    self.say(f"    {line}")
            target.calm()
            code, db = self._clean_run(target, config)
            final = target.findings(db, final=True, graceful=True)
            self.say(f"{target.name} clean run: exit {_code(code)}; {len(db.orders)} orders, "
                     f"{len(db.fills)} fills: {'ok' if final.ok else 'DIFFERENCES'}")
            for line in final.lines():
                self.say(f"    {line}")
            return SuiteResult(
                target=target.name, store=self.store.name, seed=self.seed,
                rounds=tuple(results), final=final, final_exit_code=code,
                orders=len(db.orders), fills=len(db.fills),
                seconds=time.monotonic() - started,
                figures={**target.figures(), "SIGTERM while loading": self.early_terms,
                         "starts refused (exit 2)": self.refused_starts},
                run_dir=str(self.run_dir))

    def _round(self, target: Target, config: Path, plan: RoundPlan) -> RoundResult:
        started = time.monotonic()
        with self._process(target, config, f"round-{plan.index:03d}") as proc:
            wake = threading.Event()
            for fault in plan.faults:
                wake.wait(max(0.0, started + fault.at_s - time.monotonic()))
                target.inject(fault)
            wake.wait(max(0.0, started + plan.stop_after_s - time.monotonic()))
            code = proc.poll()
            stopped_itself = code is not None
            if code is None:
                if plan.graceful:
                    proc.send_signal(signal.SIGTERM)
                    code = _wait(proc, GRACEFUL_WAIT_S)
                else:
                    proc.kill()
                    code = proc.wait(10)
        target.calm()
        db = self.store.read(self.state_db)
        # Python's default action ends a process SIGTERM'd while it is still importing, before
        # the CLI takes the signal over; that happens before anything is opened, so there is
        # nothing to settle, and the checks below still run.
        early = plan.graceful and code == -signal.SIGTERM
        refused = code == EXIT_BAD_INPUT
        findings = target.findings(db, final=False, graceful=plan.graceful and code is not None
                                   and not early and not refused)
        if refused:
            # The documented refusal to start: a fault hit the market load (with or without
            # a SIGTERM meanwhile); nothing was opened.
            self.refused_starts += 1
        elif stopped_itself:
            findings = _with(findings, "exit", f"exited {code} by itself before the stop")
        elif early:
            self.early_terms += 1
        elif plan.graceful and code not in (0, None):
            findings = _with(findings, "exit", f"graceful stop exited {code}")
        elif plan.graceful and code is None:
            findings = _with(findings, "exit", f"graceful stop still running after "
                                               f"{GRACEFUL_WAIT_S:g} s; killed")
        return RoundResult(plan=plan, findings=findings, exit_code=code, orders=len(db.orders),
                           fills=len(db.fills), seconds=time.monotonic() - started)

    def _clean_run(self, target: Target, config: Path) -> tuple[int | None, Database]:
        with self._process(target, config, "clean", duration=self.final_s) as proc:
            code = _wait(proc, self.final_s + GRACEFUL_WAIT_S)
        return code, self.store.read(self.state_db)

    @contextlib.contextmanager
    def _process(self, target: Target, config: Path, name: str,
                 duration: float | None = None) -> Iterator[subprocess.Popen[bytes]]:
        args = [sys.executable, "-m", "supervision.main", "--config", str(config),
                "--log-dir", str(self.run_dir / "logs"), "--status-interval", "3600"]
        if duration is not None:
            args += ["--duration", f"{duration:g}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
        env.update(target.env())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
        with open(self.run_dir / f"{name}.out", "wb") as out:
            proc = subprocess.Popen(args, cwd=self.run_dir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return None


def _with(findings: Findings, name: str, line: str) -> Findings:
    merged = dict(findings.by_check)
    merged[name] = (*merged.get(name, ()), line)
    return Findings(merged)


def _code(code: int | None) -> str:
    if code is None:
        return "hung"
    return f"{code} (killed)" if code == -signal.SIGKILL else str(code)
