"""``optimize --cluster``: the study's trials run as Ray tasks on a local two-node cluster
(127.0.0.1 only, in a network namespace of its own: see ``conftest.py``)."""

from __future__ import annotations

import pytest

from supervision.main import main
from tests.supervision.cluster.support import local_cluster
from tests.supervision.research.data import write_candles
from tests.supervision.research.test_optimize import open_study_at

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def test_optimize_runs_its_trials_as_tasks_on_the_cluster_and_resumes_there(tmp_path, capsys):
    """Six trials, then eight: each ran in a Ray task (worker -1), the study on the journal
    here holds them all, and the best values are written as a config snippet."""
    data = write_candles(tmp_path / "walk.csv", 2000, seed=5)
    with local_cluster(nodes=2, cpus=1) as cluster:
        def optimize(trials: int) -> int:
            return main(["optimize", "--replay", f"BTC/USDT={data}", "--strategy", "ema_cross",
                         "--storage", str(tmp_path / "studies"), "--study", "s",
                         "--min-trades", "2", "--no-progress", "--trials", str(trials),
                         "--cluster", cluster.address])

        assert optimize(6) == 0
        assert optimize(8) == 0

    study = open_study_at(tmp_path)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 8
    assert {t.user_attrs["worker"] for t in finished} == {-1}
    assert all("trades" in t.user_attrs for t in finished)
    assert (tmp_path / "studies" / "s-best.toml").is_file()
    assert "best values:" in capsys.readouterr().out


def test_optimize_on_a_cluster_nobody_runs_is_one_clear_error(tmp_path, capsys):
    """Nothing answers at the address: exit 2, one line, no study written."""
    data = write_candles(tmp_path / "walk.csv", 200, seed=5)
    code = main(["optimize", "--replay", f"BTC/USDT={data}", "--strategy", "ema_cross",
                 "--storage", str(tmp_path / "studies"), "--no-progress",
                 "--cluster", "127.0.0.1:1"])
    assert code == 2
    assert "nothing answers at 127.0.0.1:1" in capsys.readouterr().err
    assert not list((tmp_path / "studies").glob("*.journal"))
