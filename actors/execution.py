"""The execution actor: sends approved orders to the exchange gateway (``ExecutionCore``).

Today the gateway is the paper exchange; the state actor records every order before the
gateway sees it (write-ahead) and every fill after. The feed sends it ticks only for pairs
where a limit order rests, so it stays off the hot path of every other tick.
"""

from __future__ import annotations

from actors.messages import EXECUTION
from actors.shell import CoreActor


class ExecutionActor(CoreActor):
    name = EXECUTION
