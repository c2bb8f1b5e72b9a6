"""One backtest: recorded data through the very cores that trade live, in one thread.

``run_backtest`` opens the data (``source``), builds a ``SyncRuntime`` with the warm-up the
data gives, and feeds it the ticks through a ``RunRecorder``. It makes no threads and no
actors; the state database is a temporary file (deleted at the end), so memory stays bounded
by bars and trades however many ticks pass. Same config and data, same fills: the recorder's
digest shows it.

Failure: bad data was refused when ``BacktestData`` was made; an exception from a strategy or
a checkpoint (an optimiser pruning the trial) ends the run, the runtime is closed and its
database removed either way.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

import attrs

from supervision.config import SystemConfig
from supervision.research.recorder import Recording, RunRecorder
from supervision.research.source import BacktestData
from supervision.runtime import SyncRuntime
from supervision.status import SystemStatus


@attrs.frozen(kw_only=True)
class BacktestRun:
    """A finished backtest: its config, data, final status and recording."""

    config: SystemConfig
    data: BacktestData
    status: SystemStatus
    recording: Recording
    elapsed_s: float
    rejections: dict[str, int]


def backtest_config(config: SystemConfig) -> SystemConfig:
    """``config`` as a backtest runs it: the simulator's paper exchange, never live, a fresh
    state, a fixed run id (so order ids, hence the digest, repeat)."""
    return attrs.evolve(config, exchange="sim", run_id="backtest", duration=None,
                        metrics_port=None)


def run_backtest(config: SystemConfig, data: BacktestData, *,
                 progress: Callable[[int], None] | None = None,
                 checkpoint: Callable[[int, RunRecorder], None] | None = None,
                 checkpoints: int = 0) -> BacktestRun:
    """Run ``config``'s strategy, risk, exits and paper fees over ``data``.

    Args:
        progress: called with the market time (ms) every bar, for a progress bar.
        checkpoint: called ``checkpoints - 1`` times, at evenly spaced market times, with the
            index and the recorder; it may raise to stop the run.
    """
    config = backtest_config(config)
    folder = tempfile.mkdtemp(prefix="trade-conductor-backtest-")
    db = os.path.join(folder, "state.sqlite")
    config = attrs.evolve(config, state_db=db, pairs=data.pairs)
    history, ticks = data.open(config.history_size)
    initial = config.funding[config.quote]
    recorder = RunRecorder(data.pairs, initial, data.first_ms, data.last_ms, data.bar_ms)
    recorder.progress = progress
    recorder.checkpoint = checkpoint
    recorder.checkpoints = checkpoints
    started = time.perf_counter()
    runtime = SyncRuntime(config, recorder.wrap(ticks), start_ms=data.first_ms, history=history)
    try:
        recorder.attach(runtime.state.ledger, config.quote)
        runtime.on_event = recorder.on_event
        status = runtime.run()
        rejections = dict(status.rejections)
    finally:
        try:
            runtime.close()
        finally:
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
            os.rmdir(folder)
    recording = recorder.finish(data.last_ms)
    return BacktestRun(config=config, data=data, status=status, recording=recording,
                       elapsed_s=time.perf_counter() - started, rejections=rejections)
