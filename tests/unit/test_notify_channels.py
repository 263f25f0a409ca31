"""NOTIFY_URLS → channels: ids and shown forms never carry a secret, each service gets its
documented length limit, the scrubber learns every credential, and the settings that cannot
work stop start-up with the setting's name and without quoting the URL."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from signalsmith.errors import ConfigError
from signalsmith.notify.build import notify_secrets
from signalsmith.notify.channels import (
    DEFAULT_LIMIT,
    channel_secrets,
    parse_channel,
    parse_channels,
    split_urls,
    url_list_secrets,
)
from signalsmith.notify.config import NotifyConfig
from signalsmith.notify.sender import Backoff
from signalsmith.observe.logging import SecretScrubber

SECRET = "tok3n-SECRET-9f1c"


@pytest.mark.parametrize(
    ("url", "shown", "limit"),
    [
        (f"discord://1234567890/{SECRET}", "discord://***/…", 2_000),
        (f"https://discord.com/api/webhooks/1234567890/{SECRET}", "https://discord.com/…", 2_000),
        (f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}/#general", "slack://***/…", 3_000),
        (f"tgram://123456789:{SECRET}/-100123", "tgram://***/…", 4_096),
        (f"mailto://alice:{SECRET}@gmail.com", "mailto://gmail.com/…", 65_536),
        (f"json://user:{SECRET}@127.0.0.1:8080/hook", "json://127.0.0.1:8080/…", 32_768),
        (f"jsons://hooks.example.com/{SECRET}", "jsons://hooks.example.com/…", 32_768),
        (f"form://[::1]:9000/?+X-Token={SECRET}", "form://[::1]:9000/…", 32_768),
        (f"ntfy://{SECRET}", "ntfy://***", DEFAULT_LIMIT),
        ("xml://localhost", "xml://localhost", 32_768),
    ],
)
def test_a_channel_shows_its_service_and_host_only_with_the_services_limit(
    url: str, shown: str, limit: int
) -> None:
    """Nothing past the host is shown, a host that is a token is masked, the id is secret-free
    and made of characters safe in key and group names."""
    channel = parse_channel(url)
    assert (channel.shown, channel.limit) == (shown, limit)
    assert SECRET not in channel.id
    assert SECRET not in channel.shown
    assert SECRET not in repr(channel)
    assert SECRET not in str(channel)
    assert all(c.isalnum() or c in ".-" for c in channel.id)
    assert channel.url == url


def test_ids_are_stable_and_tell_two_webhooks_of_one_host_apart() -> None:
    first = parse_channel("json://127.0.0.1:8080/a")
    assert parse_channel("json://127.0.0.1:8080/a").id == first.id
    assert parse_channel("json://127.0.0.1:8080/b").id != first.id
    assert first.id.startswith("json-127.0.0.1-8080-")


def test_urls_split_on_commas_semicolons_and_spaces_but_not_inside_one() -> None:
    """A comma inside a URL (``?to=a,b``) stays in it; a repeated URL is one channel."""
    text = (
        " json://a.example/x, mailto://u:p@g.com?to=a@x.com,b@y.com;tgram://1:2/3\n discord://1/2,"
    )
    assert split_urls(text) == [
        "json://a.example/x",
        "mailto://u:p@g.com?to=a@x.com,b@y.com",
        "tgram://1:2/3",
        "discord://1/2",
    ]
    assert len(parse_channels("json://a.example/x json://a.example/x")) == 1
    assert parse_channels("") == ()


@pytest.mark.parametrize("item", [SECRET, f"://{SECRET}", f"json:{SECRET}", "json://"])
def test_an_item_that_is_no_url_is_named_by_position_never_quoted(item: str) -> None:
    with pytest.raises(ConfigError, match="NOTIFY_URLS: item 2") as caught:
        parse_channels(f"json://127.0.0.1/ok {item}")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"discord://1234567890/{SECRET}",
        f"tgram://123456789:{SECRET}/-100123",
        f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}",
        f"json://user:{SECRET}@127.0.0.1:8080/hook",
        f"json://{SECRET}@127.0.0.1:8080/hook",
        f"jsons://hooks.example.com/hook?+Authorization=Bearer%20{SECRET}",
        f"form://hooks.example.com/?token={SECRET}#x",
    ],
)
def test_the_scrubber_learns_every_credential_a_url_carries(url: str) -> None:
    """Wherever a service keeps it: user info, a host-like token, the path, a header."""
    scrubbed = SecretScrubber(channel_secrets(url)).scrub(f"failed: {url} / {SECRET}")
    assert SECRET not in scrubbed


def test_plain_words_and_host_names_are_not_scrubbed() -> None:
    """Scrubbing "hooks" or a host name would blank them out of every log line."""
    secrets = channel_secrets("json://user:pw-12345@hooks.example.com/api/hooks?format=text")
    assert secrets == ["pw-12345"]


@given(st.text(max_size=300))
def test_reading_secrets_never_raises(text: str) -> None:
    url_list_secrets(text)
    for url in split_urls(text):
        channel_secrets(url)


@dataclass(frozen=True)
class FakeSettings:
    """The settings fields ``NotifyConfig.from_settings`` reads, as Settings will hold them."""

    notify_urls: SecretStr | None = field(
        default_factory=lambda: SecretStr(f"json://u:{SECRET}@127.0.0.1:9/a")
    )
    notify_kinds: tuple[str, ...] = ("insight",)
    notify_streams: str = ""
    notify_group: str = "signalsmith-notify"
    notify_prefix: str = "signalsmith:notify"
    notify_sent_ttl_days: float = 7.0
    notify_start: str = "new"
    notify_max_in_flight: int = 1
    notify_backoff_s: float = 1.0
    notify_backoff_max_s: float = 30.0
    insight_stream: str = "market-insights"
    enhanced_stream: str = "enhanced-signals"
    decision_stream: str = "trade-decisions"
    alert_rules: str = ""
    alert_cooldown_s: float = 300.0
    consumer: str = "host-1"
    claim_idle_ms: int = 60_000
    block_ms: int = 1_000
    read_count: int = 100
    max_deliveries: int = 5
    dlq_maxlen: int = 100_000
    drain_timeout: float = 8.0


def test_alert_rules_read_the_decision_log_and_choose_the_kinds() -> None:
    """With ALERT_RULES, every kind a rule can match, from DECISION_STREAM, with the cooldown;
    without, NOTIFY_KINDS and no cooldown."""
    ruled = NotifyConfig.from_settings(
        FakeSettings(alert_rules="kind=post tickers=NVDA; kind=spike", alert_cooldown_s=60)
    )
    assert ruled.streams == ("trade-decisions",)
    assert ruled.kinds == {"post", "spike"}
    assert (len(ruled.rules), ruled.cooldown_s) == (2, 60)
    plain = NotifyConfig.from_settings(FakeSettings(alert_cooldown_s=60))
    assert (plain.rules, plain.cooldown_s, plain.kinds) == ((), 0.0, {"insight"})


def test_config_from_settings_derives_names_per_channel() -> None:
    """The insight stream by default; per channel its own group, dead letters and marks."""
    config = NotifyConfig.from_settings(FakeSettings())
    (channel,) = config.channels
    assert config.streams == ("market-insights",)
    assert config.kinds == {"insight"}
    assert config.sent_ttl_s == 7 * 86_400
    assert config.group_of(channel) == f"signalsmith-notify:{channel.id}"
    assert config.dlq_of("s", channel) == f"s:notify:{channel.id}:dlq"
    assert config.sent_key(channel, "abc") == f"signalsmith:notify:sent:{channel.id}:abc"
    assert NotifyConfig.from_settings(FakeSettings(notify_urls=None)).channels == ()
    streams = FakeSettings(notify_streams="Trade-Signals, market-insights,Trade-Signals")
    assert NotifyConfig.from_settings(streams).streams == ("Trade-Signals", "market-insights")
    assert notify_secrets(FakeSettings()) == [SECRET]


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"notify_kinds": ("insight", "gossip")}, "NOTIFY_KINDS"),
        ({"notify_kinds": ()}, "NOTIFY_KINDS"),
        ({"notify_start": "later"}, "NOTIFY_START"),
        ({"notify_urls": SecretStr(f"{SECRET} json://127.0.0.1/")}, "NOTIFY_URLS"),
    ],
)
def test_settings_that_cannot_work_name_the_setting(
    changes: dict[str, object], setting: str
) -> None:
    with pytest.raises(ConfigError, match=setting) as caught:
        NotifyConfig.from_settings(FakeSettings(**changes))  # type: ignore[arg-type]
    assert SECRET not in str(caught.value)


def test_backoff_doubles_up_to_its_cap_and_a_success_resets_it() -> None:
    now = [100.0]
    backoff = Backoff(1.0, 5.0, clock=lambda: now[0])
    assert backoff.delay() == 0
    delays = []
    for _ in range(5):
        backoff.failed()
        delays.append(backoff.delay())
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    now[0] += 2
    assert backoff.delay() == 3.0
    backoff.succeeded()
    assert (backoff.delay(), backoff.failures) == (0, 0)
