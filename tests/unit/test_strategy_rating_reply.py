"""A model's reply about a strategy signal → its rating or what is wrong with it: plain JSON,
a fenced block, a reasoning block first, lenient where the meaning is plain, refused where it
is not; any text at all gives one or the other, never an exception; the prompt states the
signal's values and keeps literal braces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.errors import ConfigError
from signalsmith.strategy.contract import SignalFacts
from signalsmith.strategy.rating_prompt import (
    DEFAULT_PROMPT,
    MAX_LISTED,
    build_prompt,
    load_strategy_prompt,
    response_format,
)
from signalsmith.strategy.rating_reply import ReadRating, read_rating
from tests.unit.test_store_rows import JSON

GOOD = {
    "rating": 7,
    "agreement": "confirm",
    "confidence": 0.72,
    "reasoning": "Price above both averages with room below the upper band.",
    "risks": ["earnings next week"],
    "key_factors": ["trend", "volume 1.4x"],
}
SIGNAL: SignalFacts = {
    "signal_id": "sig-1",
    "symbol": "AAPL",
    "side": "buy",
    "price": 189.5,
    "timestamp": "2026-12-04T14:30:00+00:00",
    "strategy": "sma_cross",
    "indicators": {"rsi": 58.2, "sma_20": 186.1},
}


def test_a_plain_reply_is_read_whole() -> None:
    read = read_rating(json.dumps(GOOD))
    assert read == ReadRating(
        7, "confirm", 0.72, GOOD["reasoning"], ["earnings next week"], ["trend", "volume 1.4x"]
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reply",
    [
        "```json\n" + json.dumps(GOOD) + "\n```",
        '<think>{"rating": 99}</think>Here it is: ' + json.dumps(GOOD),
        "Sure! {not json} then " + json.dumps(GOOD),
    ],
)
def test_the_object_is_found_in_fences_and_after_reasoning(reply: str) -> None:
    read = read_rating(reply)
    assert isinstance(read, ReadRating)
    assert read.rating == 7


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"rating": "7"}, 7),
        ({"rating": 7.0}, 7),
        ({"rating": "7/10"}, 7),
        ({"agreement": " Agree "}, "confirm"),
        ({"agreement": "neutral"}, "caution"),
        ({"confidence": 72}, 0.72),
        ({"confidence": "72%"}, 0.72),
    ],
)
def test_plain_meanings_are_read_leniently(changes: dict[str, object], expected: object) -> None:
    read = read_rating(json.dumps({**GOOD, **changes}))
    assert isinstance(read, ReadRating)
    field = next(iter(changes))
    assert getattr(read, field) == expected


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"rating": 11}, "rating: 11 is outside 1-10"),
        ({"rating": 0}, "rating: 0 is outside 1-10"),
        ({"rating": 6.5}, "rating: an integer 1-10 is needed"),
        ({"rating": True}, "rating: an integer 1-10 is needed"),
        ({"rating": None}, "rating: an integer 1-10 is needed"),
        ({"agreement": "maybe"}, "agreement: confirm, caution or reject is needed"),
        ({"confidence": 250}, "confidence: 250 is outside 0-1"),
        ({"confidence": "high"}, "confidence: a number 0-1 is needed"),
        ({"reasoning": "  "}, "reasoning: a non-empty string is needed"),
    ],
)
def test_what_has_no_plain_meaning_is_refused_with_the_reason(
    changes: dict[str, object], problem: str
) -> None:
    read = read_rating(json.dumps({**GOOD, **changes}))
    assert isinstance(read, list)
    assert any(found.startswith(problem) for found in read), read


def test_no_object_at_all_is_said_so() -> None:
    assert read_rating("I would buy it.") == ["no JSON object in the reply"]
    assert read_rating("[1, 2, 3]") == ["no JSON object in the reply"]


def test_lists_are_bounded_and_keep_only_text() -> None:
    risks = ["a" * 500, 3, "", *(f"r{n}" for n in range(20))]
    read = read_rating(json.dumps({**GOOD, "risks": risks, "key_factors": "one factor"}))
    assert isinstance(read, ReadRating)
    assert len(read.risks) == MAX_LISTED
    assert read.risks[0] == "a" * 200
    assert read.key_factors == ["one factor"]


@settings(max_examples=400)
@given(
    st.text(max_size=400)
    | JSON.map(json.dumps)
    | st.dictionaries(st.sampled_from(list(GOOD)), JSON).map(json.dumps)
)
def test_any_reply_gives_a_rating_or_problems(reply: str) -> None:
    read = read_rating(reply)
    if isinstance(read, ReadRating):
        assert 1 <= read.rating <= 10
        assert 0 <= read.confidence <= 1
        assert read.agreement in ("confirm", "caution", "reject")
        assert read.reasoning
    else:
        assert read
        assert all(isinstance(problem, str) for problem in read)


def test_the_prompt_states_the_signal_and_keeps_literal_braces() -> None:
    bars = [{"time": "2026-12-04T14:29:00+00:00", "open": 189.0, "close": 189.4, "volume": 1e4}]
    text = build_prompt(DEFAULT_PROMPT, SIGNAL, bars)  # type: ignore[arg-type]
    assert "buy AAPL at 189.5" in text
    assert "- rsi: 58.2" in text
    assert "2026-12-04T14:29:00+00:00, 189, , , 189.4, 10000" in text
    assert '{"rating": <integer 1-10' in text
    assert "{" + "symbol}" not in text


def test_a_prompt_file_with_an_unknown_placeholder_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text("Rate {symbol} for {customer}")
    with pytest.raises(ConfigError, match="customer"):
        load_strategy_prompt(path)
    path.write_text("Rate {symbol} ({side}) {{as JSON}}")
    template = load_strategy_prompt(path)
    assert build_prompt(template, SIGNAL, []) == "Rate AAPL (buy) {as JSON}"


def test_structured_output_follows_the_providers_support() -> None:
    schema = response_format("json_schema")
    assert schema is not None
    assert schema["type"] == "json_schema"
    assert response_format("json_object") == {"type": "json_object"}
    assert response_format("none") is None
