"""Fixtures every test package shares: the state database on each backend.

``state_db`` is a fresh, empty state database location for each test, once per backend:
an SQLite file in the test's temporary folder, and a new database on a real PostgreSQL server
(``tests.postgres_server``) started once per session. Where no server can be started the
PostgreSQL cases skip with a message that says how to get one, except under ``CI`` (set by
``.ci/run``'s environment), where they fail: CI never skips them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer, ServerUnavailableError

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway server for the session (skips, or fails on CI, where none can start)."""
    try:
        server = PostgresServer.start_new()
    except ServerUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_state_db(backend: str, tmp_path: Path,
                 request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Makes fresh state database locations on the test's backend (several per test)."""
    made: list[str] = []
    server: PostgresServer | None = None
    if backend == "postgresql":
        server = request.getfixturevalue("postgres_server")

    def make() -> str:
        if server is None:
            made.append(f"state{len(made) or ''}.sqlite")
            return str(tmp_path / made[-1])
        made.append(server.new_database())
        return server.url(made[-1])

    yield make
    if server is not None:
        for name in made:
            server.drop_database(name)


@pytest.fixture
def state_db(new_state_db: Callable[[], str]) -> str:
    """A fresh state database: an SQLite file, or a PostgreSQL URL (no password needed)."""
    return new_state_db()
