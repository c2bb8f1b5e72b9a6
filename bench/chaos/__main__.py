"""``python -m bench.chaos [--rounds N] [--seed S] [--target live,paper] [--store NAME]``

Runs the crash-safety suite (see ``bench.chaos``) on each target in turn, prints a line per
round and a table of every check's count (each must be 0), and exits 1 on any difference,
with the command that repeats the run; 2 for bad arguments. Each target's processes, logs
and database stay in ``--keep DIR`` (default: a temporary folder, kept when a check fails).
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.chaos.checks import CHECKS, PAPER_SKIPS
from bench.chaos.rounds import STORES, TARGETS, Suite, SuiteResult


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chaos",
                                description=__doc__.splitlines()[0].strip("`"),
                                allow_abbrev=False)
    p.add_argument("--rounds", type=int, default=100, help="kills per target (%(default)s)")
    p.add_argument("--seed", type=int, default=None,
                   help="repeat a run's schedule (default: a new seed, printed)")
    p.add_argument("--target", default="live,paper",
                   help=f"comma-separated, of: {', '.join(TARGETS)} (%(default)s)")
    p.add_argument("--store", default="sqlite", choices=sorted(STORES),
                   help="state store (%(default)s)")
    p.add_argument("--longest", type=float, default=5.0,
                   help="latest stop in a round, seconds after the process started, "
                        "start-up included (%(default)s)")
    p.add_argument("--clean-seconds", type=float, default=8.0,
                   help="length of the final clean run (%(default)s)")
    p.add_argument("--keep", type=Path, default=None,
                   help="folder for the runs' databases and logs (default: temporary)")
    return p


def table(results: list[SuiteResult]) -> str:
    """Each check's count per target: after the rounds, then after the clean run."""
    heads = [f"{r.target} ({len(r.rounds)} rounds, clean run)" for r in results]
    width = max(len(what) for _, what in CHECKS) + 2
    lines = ["check".ljust(width) + "  ".join(h.ljust(30) for h in heads)]
    for name, what in CHECKS:
        cells = []
        for r in results:
            if r.target == "paper" and name in PAPER_SKIPS:
                cells.append("-")
                continue
            during = sum(x.findings.count(name) for x in r.rounds)
            cells.append(f"{during}, {r.final.count(name)}")
        lines.append(what.ljust(width) + "  ".join(c.ljust(30) for c in cells))
    return "\n".join(lines)


def figures(result: SuiteResult) -> str:
    kills = sum(1 for r in result.rounds if not r.plan.graceful)
    extra = ", ".join(f"{k} {v}" for k, v in result.figures.items())
    return (f"{result.target} on {result.store}: {len(result.rounds)} rounds ({kills} SIGKILL, "
            f"{len(result.rounds) - kills} SIGTERM), {result.orders} orders and "
            f"{result.fills} fills in the database" + (f", {extra}" if extra else "")
            + f"; clean run exit {result.final_exit_code}; {result.seconds:.0f} s")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # A reply the fake exchange holds for a client that was killed meanwhile cannot be
    # written, and aiohttp logs each such request with a traceback: expected here.
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        print(f"chaos: error: --target {args.target!r}: valid targets are "
              f"{', '.join(TARGETS)}", file=sys.stderr)
        return 2
    if args.rounds < 0 or args.longest <= 0 or args.clean_seconds <= 0:
        print("chaos: error: --rounds must be >= 0, --longest and --clean-seconds > 0",
              file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    keep = args.keep
    base = keep or Path(tempfile.mkdtemp(prefix="chaos-"))
    print(f"chaos: seed {seed}, {args.rounds} rounds per target on "
          f"{', '.join(targets)}, store {args.store}; runs in {base}", flush=True)
    started = time.monotonic()
    results = []
    for target in targets:
        suite = Suite(target, args.store, rounds=args.rounds, seed=seed,
                      run_dir=base / f"{target}-{args.store}", longest_s=args.longest,
                      final_s=args.clean_seconds, say=lambda line: print(line, flush=True))
        results.append(suite.run())
    print()
    print(table(results))
    for result in results:
        print(figures(result))
    ok = all(r.ok for r in results)
    print(f"total {time.monotonic() - started:.0f} s: {'all zeros' if ok else 'DIFFERENCES'}")
    if not ok:
        print(f"repeat with: python -m bench.chaos --seed {seed} --rounds {args.rounds} "
              f"--target {','.join(targets)} --store {args.store}; runs kept in {base}")
        return 1
    if keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
