"""Bad cluster input is one clear error, exit 2, before anything starts (no Ray started:
these fail before Ray would be joined, or with Ray's own answer stood in for)."""

from __future__ import annotations

import socket
import sys

import pytest

from supervision.app.cli import run
from supervision.cluster import connect
from supervision.config import ClusterConfig, ConfigError


def run_cli(tmp_path, *extra):
    db = tmp_path / "state.sqlite"
    code = run(["--pairs", "BTC/USDT,ETH/USDT", "--state-db", str(db),
                "--log-dir", str(tmp_path / "logs"), *extra])
    return code, db


def test_an_address_where_nothing_answers_is_exit_2_and_no_database(tmp_path, capsys):
    """127.0.0.1:1 refuses: the address and the way out are named; nothing is created."""
    code, db = run_cli(tmp_path, "--cluster", "127.0.0.1:1")

    assert code == 2
    err = capsys.readouterr().err
    assert "cluster.address: nothing answers at 127.0.0.1:1" in err
    assert "ray start --head" in err
    assert not db.exists()


def test_without_ray_installed_the_error_says_how_to_install_it(tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an import of a missing package does

    code, db = run_cli(tmp_path, "--cluster", "auto")

    assert code == 2
    assert 'pip install -e ".[cluster]"' in capsys.readouterr().err
    assert not db.exists()


def test_a_cluster_of_another_ray_version_is_named_as_such(monkeypatch):
    """Ray refuses to join a cluster of another version; we say so in one line."""
    import ray

    def refuse(**_kwargs):
        raise RuntimeError("Version mismatch: The cluster was started with:\n Ray: 2.40.0")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with socket.create_server(("127.0.0.1", 0)) as server:  # something answers there
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(ConfigError) as error:
            connect(ClusterConfig(address=address, shards=1))

    assert "runs another Ray version than this process" in str(error.value)
    assert "Ray: 2.40.0" not in str(error.value)  # first line only
    assert "Version mismatch" in str(error.value)


def test_a_missing_token_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"auth_token_path: .* is not a file"):
        connect(ClusterConfig(address="auto", shards=1,
                              auth_token_path=str(tmp_path / "no-token")))
