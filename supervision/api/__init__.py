"""The HTTP API, its event stream and the web dashboard, beside the embedding facade.

``journal`` numbers the system's events (the facade keeps one always: ``TradingSystem.events``);
``audit`` records every call that steers the system; ``process`` runs the API in a process of
its own, where ``server`` (FastAPI on uvicorn) serves ``routes``, each a thin layer over the
``TradingSystem`` method of the same name, behind ``auth`` (a bearer token). The API is
started only when a port is configured, so a run without it never loads the web stack.
"""

from typing import Any

from supervision.api.audit import audited
from supervision.api.audit import record as audit_record
from supervision.api.journal import EventJournal, kind_of, level_of
from supervision.api.queries import (
    EquityPoint,
    RiskReport,
    check_page,
    equity_points,
    jsonable,
    redacted,
)

__all__ = [
    "ApiServer",
    "EquityPoint",
    "EventJournal",
    "RiskReport",
    "audit_record",
    "audited",
    "check_page",
    "equity_points",
    "event_json",
    "jsonable",
    "kind_of",
    "level_of",
    "redacted",
]


def __getattr__(name: str) -> Any:
    if name == "ApiServer":
        from supervision.api.process import ApiServer

        return ApiServer
    if name == "event_json":
        from supervision.api.events import event_json

        return event_json
    raise AttributeError(name)
