"""Where the state lives: an SQLite file path or a PostgreSQL URL, told apart and checked.

``parse_location`` is the one place that reads ``--state-db`` / ``[state] url``, used by the
config (to refuse a bad value before anything starts) and by ``open_store`` (to pick the
backend). A value with a URL scheme is never taken as a file name: ``postgresql:/tc@host/db``
used to become an SQLite file of that name in the working folder. Accepted:

- a path, ``:memory:``, or ``sqlite:///relative/path`` / ``sqlite:////absolute/path``;
- ``postgresql://[user@]host[:port]/dbname[?param=value&...]`` (``postgres://`` too), with
  the libpq parameters in ``URL_PARAMS``; a socket folder as host is percent-encoded
  (``postgresql://tc@%2Fvar%2Frun%2Fpostgresql/trading``).

A password in the URL is refused: a URL shows in process lists, shell histories and logs. The
password comes from ``CONDUCTOR_DB_PASSWORD`` or a secrets file (``supervision.config.state``),
or libpq's own ``~/.pgpass``. Messages never repeat a password that was given.

Pure functions, any thread. Raises ``StateLocationError`` (a ``ValueError``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
DEFAULT_PORT = 5432
URL_PARAMS = ("sslmode", "sslrootcert", "connect_timeout", "application_name", "options")
"""libpq connection parameters a URL may carry (``options=-csearch_path=trading`` puts the
tables in a schema of their own)."""
EXAMPLE = "postgresql://user@127.0.0.1:5432/dbname"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
"""A URL scheme: two characters at least, so ``C:\\state.sqlite`` stays a Windows path."""


class StateLocationError(ValueError):
    """A state database location that names no database this program can open."""


@attrs.frozen(kw_only=True)
class StateLocation:
    """A parsed location; ``display`` is safe to log (it never holds a password)."""

    kind: str
    """``sqlite`` or ``postgresql``."""
    path: str = ""
    """SQLite: the file (or ``:memory:``)."""
    host: str = ""
    port: int = DEFAULT_PORT
    user: str = ""
    dbname: str = ""
    params: tuple[tuple[str, str], ...] = ()
    display: str

    @property
    def is_postgresql(self) -> bool:
        return self.kind == POSTGRESQL


def parse_location(text: str) -> StateLocation:
    """Tell a path from a URL and check it; see the module docstring.

    Raises:
        StateLocationError: a scheme we do not serve, a malformed PostgreSQL URL, a password
            in the URL, an empty value.
    """
    if not text.strip():
        raise StateLocationError(f"{text!r} is empty; give a file path for SQLite or "
                                 f"a URL like {EXAMPLE}")
    match = _SCHEME.match(text)
    if match is None:
        return StateLocation(kind=SQLITE, path=text, display=text)
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        return _sqlite_url(text)
    if scheme not in ("postgresql", "postgres"):
        raise StateLocationError(
            f"{_safe(text)!r} uses the scheme {scheme!r}, which is not served; give a file "
            f"path for SQLite or a PostgreSQL URL ({EXAMPLE}); a file whose name holds a "
            "colon is written ./name")
    if not text[match.end():].startswith("//"):
        raise StateLocationError(
            f"{_safe(text)!r} is not a PostgreSQL URL (the scheme needs two slashes); "
            f"write it as {EXAMPLE}")
    return _postgresql_url(text)


def _sqlite_url(text: str) -> StateLocation:
    rest = text.split(":", 1)[1]
    if not rest.startswith("///") or len(rest) == 3:
        raise StateLocationError(
            f"{text!r} is not an SQLite URL; write sqlite:///relative/path.sqlite, "
            "sqlite:////absolute/path.sqlite, or just the path")
    path = unquote(rest[3:])
    return StateLocation(kind=SQLITE, path=path, display=path)


def _postgresql_url(text: str) -> StateLocation:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:  # a port that is no number, or out of range
        raise StateLocationError(f"{_safe(text)!r} is not a valid PostgreSQL URL ({exc}); "
                                 f"write it as {EXAMPLE}") from None
    if parts.password is not None:
        raise StateLocationError(
            f"{_safe(text)!r} holds a password, which would show in process lists and "
            "logs; leave it out of the URL and set CONDUCTOR_DB_PASSWORD or "
            "[state] secrets_file")
    host = unquote(parts.hostname or "")
    if not host:
        raise StateLocationError(f"{_safe(text)!r} names no host; write it as {EXAMPLE}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise StateLocationError(f"{_safe(text)!r} names no database (the path after the "
                                 f"host); write it as {EXAMPLE}")
    if parts.fragment:
        raise StateLocationError(f"{_safe(text)!r} has a '#' part; a PostgreSQL URL has none")
    params = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in URL_PARAMS:
            name = "password" if key == "password" else repr(key)
            raise StateLocationError(
                f"{_safe(text)!r}: parameter {name} is not accepted in the URL; valid: "
                f"{', '.join(URL_PARAMS)}"
                + (" (set CONDUCTOR_DB_PASSWORD or [state] secrets_file for the password)"
                   if key == "password" else ""))
        params.append((key, value))
    user = unquote(parts.username or "")
    port = DEFAULT_PORT if port is None else port
    shown_host = parts.netloc.rpartition("@")[2]
    login = f"{parts.username}@" if user else ""
    query = f"?{parts.query}" if parts.query else ""
    display = f"postgresql://{login}{shown_host}/{parts.path.lstrip('/')}{query}"
    return StateLocation(kind=POSTGRESQL, host=host, port=port, user=user, dbname=dbname,
                         params=tuple(params), display=display)


def _safe(text: str) -> str:
    """``text`` with any password part of a URL's authority masked."""
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", text)
    if not password:
        return re.sub(r"([?&]password=)[^&]*", r"\1***", text)
    return text.replace(f":{password}@", ":***@", 1)
