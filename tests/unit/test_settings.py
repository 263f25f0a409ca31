"""Settings: seed 000's names, defaults, TOML with the environment winning, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalsmith.errors import ConfigError
from signalsmith.settings import load_settings

SEED_VARIABLES = (
    "REDIS_URL",
    "REDIS_ADDR",
    "STREAM",
    "GROUP",
    "CONSUMER",
    "SIGNAL_STREAM",
    "HTTP_PORT",
    "OUTPUT_FORMAT",
    "PUBLISH",
    "LOG_LEVEL",
    "DLQ_STREAM",
    "SIGNALSMITH_CONFIG",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SEED_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_seed_000_and_need_nothing() -> None:
    """With no configuration at all: seed 000's stream names, embedded Redis, envelope output."""
    settings = load_settings()
    assert (settings.stream, settings.group, settings.signal_stream) == (
        "reddit-events",
        "strategy-group",
        "trade-signals",
    )
    assert settings.dead_letter_stream == "reddit-events:dlq"
    assert settings.embedded_redis
    assert (settings.output_format, settings.publish, settings.http_port) == (
        "envelope",
        "actionable",
        8080,
    )
    assert settings.decision_hash_prefix == "signalsmith:decisions"
    assert "-" in settings.consumer  # hostname-pid


def test_environment_wins_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TOML file sets values; the same variable in the environment overrides it."""
    config = tmp_path / "s.toml"
    config.write_text('[signalsmith]\nstream = "from-toml"\ngroup = "g-toml"\n')
    monkeypatch.setenv("STREAM", "from-env")
    settings = load_settings(config)
    assert (settings.stream, settings.group) == ("from-env", "g-toml")


def test_config_file_from_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGNALSMITH_CONFIG names the TOML file when --config is not given."""
    config = tmp_path / "s.toml"
    config.write_text('publish = "all"\n')
    monkeypatch.setenv("SIGNALSMITH_CONFIG", str(config))
    assert load_settings().publish == "all"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("HTTP_PORT", "99999", "HTTP_PORT"),
        ("OUTPUT_FORMAT", "xml", "OUTPUT_FORMAT"),
        ("REDIS_ADDR", "localhost", "REDIS_ADDR"),
        ("REDIS_URL", "http://x", "REDIS_URL"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    """A bad value raises ConfigError whose one-line message starts with the variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{named}: ")
    assert "\n" not in str(caught.value)


def test_secret_values_never_appear_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed secret is reported by name only, never echoed."""
    monkeypatch.setenv("REDIS_URL", "http://user:canary-secret-123@host")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "canary-secret-123" not in str(caught.value)


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    """A misspelt setting in the file stops start-up instead of being ignored."""
    config = tmp_path / "s.toml"
    config.write_text('strem = "x"\n')
    with pytest.raises(ConfigError, match="strem"):
        load_settings(config)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"SPIKE_BUCKET_S": "7200"}, "SPIKE_BUCKET_S"),
        ({"SPIKE_BUCKET_S": "1", "SPIKE_BASELINE_S": "86400"}, "SPIKE_BASELINE_S"),
        ({"STRATEGY_STORE_GROUP": "signalsmith-strategy"}, "STRATEGY_STORE_GROUP"),
    ],
)
def test_rolling_settings_must_fit_together(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    """Spike buckets fit in the rolling window, and a baseline is 1 to 2,000 buckets long; the
    store's group on the strategy signals is not the pipeline's."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 8_192), ("16", 16), ("4096", 4_096), ("1000000", 1_000_000)],
)
def test_a_providers_max_output_tokens_defaults_to_its_presets(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    """<NAME>_MAX_OUTPUT_TOKENS caps what one request asks of the provider; unset, 8,192, a
    value every preset's default model takes."""
    from signalsmith.analyze.llm.providers import PRESETS, resolve_providers

    assert {preset.max_output_tokens for preset in PRESETS.values()} == {8_192}
    monkeypatch.setenv("LLM_PROVIDERS", "openai,groq")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("GROQ_API_KEY", "gsk-x")
    monkeypatch.setenv("OPENAI_MAX_OUTPUT_TOKENS", value)
    monkeypatch.delenv("GROQ_MAX_OUTPUT_TOKENS", raising=False)
    openai, groq = resolve_providers(load_settings())
    assert (openai.max_output_tokens, groq.max_output_tokens) == (expected, 8_192)


@pytest.mark.parametrize("value", ["15", "0", "-1", "1000001", "lots", "8192.5"])
def test_a_providers_max_output_tokens_out_of_bounds_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Below 16 or above 1,000,000 (or not a whole number) stops start-up in one line."""
    monkeypatch.setenv("GROQ_MAX_OUTPUT_TOKENS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("GROQ_MAX_OUTPUT_TOKENS: ")
    assert "\n" not in str(caught.value)
