"""The API's bearer token: where it comes from, how it is checked, and how guessing is slowed.

``load_token`` runs once at start, on the starting thread. The token comes from, in order,
``CONDUCTOR_API_TOKEN``, ``[api] secrets_file`` (TOML ``token = "..."``, owner-only), or
``[api] token_file``, which is generated at first start (mode 600) and reused after. A server
on a non-loopback address needs one of the first two: a token chosen by the operator, not a
file the program wrote where whoever reads the disk finds it. Problems raise ``ConfigError``
(the CLI exits 2 before anything starts). The token's value is never logged or returned.

``BadTokenThrottle`` is used on the server's event loop only: each client address that sent
a wrong token waits longer for its next refusal (nothing else waits for it), and a right
token forgets its failures.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import time
from collections.abc import Mapping

import attrs

from supervision.config import ApiSettings, ConfigError, read_private_toml

TOKEN_ENV = "CONDUCTOR_API_TOKEN"  # noqa: S105 - the variable's name, not a token
MIN_TOKEN_CHARS = 16


@attrs.frozen(kw_only=True)
class ApiToken:
    value: str = attrs.field(repr=False)
    source: str
    """Where it came from, for the start-up line (never the value)."""
    generated: bool = False

    def matches(self, header: str | None) -> bool:
        """``Authorization: Bearer <token>``, compared in constant time."""
        if not header:
            return False
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.value.encode())


def load_token(settings: ApiSettings, environ: Mapping[str, str] | None = None) -> ApiToken:
    """The token the API checks; see the module docstring.

    Raises:
        ConfigError: a short token, an unreadable or group-readable file, no ``token`` in the
            secrets file, or a non-loopback host without a token given by the operator.
    """
    env = os.environ if environ is None else environ
    given = env.get(TOKEN_ENV, "")
    if given:
        return ApiToken(value=_strong(given, TOKEN_ENV), source=TOKEN_ENV)
    if settings.secrets_file:
        data = read_private_toml(settings.secrets_file, "api.secrets_file")
        value = data.get("token")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"api.secrets_file {settings.secrets_file!r} has no token = "
                              "\"...\" (a string)")
        return ApiToken(value=_strong(value, "api.secrets_file"),
                        source=f"api.secrets_file {settings.secrets_file}")
    if not settings.loopback:
        raise ConfigError(
            f"api.host: {settings.host!r} is not a loopback address, and no token was given; "
            f"set {TOKEN_ENV} (e.g. to the output of: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))') or [api] secrets_file, or listen on "
            "127.0.0.1")
    return ApiToken(value=_token_file(settings.token_file), source=settings.token_file,
                    generated=True)


def _strong(value: str, where: str) -> str:
    value = value.strip()
    if len(value) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{where}: the API token has {len(value)} characters; use at least "
                          f"{MIN_TOKEN_CHARS} (e.g. secrets.token_urlsafe(32))")
    return value


def _token_file(path: str) -> str:
    """Read the token file, or create it (owner-only) with a new random token."""
    if os.path.exists(path):
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"api.token_file {path!r} is readable by group or others (mode "
                              f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}")
        with open(path, encoding="utf-8") as handle:
            return _strong(handle.read(), f"api.token_file {path!r}")
    token = secrets.token_urlsafe(32)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"api.token_file {path!r} cannot be created: "
                          f"{exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


class BadTokenThrottle:
    """How long a client must wait before its refusal: nothing for the first ``free``
    failures within ``window_s``, then ``base_s`` doubling up to ``max_s``. At most
    ``max_clients`` addresses are remembered (the oldest are forgotten)."""

    def __init__(self, *, free: int = 3, base_s: float = 0.25, max_s: float = 5.0,
                 window_s: float = 300.0, max_clients: int = 10_000) -> None:
        self.free = free
        self.base_s = base_s
        self.max_s = max_s
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, tuple[int, float]] = {}

    def failed(self, client: str, now: float | None = None) -> float:
        """Count a failure; returns the seconds to wait before answering it."""
        now = time.monotonic() if now is None else now
        count, since = self._failures.pop(client, (0, now))
        if now - since > self.window_s:
            count, since = 0, now
        count += 1
        self._failures[client] = (count, since)
        while len(self._failures) > self.max_clients:
            del self._failures[next(iter(self._failures))]
        if count <= self.free:
            return 0.0
        return float(min(self.max_s, self.base_s * 2 ** (count - self.free - 1)))

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
