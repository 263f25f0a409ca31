"""URLs that can never work stop start-up with one line naming the variable, never quoting the
secret: a provider base URL with user info, a foreign scheme or no host; a Redis URL whose port
is impossible."""

from __future__ import annotations

import pytest

from signalsmith.analyze.llm.providers import resolve_providers
from signalsmith.errors import ConfigError
from signalsmith.settings import PROVIDER_NAMES, PROVIDER_SUFFIXES, load_settings

SECRET = "hunter2secret"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "REDIS_ADDR", "SIGNALSMITH_CONFIG", "LLM_PROVIDERS", "LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    for provider in PROVIDER_NAMES:
        for suffix in PROVIDER_SUFFIXES:
            monkeypatch.delenv(f"{provider.upper()}_{suffix}", raising=False)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"https://user:{SECRET}@gw.example/v1", "must not carry user:password@"),
        (f"https://sk-{SECRET}@gw.example/v1", "must not carry user:password@"),
        (f"ftp://gw.example/v1?key={SECRET}", "must be an http:// or https:// URL"),
        (f"gw.example/v1?key={SECRET}", "must be an http:// or https:// URL"),
        (f"https:///v1?key={SECRET}", "has no host"),
        (f"https://gw.example:99999/v1?key={SECRET}", "the port must be a number from 1 to 65535"),
        (f"http://[::1/v1?key={SECRET}", "is not a valid URL"),
    ],
)
def test_a_provider_base_url_that_cannot_work_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    """The error names <NAME>_BASE_URL, says what is wrong, and never holds the secret."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-1")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(ConfigError) as raised:
        resolve_providers(load_settings())
    assert raised.value.setting == "OPENAI_BASE_URL"
    assert problem in raised.value.problem
    assert SECRET not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_user_info_error_points_at_the_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fix is in the message: the key belongs in <NAME>_API_KEY."""
    monkeypatch.setenv("CUSTOM_BASE_URL", f"https://u:{SECRET}@gw.example/v1")
    monkeypatch.setenv("CUSTOM_MODEL", "m")
    with pytest.raises(ConfigError) as raised:
        resolve_providers(load_settings())
    assert str(raised.value) == (
        "CUSTOM_BASE_URL: must not carry user:password@ (put the key in CUSTOM_API_KEY)"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:99999/0",
        f"redis://127.0.0.1:0/0?password={SECRET}",
        f"redis://127.0.0.1:port/0?password={SECRET}",
        f"redis://:{SECRET}/x@127.0.0.1:6379/0",  # an unencoded '/' ends the host early
    ],
)
def test_a_redis_url_with_an_impossible_port_fails_at_settings_time(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """Not a traceback at connect time: a one-line ConfigError for REDIS_URL, without the
    password."""
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.setting == "REDIS_URL"
    assert "port" in raised.value.problem
    assert SECRET not in str(raised.value)
