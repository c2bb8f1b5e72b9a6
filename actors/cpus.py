"""Which CPUs this process's threads and its children run on (Linux's ``sched_setaffinity``).

Why: with ``[api] cpus`` the API process gets CPUs of its own and the trading process keeps
to the others (``supervision.api.process``). On a 2-core machine, trading's tick p99 with 20
pollers and 20 event streams was 1.2-1.75x of the same run without them, whatever the API
process's and its clients' priority; with trading on one core and the API and the clients on
the other, 0.97-1.1x. Trading is held to about one core by its GIL anyway; what it lost was
its core and its cache to the API's work. An isolated strategy's process is started by a
pinned thread and would inherit its CPU: it gets back the CPUs the process had before
(``release_child``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_before: frozenset[int] | None = None
"""The process's CPUs before ``pin_process`` first narrowed them."""


def supported() -> bool:
    return hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")


def available() -> frozenset[int]:
    """The CPUs this process may use now."""
    return frozenset(os.sched_getaffinity(0))


def pin_process(cpus: Iterable[int]) -> None:
    """Every thread of this process (and so every thread they start) onto ``cpus``."""
    global _before
    if _before is None:
        _before = available()
    _every_thread(frozenset(cpus))


def release_process() -> None:
    """Every thread back onto the CPUs it had before ``pin_process``."""
    global _before
    if _before is not None:
        _every_thread(_before)
        _before = None


def _every_thread(cpus: frozenset[int]) -> None:
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue


def pin_child(pid: int, cpus: Iterable[int]) -> None:
    """Another process (a child of ours) onto ``cpus``; gone already is fine."""
    try:
        os.sched_setaffinity(pid, frozenset(cpus))
    except ProcessLookupError:
        return


def release_child(pid: int) -> None:
    """A child started by a pinned thread back onto the CPUs this process had before the
    pin; nothing to do when it is not pinned."""
    if _before is not None:
        pin_child(pid, _before)
