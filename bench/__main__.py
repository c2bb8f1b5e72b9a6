"""Run the benchmarks: ``python -m bench [--quick] [--all | --only NAME ...]``.

Prints the machine, a Markdown table of the results with each target's PASS or MISS, and
writes everything (the rows and each benchmark's details) to ``bench/results/latest.json``.
Exits 1 when a target is missed, 0 otherwise. By default it runs the performance set (the
peer, latency, replay, soak, start-up, isolation and 1,000-pair benchmarks): about eight
minutes on two cores, a third of it the soak's 10 million ticks. ``--all`` adds the benchmarks
of the features built on top (research, the API under load, the cluster, PostgreSQL): about
six minutes more. ``--quick`` runs smaller sizes (under two minutes for the default set).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.api_load import bench_api_load
from bench.cluster import bench_cluster
from bench.common import CpuMeter, Row, machine, machine_line
from bench.fleet import bench_fleet
from bench.live import bench_latency, bench_noisy
from bench.peer import bench_peer
from bench.replay import bench_replay
from bench.report import RESULTS, markdown, source_tree, write_json
from bench.research import bench_research
from bench.soak import bench_soak
from bench.startup import bench_startup
from bench.state_db import bench_state_db

Bench = Callable[[bool], tuple[list[Row], dict[str, Any]]]

BENCHES: dict[str, tuple[Bench, str]] = {
    "peer": (bench_peer, "bench.peer"),
    "latency": (bench_latency, "bench.live"),
    "replay": (bench_replay, "bench.replay"),
    "soak": (bench_soak, "bench.soak"),
    "startup": (bench_startup, "bench.startup"),
    "noisy": (bench_noisy, "bench.live"),
    "research": (bench_research, "bench.research"),
    "api_load": (bench_api_load, "bench.api_load"),
    "cluster": (bench_cluster, "bench.cluster"),
    "state_db": (bench_state_db, "bench.state_db"),
    "fleet": (bench_fleet, "bench.fleet"),
}
FEATURES = ("research", "api_load", "cluster", "state_db")
"""Run with ``--all`` or ``--only``: the default set stays under ten minutes."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                allow_abbrev=False)
    p.add_argument("--quick", action="store_true", help="smaller sizes (< 2 minutes)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true",
                       help=f"also the feature benchmarks: {', '.join(FEATURES)}")
    which.add_argument("--only", nargs="+", choices=sorted(BENCHES), metavar="NAME",
                       help=f"run only these: {', '.join(BENCHES)}")
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json",
                   help="where to write the JSON results (%(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # A crashing strategy is part of the restart benchmark; pykka logs each crash with its
    # traceback through the standard logging module, which would flood stderr.
    logging.getLogger("pykka").setLevel(logging.CRITICAL)
    info = machine()
    tree = source_tree()
    dirty = f" + {len(tree['modified_files'])} modified files" if tree["modified_files"] else ""
    print(f"machine: {machine_line(info)}")
    print(f"source: commit {tree['commit']}{dirty}; mode {'quick' if args.quick else 'full'}",
          flush=True)
    selected = args.only or [n for n in BENCHES if args.all or n not in FEATURES]
    rows: list[Row] = []
    details: dict[str, Any] = {}
    busy: dict[str, float] = {}
    t_all = time.perf_counter()
    for name in selected:
        run, _ = BENCHES[name]
        t0 = time.perf_counter()
        meter = CpuMeter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            bench_rows, detail = run(args.quick)
        except Exception as exc:
            traceback.print_exc()
            bench_rows = [Row(name, "error", "benchmark failed", float("nan"), "",
                              target="runs", ok=False, note=repr(exc))]
            detail = {"error": repr(exc)}
        detail["elapsed_s"] = time.perf_counter() - t0
        detail["cpu_cores"] = cpu = meter.cores()
        busy[name] = cpu["others"]
        print(f"  {name} took {detail['elapsed_s']:.1f} s; CPU: this process "
              f"{cpu['self']:.2f} cores, other processes {cpu['others']:.2f} cores",
              file=sys.stderr, flush=True)
        rows.extend(bench_rows)
        details[name] = detail
    elapsed = time.perf_counter() - t_all
    methods = {name: sys.modules[module].__doc__ for name, (_, module) in BENCHES.items()
               if name in selected}
    write_json(args.json, {
        "machine": info, "source": tree, "quick": args.quick, "selected": selected,
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": elapsed, "methods": methods, "details": details,
    }, rows)
    print()
    print(markdown(rows))
    print()
    print("CPU taken by other processes while each benchmark ran (cores of "
          f"{info['usable_cores']}): " + ", ".join(f"{k} {v:.2f}" for k, v in busy.items()))
    missed = [r for r in rows if r.ok is False]
    targets = [r for r in rows if r.ok is not None]
    print()
    print(f"{len(targets) - len(missed)} of {len(targets)} targets met in {elapsed:.0f} s; "
          f"JSON: {args.json}")
    for r in missed:
        print(f"MISS: {r.bench} / {r.case} / {r.metric}: {r.value:.6g} {r.unit} "
              f"(target {r.target})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
