"""``optimize --cluster``: an Optuna study whose trials run as Ray tasks across a cluster.

The study stays in this process, on its journal file (so it resumes as ``optimize`` always
does): the sampler asks for a trial here, a Ray task runs its backtest on whichever node has a
free CPU, and the result is told back here. Nothing but a trial's values and its figures
cross the network; data small enough to preload (``PRELOAD_TICKS``) is read once here and
shipped through Ray's object store, larger data is read by each task from the same path on
its node (as replay files are on a cluster).

The difference from ``--jobs``: a task runs its backtest whole, so the median pruner cannot
stop a hopeless trial half-way (a task holds a ``FixedTrial``, which never prunes); trials
are still pruned for too few trades, refused values or an undefined objective.

Runs on the caller's thread; at most ``in_flight`` tasks at a time (``--jobs``, default the
cluster's CPUs). Ctrl-C cancels the tasks in flight and their trials are marked failed, so
the next run asks for them again.
"""

from __future__ import annotations

from typing import Any

from supervision.cluster.connect import join
from supervision.research import (
    PRELOAD_TICKS,
    StudyJob,
    evaluate,
    finished,
    open_study,
    recover_study,
    suggest,
)


def _run_trial(job: StudyJob, data: Any,
               params: dict[str, Any]) -> tuple[float | None, dict[str, Any]]:
    """In a Ray task: one backtest with ``params``; (value or None if pruned, its figures)."""
    import optuna

    trial = optuna.trial.FixedTrial(params)
    try:
        value: float | None = evaluate(job, data, trial, worker=-1)
    except optuna.TrialPruned:
        value = None
    return value, dict(trial.user_attrs)


def run_on_cluster(job: StudyJob, address: str, in_flight: int | None = None, *,
                   auth_token_path: str | None = None, progress: bool = True) -> Any:
    """Run ``job``'s remaining trials on the Ray cluster at ``address``; returns the study.

    Raises:
        ConfigError: Ray missing, or the cluster cannot be joined (see ``join``).
    """
    from optuna.trial import TrialState
    from tqdm import tqdm

    ray, owned = join(address, auth_token_path)
    try:
        study = open_study(job)
        recover_study(study)
        data = job.data
        if data.estimated_ticks() <= PRELOAD_TICKS:
            data = data.preload(job.config.history_size)
        data_ref = ray.put(data)
        task = ray.remote(num_cpus=1, max_retries=0)(_run_trial)
        width = in_flight or max(1, int(ray.cluster_resources().get("CPU", 1)))
        running: dict[Any, Any] = {}
        bar = tqdm(total=job.trials, initial=min(finished(study), job.trials), unit="trial",
                   desc=job.name, disable=None if progress else True, leave=False)
        try:
            while True:
                wanted = job.trials - finished(study) - len(running)
                while wanted > 0 and len(running) < width:
                    trial = study.ask()
                    suggest(trial, job.dims)  # samples this trial's values
                    running[task.remote(job, data_ref, trial.params)] = trial
                    wanted -= 1
                if not running:
                    break
                [done], _ = ray.wait(list(running), num_returns=1)
                trial = running.pop(done)
                value, figures = ray.get(done)
                for key, figure in figures.items():
                    trial.set_user_attr(key, figure)
                if value is None:
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    study.tell(trial, value)
                bar.n = min(finished(study), job.trials)
                bar.refresh()
        except BaseException:
            for ref, trial in running.items():
                ray.cancel(ref, force=True)
                study.tell(trial, state=TrialState.FAIL)
            raise
        finally:
            bar.close()
        return study
    finally:
        if owned:
            ray.shutdown()
