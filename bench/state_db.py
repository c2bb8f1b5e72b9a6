"""The state database: PostgreSQL beside SQLite, through the actors and in the store alone.

PostgreSQL runs on a throwaway server on 127.0.0.1 (``tests.postgres_server``: Debian's
programs, started in a temporary folder, ``fsync`` on as in production; skipped where none
can start). For each backend, on the same data:

- the replay benchmark's 1-pair GBM tape (``bench.replay``) through the actors at full speed:
  ticks per second, fills per second through the state actor, and the group commit's batch
  size (fills per commit, from ``meta.commit_seq``; PostgreSQL's commit waits for the
  server's WAL flush, so the batches grow);
- the latency benchmark's 50 pairs at 20 ticks/s each (``bench.live``): tick -> order
  acknowledgement (the order event) p50 / p99, and tick -> decision p99;
- the store alone: rows per second with a commit per fill, and with 100 fills per commit.

Target (the issue's): through the actors, PostgreSQL at least 0.7x SQLite's replay rate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import attrs

from actors.messages import Fill, Side
from actors.state import open_store
from bench.common import Row, bench_config, check, temp_db
from bench.data import REPLAY_PAIRS, ReplaySource
from bench.live import run_live
from bench.replay import EMA, run_actors

BACKENDS = ("sqlite", "postgresql")


@contextlib.contextmanager
def _server() -> Iterator[Any]:
    from tests.postgres_server import PostgresServer, ServerUnavailableError

    try:
        server = PostgresServer.start_new(durable=True)
    except ServerUnavailableError as exc:
        print(f"bench state_db: PostgreSQL skipped: {exc}")
        yield None
        return
    try:
        yield server
    finally:
        server.destroy()


@contextlib.contextmanager
def _location(backend: str, server: Any) -> Iterator[str]:
    if backend == "sqlite":
        with temp_db() as db:
            yield db
        return
    name = server.new_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


def store_rows_per_s(location: str, rows: int, per_commit: int) -> float:
    """Fills written by the store alone, ``per_commit`` to a transaction."""
    with open_store(location) as store:
        store.initialize("USDT", {"USDT": 1e9})
        store.autocommit = False
        t0 = time.perf_counter()
        store.begin()
        for n in range(rows):
            store.insert_fill(Fill(fill_id=f"f-{n}", order_id=f"o-{n}", pair="BTC/USDT",
                                   side=Side.BUY, amount=0.01, price=60_000.0, fee=0.6,
                                   ts_ms=1_700_000_000_000 + n))
            if (n + 1) % per_commit == 0:
                store.commit()
                store.begin()
        store.commit()
        return rows / (time.perf_counter() - t0)


def bench_state_db(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    ticks = 50_000 if quick else 300_000
    live_s = 4.0 if quick else 15.0
    store_rows = 2_000 if quick else 20_000
    rows: list[Row] = []
    details: dict[str, Any] = {}
    with _server() as server:
        for backend in BACKENDS:
            if backend == "postgresql" and server is None:
                rows.append(Row("state_db", "postgresql", "skipped", float("nan"), "",
                                note="no PostgreSQL server programs here"))
                continue
            source = ReplaySource(REPLAY_PAIRS[:1], ticks)
            with _location(backend, server) as db:
                replay = run_actors(bench_config(REPLAY_PAIRS[:1], db, strategy=EMA), source,
                                    len(source))
            with _location(backend, server) as db:
                live = run_live(50, live_s, state_db=db)
            store = {}
            for per_commit in (1, 100):
                with _location(backend, server) as db:
                    store[per_commit] = store_rows_per_s(
                        db, store_rows // (10 if per_commit == 1 else 1), per_commit)
            commits = max(1, replay["commits"])
            details[backend] = {"replay": replay, "latency_50": live,
                                "store_rows_per_s": store}
            case = f"{backend}, 1 pair x {ticks:,} GBM ticks"
            rows += [
                Row("state_db", case, "actors ticks/s", replay["ticks_per_s"], "ticks/s",
                    note=f"{replay['fills']:,} fills, {replay['fills_in_db']:,} in the "
                         "database"),
                Row("state_db", case, "fills/s through state", replay["fills"] /
                    replay["seconds"], "fills/s"),
                Row("state_db", case, "fills per commit", replay["fills"] / commits, "fills",
                    note=f"{replay['commits']:,} group commits, "
                         f"{replay['commits'] / replay['seconds']:,.0f} per second"),
            ]
            case = f"{backend}, 50 pairs @20 t/s"
            rows += [
                Row("state_db", case, "tick->order ack p99", live["ack"]["p99_ms"], "ms",
                    note=f"p50 {live['ack']['p50_ms']:.2f} ms, n={live['ack']['n']}, "
                         f"fills {live['fills']}"),
                Row("state_db", case, "tick->decision p99", live["decision"]["p99_ms"], "ms"),
            ]
            rows += [Row("state_db", f"{backend}, store alone", f"rows/s, {n} per commit",
                         rate, "rows/s") for n, rate in store.items()]
    if "postgresql" in details and "sqlite" in details:
        ratio = (details["postgresql"]["replay"]["ticks_per_s"]
                 / details["sqlite"]["replay"]["ticks_per_s"])
        rows.append(Row("state_db", "replay through the actors", "postgresql / sqlite",
                        ratio, "x", target=">= 0.7", ok=check(ratio, 0.7, True)))
    return rows, details


if __name__ == "__main__":  # a quick look: python -m bench.state_db
    import sys

    found, _ = bench_state_db("--quick" in sys.argv)
    for row in found:
        print(attrs.astuple(row))
