"""Shape checks for the bundled demo dataset and its hand-written expectations."""

from __future__ import annotations

import json
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

EXPECTATIONS = Path(__file__).resolve().parents[1] / "data" / "demo_expectations.jsonl"
KINDS = {
    "bullish",
    "bearish",
    "irrelevant",
    "neutral",
    "multi",
    "crypto",
    "sarcasm",
    "duplicate",
    "malformed",
}
LABELS = {"buy", "sell", "hold", "invalid"}


def _post_lines() -> list[str]:
    resource = files("signalsmith") / "data" / "demo_posts.jsonl"
    return resource.read_text(encoding="utf-8").splitlines()


def _expectations() -> list[dict[str, Any]]:
    lines = EXPECTATIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def posts() -> list[str]:
    return _post_lines()


@pytest.fixture(scope="module")
def expectations() -> list[dict[str, Any]]:
    return _expectations()


def test_demo_posts_ship_in_the_package_with_at_least_300_lines(posts: list[str]) -> None:
    """The demo dataset is installed with the package and holds at least 300 posts."""
    assert len(posts) >= 300


def test_every_demo_line_is_a_flat_object_of_strings(posts: list[str]) -> None:
    """Each line parses as a JSON object whose values are all strings, as XADD fields are."""
    for number, line in enumerate(posts, start=1):
        entry = json.loads(line)
        assert isinstance(entry, dict), f"line {number} is not an object"
        assert entry, f"line {number} is an empty object"
        bad = {key: value for key, value in entry.items() if not isinstance(value, str)}
        assert not bad, f"line {number} has non-string values: {bad}"


def test_expectations_cover_every_post_in_order(
    posts: list[str], expectations: list[dict[str, Any]]
) -> None:
    """The expectations file has one record per post, numbered 1..N in the same order."""
    assert len(expectations) == len(posts)
    assert [record["line"] for record in expectations] == list(range(1, len(posts) + 1))


def test_expectation_records_use_known_kinds_and_labels(
    expectations: list[dict[str, Any]],
) -> None:
    """Every record uses a known kind and label; malformed lines are invalid with no tickers."""
    for record in expectations:
        assert record["kind"] in KINDS
        assert record["label"] in LABELS
        assert all(ticker == ticker.upper() for ticker in record["tickers"])
        if record["kind"] == "malformed":
            assert record["label"] == "invalid"
            assert record["tickers"] == []


def test_dataset_has_at_least_five_malformed_entries(expectations: list[dict[str, Any]]) -> None:
    """At least five lines are deliberately malformed, to exercise input validation."""
    malformed = [record for record in expectations if record["kind"] == "malformed"]
    assert len(malformed) >= 5


def test_near_duplicates_point_back_to_an_earlier_post(
    expectations: list[dict[str, Any]],
) -> None:
    """At least ten near-duplicates exist, each referring to an earlier line with the same label."""
    by_line = {record["line"]: record for record in expectations}
    duplicates = [record for record in expectations if record["kind"] == "duplicate"]
    assert len(duplicates) >= 10
    for record in duplicates:
        original = by_line[record["duplicate_of"]]
        assert original["line"] < record["line"]
        assert original["label"] == record["label"]
        assert original["tickers"] == record["tickers"]


def test_dataset_has_at_least_twenty_multi_ticker_posts(
    expectations: list[dict[str, Any]],
) -> None:
    """At least twenty multi-ticker posts name two or more tickers with a verdict for each."""
    multi = [record for record in expectations if record["kind"] == "multi"]
    assert len(multi) >= 20
    for record in multi:
        assert len(record["tickers"]) >= 2
        assert set(record["per_ticker"]) == set(record["tickers"])


def test_buy_and_sell_labels_each_appear_at_least_60_times(
    expectations: list[dict[str, Any]],
) -> None:
    """The human labels include at least 60 buys and 60 sells, so both verdicts get exercised."""
    labels = Counter(record["label"] for record in expectations)
    assert labels["buy"] >= 60
    assert labels["sell"] >= 60
