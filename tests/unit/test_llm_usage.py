"""What a call cost: cached prompt tokens read from either provider dialect, priced at the
cached rate, and presets' cached rates applied only to their own input price."""

from __future__ import annotations

import math

import pytest

from signalsmith.analyze.llm.openai_compat import to_completion
from signalsmith.analyze.llm.providers import resolve_providers
from signalsmith.settings import load_settings

REPLY = {"choices": [{"message": {"content": "{}"}}], "model": "m"}


@pytest.mark.parametrize(
    ("usage", "cached"),
    [
        ({"prompt_tokens": 900, "prompt_tokens_details": {"cached_tokens": 768}}, 768),
        ({"prompt_tokens": 900, "prompt_cache_hit_tokens": 512}, 512),
        ({"prompt_tokens": 900, "prompt_tokens_details": {"cached_tokens": 5000}}, 900),
        ({"prompt_tokens": 900, "prompt_tokens_details": {"cached_tokens": -3}}, 0),
        ({"prompt_tokens": 900, "prompt_tokens_details": {"cached_tokens": True}}, 0),
        ({"prompt_tokens": 900, "prompt_tokens_details": "lots"}, 0),
        ({"prompt_tokens": 900}, 0),
    ],
)
def test_cached_prompt_tokens_are_read_from_either_dialect_and_never_exceed_the_prompt(
    usage: dict[str, object], cached: int
) -> None:
    completion = to_completion({**REPLY, "usage": usage}, 1.0, "m")
    assert (completion.tokens_in, completion.tokens_cached) == (900, cached)


def test_cached_tokens_are_priced_at_the_presets_cached_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_PROVIDERS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    config = resolve_providers(load_settings())[0]
    full = config.cost(1_000_000, 0)
    assert math.isclose(full, 0.15)
    assert math.isclose(config.cost(1_000_000, 0, tokens_cached=1_000_000), 0.075)
    assert math.isclose(config.cost(1_000_000, 1_000_000, 400_000), 0.6 * 0.15 + 0.4 * 0.075 + 0.6)


def test_a_price_of_ones_own_bills_cached_tokens_in_full_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_PROVIDERS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_PRICE_IN", "2")
    assert math.isclose(resolve_providers(load_settings())[0].cost(0, 0, 0), 0.0)
    assert math.isclose(resolve_providers(load_settings())[0].cost(10**6, 0, 10**6), 2.0)
    monkeypatch.setenv("OPENAI_PRICE_CACHED", "0.5")
    assert math.isclose(resolve_providers(load_settings())[0].cost(10**6, 0, 10**6), 0.5)
