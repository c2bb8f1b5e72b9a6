"""``--state-db`` / ``[state]``: a path or a PostgreSQL URL, refused clearly when it is neither
(exit 2, nothing created), and a database that cannot be opened at start refused the same
way: no server, a wrong password, a missing database."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from supervision import ConfigError, build_config
from supervision.app.cli import run
from supervision.config.state import StateSettings, load_db_password
from tests.postgres_server import SECRET_PASSWORD, SECRET_USER, PostgresServer

PAIRS = {"pairs": "BTC/USDT"}


@pytest.mark.parametrize(("value", "named"), [
    ("mysql://tc@127.0.0.1:3306/db", ["'mysql'", "not served", "postgresql://"]),
    ("postgres:/one-slash", ["not a PostgreSQL URL", "two slashes"]),
    ("postgresql:/tc@127.0.0.1:5432/db", ["not a PostgreSQL URL", "two slashes"]),
    ("postgresql://tc:hunter2@127.0.0.1/db", ["holds a password", "CONDUCTOR_DB_PASSWORD",
                                              "tc:***@"]),
    ("postgresql://tc@127.0.0.1/db?password=hunter2", ["password is not accepted", "***"]),
    ("postgresql://tc@127.0.0.1/", ["names no database"]),
    ("postgresql://tc@127.0.0.1:99999/db", ["not a valid PostgreSQL URL"]),
    ("postgresql://tc@127.0.0.1/db?sslmod=require", ["'sslmod'", "sslmode"]),
    ("sqlite:/x.sqlite", ["not an SQLite URL", "sqlite:///"]),
])
def test_a_location_that_names_no_database_we_serve_is_refused(value, named):
    with pytest.raises(ConfigError) as caught:
        build_config({}, {**PAIRS, "state_db": value})

    message = str(caught.value)
    assert message.startswith("state_db: ")
    for fragment in named:
        assert fragment in message
    assert "hunter2" not in message


@pytest.mark.parametrize("value", [
    "postgresql://tc@127.0.0.1:5432/trading", "postgres://db.example/trading",
    "postgresql://tc@%2Fvar%2Frun%2Fpostgresql/trading?sslmode=disable",
    "var/state.sqlite", ":memory:", "C:\\state.sqlite", "sqlite:///var/x.sqlite"])
def test_paths_and_postgresql_urls_are_accepted(value):
    assert build_config({}, {**PAIRS, "state_db": value}).state_db == value


def test_the_url_comes_from_the_state_table_and_the_flag_wins():
    from_table = build_config({**PAIRS, "state": {"url": "postgresql://a@h/db"}}, {})
    flag = build_config({**PAIRS, "state": {"url": "postgresql://a@h/db"}},
                        {"state_db": "x.sqlite"})

    assert from_table.state_db == "postgresql://a@h/db"
    assert flag.state_db == "x.sqlite"


@pytest.mark.parametrize(("file_values", "named"), [
    ({"state": {"uri": "x"}}, "[state] unknown key 'uri'; valid keys: url, secrets_file"),
    ({"state": {"url": "postgresql://a@h/db"}, "state_db": "x.sqlite"}, "keep one"),
    ({"state": "postgresql://a@h/db"}, "[state] must be a table"),
    ({"state": {"url": 5}}, "state_db: 5 is not a path or a URL"),
])
def test_a_bad_state_table_is_refused(file_values, named):
    with pytest.raises(ConfigError) as caught:
        build_config({**PAIRS, **file_values}, {})

    assert named in str(caught.value)


def test_the_password_comes_from_the_environment_before_the_secrets_file(tmp_path: Path):
    secrets = tmp_path / "db.toml"
    secrets.write_text('password = "from-file"\n', encoding="utf-8")
    os.chmod(secrets, 0o600)
    settings = StateSettings(secrets_file=str(secrets))

    assert load_db_password(settings, {"CONDUCTOR_DB_PASSWORD": "from-env"}) == "from-env"
    assert load_db_password(settings, {}) == "from-file"
    assert load_db_password(StateSettings(), {}) is None


def test_a_secrets_file_others_can_read_is_refused_with_the_fix(tmp_path: Path):
    secrets = tmp_path / "db.toml"
    secrets.write_text('password = "from-file"\n', encoding="utf-8")
    os.chmod(secrets, 0o644)

    with pytest.raises(ConfigError, match="chmod 600") as caught:
        load_db_password(StateSettings(secrets_file=str(secrets)), {})
    assert "from-file" not in str(caught.value)


# -- the CLI: exit 2 before anything starts ---------------------------------------------------


def cli_refuses(tmp_path: Path, monkeypatch, capsys, *args: str) -> str:
    """Runs the CLI in ``tmp_path``; asserts exit 2, one error line, nothing created there.
    (The CLI's process-wide logging set-up is skipped: it would outlive the test.)"""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("supervision.app.cli.configure_logging", lambda *a, **k: None)
    code = run(["--pairs", "BTC/USDT", "--duration", "1", *args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert [line for line in lines if line.startswith("trade-conductor: error: ")] == [lines[-1]]
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    return lines[-1]


def test_a_postgresql_url_with_one_slash_creates_no_sqlite_file(tmp_path, monkeypatch, capsys):
    """The bug a new user met: this used to become an SQLite file named postgresql:/..."""
    line = cli_refuses(tmp_path, monkeypatch, capsys,
                       "--state-db", "postgresql:/tc@127.0.0.1:5432/db")

    assert "not a PostgreSQL URL" in line


def test_an_unreachable_server_is_refused_at_start(tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = cli_refuses(tmp_path, monkeypatch, capsys,
                       "--state-db", f"postgresql://tc@127.0.0.1:{port}/trading")

    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}" in line
    assert "Connection refused" in line


def test_a_wrong_password_is_refused_at_start(tmp_path, monkeypatch, capsys,
                                               postgres_server: PostgresServer):
    monkeypatch.setenv("CONDUCTOR_DB_PASSWORD", "not-" + SECRET_PASSWORD)
    line = cli_refuses(tmp_path, monkeypatch, capsys,
                       "--state-db", postgres_server.url("postgres", user=SECRET_USER))

    assert "refused the login of tc_secret" in line
    assert "CONDUCTOR_DB_PASSWORD" in line
    assert SECRET_PASSWORD not in line


def test_a_missing_database_is_refused_at_start_with_how_to_create_it(
        tmp_path, monkeypatch, capsys, postgres_server: PostgresServer):
    line = cli_refuses(tmp_path, monkeypatch, capsys,
                       "--state-db", postgres_server.url("no_such_db"))

    assert "has no database 'no_such_db'" in line
    assert "createdb" in line


def test_a_database_of_another_program_is_refused_at_start(
        tmp_path, monkeypatch, capsys, postgres_server: PostgresServer):
    """postgres' own database has no tables of ours; one with others' tables is refused."""
    name = postgres_server.new_database()
    url = postgres_server.url(name)
    try:
        from tests.helpers import db_rows

        db_rows(url, "CREATE TABLE customers (id INTEGER)")
        line = cli_refuses(tmp_path, monkeypatch, capsys, "--state-db", url)
    finally:
        postgres_server.drop_database(name)

    assert "not a trade-conductor state database" in line
