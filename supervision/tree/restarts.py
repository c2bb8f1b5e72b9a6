"""Restart intensity and backoff, as a plain class: which crash earns a restart, and when.

One-for-one: each child has its own window. A child that crashes more than
``max_restarts`` times within ``window_s`` is given up on (``failed``); otherwise it is
restarted after an exponential backoff that grows with its recent crashes.
"""

from __future__ import annotations

from collections import deque

import attrs

from supervision.config import RestartPolicy


@attrs.frozen(kw_only=True)
class RestartDecision:
    restart: bool
    delay_s: float
    recent_failures: int


class RestartTracker:
    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._failures: dict[str, deque[float]] = {}

    def on_failure(self, name: str, now: float) -> RestartDecision:
        """Record a crash of ``name`` at ``now`` (monotonic seconds) and decide."""
        window = self._failures.setdefault(name, deque(maxlen=self.policy.max_restarts + 1))
        window.append(now)
        while window and now - window[0] > self.policy.window_s:
            window.popleft()
        recent = len(window)
        if recent > self.policy.max_restarts:
            return RestartDecision(restart=False, delay_s=0.0, recent_failures=recent)
        return RestartDecision(restart=True, delay_s=self.policy.backoff(recent),
                               recent_failures=recent)

    def forget(self, name: str) -> None:
        self._failures.pop(name, None)
