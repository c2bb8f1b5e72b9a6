"""Configuration: TOML and flags merged into one frozen, validated ``SystemConfig``."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.execution.paper_exchange import PaperConfig
from actors.messages import OrderType, StrategySpec
from actors.pair.orchestrator import ExitRules
from actors.risk.core import RiskConfig
from supervision.app.cli import config_from_args, parser
from supervision.config import (
    DEFAULT_STATE_DB,
    SIM,
    ConfigError,
    RestartPolicy,
    SystemConfig,
    build_config,
    load_toml,
    parse_replay,
    parse_speed,
    strategy_spec_from,
)

PAIRS = {"pairs": "BTC/USDT,ETH/USDT"}
TRADES_HEADER = "timestamp_ms,price,amount,side\n"


def test_a_pair_list_alone_gives_the_documented_defaults():
    """Only --pairs: simulator, ema_cross, default database, seed 42, real-time speed."""
    config = build_config({}, PAIRS)

    assert config.pairs == ("BTC/USDT", "ETH/USDT")
    assert config.exchange == SIM
    assert config.strategy == StrategySpec.of("ema_cross")
    assert config.state_db == DEFAULT_STATE_DB
    assert (config.duration, config.seed, config.speed) == (None, 42, 1.0)
    assert (config.log_level, config.status_interval, config.summary_json) == ("INFO", 5.0, None)
    assert config.replay == () and not config.is_replay
    assert (config.risk, config.paper, config.exits, config.restart) == (
        RiskConfig(), PaperConfig(), ExitRules(), RestartPolicy())
    assert config.quote == "USDT" and config.funding == {"USDT": 10_000.0}


def test_flags_override_the_file_and_unset_flags_leave_it_alone():
    """A flag given wins over the file; a flag left out (None) keeps the file's value."""
    file_values = {"pairs": ["SOL/USDT"], "seed": 7, "speed": 5, "log_level": "debug",
                   "state_db": "var/file.sqlite", "status_interval": 2}

    config = build_config(file_values, {"pairs": "BTC/USDT", "seed": 9, "speed": None,
                                        "state_db": None, "log_level": None})

    assert config.pairs == ("BTC/USDT",)
    assert config.seed == 9
    assert config.speed == 5.0
    assert config.log_level == "DEBUG"
    assert config.state_db == "var/file.sqlite"
    assert config.status_interval == 2.0


def test_a_pair_list_may_be_a_toml_array():
    """``pairs = ["BTC/USDT", "ETH/USDT"]`` reads the same as the comma-separated flag."""
    assert build_config({"pairs": ["BTC/USDT", "ETH/USDT"]}, {}).pairs == build_config(
        {}, PAIRS).pairs


def test_a_strategy_table_with_params_becomes_a_spec():
    """``[strategy] name = "rsi_reversion", params = {...}`` builds that spec."""
    config = build_config({"strategy": {"name": "rsi_reversion",
                                        "params": {"period": 10, "oversold": 25}}}, PAIRS)

    assert config.strategy == StrategySpec.of("rsi_reversion", period=10, oversold=25)


def test_an_aggregate_strategy_carries_its_rule_and_weighted_members():
    """The README's aggregate: rule and threshold become params, members keep their weights."""
    table = {"name": "aggregate", "rule": "weighted", "threshold": 0.4, "members": [
        {"name": "ema_cross", "params": {"fast": 12, "slow": 26}},
        {"name": "rsi_reversion"},
        {"name": "donchian_breakout", "weight": 2},
    ]}

    spec = build_config({"strategy": table}, PAIRS).strategy

    assert spec.path == "aggregate"
    assert spec.params_dict() == {"rule": "weighted", "threshold": 0.4}
    assert spec.members == (
        (StrategySpec.of("ema_cross", fast=12, slow=26), 1.0),
        (StrategySpec.of("rsi_reversion"), 1.0),
        (StrategySpec.of("donchian_breakout"), 2.0),
    )


@pytest.mark.parametrize(("table", "named"), [
    ("ema_cross", ('needs name = "ema_cross" (a built-in or package.module:ClassName) and '
                   "optional params = {...}")),
    ({"params": {"fast": 5}}, 'needs name = "ema_cross"'),
    ({"name": "ema_cross", "colour": "red"}, "unknown keys ['colour']"),
    ({"name": "ema_cross", "params": 5}, "params must be a table"),
    ({"name": "aggregate"}, "an aggregate needs members"),
    ({"name": "aggregate", "members": 3}, "an aggregate needs members"),
    ({"name": "aggregate", "members": ["ema_cross"]}, "[strategy.members[0]] needs name"),
    ({"name": "aggregate", "members": [{"name": "ema_cross", "weight": "heavy"}]},
     "[strategy.members[0]] weight = 'heavy' is not a number"),
])
def test_a_malformed_strategy_table_is_refused_naming_the_problem(table, named):
    """Missing name, unknown keys, non-table params and bad members each say what is wrong."""
    with pytest.raises(ConfigError) as caught:
        strategy_spec_from(table)

    assert named in str(caught.value)


def test_a_strategy_that_cannot_be_built_is_refused_before_anything_starts():
    """Bad params of a valid strategy fail in build_config, naming the param and the limit."""
    with pytest.raises(ConfigError, match=r"strategy: .*fast=50.*slow=10"):
        build_config({"strategy": {"name": "ema_cross", "params": {"fast": 50, "slow": 10}}},
                     PAIRS)


@pytest.mark.parametrize(("exchange", "expected"), [
    ({"id": "binance"}, "binance"), ({"id": "sim"}, SIM), ({}, SIM), ("kraken", "kraken"),
])
def test_the_exchange_is_a_string_or_an_id_table(exchange, expected):
    """``exchange = "kraken"`` and ``[exchange] id = "binance"`` both name a ccxt id."""
    assert build_config({"exchange": exchange}, PAIRS).exchange == expected


@pytest.mark.parametrize(("exchange", "named"), [
    ({"id": "nosuchexchange"}, "'nosuchexchange' is neither 'sim' nor a ccxt exchange id"),
    ("binanse", "similar: binance"),
    ({"id": "binance", "secret": "x"}, "[exchange] unknown keys ['secret']; valid keys: id"),
])
def test_an_unknown_exchange_is_refused_with_the_valid_choices(exchange, named):
    """An id ccxt does not know, or an unknown [exchange] key, is named with what is valid."""
    with pytest.raises(ConfigError) as caught:
        build_config({"exchange": exchange}, PAIRS)

    assert named in str(caught.value)


def test_a_flag_exchange_overrides_the_file_table():
    """``--exchange sim`` wins over ``[exchange] id = "binance"``."""
    assert build_config({"exchange": {"id": "binance"}}, {**PAIRS, "exchange": "sim"}
                        ).exchange == SIM


@pytest.mark.parametrize(("file_values", "key"), [
    ({"colour": "red"}, "'colour'"),
    ({"risk": {"stake": 0.1}}, "[risk] unknown key 'stake'"),
    ({"paper": {"fee": 0.1}}, "[paper] unknown key 'fee'"),
    ({"exits": {"stop": 0.1}}, "[exits] unknown key 'stop'"),
    ({"restart": {"retries": 3}}, "[restart] unknown key 'retries'"),
])
def test_an_unknown_key_is_named_with_the_valid_keys(file_values, key):
    """A typo anywhere in the file is reported by name next to the keys that exist."""
    with pytest.raises(ConfigError) as caught:
        build_config(file_values, PAIRS)

    message = str(caught.value)
    assert key in message
    assert "valid keys:" in message


@pytest.mark.parametrize(("file_values", "named"), [
    ({"risk": {"stake_fraction": 5}}, "risk.stake_fraction = 5 is invalid"),
    ({"risk": {"stake_fraction": "high"}}, "risk.stake_fraction = 'high'"),
    ({"risk": {"max_open_positions": 1.5}}, "risk.max_open_positions = 1.5"),
    ({"risk": [1, 2]}, "[risk] must be a table"),
    ({"paper": {"taker_fee": 0.5}}, "paper.taker_fee = 0.5 is invalid"),
    ({"exits": {"stop_loss": 2}}, "stop_loss"),
    ({"exits": {"entry_order_type": "stop"}},
     "exits.entry_order_type: 'stop' is not one of market, limit"),
    ({"restart": {"max_restarts": "x"}}, "restart.max_restarts = 'x' is invalid"),
    ({"restart": {"max_restarts": -1}}, "restart.max_restarts = -1"),
    ({"restart": {"window_s": 0}}, "restart.window_s = 0"),
    ({"restart": {"backoff_initial_s": True}}, "restart.backoff_initial_s = True"),
    ({"seed": 1.5}, "seed: 1.5 is not an integer"),
    ({"seed": True}, "seed: True is not an integer"),
    ({"speed": True}, "speed: True is not a number"),
    ({"duration": -3}, "duration: -3 must be a positive number"),
    ({"duration": "long"}, "duration: 'long' is not a number"),
    ({"status_interval": 0}, "status_interval: 0"),
    ({"tick_interval_ms": math.inf}, "tick_interval_ms: inf"),
    ({"warmup_ticks": 0.5}, "warmup_ticks: 0.5 must be a positive integer"),
    ({"history_size": 0}, "history_size: 0"),
    ({"initial_balance": "lots"}, "initial_balance: 'lots'"),
    ({"log_level": "LOUD"}, "log_level: 'LOUD' is not one of TRACE, DEBUG, INFO"),
    ({"state_db": " "}, "state_db: ' ' is empty; give a file path"),
    ({"pairs": 5}, "pairs: 5 is not a list of BASE/QUOTE symbols"),
    ({"pairs": ["BTC/USDT", 3]}, "pairs: ['BTC/USDT', 3]"),
    ({"replay": 5}, "replay: 5 is not a table of files per pair"),
])
def test_a_bad_value_is_refused_naming_its_key_and_what_would_be_valid(file_values, named):
    """Out-of-range values and wrong types fail validation with the key in the message."""
    values = file_values if "pairs" in file_values else {**PAIRS, **file_values}

    with pytest.raises(ConfigError) as caught:
        build_config(values, {})

    assert named in str(caught.value)


def test_sections_are_built_from_their_tables():
    """[risk], [paper], [exits] and [restart] values reach the frozen section configs."""
    config = build_config({
        "risk": {"stake_fraction": 0.2, "max_open_positions": 3},
        "paper": {"taker_fee": 0.002},
        "exits": {"stop_loss": 0.03, "entry_order_type": "limit"},
        "restart": {"max_restarts": 2, "backoff_initial_s": 0.5},
    }, PAIRS)

    assert (config.risk.stake_fraction, config.risk.max_open_positions) == (0.2, 3)
    assert config.paper.taker_fee == 0.002
    assert (config.exits.stop_loss, config.exits.entry_order_type) == (0.03, OrderType.LIMIT)
    assert (config.restart.max_restarts, config.restart.backoff_initial_s) == (2, 0.5)


def test_integer_valued_numbers_are_accepted_where_integers_are_needed():
    """``seed = 7.0`` and ``warmup_ticks = 50.0`` are whole numbers, so they are fine."""
    config = build_config({"seed": 7.0, "warmup_ticks": 50.0}, PAIRS)

    assert (config.seed, config.warmup_ticks) == (7, 50)


@pytest.mark.parametrize(("pairs", "named"), [
    ("BTCUSDT", "invalid pair 'BTCUSDT'"),
    ("BTC//USDT", "invalid pair 'BTC//USDT'"),
    ("btc/usdt", "invalid pair 'btc/usdt'"),
    ("", "invalid pair list ''"),
    ("BTC/USDT,", "invalid pair list 'BTC/USDT,'"),
    ("BTC/USDT,BTC/USDT", "names a pair twice"),
    ([], "invalid pair list ''"),
])
def test_a_malformed_pair_list_is_refused_with_the_expected_form(pairs, named):
    """Each malformed list is named and the BASE/QUOTE form is shown."""
    with pytest.raises(ConfigError) as caught:
        build_config({}, {"pairs": pairs})

    assert named in str(caught.value)
    assert "BTC/USDT" in str(caught.value)


def test_no_pairs_at_all_is_refused_with_an_example():
    """Without pairs (and without replay files to take them from) nothing can run."""
    with pytest.raises(ConfigError, match=r"pairs: none given; e\.g\. --pairs BTC/USDT"):
        build_config({}, {})


def test_all_pairs_must_share_one_quote_currency():
    """One account, one equity: BTC/USDT with ETH/BTC is refused, naming both quotes."""
    with pytest.raises(ConfigError, match=r"one quote currency.*got BTC, USDT"):
        build_config({}, {"pairs": "BTC/USDT,ETH/BTC"})


def test_a_stable_quote_is_funded_with_ten_thousand_units():
    """EUR is a stable quote: a new account starts with 10,000 EUR."""
    config = build_config({}, {"pairs": "BTC/EUR,ETH/EUR"})

    assert config.quote == "EUR"
    assert config.funding == {"EUR": 10_000.0}


def test_a_crypto_quote_is_funded_with_ten_thousand_dollars_worth():
    """ETH/BTC: the account starts with about 10,000 USD worth of BTC, not 10,000 BTC."""
    config = build_config({}, {"pairs": "ETH/BTC,SOL/BTC"})

    assert config.quote == "BTC"
    assert 0 < config.funding["BTC"] < 1


def test_an_initial_balance_overrides_the_funding():
    """``initial_balance`` funds a new database with exactly that much quote currency."""
    assert build_config({"initial_balance": 500}, PAIRS).funding == {"USDT": 500.0}


@pytest.mark.parametrize(("text", "expected"), [
    ("max", math.inf), (" MAX ", math.inf), ("10", 10.0), ("0.5", 0.5), (3, 3.0),
])
def test_speed_is_max_or_a_positive_number(text, expected):
    """'max' (any case) is unbounded; numbers, as text or not, are speed factors."""
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "abc", "nan", "", True])
def test_a_speed_that_is_not_positive_is_refused_naming_max(text):
    """Zero, negative, NaN and words fail with the valid forms spelled out."""
    with pytest.raises(ConfigError) as caught:
        parse_speed(text)

    assert "speed:" in str(caught.value)
    assert "'max'" in str(caught.value)


def test_replay_items_become_one_file_per_pair():
    """``PAIR=FILE`` items, spaces around either side ignored, keep their order."""
    assert parse_replay(["BTC/USDT=a.csv", " ETH/USDT = data/b.csv "]) == (
        ("BTC/USDT", "a.csv"), ("ETH/USDT", "data/b.csv"))


@pytest.mark.parametrize(("items", "named"), [
    (["BTC/USDT"], "'BTC/USDT' is not PAIR=FILE.csv"),
    (["=a.csv"], "'=a.csv' is not PAIR=FILE.csv"),
    ([" =a.csv"], "is not PAIR=FILE.csv"),
    (["BTC/USDT="], "'BTC/USDT=' is not PAIR=FILE.csv"),
    (["BTC/USDT=a.csv", "BTC/USDT=b.csv"], "pair BTC/USDT is given twice"),
    (["BTC/USDT=a.csv", " BTC/USDT =b.csv"], "pair BTC/USDT is given twice"),
])
def test_a_malformed_or_repeated_replay_item_is_refused(items, named):
    """No '=', an empty side, or a pair given twice is refused with the expected form."""
    with pytest.raises(ConfigError) as caught:
        parse_replay(items)

    assert named in str(caught.value)


def test_replay_pairs_default_the_pair_list(tmp_path):
    """Replay files without --pairs trade exactly the pairs they are for."""
    path = tmp_path / "btc.csv"
    path.write_text(TRADES_HEADER + "1700000000000,60000,0.1,buy\n")

    config = build_config({"replay": {"BTC/USDT": str(path)}}, {})

    assert config.pairs == ("BTC/USDT",)
    assert config.replay == (("BTC/USDT", str(path)),)
    assert config.is_replay


def test_a_replay_file_must_exist_and_match_the_pairs(tmp_path):
    """A missing file or a file for a pair that is not traded is refused by name."""
    path = tmp_path / "btc.csv"
    path.write_text(TRADES_HEADER)

    with pytest.raises(ConfigError, match=r"replay: file '.*missing\.csv' for BTC/USDT"):
        build_config({}, {"pairs": "BTC/USDT", "replay": (("BTC/USDT", "missing.csv"),)})
    with pytest.raises(ConfigError, match="one file per pair; pairs BTC/USDT but files for "
                                          "ETH/USDT"):
        build_config({}, {"pairs": "BTC/USDT", "replay": (("ETH/USDT", str(path)),)})


def test_a_replay_file_with_an_unknown_header_names_both_valid_headers(tmp_path):
    """A CSV that is neither trades nor candles fails with both schemas spelled out."""
    path = tmp_path / "prices.csv"
    path.write_text("time,price\n1,2\n")

    with pytest.raises(ConfigError) as caught:
        build_config({}, {"pairs": "BTC/USDT", "replay": (("BTC/USDT", str(path)),)})

    message = str(caught.value)
    assert "'time,price'" in message
    assert "timestamp_ms,price,amount,side" in message
    assert "timestamp_ms,open,high,low,close,volume" in message


def test_load_toml_reads_a_file(tmp_path):
    """A valid file becomes a dict of its tables."""
    path = tmp_path / "c.toml"
    path.write_text('pairs = ["BTC/USDT"]\n[risk]\nstake_fraction = 0.2\n')

    assert load_toml(str(path)) == {"pairs": ["BTC/USDT"], "risk": {"stake_fraction": 0.2}}


def test_load_toml_says_why_a_file_cannot_be_used(tmp_path):
    """Missing, a directory, or not TOML: each is a ConfigError naming the file."""
    broken = tmp_path / "broken.toml"
    broken.write_text("pairs = [\n")

    with pytest.raises(ConfigError, match=r"config file '.*nope\.toml' does not exist"):
        load_toml(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="cannot be read"):
        load_toml(str(tmp_path))
    with pytest.raises(ConfigError, match=r"config file '.*broken\.toml' is not valid TOML"):
        load_toml(str(broken))


def test_the_restart_backoff_doubles_from_the_initial_delay_up_to_the_cap():
    """0.1, 0.2, 0.4, ... seconds, never more than backoff_max_s."""
    policy = RestartPolicy(backoff_initial_s=0.1, backoff_max_s=1.0)

    delays = [policy.backoff(attempt) for attempt in range(1, 7)]

    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.backoff(0) == pytest.approx(0.1)


def test_the_restart_backoff_stays_capped_for_any_number_of_attempts():
    """A crash loop with a huge restart budget never overflows the backoff."""
    policy = RestartPolicy(max_restarts=100_000, backoff_max_s=10.0)

    assert policy.backoff(5_000) == 10.0


def test_a_config_is_frozen():
    """Configs are values: no attribute can change after validation."""
    config = build_config({}, PAIRS)

    with pytest.raises(AttributeError):
        config.seed = 1  # type: ignore[misc]


# -- properties --------------------------------------------------------------------------------


def config_or_error(file_values: dict[str, Any], overrides: dict[str, Any]
                    ) -> SystemConfig | ConfigError:
    """The config, or the ConfigError refusing it; any other exception propagates."""
    try:
        return build_config(file_values, overrides)
    except ConfigError as exc:
        return exc

_pair_like = st.text(alphabet="ABCDEHSTUX0/ ,\n\t-", max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), _pair_like))
def test_any_pairs_text_gives_a_config_or_a_config_error(text):
    """Arbitrary --pairs text never escapes as another exception."""
    result = config_or_error({}, {"pairs": text})

    if isinstance(result, ConfigError):
        assert str(result).startswith("pairs:")
    else:
        assert result.pairs


_PARAM_KEYS = {
    "ema_cross": ["fast", "slow", "timeframe_s"],
    "rsi_reversion": ["period", "oversold", "overbought", "timeframe_s"],
    "donchian_breakout": ["entry_period", "exit_period", "timeframe_s"],
}
_param_values = st.one_of(
    st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2),
    st.sampled_from(["10", "1e400", "nan", "-inf", " 5 ", "true", "0x10", "1_000", "\u0663"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_strategy_params_give_a_config_or_a_config_error(data):
    """Arbitrary values (and keys) for a valid strategy never escape as another exception."""
    name = data.draw(st.sampled_from(sorted(_PARAM_KEYS)))
    keys = data.draw(st.lists(st.one_of(st.sampled_from(_PARAM_KEYS[name]), st.text(max_size=8)),
                              max_size=3))
    params = {key: data.draw(_param_values) for key in keys}

    result = config_or_error({"strategy": {"name": name, "params": params}}, PAIRS)

    if isinstance(result, ConfigError):
        assert str(result).startswith("strategy:")
    else:
        assert result.strategy.path == name


_param_flag = st.one_of(
    st.text(max_size=30),
    st.builds("{}={}".format, st.sampled_from(sorted({k for ks in _PARAM_KEYS.values()
                                                     for k in ks})), st.text(max_size=20)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(_PARAM_KEYS)), st.lists(_param_flag, max_size=3))
def test_any_strategy_param_flags_give_a_config_or_a_config_error(name, flags):
    """Arbitrary ``--strategy-param`` text for a valid strategy never escapes otherwise."""
    args = parser().parse_args(["--pairs", "BTC/USDT", "--strategy", name,
                                *(f"--strategy-param={flag}" for flag in flags)])

    try:
        result: SystemConfig | ConfigError = config_from_args(args)
    except ConfigError as exc:
        result = exc

    if isinstance(result, ConfigError):
        assert str(result).startswith(("strategy:", "strategy-param:"))
    else:
        assert result.strategy.path == name


# -- the [exchange] table --------------------------------------------------------------------------


def test_the_exchange_table_becomes_exchange_settings_with_the_ccxt_table_as_is():
    """Every [exchange] key lands in ExchangeSettings; ``ccxt`` is kept exactly as written."""
    ccxt_table = {"timeout": 5000, "rateLimit": 100, "options": {"adjustForTimeDifference": True},
                  "urls": {"api": {"public": "http://127.0.0.1:1/api/v3"}}}
    config = build_config({"exchange": {
        "id": "binance", "ccxt": ccxt_table, "feed": "rest", "poll_interval_s": 2,
        "stale_after_s": 15, "reconnect_initial_s": 0.25, "reconnect_max_s": 20,
        "order_retries": 3, "retry_initial_s": 1, "retry_max_s": 8, "limit_timeout_s": 30,
        "secrets_file": "secrets.toml"}}, PAIRS)

    s = config.exchange_settings
    assert config.exchange == "binance"
    assert s.ccxt == ccxt_table
    assert (s.live, s.feed, s.poll_interval_s, s.stale_after_s) == (False, "rest", 2.0, 15.0)
    assert (s.reconnect_initial_s, s.reconnect_max_s, s.order_retries) == (0.25, 20.0, 3)
    assert (s.retry_initial_s, s.retry_max_s, s.limit_timeout_s) == (1.0, 8.0, 30.0)
    assert s.secrets_file == "secrets.toml"


def test_a_bare_exchange_id_gets_the_default_settings():
    """Paper trading on websocket data, 10 s to stale, reconnects from 0.5 s up to 30 s."""
    s = build_config({}, {**PAIRS, "exchange": "binance"}).exchange_settings

    assert (s.live, s.feed, s.stale_after_s, s.reconnect_initial_s, s.reconnect_max_s) == (
        False, "ws", 10.0, 0.5, 30.0)
    assert s.ccxt == {}


def test_flags_replace_the_id_live_and_feed_and_keep_the_rest_of_the_table():
    """``--exchange``/``--live``/``--feed`` override their keys only."""
    config = build_config({"exchange": {"id": "kraken", "feed": "ws", "stale_after_s": 5}},
                          {**PAIRS, "exchange": "binance", "live": True, "feed": "rest"})

    s = config.exchange_settings
    assert (config.exchange, s.live, s.feed, s.stale_after_s) == ("binance", True, "rest", 5.0)


@pytest.mark.parametrize(("table", "named"), [
    ({"id": "binance", "feed": "fix"}, "exchange.feed: 'fix' is not one of ws, rest"),
    ({"id": "binance", "live": "yes"}, "exchange.live: 'yes' is not one of true, false"),
    ({"id": "sim", "live": True}, "exchange.live: true needs a real exchange"),
    ({"id": "binance", "stale_after_s": 0}, "exchange.stale_after_s: 0 must be a positive"),
    ({"id": "binance", "poll_interval_s": "1s"}, "exchange.poll_interval_s: '1s' is not a num"),
    ({"id": "binance", "reconnect_initial_s": math.inf}, "exchange.reconnect_initial_s: inf"),
    ({"id": "binance", "reconnect_initial_s": 5, "reconnect_max_s": 1},
     "exchange.reconnect_initial_s: 5.0 is above exchange.reconnect_max_s (1.0)"),
    ({"id": "binance", "order_retries": -1}, "exchange.order_retries: -1 is not an integer"),
    ({"id": "binance", "order_retries": True}, "exchange.order_retries: True"),
    ({"id": "binance", "secrets_file": ""}, "exchange.secrets_file: '' is not a file name"),
    ({"id": "binance", "ccxt": "fast"}, "exchange.ccxt: 'fast' is not a table"),
    ({"id": "binance", "ccxt": {"timout": 1}}, ("exchange.ccxt.timout: ccxt's binance has no "
                                               "such setting (did you mean timeout")),
    ({"id": "bitbank"}, ("exchange.feed: 'ws' needs websocket trades, which ccxt.pro does not "
                        "offer for bitbank; use feed = \"rest\"")),
    ({"id": "binance", "key": "x"}, ("[exchange] unknown keys ['key']; valid keys: id, ccxt, "
                                    "live, feed")),
])
def test_a_bad_exchange_setting_is_named_with_its_value_and_the_valid_choices(table, named):
    """One message per problem: the key, the bad value, what would be valid."""
    with pytest.raises(ConfigError) as caught:
        build_config({"exchange": table}, PAIRS)

    assert named in str(caught.value)


@pytest.mark.parametrize("key", ["apiKey", "secret", "password", "uid", "privateKey"])
def test_keys_in_the_ccxt_table_are_refused_with_where_they_belong(key):
    """Secrets never sit in the config file; the message points to the environment."""
    with pytest.raises(ConfigError) as caught:
        build_config({"exchange": {"id": "binance", "ccxt": {key: "abcdef123456"}}}, PAIRS)

    text = str(caught.value)
    assert f"exchange.ccxt.{key}" in text
    assert "environment" in text
    assert "secrets_file" in text
    assert "CONDUCTOR_BINANCE_API_KEY" in text
    assert "abcdef123456" not in text  # the secret itself is never echoed


def test_a_real_exchange_refuses_a_speed_other_than_real_time_and_replay_files(tmp_path):
    """Live data cannot be sped up, and recorded files are not live data."""
    csv = tmp_path / "t.csv"
    csv.write_text(TRADES_HEADER + "1700000000000,60000,0.01,buy\n")

    with pytest.raises(ConfigError, match=r"speed: max paces the simulator and replays"):
        build_config({}, {**PAIRS, "exchange": "binance", "speed": "max"})
    with pytest.raises(ConfigError, match=r"replay: recorded files cannot be traded on "
                                          r"exchange 'binance'"):
        build_config({"replay": {"BTC/USDT": str(csv)}}, {"exchange": "binance"})
    assert build_config({"speed": 1}, {**PAIRS, "exchange": "binance"}).speed == 1.0


@pytest.mark.parametrize(("value", "expected"), [(None, 0.5), (2, 2.0), ("off", None),
                                                 (False, None)])
def test_the_gil_switch_interval_defaults_to_half_a_millisecond_and_can_be_left_alone(
        value, expected):
    config = build_config({} if value is None else {"gil_switch_ms": value}, PAIRS)
    assert config.gil_switch_ms == expected


@pytest.mark.parametrize("value", [0, -1, "fast", 5000, True])
def test_a_bad_gil_switch_interval_names_the_key_and_the_choices(value):
    with pytest.raises(ConfigError, match="gil_switch_ms"):
        build_config({"gil_switch_ms": value}, PAIRS)


@pytest.mark.parametrize(("value", "expected"), [(None, 4), (0, 0), (1, 1), (16, 16)])
def test_pair_workers_default_to_four_and_zero_means_a_thread_per_pair(value, expected):
    config = build_config({} if value is None else {"pair_workers": value}, PAIRS)
    assert config.pair_workers == expected


@pytest.mark.parametrize("value", [-1, 2.5, "4", True, 1000])
def test_a_bad_pair_workers_value_names_the_key_and_the_range(value):
    with pytest.raises(ConfigError, match=r"pair_workers: .* from 0 \(a thread per pair\) to 256"):
        build_config({"pair_workers": value}, PAIRS)
