"""The execution actor: sends approved orders to the exchange gateway (``ExecutionCore``).

The gateway is the paper exchange, or in live mode the ccxt gateway
(``actors.execution.live``), which it closes when it stops, after the orders in flight have
settled (up to ``SETTLE_S``: an order not sent yet is closed as not sent, one at the exchange
is followed until it finishes or rests; ``TradingSystem.stop`` stops the state actor only
after this one, so it hears how they ended). The state actor records every
order before the gateway sees it (write-ahead) and every fill after. The feed sends it ticks
only for pairs where a limit order rests, so it stays off the hot path of every other tick.
"""

from __future__ import annotations

from actors.messages import EXECUTION
from actors.shell import CoreActor


class ExecutionActor(CoreActor):
    name = EXECUTION

    def release(self) -> None:
        """A live core's gateway owns a thread, an event loop and connections: stop them
        with the actor (the paper core has nothing to close)."""
        close = getattr(self.core, "close", None)
        if close is not None:
            close()
