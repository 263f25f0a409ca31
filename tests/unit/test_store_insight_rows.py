"""An insight decision → its ``insights`` row: what the market pipeline published (text, trend
read, candles, indicators) comes out column by column; whatever ``meta.insight`` holds
instead, the row is still made, with each piece it cannot read left NULL or cut to fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from signalsmith.envelopes import dump
from signalsmith.errors import PoisonInput
from signalsmith.market.insight import Candles, InsightOptions, make_insight
from signalsmith.market.requests import request_from_values
from signalsmith.store.insight_rows import MAX_INDICATORS, MAX_TEXT_CHARS, insight_row
from signalsmith.store.rows import row_from_envelope
from tests.integration.test_market_pipeline import bundled_rows
from tests.unit.test_store_rows import JSON

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
STORED = datetime(2026, 12, 2, 9, 31, tzinfo=UTC)


def _published() -> bytes:
    request = request_from_values({"correlation_id": "btc-1", "product_id": "btc-usd"})
    candles = Candles(bundled_rows("BTC-USD"), "request", 60)
    return dump(make_insight(request, candles, InsightOptions(), now=NOW).envelope).encode()


PUBLISHED = _published()


def _with_insight(insight: object) -> bytes:
    envelope: dict[str, Any] = json.loads(PUBLISHED)
    envelope["meta"]["insight"] = insight
    return json.dumps(envelope).encode()


def test_a_published_insight_becomes_its_row() -> None:
    envelope = json.loads(PUBLISHED)
    meta = envelope["meta"]["insight"]
    row = insight_row(row_from_envelope(PUBLISHED, STORED))
    assert row["correlation_id"] == "btc-1"
    assert row["product_id"] == "BTC-USD"
    assert row["text"] == meta["text"]
    assert row["text"].startswith("BTC-USD")
    assert row["verdict"] == envelope["decision"]["synthesis"]["verdict"]
    assert row["direction"] == meta["trend"]["direction"]
    assert row["strength"] == meta["trend"]["strength"]
    count = len(bundled_rows("BTC-USD"))
    assert (row["candles"], row["candle_source"], row["granularity"]) == (count, "request", "1m")
    assert row["last_candle"] == datetime.fromisoformat(meta["candles"]["last"])
    assert json.loads(row["indicators"]) == meta["indicators"]
    assert row["prompt"] == "trend_analysis"
    assert (row["published_at"], row["stored_at"]) == (NOW, STORED)


def test_pieces_of_the_wrong_type_are_left_out_and_long_text_is_cut() -> None:
    insight = {
        "text": "x\x00" * MAX_TEXT_CHARS,
        "trend": {"direction": 7, "strength": "high"},
        "candles": {"count": -1, "source": ["file"], "last": "yesterday", "granularity": None},
        "indicators": {"rsi": 61.5, "flag": True, "name": "x", **{f"k{i}": i for i in range(99)}},
    }
    row = insight_row(row_from_envelope(_with_insight(insight), STORED))
    assert row["text"] == "x" * MAX_TEXT_CHARS
    assert (row["direction"], row["strength"]) == (None, None)
    assert (row["candles"], row["candle_source"], row["last_candle"]) == (None, None, None)
    indicators = json.loads(row["indicators"])
    assert indicators["rsi"] == 61.5
    assert "flag" not in indicators
    assert "name" not in indicators
    assert len(indicators) <= MAX_INDICATORS


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(insight=JSON | st.dictionaries(st.sampled_from(["text", "trend", "candles"]), JSON))
def test_any_meta_insight_still_makes_a_row(insight: object) -> None:
    try:  # NaN, infinity or a lone surrogate: the decision row's to refuse (store.rows)
        decision = row_from_envelope(_with_insight(insight), STORED)
    except (PoisonInput, ValueError):
        assume(False)
    row = insight_row(decision)
    assert row["correlation_id"] == "btc-1"
    assert isinstance(row["text"], str)
    assert len(row["text"]) <= MAX_TEXT_CHARS
    assert "\x00" not in row["text"]
    for column, width in (("direction", 16), ("prompt", 64), ("granularity", 16)):
        value = row[column]  # type: ignore[literal-required]
        assert value is None or (isinstance(value, str) and 0 < len(value) <= width)
    assert isinstance(json.loads(row["indicators"]), dict)
