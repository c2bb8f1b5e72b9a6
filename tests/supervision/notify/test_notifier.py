"""Alerts against loopback fakes: a webhook, Telegram and Discord that answer, fail with 500,
rate-limit with 429 and Retry-After, or hang; trading and stop never wait for them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from actors.messages import OrderFilled, PairFailed
from supervision import build_config
from supervision.config import ChannelSettings, ConfigError, NotifySettings
from supervision.notify import Sender, build_channels, retry_after_s
from supervision.notify.channels import DiscordChannel, TelegramChannel, WebhookChannel
from tests.helpers import eventually
from tests.supervision.api.serving import serving
from tests.supervision.notify.fakes import FakeEndpoint

QUICK = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 1.0}


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    fake = FakeEndpoint()
    yield fake
    fake.close()


def sender(url: str, *, retries: int = 3, queue_size: int = 100, **settings: float) -> Sender:
    config = NotifySettings(retries=retries, queue_size=queue_size, **{**QUICK, **settings})
    channel = WebhookChannel(ChannelSettings(kind="webhook", url=url), url + "/hook")
    results: list[str] = []
    out = Sender(channel, config, format_event=lambda seq, event: {
        "seq": seq, "kind": "pair_failed", "level": "critical", "text": str(event),
        "event": {}}, on_result=lambda _, result: results.append(result))
    out.results = results  # type: ignore[attr-defined]
    return out


EVENT = PairFailed(pair="BTC/USDT", restarts=5, error="boom")


def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(endpoint):
    """Two 500s, then 200: three requests, spaced by the backoff, one alert sent."""
    endpoint.script = [(500, {}, {}), (500, {}, {})]
    out = sender(endpoint.url).start()
    out.offer((1, EVENT))
    endpoint.wait_for(3)
    eventually(lambda: out.sent == 1, 5, "sent")
    out.close()
    times = [t for t, _, _ in endpoint.requests]
    assert times[1] - times[0] >= 0.025 and out.failed == 0
    assert endpoint.bodies()[0]["kind"] == "pair_failed"


def test_a_429_is_retried_no_sooner_than_its_retry_after(endpoint):
    """Retry-After: 1 outweighs a 50 ms backoff."""
    endpoint.script = [(429, {"Retry-After": "1"}, {"retry_after": 1})]
    out = sender(endpoint.url).start()
    out.offer((1, EVENT))
    endpoint.wait_for(2, timeout=10)
    out.close()
    first, second = (t for t, _, _ in endpoint.requests[:2])
    assert second - first >= 0.95
    assert out.results == ["sent"]


def test_an_alert_is_given_up_after_its_retries_and_a_4xx_at_once(endpoint):
    """500 forever: 1 + retries requests, then failed; a 400 is not retried."""
    endpoint.script = [(500, {}, {})] * 3 + [(400, {}, {})]
    out = sender(endpoint.url, retries=2).start()
    out.offer((1, EVENT))
    eventually(lambda: out.failed == 1, 5, "given up")
    assert len(endpoint.requests) == 3
    out.offer((2, EVENT))
    eventually(lambda: out.failed == 2, 5, "a 400 given up")
    out.close()
    assert len(endpoint.requests) == 4
    assert out.results == ["failed", "failed"]


def test_a_full_queue_drops_and_counts_and_a_hanging_server_holds_nothing_up(endpoint):
    """The endpoint hangs: the first alert is stuck in its request, the queue (2) fills, the
    rest are dropped at once; offer never waits; close returns promptly."""
    endpoint.hang = True
    out = sender(endpoint.url, queue_size=2, timeout_s=5.0).start()
    out.offer((1, EVENT))
    endpoint.wait_for(1)
    started = time.perf_counter()
    accepted = [out.offer((n, EVENT)) for n in range(2, 12)]
    offered_s = time.perf_counter() - started
    assert accepted[:2] == [True, True] and not any(accepted[2:])
    assert out.dropped == 8 and out.results.count("dropped") == 8
    assert offered_s < 0.05
    started = time.perf_counter()
    out.close()
    assert time.perf_counter() - started < 1.0


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_s("2") == 2.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after_s(date) <= 31


def test_channels_take_their_secrets_from_the_environment_only(tmp_path):
    """A telegram or discord channel without its secret refuses to start; the secret never
    shows in the channel's repr or name; a secrets file readable by others is refused."""
    settings = NotifySettings(channels=(ChannelSettings(kind="telegram", chat_id="42"),
                                        ChannelSettings(kind="discord")))
    with pytest.raises(ConfigError, match="CONDUCTOR_TELEGRAM_TOKEN"):
        build_channels(settings, environ={})
    env = {"CONDUCTOR_TELEGRAM_TOKEN": "123:SECRET", "CONDUCTOR_DISCORD_WEBHOOK":
           "http://127.0.0.1:9/api/webhooks/1/SECRET"}
    telegram, discord = build_channels(settings, environ=env)
    assert isinstance(telegram, TelegramChannel) and isinstance(discord, DiscordChannel)
    request = telegram.message("hi")
    assert "SECRET" not in repr(request) and "SECRET" not in telegram.name
    assert request.body == {"chat_id": "42", "text": "hi", "disable_web_page_preview": True}
    secrets = tmp_path / "notify.toml"
    secrets.write_text('telegram_token = "1:X"\ndiscord_webhook = "http://127.0.0.1:9/x"\n')
    secrets.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        build_channels(NotifySettings(channels=settings.channels, secrets_file=str(secrets)),
                       environ={})
    secrets.chmod(0o600)
    assert len(build_channels(NotifySettings(channels=settings.channels,
                                             secrets_file=str(secrets)), environ={})) == 2


def test_notify_config_refuses_secrets_in_the_file_and_unknown_kinds():
    with pytest.raises(ConfigError, match="never goes in the config file"):
        build_config({}, {"pairs": "BTC/USDT", "notify": {"telegram": {"chat_id": 1,
                                                                       "token": "x"}}})
    with pytest.raises(ConfigError, match="event kinds"):
        build_config({}, {"pairs": "BTC/USDT", "notify": {"webhook": {
            "url": "http://127.0.0.1:9", "events": ["fills"]}}})
    with pytest.raises(ConfigError, match=r"notify\.level"):
        build_config({}, {"pairs": "BTC/USDT", "notify": {"level": "loud"}})


# -- a running system ------------------------------------------------------------------------


def test_a_running_system_alerts_all_three_channels_while_one_hangs(tmp_path, monkeypatch):
    """Webhook, Telegram and Discord get fill alerts; with the webhook hanging, the others
    still get theirs, the pairs keep trading at normal latency, and stop is prompt."""
    hook, telegram, discord = FakeEndpoint(), FakeEndpoint(), FakeEndpoint()
    hook.hang = True
    monkeypatch.setenv("CONDUCTOR_TELEGRAM_TOKEN", "123:TOKEN")
    monkeypatch.setenv("CONDUCTOR_DISCORD_WEBHOOK", discord.url + "/api/webhooks/1/abc")
    notify = {**QUICK, "timeout_s": 10.0, "queue_size": 5,
              "webhook": {"url": hook.url + "/hook", "events": ["fill"]},
              "telegram": {"chat_id": "42", "api_url": telegram.url, "events": ["fill"]},
              "discord": {"events": ["fill", "trade"]}}
    try:
        with serving(tmp_path, monkeypatch, notify=notify) as (system, _, log):
            log.wait_for(lambda evs: sum(isinstance(e, OrderFilled) for e in evs) >= 10,
                         30, "ten fills")
            eventually(lambda: len(telegram.bodies("/sendMessage")) >= 5, 10, "telegram")
            eventually(lambda: len(discord.bodies()) >= 5, 10, "discord")
            status = system.status()
            started = time.perf_counter()
        stopped_s = time.perf_counter() - started
    finally:
        for fake in (hook, telegram, discord):
            fake.close()
    assert stopped_s < 5.0
    assert all(p.latency_p99_ms is not None and p.latency_p99_ms < 50 for p in status.pairs)
    message = telegram.bodies("/sendMessage")[0]
    assert message["chat_id"] == "42" and "fill" in message["text"]
    assert "/bot123:TOKEN/sendMessage" in telegram.requests[0][1]
    assert discord.bodies()[0]["allowed_mentions"] == {"parse": []}
    assert len(hook.requests) == 1  # the one stuck in its request; the rest queued or dropped
    text = system.metrics.exposition().decode()
    assert 'trade_conductor_notifications_total{channel="webhook",result="dropped"}' in text
    assert 'trade_conductor_notifications_total{channel="telegram",result="sent"}' in text


def test_telegram_commands_from_the_configured_chat_steer_the_system(tmp_path, monkeypatch):
    """/pause BTC/USDT from chat 42 pauses the pair and is answered; the same from chat 7 is
    ignored; /status answers with the pairs."""
    telegram = FakeEndpoint()
    monkeypatch.setenv("CONDUCTOR_TELEGRAM_TOKEN", "123:TOKEN")
    notify = {**QUICK, "telegram": {"chat_id": "42", "api_url": telegram.url,
                                    "commands": True, "events": ["audit"]}}
    try:
        with serving(tmp_path, monkeypatch, notify=notify) as (system, _, _):
            telegram.updates = [
                {"update_id": 1, "message": {"chat": {"id": 7}, "text": "/pause ETH/USDT"}},
                {"update_id": 2, "message": {"chat": {"id": 42}, "text": "/pause btc-usdt"}},
                {"update_id": 3, "message": {"chat": {"id": 42}, "text": "/status"}},
            ]
            eventually(lambda: system.pair_status("BTC/USDT").state == "paused", 10, "paused")
            eventually(lambda: len(telegram.bodies("/sendMessage")) >= 3, 10, "replies")
            assert system.pair_status("ETH/USDT").state == "running"
            texts = [b["text"] for b in telegram.bodies("/sendMessage")]
            rows = system.audit(limit=10)
    finally:
        telegram.close()
    assert "BTC/USDT paused" in texts
    assert any("ETH/USDT" in t and "BTC/USDT" in t and "equity" in t for t in texts)
    assert any(r.actor == "telegram chat 42" and r.action == "pause" for r in rows)
