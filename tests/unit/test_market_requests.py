"""Market requests (seed 001's payload) from stream fields: flat, or one ``data`` JSON field;
whatever cannot become a request is poison with a reason, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.errors import PoisonInput
from signalsmith.market.envelope import asset_class
from signalsmith.market.requests import derived_id, request_from_fields, request_from_values

SEED_EXAMPLE = {"correlation_id": "abc-123", "product_id": "BTC-USD", "prompt": "trend_analysis"}


def test_seed_001s_payload_works_unchanged_flat_and_as_data() -> None:
    flat = request_from_fields(SEED_EXAMPLE, "market-requests", "1-0")
    data = request_from_fields({"data": json.dumps(SEED_EXAMPLE)}, "market-requests", "1-0")
    assert flat == data
    assert (flat.correlation_id, flat.product_id, flat.prompt) == (
        "abc-123",
        "BTC-USD",
        "trend_analysis",
    )
    assert flat.candles is None


def test_flat_candles_and_lookback_are_json() -> None:
    rows = [[1, 2, 3, 1, 2, 10], [61, 2, 3, 1, 2.5, 11]]
    fields = {**SEED_EXAMPLE, "candles": json.dumps(rows), "lookback": "50", "granularity": "1m"}
    request = request_from_fields(fields, "s", "1-0")
    assert request.candles == rows
    assert request.lookback == 50
    assert request.granularity == "1m"


def test_without_a_correlation_id_one_is_derived_from_the_entry() -> None:
    fields = {"product_id": "eth-usd"}
    first = request_from_fields(fields, "market-requests", "7-1")
    again = request_from_fields(fields, "market-requests", "7-1")
    other = request_from_fields(fields, "market-requests", "7-2")
    assert first.correlation_id == again.correlation_id == derived_id("market-requests", "7-1")
    assert other.correlation_id != first.correlation_id
    assert first.product_id == "ETH-USD"
    assert first.prompt == "trend_analysis"


@pytest.mark.parametrize(
    ("fields", "reason", "names"),
    [
        ({**SEED_EXAMPLE, "prompt": "price_prediction"}, "unknown_prompt", "price_prediction"),
        ({"correlation_id": "a"}, "bad_request", "product_id"),
        ({**SEED_EXAMPLE, "product_id": "BTC USD; DROP"}, "bad_request", "product_id"),
        ({**SEED_EXAMPLE, "correlation_id": "x" * 65}, "bad_request", "correlation_id"),
        ({**SEED_EXAMPLE, "correlation_id": "has space"}, "bad_request", "correlation_id"),
        ({**SEED_EXAMPLE, "granularity": "7m"}, "bad_request", "granularity"),
        ({**SEED_EXAMPLE, "lookback": "1"}, "bad_request", "lookback"),
        ({**SEED_EXAMPLE, "lookback": "100000"}, "bad_request", "lookback"),
        ({**SEED_EXAMPLE, "candles": "[1, 2"}, "bad_request", "candles"),
        ({**SEED_EXAMPLE, "candles": '{"a": 1}'}, "bad_request", "candles"),
        ({"data": "[1, 2]"}, "bad_request", "data"),
        ({"data": "not json"}, "bad_request", "data"),
        ({"data": "[" * 5_000 + "]" * 5_000}, "bad_request", "data"),
    ],
)
def test_bad_requests_are_poison_naming_the_field(
    fields: dict[str, str], reason: str, names: str
) -> None:
    with pytest.raises(PoisonInput) as caught:
        request_from_fields(fields, "s", "1-0")
    assert caught.value.reason == reason
    assert names in caught.value.detail


def test_too_many_candles_are_refused() -> None:
    rows = [[n * 60, 1, 1, 1, 1, 1] for n in range(10_001)]
    with pytest.raises(PoisonInput, match="candles"):
        request_from_values({**SEED_EXAMPLE, "candles": rows})


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "correlation_id",
                "product_id",
                "prompt",
                "candles",
                "lookback",
                "granularity",
                "data",
                "x",
            ]
        ),
        st.one_of(
            st.text(max_size=60),
            st.from_regex(r"\[\[[0-9, .e-]{0,40}\]\]", fullmatch=True),
            st.just('{"product_id": "BTC-USD"}'),
            st.just("null"),
        ),
        max_size=7,
    )
)
def test_any_fields_give_a_request_or_poison(fields: dict[str, str]) -> None:
    try:
        request = request_from_fields(fields, "s", "1-0")
    except PoisonInput as exc:
        refused = exc.reason
    else:
        refused = ""
        assert request.prompt == "trend_analysis"
        assert 1 <= len(request.correlation_id) <= 64
    assert refused in {"", "bad_request", "unknown_prompt"}


def test_asset_class_tells_pairs_from_share_classes() -> None:
    assert asset_class("BTC-USD") == "crypto"
    assert asset_class("ETH-BTC") == "crypto"
    assert asset_class("BRK-B") == "equity"
    assert asset_class("AAPL") == "equity"
