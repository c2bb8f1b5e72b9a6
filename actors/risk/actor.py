"""The risk actor: portfolio-wide pre-trade checks (``RiskCore``).

Every entry any pair proposes passes through here, so the limits hold across pairs; exits are
always let through. It learns the portfolio from the state actor's events (the whole of it
once, on request, when it starts; the changes after that) and never blocks.

Thread: on the pair pool where there is one (``pool``), as a ``PooledActor``: a pair's
proposal is decided on the worker that made it, right after the pair's turn, instead of on a
thread of its own that has to be woken and handed the GIL (see ``actors.pair.pool``); one turn
at a time, in inbox order, as on its own thread. Without a pool (``pair_workers = 0``, the
head of a cluster) it has a thread of its own. Failure is the same either way: a core that
raises on a tell kills the actor, ``on_failure`` tells the supervisor, which escalates; a hung
turn is the watchdog's to report (and its worker is replaced, so the pairs go on).
"""

from __future__ import annotations

from actors.messages import RISK, STATE, RequestPortfolio
from actors.pair import PairPool, PooledActor
from actors.router import Router
from actors.shell import Core, CoreActor


class RiskActor(PooledActor, CoreActor):
    name = RISK
    thread_name = "RiskActor-0"  # a pykka thread's name: logs say "risk"

    def __init__(self, core: Core, router: Router, *, pool: PairPool | None = None) -> None:
        self.pool = pool  # first: pykka's __init__ builds the inbox, which depends on it
        super().__init__(core, router)

    def on_start(self) -> None:
        # State sends the changes a fill or a mark makes; the whole view comes on request,
        # at every start (a restart included), before risk approves any entry.
        self.router.tell(STATE, RequestPortfolio())
