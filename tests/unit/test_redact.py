"""URL redaction: user info and key-like query values are masked wherever a URL is shown, the
rest stays readable, and the scrubber learns every secret a URL carries."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalsmith.lifecycle import secrets_of
from signalsmith.observe.logging import SecretScrubber
from signalsmith.redact import redact_url, url_secrets
from signalsmith.settings import load_settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "redis://127.0.0.1:6502/0?password=hunter2secret",
            "redis://127.0.0.1:6502/0?password=***",
        ),
        ("redis://:hunter2secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://alice:hunter2secret@cache:6380", "rediss://alice:***@cache:6380"),
        (
            "https://user:pass@host/v1?key=abc123&model=x",
            "https://user:***@host/v1?key=***&model=x",
        ),
        ("https://sk-abc@host/v1", "https://***@host/v1"),
        ("unix:///run/redis.sock?db=2&password=x%2By", "unix:///run/redis.sock?db=2&password=***"),
        (
            "https://gw.example/v1?API-KEY=a&X_Auth_Token=b&client_secret=c&sig=d&db=0",
            "https://gw.example/v1?API-KEY=***&X_Auth_Token=***&client_secret=***&sig=***&db=0",
        ),
        ("https://host/cb#access_token=abc123&state=s", "https://host/cb#access_token=***&state=s"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
    ],
)
def test_redact_url_masks_credentials_and_keeps_the_rest(url: str, shown: str) -> None:
    """Passwords, lone user names and key-like query values become ***; scheme, user name, host,
    port, path and other parameters stay as they were."""
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://[::1/v1?key=abc123", "http://***"),  # urlsplit raises
        ("redis://:pa/ss-hunter2@host:6379/0", "redis://***"),  # '/' ends the authority early
        ("redis://:pa?ss-hunter2@host/0", "redis://***"),
        ("user:hunter2@host", "***"),  # no scheme: what looks like one may be the user
    ],
)
def test_a_url_that_cannot_be_read_safely_is_fully_masked(url: str, shown: str) -> None:
    """A malformed URL, or one whose password ends the authority early, keeps only its scheme."""
    assert redact_url(url) == shown


def test_url_secrets_lists_raw_and_decoded_values() -> None:
    """The password and key-like values, both as written and percent-decoded; nothing else."""
    url = "redis://u:p%40ss-word@h:6379/0?password=a%2Bb-secret&db=3&api_key=k+ey-1"
    assert set(url_secrets(url)) == {
        "p%40ss-word",
        "p@ss-word",
        "a%2Bb-secret",
        "a+b-secret",
        "k+ey-1",
        "k ey-1",
    }
    assert url_secrets("https://sk-lone-token@host/v1") == ["sk-lone-token"]
    assert url_secrets("https://api.openai.com/v1?model=x") == []


def test_url_secrets_of_an_unreadable_url_cover_its_password() -> None:
    """When the URL cannot be split, the scrubber still learns what sits where a password would."""
    assert "pa/ss-hunter2" in url_secrets("redis://:pa/ss-hunter2@host:6379/0")


@given(st.text())
def test_redact_url_never_raises(url: str) -> None:
    """Any text at all gives a string (the URL comes from an operator, maybe mistyped)."""
    assert isinstance(redact_url(url), str)
    assert isinstance(url_secrets(url), list)


SECRET = st.text(min_size=1, max_size=20).map(lambda text: "Zq9-" + text)


@given(password=SECRET, key=SECRET)
def test_no_secret_survives_redaction(password: str, key: str) -> None:
    """Whatever characters a password or key holds (percent-encoded as a URL needs), neither it
    nor its encoding appears in the redacted URL, and both are given to the scrubber."""
    url = f"redis://:{quote(password, safe='')}@h:6379/0?api_key={quote(key, safe='')}&db=0"
    shown = redact_url(url)
    for secret in (password, key):
        assert quote(secret, safe="") not in shown
        assert secret not in shown
        assert secret in url_secrets(url)
    assert shown == "redis://:***@h:6379/0?api_key=***&db=0"


def test_settings_give_the_scrubber_every_secret_in_their_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A password in REDIS_URL's query and a key in a provider's base URL are scrubbed from logs."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0?password=hunter2secret")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gw.example/v1?key=abc123-gw")
    monkeypatch.delenv("SIGNALSMITH_CONFIG", raising=False)
    scrubber = SecretScrubber(secrets_of(load_settings()))
    text = "redis://127.0.0.1:6379/0?password=hunter2secret via https://gw.example/v1?key=abc123-gw"
    assert (
        scrubber.scrub(text)
        == "redis://127.0.0.1:6379/0?password=*** via https://gw.example/v1?key=***"
    )
