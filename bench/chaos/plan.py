"""The schedule of a chaos run, drawn from its seed: when each round stops, how, and which
faults the exchange injects meanwhile.

A pure function of ``(seed, round)``, so ``--seed`` repeats the same schedule: the same
moments, the same faults on the same endpoints. (The system's own thread timing is not
seeded; a difference a seed found once may need a few runs of it to show again.)
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import attrs

ORDER = "/api/v3/order"
ENDPOINTS: tuple[tuple[str | None, str | None], ...] = (
    ("POST", ORDER),  # the create
    ("POST", ORDER),  # twice: it is where a fault can double or lose an order
    ("GET", ORDER),  # polls and look-ups by client id
    ("GET", "/api/v3/myTrades"),
    ("GET", "/api/v3/openOrders"),
    ("GET", "/api/v3/account"),
    (None, None),  # whatever comes next
)
"""(method, path) a fault is aimed at."""

EXCHANGE_FAULTS = ("http_429", "http_418", "http_5xx", "accept_then_timeout",
                   "malformed_json", "ws_drop")
"""The fake's faults the live rounds draw from."""

GRACEFUL_SHARE = 0.2
"""Rounds that end with SIGTERM (a graceful stop) rather than SIGKILL."""


@attrs.frozen(kw_only=True)
class Fault:
    """One fault to inject ``at_s`` seconds into a round."""

    at_s: float
    kind: str
    method: str | None = None
    path: str | None = None
    times: int = 1
    options: Mapping[str, object] = attrs.field(factory=dict)

    def describe(self) -> str:
        where = f" {self.method} {self.path}" if self.path else ""
        extra = "".join(f" {k}={v}" for k, v in sorted(self.options.items()))
        count = f" x{self.times}" if self.times > 1 else ""
        return f"{self.kind}{where}{count}{extra}"


@attrs.frozen(kw_only=True)
class RoundPlan:
    index: int
    stop_after_s: float
    """Seconds after the process started (start-up included: a kill may hit reconciliation)."""
    graceful: bool
    """SIGTERM (a graceful stop, which must settle what is in flight) instead of SIGKILL."""
    faults: tuple[Fault, ...] = ()

    def describe(self) -> str:
        how = "SIGTERM" if self.graceful else "SIGKILL"
        faults = ", ".join(f"{f.at_s:.1f}s {f.describe()}" for f in self.faults) or "none"
        return f"{how} at {self.stop_after_s:.2f} s; faults: {faults}"


def plan_round(seed: int, index: int, *, live: bool, longest_s: float,
               client_timeout_s: float) -> RoundPlan:
    """Round ``index`` of the run with ``seed``. ``live``: the exchange injects faults;
    ``longest_s``: the latest stop; ``client_timeout_s``: ccxt's timeout, which a held reply
    must outlast to be a timeout."""
    rng = random.Random(f"{seed}:{index}")
    stop_after = rng.uniform(min(0.5, longest_s), longest_s)
    graceful = rng.random() < GRACEFUL_SHARE
    faults: list[Fault] = []
    if live:
        faults.extend(_fault(rng, rng.uniform(0.0, stop_after), client_timeout_s)
                      for _ in range(rng.randint(1, 3)))
    return RoundPlan(index=index, stop_after_s=stop_after, graceful=graceful,
                     faults=tuple(sorted(faults, key=lambda f: f.at_s)))


def _fault(rng: random.Random, at_s: float, client_timeout_s: float) -> Fault:
    kind = rng.choice(EXCHANGE_FAULTS)
    if kind == "ws_drop":
        return Fault(at_s=at_s, kind=kind, options={"abrupt": rng.random() < 0.5})
    method, path = rng.choice(ENDPOINTS)
    times = rng.randint(1, 3)
    options: dict[str, object] = {}
    if kind in ("http_429", "http_418"):
        options["retry_after"] = rng.choice((0, 0, 1))
    elif kind == "http_5xx":
        options["status"] = rng.choice((500, 502, 503, 504))
        options["process"] = rng.random() < 0.5
    elif kind == "malformed_json":
        options["process"] = rng.random() < 0.5
    elif kind == "accept_then_timeout":
        options["delay"] = round(client_timeout_s * rng.uniform(1.2, 2.0), 2)
    return Fault(at_s=at_s, kind=kind, method=method, path=path, times=times, options=options)
