"""Risk: every order proposal is approved or refused here, before execution sees it.

``core`` holds ``RiskBook.check`` (limits, the kill switch, the drawdown halt, cool-downs)
and ``RiskCore``, which the shell ``actor`` (``RiskActor``) wraps.
"""

from actors.risk.actor import RiskActor
from actors.risk.core import RiskBook, RiskConfig, RiskCore

__all__ = [
    "RiskActor",
    "RiskBook",
    "RiskConfig",
    "RiskCore",
]
