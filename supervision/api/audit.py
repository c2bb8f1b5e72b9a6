"""Audit records of steering by hand: who did what, when, and how it ended.

``audited`` wraps a ``TradingSystem`` method that changes what the system does (pause, swap,
halt...). Whoever calls it, Python, the HTTP API or a Telegram command, gets one record: a log
line at INFO (``audit`` bound, so JSON logs can filter on it), a row in the state database's
``audit`` table (told to the state actor, never waited for) and an ``AuditRecord`` event. The
caller names itself with the keyword ``by`` (default ``python``). Runs on the caller's thread;
a failure to record never hides the call's own result or error.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from loguru import logger

from actors.messages import EVENTS, STATE, AuditRecord, StrategySpec

F = TypeVar("F", bound=Callable[..., Any])


def describe_argument(value: object) -> str:
    if isinstance(value, StrategySpec):
        params = ", ".join(f"{k}={v!r}" for k, v in value.params)
        members = ", ".join(m.path for m, _ in value.members)
        return f"{value.path}({params}{'; ' if params and members else ''}{members})"
    return str(value)


def audited(method: F) -> F:
    """Record every call of ``method`` (the first argument is its target: a pair or none).

    The method declares ``by`` (who asked: ``python``, ``api``, ``telegram``) as a keyword of
    its own, so that callers are type-checked; only this wrapper reads it."""
    action = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        by = kwargs.get("by", "python")
        target = str(args[0]) if args else ""
        detail = " ".join([*(describe_argument(a) for a in args[1:]),
                           *(f"{k}={describe_argument(v)}" for k, v in kwargs.items()
                             if k not in ("timeout", "by") and v is not None)])
        entry = AuditRecord(ts_ms=int(time.time() * 1000), actor=by, action=action,
                            target=target, detail=detail, outcome="ok")
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:
            record(self.router, attrs.evolve(entry, outcome=f"refused: {exc}"))
            raise
        record(self.router, entry)
        return result

    return wrapper  # type: ignore[return-value]


def record(router: Any, entry: AuditRecord) -> None:
    """Log ``entry``, store it (a tell to the state actor) and publish it."""
    logger.bind(audit=True).info("audit: {} {}{}{} -> {}", entry.actor, entry.action,
                                 f" {entry.target}" if entry.target else "",
                                 f" {entry.detail}" if entry.detail else "", entry.outcome)
    try:
        router.tell(STATE, entry)
        router.tell(EVENTS, entry)
    except Exception:  # noqa: BLE001 - the call's own outcome matters more than its record
        logger.exception("audit record of {} not stored", entry.action)
