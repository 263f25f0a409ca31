"""Decision-log entry → live-feed event: a decision of every kind becomes one server-sent event
whose ``data`` is one line of JSON (texts kept as strings, links only http(s)); anything else
is left out, whatever its bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from signalsmith.live.events import LiveFilter, live_event, parse_filter
from tests.unit.test_notify_message import insight_bytes, strategy_bytes
from tests.unit.test_store_rows import JSON, envelope_bytes, spike_envelope


def _data(frame: bytes) -> dict[str, Any]:
    lines = frame.decode().split("\n")
    assert lines[-2:] == ["", ""]  # the event ends with a blank line
    (data,) = [line for line in lines if line.startswith("data: ")]
    return json.loads(data.removeprefix("data: "))  # type: ignore[no-any-return]


def test_each_kind_becomes_an_event_with_what_a_row_shows() -> None:
    cases = {
        "post": envelope_bytes("NVDA"),
        "spike": spike_envelope("GME"),
        "insight": insight_bytes(),
        "strategy": strategy_bytes(agreement="reject", rating=2),
    }
    for kind, raw in cases.items():
        event = live_event("1700000000000-7", {b"data": raw})
        assert event is not None, kind
        assert event.kind == kind
        data = _data(event.frame)
        assert event.frame.startswith(b"id: 1700000000000-7\nevent: decision\n")
        assert (data["kind"], data["id"]) == (kind, "1700000000000-7")
    post = _data(live_event("1-0", {b"data": envelope_bytes("NVDA")}).frame)  # type: ignore[union-attr]
    assert post["link"] == "https://reddit.com/r/wallstreetbets/1"
    assert post["analyzers"] == ["lexicon"]
    strategy = _data(
        live_event("1-0", {b"data": strategy_bytes(agreement="reject", rating=2)}).frame
    )  # type: ignore[union-attr]
    assert (strategy["agreement"], strategy["rating"]) == ("reject", 2)


def test_a_link_that_is_not_http_is_dropped_and_markup_stays_text() -> None:
    envelope = json.loads(envelope_bytes("NVDA"))
    envelope["decision"]["source"]["url"] = "javascript:alert(1)"
    envelope["decision"]["source"]["title"] = "<img src=x onerror=alert(1)>\nline two"
    event = live_event("1-0", {b"data": json.dumps(envelope).encode()})
    assert event is not None
    data = _data(event.frame)
    assert data["link"] is None
    assert data["title"] == "<img src=x onerror=alert(1)>\nline two"


def test_filters_keep_what_they_name() -> None:
    event = live_event("1-0", {b"data": envelope_bytes("NVDA")})
    assert event is not None
    assert LiveFilter().wants(event)
    assert parse_filter(["POST"], ["nvda"], ["buy"], 0.8).wants(event)
    assert not parse_filter(["spike"], [], [], 0).wants(event)
    assert not parse_filter([], ["TSLA"], [], 0).wants(event)
    assert not parse_filter([], [], ["SELL"], 0).wants(event)
    assert not parse_filter([], [], [], 0.9).wants(event)


@given(st.binary(max_size=2_000) | JSON.map(lambda value: json.dumps(value).encode()))
def test_any_entry_gives_an_event_or_nothing(raw: bytes) -> None:
    event = live_event("5-0", {b"data": raw})
    if event is not None:
        _data(event.frame)


@given(
    st.sampled_from(
        [
            "decision.kind",
            "decision.target.ticker",
            "decision.synthesis.verdict",
            "decision.synthesis.confidence",
            "decision.source",
            "meta",
            "decision",
        ]
    ),
    JSON,
)
def test_a_decision_with_any_one_value_changed_gives_an_event_or_nothing(
    path: str, value: object
) -> None:
    envelope = json.loads(envelope_bytes("NVDA"))
    *parents, last = path.split(".")
    node = envelope
    for name in parents:
        node = node[name]
    node[last] = value
    event = live_event("5-0", {b"data": json.dumps(envelope).encode()})
    if event is not None:
        assert _data(event.frame)["kind"] in {"post", "consensus", "spike", "insight", "strategy"}
