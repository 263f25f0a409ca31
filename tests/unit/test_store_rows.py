"""Envelope JSON -> a ``decisions`` row, and the store's handler: every column filled from the
envelope the posts pipeline builds; hostile input is a ``PoisonInput`` (a dead letter), never
another exception and never a row a database would refuse."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from signalsmith.domain import Decision, Opinion, Post, Status, Verdict, Vote
from signalsmith.envelopes import EnvelopeV1, build_envelope, dump, source_ref, trade_date
from signalsmith.errors import PoisonInput
from signalsmith.source.redis_streams import Entry
from signalsmith.store.consumer import StoreHandler
from signalsmith.store.rows import (
    MAX_ENVELOPE_BYTES,
    MAX_URL_CHARS,
    DecisionValues,
    row_from_envelope,
    row_from_fields,
)
from signalsmith.store.schema import DecisionRow

NOW = datetime(2025, 11, 20, 14, 30, tzinfo=UTC)
CREATED = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
STORED = datetime(2025, 11, 20, 15, 0, tzinfo=UTC)
META: dict[str, Any] = {
    "producer": "signalsmith test",
    "analyzers": ["lexicon", "llm"],
    "models": ["groq/llama-3.3-70b", "openai/gpt-4o-mini"],
    "tokens": {"input": 1200, "output": 85},
    "cost_usd": 0.00042,
    "latency_ms": 812.5,
}


def make_envelope(
    ticker: str = "NVDA",
    *,
    entry_id: str = "1700000000000-0",
    stream: str = "reddit-events",
    verdict: Verdict = Verdict.BUY,
    status: Status = Status.OK,
    post_id: str = "t3_abc",
) -> EnvelopeV1:
    """A v1 envelope as the posts pipeline builds it, for one post and ticker."""
    post = Post(
        id=post_id,
        title=f"{ticker} to the moon",
        body="loading up on calls",
        url="https://reddit.com/r/wallstreetbets/1",
        author="u_bull",
        subreddit="wallstreetbets",
        created=CREATED,
    )
    if status is Status.ERROR:
        vote = Vote("llm", "sentiment", Status.ERROR, None, error="provider down")
        decision = Decision(ticker, verdict, 0.0, 0.0, "no opinion", status, (vote,))
    else:
        opinion = Opinion(verdict, 0.8, 0.6 if verdict is Verdict.BUY else 0.0, ("calls",))
        vote = Vote("lexicon", "sentiment", Status.OK, opinion)
        decision = Decision(ticker, verdict, 0.8, opinion.score, "bullish cues", status, (vote,))
    return build_envelope(
        decision,
        source=source_ref(post, stream, entry_id),
        trade_day=trade_date(post, NOW),
        asset_class="equity",
        published_at=NOW,
        arena_id="signalsmith",
        timings={"normalize": 0.2, "analyze": 1.5},
        meta=META,
    )


def envelope_bytes(ticker: str = "NVDA", **options: Any) -> bytes:
    """The wire JSON of ``make_envelope`` (what the decision stream's ``data`` field holds)."""
    return dump(make_envelope(ticker, **options)).encode()


def spike_envelope(ticker: str = "GME") -> bytes:
    """A spike as the commit script writes it: no source, no model usage."""
    envelope: dict[str, Any] = json.loads(envelope_bytes(ticker))
    envelope["decision"].update(source=None, kind="spike", agent_signals=[])
    envelope["meta"] = {"spike": {"mentions": 42.0, "ratio": 8.5}}
    return json.dumps(envelope).encode()


def _with(path: str, value: object, base: bytes | None = None) -> bytes:
    """The envelope with the value at ``path`` (dotted) replaced; ``...`` deletes it."""
    envelope = json.loads(base or envelope_bytes())
    *parents, last = path.split(".")
    node = envelope
    for name in parents:
        node = node[name]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return json.dumps(envelope).encode()


WIDTH = {
    column.name: column.type.length
    for column in DecisionRow.__table__.columns
    if getattr(column.type, "length", None)
}


def _assert_storable(row: DecisionValues) -> None:
    """What every database accepts: fitting strings without NUL, aware times, bounded numbers."""
    assert set(row) == {c.name for c in DecisionRow.__table__.columns} - {"id"}
    for name, value in row.items():
        if isinstance(value, str):
            assert "\x00" not in value
            value.encode("utf-8")
            assert len(value) <= WIDTH.get(name, MAX_URL_CHARS if name == "post_url" else 1 << 21)
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)
    assert 0 <= row["confidence"] <= 1
    assert -1 <= row["score"] <= 1
    assert 0 <= row["tokens_in"] < 2**31
    assert 0 <= row["tokens_out"] < 2**31


def test_a_post_envelope_fills_every_column() -> None:
    """The posts pipeline's envelope: target, synthesis, status, kind, source, model usage, and
    the envelope itself as published."""
    raw = envelope_bytes("NVDA", entry_id="1700000000000-7")
    row = row_from_envelope(raw, STORED)
    envelope = json.loads(raw)
    assert row == {
        "correlation_id": envelope["correlation_id"],
        "kind": "post",
        "ticker": "NVDA",
        "trade_date": date(2025, 11, 20),
        "verdict": "BUY",
        "confidence": 0.8,
        "score": 0.6,
        "status": "ok",
        "source_stream": "reddit-events",
        "source_entry_id": "1700000000000-7",
        "post_id": "t3_abc",
        "post_url": "https://reddit.com/r/wallstreetbets/1",
        "post_author": "u_bull",
        "post_subreddit": "wallstreetbets",
        "post_created": CREATED,
        "analyzers": "lexicon,llm",
        "models": "groq/llama-3.3-70b,openai/gpt-4o-mini",
        "tokens_in": 1200,
        "tokens_out": 85,
        "cost_usd": 0.00042,
        "published_at": NOW,
        "stored_at": STORED,
        "envelope": raw.decode(),
    }
    _assert_storable(row)


def test_hold_and_error_decisions_are_rows_too() -> None:
    """Every decision is stored, not only the actionable ones: HOLD, and a failed analysis."""
    row = row_from_envelope(envelope_bytes(verdict=Verdict.HOLD, status=Status.ERROR), STORED)
    assert (row["verdict"], row["status"], row["confidence"], row["score"]) == (
        "HOLD",
        "error",
        0.0,
        0.0,
    )


def test_a_spike_has_no_source_and_no_model_usage() -> None:
    """A spike (source null, meta without usage): the post columns are NULL, usage is zero."""
    row = row_from_envelope(spike_envelope("GME"), STORED)
    assert (row["kind"], row["ticker"]) == ("spike", "GME")
    assert row["source_stream"] is row["post_id"] is row["post_created"] is None
    assert (row["analyzers"], row["models"], row["tokens_in"], row["cost_usd"]) == ("", "", 0, 0.0)


def test_times_become_aware_utc() -> None:
    """Any offset is converted to UTC; a time without one is taken as UTC."""
    shifted = NOW.astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert row_from_envelope(_with("published_at", shifted), STORED)["published_at"] == NOW
    naive = NOW.replace(tzinfo=None).isoformat()
    assert row_from_envelope(_with("published_at", naive), STORED)["published_at"] == NOW
    created = _with("decision.source.created", "2025-11-20T13:00:00+01:00")
    assert row_from_envelope(created, STORED)["post_created"] == CREATED
    assert row_from_envelope(_with("decision.source.created", ""), STORED)["post_created"] is None


def test_long_descriptive_values_are_cut_to_the_column() -> None:
    """Author, subreddit, URL and model lists are cut to fit; the envelope keeps them whole."""
    raw = _with("decision.source.author", "a" * 5000)
    raw = _with("decision.source.url", "https://x/" + "u" * 20_000, raw)
    raw = _with("meta.models", [f"provider/model-{n}" for n in range(500)], raw)
    row = row_from_envelope(raw, STORED)
    assert row["post_author"] == "a" * WIDTH["post_author"]
    assert len(row["post_url"] or "") == MAX_URL_CHARS
    assert len(row["models"]) <= WIDTH["models"]
    assert "a" * 5000 in row["envelope"]
    _assert_storable(row)


def test_unknown_fields_are_fine() -> None:
    """Fields a v1 consumer does not know (a future addition) are ignored."""
    raw = _with("decision.extra", {"anything": [1, 2, 3]})
    raw = _with("new_top_level", "yes", raw)
    assert row_from_envelope(raw, STORED)["ticker"] == "NVDA"


HOSTILE: list[tuple[str, bytes, str]] = [
    ("not JSON", b"{broken", "bad_envelope"),
    ("empty", b"", "bad_envelope"),
    ("not UTF-8", b'{"a":"\xff\xfe"}', "bad_envelope"),
    ("a list", b"[1, 2]", "bad_envelope"),
    ("a string", b'"text"', "bad_envelope"),
    ("nested deep", b"[" * 100_000 + b"]" * 100_000, "bad_envelope"),
    ("too large", b'{"x":"' + b"a" * MAX_ENVELOPE_BYTES + b'"}', "oversize"),
    ("NaN", envelope_bytes().replace(b'"confidence":0.8', b'"confidence":NaN'), "bad_envelope"),
    ("huge number", envelope_bytes().replace(b'"confidence":0.8', b'"confidence":1e999'), ""),
    ("schema 2", _with("schema_version", "2"), "unknown_schema"),
    ("schema as number", _with("schema_version", 1), "unknown_schema"),
    ("no schema", _with("schema_version", ...), "unknown_schema"),
    ("other arena", _with("arena", "sports"), "bad_envelope"),
    ("no ticker", _with("decision.target.ticker", ...), "bad_envelope"),
    ("empty ticker", _with("decision.target.ticker", ""), "bad_envelope"),
    ("long ticker", _with("decision.target.ticker", "X" * 33), "bad_envelope"),
    ("NUL in ticker", _with("decision.target.ticker", "NV\x00DA"), "bad_envelope"),
    ("ticker a number", _with("decision.target.ticker", 7), "bad_envelope"),
    ("no decision", _with("decision", ...), "bad_envelope"),
    ("decision a list", _with("decision", []), "bad_envelope"),
    ("target null", _with("decision.target", None), "bad_envelope"),
    ("no correlation id", _with("correlation_id", ...), "bad_envelope"),
    ("long correlation id", _with("correlation_id", "c" * 65), "bad_envelope"),
    ("confidence a string", _with("decision.synthesis.confidence", "0.8"), "bad_envelope"),
    ("confidence a bool", _with("decision.synthesis.confidence", True), "bad_envelope"),
    ("confidence above 1", _with("decision.synthesis.confidence", 1.5), "bad_envelope"),
    ("score below -1", _with("decision.synthesis.ensemble_score", -2), "bad_envelope"),
    ("verdict unknown", _with("decision.synthesis.verdict", "STRONG_BUY"), "bad_envelope"),
    ("kind unknown", _with("decision.kind", "rumour"), "bad_envelope"),
    ("no kind", _with("decision.kind", ...), "bad_envelope"),
    ("status unknown", _with("decision.status", "fine"), "bad_envelope"),
    ("trade date bad", _with("decision.target.trade_date", "2025-02-30"), "bad_envelope"),
    ("trade date other form", _with("decision.target.trade_date", "20251120"), "bad_envelope"),
    ("published_at bad", _with("published_at", "yesterday"), "bad_envelope"),
    ("published_at overflows", _with("published_at", "9999-12-31T23:00:00-05:00"), ""),
    ("published_at a number", _with("published_at", 1763640000), "bad_envelope"),
    ("source a string", _with("decision.source", "reddit"), "bad_envelope"),
    ("created bad", _with("decision.source.created", "soon"), "bad_envelope"),
    ("author a list", _with("decision.source.author", ["a"]), "bad_envelope"),
    ("tokens negative", _with("meta.tokens", {"input": -1, "output": 0}), "bad_envelope"),
    ("tokens too many", _with("meta.tokens", {"input": 2**31, "output": 0}), "bad_envelope"),
    ("tokens a float", _with("meta.tokens", {"input": 1.5, "output": 0}), "bad_envelope"),
    ("tokens a list", _with("meta.tokens", [1, 2]), "bad_envelope"),
    ("models a string", _with("meta.models", "groq/llama"), "bad_envelope"),
    ("models of numbers", _with("meta.models", [1, 2]), "bad_envelope"),
    ("cost negative", _with("meta.cost_usd", -0.5), "bad_envelope"),
    ("meta a list", _with("meta", []), "bad_envelope"),
]


@pytest.mark.parametrize(("raw", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_envelopes_are_poison_with_a_reason(raw: bytes, reason: str) -> None:
    """Each is refused with a short reason (``""``: any reason) and a bounded detail."""
    with pytest.raises(PoisonInput) as caught:
        row_from_envelope(raw, STORED)
    assert caught.value.reason == (reason or caught.value.reason)
    assert len(caught.value.detail) < 400


def test_an_entry_without_a_data_field_is_poison() -> None:
    """The decision stream's entries carry the envelope in ``data``; without it, a dead letter."""
    with pytest.raises(PoisonInput, match="data"):
        row_from_fields({b"json": envelope_bytes()}, STORED)
    assert row_from_fields({b"data": envelope_bytes()}, STORED)["ticker"] == "NVDA"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=20,
)
PATHS = [
    "schema_version",
    "arena",
    "correlation_id",
    "published_at",
    "meta",
    "meta.analyzers",
    "meta.models",
    "meta.tokens",
    "meta.tokens.input",
    "meta.cost_usd",
    "decision",
    "decision.kind",
    "decision.status",
    "decision.source",
    "decision.source.created",
    "decision.source.url",
    "decision.source.author",
    "decision.target",
    "decision.target.ticker",
    "decision.target.trade_date",
    "decision.synthesis",
    "decision.synthesis.verdict",
    "decision.synthesis.confidence",
    "decision.synthesis.ensemble_score",
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _row_or_poison(raw: bytes) -> None:
    try:
        row = row_from_envelope(raw, STORED)
    except PoisonInput as exc:
        reason = exc.reason
    else:
        _assert_storable(row)
        return
    assert reason in {"bad_envelope", "unknown_schema", "oversize"}


@FUZZ
@given(st.binary(max_size=4_000))
@example(b"\xef\xbb\xbf{}")
def test_any_bytes_give_a_row_or_poison(raw: bytes) -> None:
    """Arbitrary bytes never raise anything but ``PoisonInput``."""
    _row_or_poison(raw)


@FUZZ
@given(JSON)
def test_any_json_gives_a_row_or_poison(value: object) -> None:
    """Arbitrary JSON (NaN and lone surrogates included) never raises anything else."""
    _row_or_poison(json.dumps(value).encode())


@FUZZ
@given(st.sampled_from(PATHS), JSON | st.just(...))
@example("decision.target.ticker", "\ud800")
@example("published_at", "0001-01-01T00:00:00+05:00")
@example("meta.tokens.input", 10**400)
def test_a_valid_envelope_with_any_one_value_changed_gives_a_row_or_poison(
    path: str, value: object
) -> None:
    """One field replaced (or removed) anywhere it matters: a storable row, or poison."""
    _row_or_poison(_with(path, value))


def _handler() -> StoreHandler:
    return StoreHandler(clock=lambda: STORED)


async def test_the_handler_makes_a_row_commit() -> None:
    """A valid entry: a commit carrying its row as the part, nothing to publish."""
    entry = Entry("5-0", {b"data": envelope_bytes()})
    commit = _handler().handle_now(entry)
    assert commit == await _handler().handle(entry)
    assert (commit.entry_id, commit.records) == ("5-0", ())
    (row,) = commit.parts
    assert row == row_from_envelope(envelope_bytes(), STORED)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (Entry("6-0", {b"data": b"{broken"}), "bad_envelope"),
        (Entry("6-0", {b"data": _with("schema_version", "9")}), "unknown_schema"),
        (Entry("6-0", {b"other": b"x"}), "bad_envelope"),
    ],
    ids=["malformed", "unknown schema", "no data field"],
)
def test_the_handler_refuses_what_cannot_be_stored(entry: Entry, reason: str) -> None:
    """Poison with the reason: the engine dead-letters it on the store's own DLQ."""
    with pytest.raises(PoisonInput) as refused:
        _handler().handle_now(entry)
    assert refused.value.reason == reason
