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


two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="[api] cpus needs Linux and a process allowed at least two CPUs")


def _thread_cpus() -> set[frozenset[int]]:
    found = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            found.add(frozenset(os.sched_getaffinity(int(tid))))
        except ProcessLookupError:
            continue
    return found


@two_cpus
def test_api_cpus_put_the_api_process_and_trading_on_cpus_of_their_own(tmp_path, monkeypatch):
    """``[api] cpus``: the API process on those, every trading thread (those started later
    too) on the rest; an isolated strategy's process is not held to trading's CPUs; when the
    system stops every thread has its CPUs back."""
    from strategies.isolated import _Child

    before = frozenset(os.sched_getaffinity(0))
    api_cpu = max(before)
    with serving(tmp_path, monkeypatch, api={"cpus": [api_cpu]}) as (system, client, log):
        assert client.get("/api/v1/status")[0] == 200
        assert os.sched_getaffinity(system._api._process.pid) == {api_cpu}
        assert _thread_cpus() == {before - {api_cpu}}
        eventually(lambda: len(log.of(OrderFilled)) >= 2, 30, "fills while pinned")
        child = _Child.start()
        try:
            assert os.sched_getaffinity(child.process.pid) == before
        finally:
            child.shutdown()
    assert _thread_cpus() == {before}


@pytest.mark.parametrize(("cpus", "says"), [
    ([], "not a list of distinct CPU numbers"),
    ([0, 0], "not a list of distinct CPU numbers"),
    (["1"], "not a list of distinct CPU numbers"),
    ([4096], "CPU 4096 is not one this process may use"),
])
def test_api_cpus_that_cannot_be_had_are_refused_by_name(cpus, says):
    from supervision import build_config
    from supervision.config import ConfigError

    with pytest.raises(ConfigError, match=f"api.cpus: .*{says}"):
        build_config({}, {"pairs": "BTC/USDT", "api": {"port": 0, "cpus": cpus}})


@two_cpus
def test_api_cpus_must_leave_one_to_trading():
    from supervision import build_config
    from supervision.config import ConfigError

    every = sorted(os.sched_getaffinity(0))
    with pytest.raises(ConfigError, match="leaves no CPU for trading"):
        build_config({}, {"pairs": "BTC/USDT", "api": {"port": 0, "cpus": every}})
