"""The execution actor: sends approved orders to the exchange gateway (``ExecutionCore``).

The gateway is the paper exchange, or in live mode the ccxt gateway
(``actors.execution.live``), which it closes when it stops, after the orders in flight have
settled (up to ``SETTLE_S``: an order not sent yet is closed as not sent, one at the exchange
is followed until it finishes or rests; ``TradingSystem.stop`` stops the state actor only
after this one, so it hears how they ended). The state actor records every
order before the gateway sees it (write-ahead) and every fill after. The feed sends it ticks
only for pairs where a limit order rests, so it stays off the hot path of every other tick.

Thread: the paper core runs on the pair pool where there is one (``pool``), as risk does
(see ``actors.risk.actor``): an approved order is filled on the worker that approved it. The
live core keeps a thread of its own: its stop waits for orders in flight to settle, which
must not hold a pool worker, and its gateway has its own thread anyway. Failure: a core that
raises on a tell kills the actor and the supervisor escalates, on the pool or off it.
"""

from __future__ import annotations

from actors.messages import EXECUTION
from actors.pair import PairPool, PooledActor
from actors.router import Router
from actors.shell import Core, CoreActor


class ExecutionActor(PooledActor, CoreActor):
    name = EXECUTION
    thread_name = "ExecutionActor-0"  # a pykka thread's name: logs say "execution"

    def __init__(self, core: Core, router: Router, *, pool: PairPool | None = None) -> None:
        self.pool = pool  # first: pykka's __init__ builds the inbox, which depends on it
        super().__init__(core, router)

    def release(self) -> None:
        """A live core's gateway owns a thread, an event loop and connections: stop them
        with the actor (the paper core has nothing to close)."""
        close = getattr(self.core, "close", None)
        if close is not None:
            close()
