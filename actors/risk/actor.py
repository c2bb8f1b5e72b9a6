"""The risk actor: portfolio-wide pre-trade checks (``RiskCore``) on its own thread.

Every entry any pair proposes passes through here, so the limits hold across pairs; exits are
always let through. It learns the portfolio from the state actor's events and never blocks.
"""

from __future__ import annotations

from actors.messages import RISK
from actors.shell import CoreActor


class RiskActor(CoreActor):
    name = RISK
