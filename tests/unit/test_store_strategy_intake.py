"""A signal just queued on STRATEGY_STREAM → its pending ``llm_enhancement_tasks`` row: from
one ``data`` field or flat fields, with the id the pipeline would give it; what the pipeline
would dead-letter gets no row and is acknowledged, never dead-lettered a second time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from signalsmith.source.redis_streams import Entry
from signalsmith.store.strategy_intake import IntakeLimits, PendingTaskHandler
from signalsmith.strategy.signals import derived_id

NOW = datetime(2026, 12, 4, 14, 30, 5, tzinfo=UTC)
QUEUED_MS = int(datetime(2026, 12, 4, 14, 30, 1, tzinfo=UTC).timestamp() * 1000)
LIMITS = IntakeLimits(stream="strategy-signals", max_message_bytes=65_536, max_bars=10)
SIGNAL = {
    "signal_id": "sig-7",
    "symbol": "aapl",
    "side": "long",
    "price": 187.25,
    "timestamp": "2026-12-04T14:30:00Z",
    "strategy": "ema_cross",
    "indicators": {"rsi": 31.5},
}


def _handler() -> PendingTaskHandler:
    return PendingTaskHandler(LIMITS, clock=lambda: NOW)


def test_a_queued_signal_is_a_pending_row_stamped_with_its_time_on_the_stream() -> None:
    commit = _handler().handle_now(Entry(f"{QUEUED_MS}-0", {b"data": json.dumps(SIGNAL).encode()}))
    assert commit.entry_id == f"{QUEUED_MS}-0"
    assert commit.records == ()
    (row,) = commit.parts
    queued = datetime(2026, 12, 4, 14, 30, 1, tzinfo=UTC)
    assert row == {
        "signal_id": "sig-7",
        "symbol": "AAPL",
        "side": "buy",
        "strategy": "ema_cross",
        "price": 187.25,
        "signal_time": datetime(2026, 12, 4, 14, 30, tzinfo=UTC),
        "status": "pending",
        "attempts": None,
        "received_at": queued,
        "processed_at": None,
        "processing_ms": None,
        "age_s": None,
        "last_error": None,
        "agreement": None,
        "rating": None,
        "confidence": None,
        "published_at": queued,
        "created_at": NOW,
    }


def test_flat_fields_without_an_id_get_the_id_the_pipeline_gives_them() -> None:
    fields = {b"symbol": b"MSFT", b"side": b"sell", b"price": b"410.5", b"timestamp": b"1796394600"}
    (row,) = _handler().handle_now(Entry("1796394601000-3", fields)).parts
    assert row["signal_id"] == derived_id("strategy-signals", "1796394601000-3")
    assert (row["symbol"], row["side"], row["strategy"]) == ("MSFT", "sell", None)


def test_what_the_pipeline_dead_letters_gets_no_row_and_no_dead_letter() -> None:
    handler = _handler()
    bad = [
        {b"data": b"not json"},
        {b"data": json.dumps({**SIGNAL, "side": "up"}).encode()},
        {b"data": json.dumps({**SIGNAL, "timestamp": "2026-12-05T00:00:00Z"}).encode()},
        {b"data": b"x" * 70_000},
        {},
    ]
    for fields in bad:
        commit = handler.handle_now(Entry(f"{QUEUED_MS}-1", fields))
        assert (commit.records, commit.parts) == ((), ())
    assert handler.handle_now(Entry(f"{QUEUED_MS}-2", None)).parts == ()


@given(st.dictionaries(st.binary(max_size=20), st.binary(max_size=200), max_size=8))
def test_any_fields_give_a_row_or_nothing(fields: dict[bytes, bytes]) -> None:
    commit = _handler().handle_now(Entry(f"{QUEUED_MS}-0", fields))
    assert commit.records == ()
    assert len(commit.parts) <= 1


def test_a_timestamp_ahead_is_judged_against_when_the_signal_was_queued() -> None:
    """Queued at 14:30:01 and read here at 14:30:05: a signal stamped 14:31:03 is 62 s ahead
    of its queueing. The pipeline refuses it or not depending on when it reads it, so no
    pending row is written (a decision, if it comes, still makes the row); one stamped
    14:31:00 gets its row."""
    handler = _handler()
    ahead = {**SIGNAL, "timestamp": "2026-12-04T14:31:03Z"}
    assert (
        handler.handle_now(Entry(f"{QUEUED_MS}-0", {b"data": json.dumps(ahead).encode()})).parts
        == ()
    )
    within = {**SIGNAL, "timestamp": "2026-12-04T14:31:00Z"}
    assert (
        len(
            handler.handle_now(
                Entry(f"{QUEUED_MS}-0", {b"data": json.dumps(within).encode()})
            ).parts
        )
        == 1
    )
