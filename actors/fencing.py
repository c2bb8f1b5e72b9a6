"""Generation fencing: a replaced pair actor can never place an order or write state.

A hung actor's thread cannot be killed; when it wakes up it may go on sending messages. Every
message a pair sends to risk or state carries the pair's generation, and the supervisor tells
risk and state a pair's new generation before it starts that generation's actor. Inboxes are
first in, first out, so anything the old actor sends after that point arrives after the fence
and is dropped (and counted). Anything it sent before is as legitimate as it was then.
"""

from __future__ import annotations

from loguru import logger


class GenerationFence:
    """The current generation of each pair, as told by the supervisor."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}
        self.fenced = 0
        """Messages dropped because a stale generation sent them."""

    def advance(self, pair: str, generation: int) -> None:
        if generation > self._current.get(pair, 0):
            self._current[pair] = generation

    def current(self, pair: str) -> int:
        return self._current.get(pair, 0)

    def admits(self, pair: str, generation: int, what: object) -> bool:
        """True if ``generation`` is the pair's current one; else count, log and refuse."""
        current = self._current.get(pair, 0)
        if generation >= current:
            return True
        self.fenced += 1
        logger.warning("{}: dropped {} from stale generation {} (current {})", pair,
                       type(what).__name__, generation, current)
        return False
