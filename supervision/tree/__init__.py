"""The supervision tree: the supervisor, its restart policy and the watchdog.

``supervisor`` (``SupervisorActor``) starts one orchestrator per pair and restarts crashed
ones one-for-one, with backoff and an intensity limit (``restarts``); ``watchdog`` replaces
hung children that stop answering heartbeats.
"""

from supervision.tree.restarts import RestartTracker
from supervision.tree.supervisor import (
    AddPair,
    RemovePair,
    SetPaused,
    Shutdown,
    StartPairs,
    SupervisorActor,
)
from supervision.tree.watchdog import Watchdog

__all__ = [
    "AddPair",
    "RemovePair",
    "RestartTracker",
    "SetPaused",
    "Shutdown",
    "StartPairs",
    "SupervisorActor",
    "Watchdog",
]
