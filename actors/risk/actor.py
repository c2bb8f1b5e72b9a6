"""The risk actor: portfolio-wide pre-trade checks (``RiskCore``) on its own thread.

Every entry any pair proposes passes through here, so the limits hold across pairs; exits are
always let through. It learns the portfolio from the state actor's events (the whole of it
once, on request, when it starts; the changes after that) and never blocks.
"""

from __future__ import annotations

from actors.messages import RISK, STATE, RequestPortfolio
from actors.shell import CoreActor


class RiskActor(CoreActor):
    name = RISK

    def on_start(self) -> None:
        # State sends the changes a fill or a mark makes; the whole view comes on request,
        # at every start (a restart included), before risk approves any entry.
        self.router.tell(STATE, RequestPortfolio())
