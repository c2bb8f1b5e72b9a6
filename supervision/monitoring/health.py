"""Is the system healthy? What ``/health`` answers (and ``TradingSystem.health()`` returns).

It runs on whichever thread asks (a request thread of the metrics server, or an embedder's)
and only reads what is already at hand: the actors' stopped flags and the pairs' handles. It
never asks an actor, so it answers even while every actor is stuck, and that is then what it
reports. Healthy means all of:
- the system is running (or its replay has finished) and has not failed;
- every shared actor (state, risk, execution, market data, supervisor) is alive;
- no pair has failed (given up on after too many restarts);
- on a live feed, once it has started, every running or paused pair has processed a tick
  within ``max_tick_age_s`` (wall time). A restarting pair is the supervisor's business and
  does not count: only one that is given up on does;
- no pair's exchange feed is stale (no valid market data for ``stale_after_s``; such a pair
  opens no positions until data returns). Stale pairs are listed in ``stale_pairs``;
- the state database can be written (``state_database``: a server that went away makes the
  system refuse new entries until the state actor has reconnected).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pykka

from actors.router import PairHandle
from actors.state import AvailabilityView

WATCHED_STATES = ("running", "paused")
"""Pair states in which ticks must keep arriving."""


@attrs.frozen(kw_only=True)
class PairHealth:
    state: str
    alive: bool
    """The pair's current actor is running (False while it restarts, fails or stops)."""
    generation: int
    restarts: int
    ticks: int
    last_tick_age_s: float | None
    """Wall seconds since the pair last processed a tick; None if it never has."""
    shard: str = ""
    node: str = ""
    """On a cluster: the pair's shard and that shard's node."""


@attrs.frozen(kw_only=True)
class HealthReport:
    healthy: bool
    state: str
    actors: tuple[tuple[str, bool], ...]
    """(shared actor, alive)."""
    pairs: tuple[tuple[str, PairHealth], ...]
    failed_pairs: tuple[str, ...]
    problems: tuple[str, ...]
    """Why it is unhealthy, one line each; empty when healthy."""
    stale_pairs: tuple[str, ...] = ()
    """Pairs whose live market data is stale (no new positions on them)."""
    state_database: AvailabilityView | None = None
    """Whether the state database can be written (None: not known, e.g. never started)."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON body of ``/health``."""
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "state": self.state,
            "actors": {name: {"alive": alive} for name, alive in self.actors},
            "pairs": {pair: attrs.asdict(h) for pair, h in self.pairs},
            "failed_pairs": list(self.failed_pairs),
            "stale_pairs": list(self.stale_pairs),
            "state_database": None if self.state_database is None
            else attrs.asdict(self.state_database),
            "problems": list(self.problems),
        }


def check_health(
    *,
    state: str,
    error: str,
    services: Mapping[str, pykka.ActorRef[Any]],
    pairs: Mapping[str, PairHandle],
    now_ns: int,
    feed_started_ns: int,
    max_tick_age_s: float | None,
    stale_pairs: Iterable[str] = (),
    state_database: AvailabilityView | None = None,
) -> HealthReport:
    """Judge the system from its parts.

    Args:
        state: the facade's life-cycle state (``running``, ``finished``, ...).
        error: why the system failed, or "".
        now_ns: ``time.perf_counter_ns()`` now, the clock of ``PairHandle.last_tick_ns``.
        feed_started_ns: when the feed started (0: not yet); a pair's tick age counts from
            its last tick or from this, whichever is later.
        max_tick_age_s: the oldest acceptable last tick; None to skip the check (replays).
        stale_pairs: pairs the live feed reports stale.
        state_database: the state database's availability.
    """
    problems: list[str] = []
    if error:
        problems.append(f"system failed: {error}")
    if state not in ("running", "finished"):
        problems.append(f"system is {state}")
    actors = tuple((name, ref.is_alive()) for name, ref in services.items())
    problems += [f"actor {name} is not alive" for name, alive in actors if not alive]
    report: list[tuple[str, PairHealth]] = []
    failed: list[str] = []
    for pair, h in pairs.items():
        last = h.last_tick_ns
        ref = h.ref
        report.append((pair, PairHealth(
            state=h.state, alive=ref is not None and ref.is_alive(), generation=h.generation,
            restarts=h.restarts, ticks=h.ticks,
            last_tick_age_s=(now_ns - last) / 1e9 if last else None,
            shard=h.shard, node=h.node)))
        if h.state == "failed":
            failed.append(pair)
            problems.append(f"pair {pair} failed: {h.last_error}")
        elif (max_tick_age_s is not None and feed_started_ns and h.state in WATCHED_STATES
              and (age := (now_ns - max(last, feed_started_ns)) / 1e9) > max_tick_age_s):
            problems.append(f"pair {pair} processed no tick for {age:.1f} s "
                            f"(limit {max_tick_age_s:g} s)")
    stale = tuple(sorted(p for p in stale_pairs if p in pairs))
    problems += [f"pair {pair} has stale market data: no new positions until it returns"
                 for pair in stale]
    if state_database is not None and not state_database.available:
        problems.append(state_database.problem())
    return HealthReport(healthy=not problems, state=state, actors=actors, pairs=tuple(report),
                        failed_pairs=tuple(failed), problems=tuple(problems),
                        stale_pairs=stale, state_database=state_database)
