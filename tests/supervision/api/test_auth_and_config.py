"""[api] and [notify] settings, the token's sources and checks, the throttle, redaction."""

from __future__ import annotations

import os
import stat

import pytest

from actors.messages import StrategySpec
from supervision import build_config
from supervision.api.auth import BadTokenThrottle, load_token
from supervision.api.queries import REDACTED, equity_points, redacted
from supervision.app.cli import config_from_args, parser
from supervision.config import ApiSettings, ConfigError, strategy_allowed

STRONG = "s" * 24


def settings(tmp_path, **values) -> ApiSettings:
    return ApiSettings(port=0, token_file=str(tmp_path / "var" / "api-token"), **values)


def test_a_token_is_generated_once_owner_only_and_reused(tmp_path):
    first = load_token(settings(tmp_path), environ={})
    path = tmp_path / "var" / "api-token"
    assert first.generated and len(first.value) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_token(settings(tmp_path), environ={}).value == first.value
    assert first.value not in repr(first)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_token(settings(tmp_path), environ={})


def test_the_environment_then_the_secrets_file_win_over_the_token_file(tmp_path):
    token = load_token(settings(tmp_path), environ={"CONDUCTOR_API_TOKEN": STRONG})
    assert token.value == STRONG and not token.generated
    with pytest.raises(ConfigError, match="at least 16"):
        load_token(settings(tmp_path), environ={"CONDUCTOR_API_TOKEN": "short"})
    secrets = tmp_path / "api.toml"
    secrets.write_text(f'token = "{STRONG}x"\n')
    secrets.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_token(settings(tmp_path, secrets_file=str(secrets)), environ={})
    secrets.chmod(0o600)
    assert load_token(settings(tmp_path, secrets_file=str(secrets)), environ={}).value == \
        STRONG + "x"


def test_a_non_loopback_address_needs_a_token_the_operator_gave(tmp_path):
    with pytest.raises(ConfigError, match="not a loopback address"):
        load_token(settings(tmp_path, host="0.0.0.0"), environ={})
    assert not (tmp_path / "var" / "api-token").exists()
    assert load_token(settings(tmp_path, host="0.0.0.0"),
                      environ={"CONDUCTOR_API_TOKEN": STRONG}).value == STRONG
    assert ApiSettings(host="::1").loopback and ApiSettings(host="localhost").loopback


def test_the_throttle_waits_longer_after_three_failures_and_forgets_on_success():
    throttle = BadTokenThrottle(free=3, base_s=0.25, max_s=1.0, window_s=60)
    waits = [throttle.failed("a", now=float(n)) for n in range(7)]
    assert waits == [0, 0, 0, 0.25, 0.5, 1.0, 1.0]
    assert throttle.failed("b", now=1.0) == 0
    throttle.succeeded("a")
    assert throttle.failed("a", now=8.0) == 0
    assert throttle.failed("c", now=0.0) == 0 and throttle.failed("c", now=1000.0) == 0


def test_api_settings_are_checked_and_the_flags_override_the_file():
    args = parser().parse_args(["--pairs", "BTC/USDT", "--api-port", "8080",
                                "--api-host", "127.0.0.2"])
    config = config_from_args(args)
    assert (config.api.port, config.api.host) == (8080, "127.0.0.2")
    base = {"pairs": "BTC/USDT"}
    assert build_config({}, base).api.port is None
    for bad, match in (({"port": 70000}, "api.port"), ({"colour": 1}, "unknown key"),
                       ({"cors_origins": ["*"]}, "wildcard"),
                       ({"allowed_strategies": ["no.such.module:Thing"]}, "allowed_strategies"),
                       ({"max_body_bytes": 10}, "max_body_bytes")):
        with pytest.raises(ConfigError, match=match):
            build_config({"api": bad}, base)
    config = build_config({"api": {"allowed_strategies": ["tests.helpers:Flip"],
                                   "cors_origins": ["https://example.org"]}}, base)
    assert config.api.allowed_strategies == ("tests.helpers:Flip",)


def test_only_built_ins_and_listed_strategies_may_be_swapped_in_from_outside():
    assert strategy_allowed(StrategySpec.of("ema_cross"), ()) == ""
    assert "not allowed" in strategy_allowed(StrategySpec.of("os.path:join"), ())
    assert strategy_allowed(StrategySpec.of("tests.helpers:Flip"), ("tests.helpers:Flip",)) == ""
    hidden = StrategySpec(path="aggregate", members=((StrategySpec.of("x.y:Z"), 1.0),))
    assert "'x.y:Z'" in strategy_allowed(hidden, ())


def test_the_effective_config_redacts_secrets_and_webhook_paths():
    config = build_config({}, {"pairs": "BTC/USDT", "notify": {
        "webhook": {"url": "https://hooks.example.org/services/T0/B0/SECRETPATH"}}})
    shown = redacted(config)
    assert "SECRETPATH" not in str(shown)
    assert shown["notify"]["channels"][0]["url"] == f"https://hooks.example.org/{REDACTED}"
    assert shown["api"]["token_file"].endswith("api-token")
    assert redacted({"exchange": {"apiKey": "k", "secret": "s", "secrets_file": "f"}}) == {
        "exchange": {"apiKey": REDACTED, "secret": REDACTED, "secrets_file": "f"}}


def test_equity_points_carry_their_drawdown_from_the_running_peak():
    points = equity_points([(1, 100.0), (2, 120.0), (3, 90.0), (4, 130.0)])
    assert [round(p.drawdown, 4) for p in points] == [0.0, 0.0, 0.25, 0.0]
