"""A signal just queued on STRATEGY_STREAM → its pending ``llm_enhancement_tasks`` row: from
one ``data`` field or flat fields, with the id the pipeline would give it; what the pipeline
would dead-letter gets no row and is acknowledged, never dead-lettered a second time. A dead
letter of a signal → the failure that marks its pending row failed, with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from signalsmith.sink.outputs import original_fields
from signalsmith.source.redis_streams import Entry
from signalsmith.store.strategy_intake import FailedTaskHandler, IntakeLimits, PendingTaskHandler
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


def _dead_letter(fields: dict[bytes, bytes], stream: str = "strategy-signals") -> Entry:
    """A dead letter as the engine writes it (``sink.outputs``), of entry 1796394601000-3."""
    letter = {b"reason": b"internal_error", b"detail": b"ValueError", b"stream": stream.encode()}
    letter |= {b"entry_id": b"1796394601000-3", b"failed_at": b"2026-12-04T14:30:09+00:00"}
    originals = {
        name.encode(): value if isinstance(value, bytes) else value.encode()
        for name, value in original_fields(fields).items()
    }
    return Entry(f"{QUEUED_MS + 8000}-0", {**letter, **originals})


def test_a_dead_letter_of_a_signal_marks_its_row_failed_with_the_reason() -> None:
    handler = FailedTaskHandler(LIMITS, clock=lambda: NOW)
    (failure,) = handler.handle_now(_dead_letter({b"data": json.dumps(SIGNAL).encode()})).parts
    assert failure == {
        "signal_id": "sig-7",
        "last_error": "dead-lettered: internal_error: ValueError",
        "failed_at": datetime(2026, 12, 4, 14, 30, 9, tzinfo=UTC),
    }
    flat = {b"symbol": b"MSFT", b"side": b"sell", b"price": b"410.5", b"timestamp": b"1"}
    (derived,) = handler.handle_now(_dead_letter(flat)).parts
    assert derived["signal_id"] == derived_id("strategy-signals", "1796394601000-3")


def test_other_dead_letters_change_nothing() -> None:
    handler = FailedTaskHandler(LIMITS, clock=lambda: NOW)
    elsewhere = _dead_letter({b"data": json.dumps(SIGNAL).encode()}, stream="other")
    for entry in (
        elsewhere,
        _dead_letter({b"data": b"[1, 2]"}),
        _dead_letter({}),
        Entry("1-0", {b"reason": b"x"}),
        Entry("2-0", None),
    ):
        assert handler.handle_now(entry).parts == ()


@given(st.dictionaries(st.binary(max_size=20), st.binary(max_size=200), max_size=8))
def test_any_dead_letter_gives_a_failure_or_nothing(fields: dict[bytes, bytes]) -> None:
    commit = FailedTaskHandler(LIMITS, clock=lambda: NOW).handle_now(Entry("3-0", fields))
    assert len(commit.parts) <= 1
