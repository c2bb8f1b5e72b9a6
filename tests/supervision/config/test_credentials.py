"""API keys from the environment or a private secrets file; never printed."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from supervision.config import ConfigError, ExchangeSettings
from supervision.config.credentials import load_credentials, require_credentials

KEY = "k" * 20 + "WXYZ"
SECRET = "s" * 40


def test_keys_come_from_the_exchanges_environment_variables() -> None:
    """CONDUCTOR_<ID>_API_KEY/_SECRET/_PASSWORD, the id upper-cased."""
    env = {"CONDUCTOR_BINANCE_API_KEY": KEY, "CONDUCTOR_BINANCE_SECRET": SECRET,
           "CONDUCTOR_BINANCE_PASSWORD": "pw"}
    found = load_credentials("binance", ExchangeSettings(), env)
    assert found is not None
    assert (found.api_key, found.secret, found.password) == (KEY, SECRET, "pw")
    assert SECRET not in repr(found)
    assert KEY not in str(found)


def test_no_keys_is_none_and_live_without_keys_names_where_to_put_them() -> None:
    """Paper mode runs without keys; --live refuses with the variables and the file."""
    assert load_credentials("kraken", ExchangeSettings(), {}) is None
    with pytest.raises(ConfigError, match=r"CONDUCTOR_KRAKEN_API_KEY.*secrets_file"):
        require_credentials("kraken", ExchangeSettings(), {})


def test_a_key_without_its_secret_is_an_error_that_does_not_show_the_key() -> None:
    with pytest.raises(ConfigError, match="CONDUCTOR_BINANCE_SECRET") as info:
        load_credentials("binance", ExchangeSettings(), {"CONDUCTOR_BINANCE_API_KEY": KEY})
    assert KEY not in str(info.value)


def test_a_private_secrets_file_is_read(tmp_path: Path) -> None:
    """A chmod 600 TOML file with api_key and secret works."""
    path = tmp_path / "keys.toml"
    path.write_text(f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')
    path.chmod(0o600)
    settings = attrs.evolve(ExchangeSettings(), secrets_file=str(path))
    found = load_credentials("binance", settings, {})
    assert found is not None
    assert (found.api_key, found.secret, found.password) == (KEY, SECRET, "")


def test_a_secrets_file_others_can_read_is_refused_with_the_chmod(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')
    path.chmod(0o644)
    settings = attrs.evolve(ExchangeSettings(), secrets_file=str(path))
    with pytest.raises(ConfigError, match=f"chmod 600 {path}") as info:
        load_credentials("binance", settings, {})
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(("text", "match"), [
    ('api_key = "abc"\n', "no secret"),
    ('api_key = "abc"\nsecret = "x"\ntoken = "t"\n', "unknown key"),
    ('api_key = abc"\n', "not valid TOML"),
])
def test_a_broken_secrets_file_names_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    os.chmod(path, 0o600)
    settings = attrs.evolve(ExchangeSettings(), secrets_file=str(path))
    with pytest.raises(ConfigError, match=match):
        load_credentials("binance", settings, {})


def test_a_missing_secrets_file_is_an_error(tmp_path: Path) -> None:
    settings = attrs.evolve(ExchangeSettings(), secrets_file=str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="cannot be read"):
        load_credentials("binance", settings, {})
