"""The API in a process of its own: it dies alone, and it calls nothing but the facade."""

from __future__ import annotations

import os
import signal

import pytest

from actors.messages import OrderFilled
from supervision.api.journal import EventJournal
from supervision.api.process import FACADE, RemoteSystem, TradingLink, _portable
from tests.helpers import eventually
from tests.supervision.api.serving import serving


def test_the_api_process_dying_leaves_trading_alone(tmp_path, monkeypatch):
    with serving(tmp_path, monkeypatch) as (system, client, log):
        assert client.get("/api/v1/status")[0] == 200
        api = system._api._process
        os.kill(api.pid, signal.SIGKILL)
        api.wait(10)
        before = len(log.of(OrderFilled))

        eventually(lambda: len(log.of(OrderFilled)) >= before + 3, 30,
                   "fills after the API process died")
        assert system.health().healthy
    # Leaving the block stopped the system: a dead API process holds up nothing.


def test_the_api_process_may_call_the_facade_and_nothing_else():
    remote = RemoteSystem(TradingLink(None, EventJournal(), 1.0), EventJournal())  # type: ignore[arg-type]

    assert callable(remote.pause)
    for name in ("router", "_api", "stop", "config", "__class__.__init__"):
        assert name not in FACADE
        with pytest.raises(AttributeError):
            getattr(remote, name)


class _TwoArgumentsError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def test_an_error_the_api_process_could_not_rebuild_arrives_as_its_message():
    """An exception is pickled to the API process; one whose constructor wants more than its
    message would not unpickle there, and would lose the answer."""
    kept, rebuilt = _portable(KeyError("no pair 'X'")), _portable(_TwoArgumentsError("busy", 7))

    assert isinstance(kept, KeyError)
    assert isinstance(rebuilt, RuntimeError)
    assert str(rebuilt) == "_TwoArgumentsError: busy"


def test_an_api_process_that_cannot_start_leaves_trading_alone(tmp_path, monkeypatch):
    """A broken interpreter or package on the API's side: the start does not wait for it
    (nor fail), and the system trades."""
    monkeypatch.setattr("supervision.api.process.sys.executable", "/bin/false")
    with serving(tmp_path, monkeypatch) as (system, client, log):
        eventually(lambda: len(log.of(OrderFilled)) >= 2, 30, "fills without the API")
        assert system.health().healthy
        with pytest.raises(OSError):
            client.get("/api/v1/status", timeout=2)
