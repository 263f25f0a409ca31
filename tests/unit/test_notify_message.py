"""Envelope → notice: an insight reads "BTC-USD BUY (conf 0.62)" and its text, other kinds a
short line; every message fits its channel's limit and ends in "…" where cut; mentions that
would ping a whole channel are defused; malformed envelopes are ``PoisonInput``, nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from signalsmith.envelopes import dump
from signalsmith.errors import PoisonInput
from signalsmith.market.envelope import InsightFacts, Opinion, insight_envelope
from signalsmith.notify.message import (
    ELLIPSIS,
    KINDS,
    SEPARATOR,
    Notice,
    defuse,
    fit,
    read_notice,
    truncate,
    units,
)
from tests.unit.test_store_rows import JSON, envelope_bytes, spike_envelope
from tests.unit.test_strategy_csv import strategy_envelope, strategy_meta

NOW = datetime(2025, 11, 20, 14, 30, tzinfo=UTC)
TEXT = (
    "BTC-USD trades above its 20-period average with RSI at 61; momentum favours buyers while "
    "volume stays near its mean."
)
ALL = frozenset(KINDS)


def insight_bytes(
    product: str = "BTC-USD",
    text: str = TEXT,
    *,
    correlation_id: str = "abc-123",
    verdict: str = "BUY",
    confidence: float = 0.62,
    status: str = "ok",
) -> bytes:
    """An insight envelope as the market pipeline builds it."""
    opinion = Opinion("technicals", "technical", verdict, confidence, 0.4, "up", ("rsi 61",))
    facts = InsightFacts(
        correlation_id=correlation_id,
        product_id=product,
        trade_date="2025-11-20",
        exchange="",
        text=text,
        status=status,
        stream="market-requests",
        entry_id="1-0",
        published_at=NOW,
        arena_id="signalsmith",
        timings={"candles": 1.0},
        meta={"insight": {"product_id": product, "text": text}},
    )
    return dump(insight_envelope(facts, opinion, [opinion])).encode()


def test_an_insight_reads_as_product_verdict_confidence_and_its_text() -> None:
    notice = read_notice(insight_bytes(), {"insight"})
    assert notice == Notice("insight", "abc-123", "BTC-USD BUY (conf 0.62)", TEXT, "BTC-USD")
    assert (notice.key, notice.ticker_key) == ("abc-123", "BTC-USD")


def test_a_status_other_than_ok_shows_in_the_title() -> None:
    notice = read_notice(insight_bytes(status="degraded", verdict="HOLD"), {"insight"})
    assert notice is not None
    assert notice.title == "BTC-USD HOLD (conf 0.62, degraded)"


def test_a_post_reads_as_a_short_line_with_its_link() -> None:
    """Only when posts are notified; its title says it was a post."""
    assert read_notice(envelope_bytes("NVDA"), {"insight"}) is None
    notice = read_notice(envelope_bytes("NVDA"), {"post"})
    assert notice is not None
    assert notice.title == "NVDA BUY (conf 0.80) · post"
    assert notice.body == "bullish cues\nhttps://reddit.com/r/wallstreetbets/1"


def test_a_spike_reads_as_a_mention_spike() -> None:
    notice = read_notice(spike_envelope("GME"), {"spike"})
    assert notice is not None
    assert notice.title.startswith("GME BUY (conf 0.80) · mention spike")


def test_a_long_post_reasoning_is_one_short_line() -> None:
    raw = json.loads(envelope_bytes())
    raw["decision"]["synthesis"]["reasoning"] = "word " * 500 + "\nsecond line"
    notice = read_notice(json.dumps(raw).encode(), {"post"})
    assert notice is not None
    first = notice.body.split("\n")[0]
    assert len(first) <= 280
    assert first.endswith(ELLIPSIS)
    assert "second line" not in notice.body


def test_a_kind_added_later_is_skipped_not_refused() -> None:
    raw = json.loads(insight_bytes())
    raw["decision"]["kind"] = "news"
    assert read_notice(json.dumps(raw).encode(), ALL | {"news"}) is None


def test_an_odd_correlation_id_becomes_a_hashed_key() -> None:
    notice = read_notice(insight_bytes(correlation_id="req 42 / *?"), {"insight"})
    assert notice is not None
    assert notice.key.startswith("~")
    assert len(notice.key) == 33


@pytest.mark.parametrize(
    ("text", "pinged"),
    [
        ("hey @everyone buy", "@everyone"),
        ("@HERE now", "@HERE"),
        ("<!channel> look", "<!channel>"),
        ("<@123456> and <@&42>", "<@"),
        ("<#general>", "<#"),
    ],
)
def test_channel_wide_mentions_are_defused(text: str, pinged: str) -> None:
    notice = read_notice(insight_bytes(text=text), {"insight"})
    assert notice is not None
    assert pinged not in notice.body
    assert notice.body.replace("\u200b", "") == text


def test_control_characters_are_dropped_and_newlines_kept() -> None:
    assert defuse("a\x00b\r\nc\x1bd\te") == "ab\ncd\te"


def test_truncation_cuts_at_a_word_and_marks_the_cut() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("the quick brown fox jumps", 20) == "the quick brown fox…"
    assert truncate("abcdefghij", 5) == "abcd…"
    assert truncate("abc", 0) == ""
    assert truncate("abc", 1) == ELLIPSIS


def test_a_character_beyond_the_bmp_counts_twice_and_is_never_split() -> None:
    assert units("a😀") == 3
    assert truncate("😀😀😀", 4) == "😀…"


def test_a_long_insight_fits_the_limit_title_first() -> None:
    notice = read_notice(insight_bytes(text="x" * 5_000), {"insight"})
    assert notice is not None
    title, body = fit(notice, 2_000)
    assert title == "BTC-USD BUY (conf 0.62)"
    assert units(title) + SEPARATOR + units(body) == 2_000
    assert body.endswith(ELLIPSIS)


TEXTS = st.text(st.characters(exclude_categories=()), max_size=400)


@given(TEXTS, TEXTS, st.integers(0, 600), st.integers(0, 300))
def test_a_fitted_message_is_always_within_the_limits(
    title: str, body: str, limit: int, title_limit: int
) -> None:
    fitted_title, fitted_body = fit(Notice("insight", "k", title, body), limit, title_limit)
    used = units(fitted_title) + units(fitted_body)
    used += SEPARATOR if fitted_title and fitted_body else 0
    assert used <= limit
    if title_limit:
        assert units(fitted_title) <= title_limit
    assert body.startswith(fitted_body.removesuffix(ELLIPSIS).rstrip()) or fitted_body == ""


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATHS = [
    "schema_version",
    "correlation_id",
    "meta",
    "meta.insight",
    "meta.insight.text",
    "decision",
    "decision.kind",
    "decision.status",
    "decision.source",
    "decision.target",
    "decision.target.ticker",
    "decision.synthesis",
    "decision.synthesis.verdict",
    "decision.synthesis.confidence",
    "decision.synthesis.reasoning",
]


def _notice_or_poison(raw: bytes) -> None:
    try:
        notice = read_notice(raw, ALL)
    except PoisonInput as exc:
        reason = exc.reason
    else:
        _assert_fits(notice)
        return
    assert reason in {"bad_envelope", "unknown_schema", "oversize"}


def _assert_fits(notice: Notice | None) -> None:
    if notice is not None:
        title, body = fit(notice, 100)
        assert units(title) + units(body) <= 100
        notice.key.encode()


def _with(path: str, value: object, raw: bytes | None = None) -> bytes:
    envelope: Any = json.loads(insight_bytes() if raw is None else raw)
    *parents, last = path.split(".")
    node = envelope
    for name in parents:
        node = node[name]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return json.dumps(envelope).encode()


@FUZZ
@given(st.binary(max_size=2_000))
@example(b"\xef\xbb\xbf{}")
@example(b"[" * 10_000)
def test_any_bytes_give_a_notice_or_poison(raw: bytes) -> None:
    _notice_or_poison(raw)


@FUZZ
@given(JSON)
def test_any_json_gives_a_notice_or_poison(value: object) -> None:
    _notice_or_poison(json.dumps(value).encode())


@FUZZ
@given(st.sampled_from(PATHS), JSON | st.just(...))
@example("decision.target.ticker", "\ud800")
@example("correlation_id", "\ud800\udfff")
@example("decision.synthesis.confidence", 10**400)
@example("decision.synthesis.confidence", float("nan"))
@example("meta.insight.text", "")
def test_a_valid_insight_with_any_one_value_changed_gives_a_notice_or_poison(
    path: str, value: object
) -> None:
    _notice_or_poison(_with(path, value))


def test_an_oversize_envelope_is_poison() -> None:
    with pytest.raises(PoisonInput, match="oversize"):
        read_notice(b" " * (2 << 20), ALL)


def strategy_bytes(status: str = "ok", **changes: Any) -> bytes:
    """A rated signal's envelope as the strategy pipeline publishes it, its reasoning set."""
    envelope = strategy_envelope(strategy_meta(status=status, **changes))  # type: ignore[arg-type]
    envelope["decision"]["synthesis"]["reasoning"] = "Oversold bounce.\nA second line."
    return json.dumps(envelope).encode()


def test_a_rated_signal_reads_as_side_price_agreement_rating_then_the_risks() -> None:
    notice = read_notice(strategy_bytes(), {"strategy"})
    assert notice is not None
    assert notice.title == "AAPL buy 187.25 · confirm 8/10 (conf 0.80) · ema_cross"
    assert notice.body == "Oversold bounce.\nRisks: earnings next week; thin volume"
    assert notice.correlation_id == "sig-1"


def test_a_degraded_signal_says_why_the_model_gave_no_rating() -> None:
    notice = read_notice(strategy_bytes("degraded", agreement="caution", rating=5), ALL)
    assert notice is not None
    assert notice.title == "AAPL buy 187.25 · caution 5/10 (conf 0.55, degraded) · ema_cross"
    assert notice.body.splitlines() == [
        "Oversold bounce.",
        "No model rating: reply: rating 14 is outside 1..10",
    ]


def test_an_expired_signal_says_it_was_not_rated() -> None:
    notice = read_notice(strategy_bytes("expired"), ALL)
    assert notice is not None
    assert notice.title == "AAPL buy 187.25 · expired, not rated · ema_cross"


def test_a_strategy_envelope_without_a_readable_rating_gets_the_generic_notice() -> None:
    for path, value in [("meta", {}), ("meta.strategy.rating", 11), ("meta.strategy.signal", 1)]:
        notice = read_notice(_with(path, value, strategy_bytes()), ALL)
        assert notice is not None
        assert notice.title == "AAPL BUY (conf 0.80) · strategy"
        assert notice.body == "Oversold bounce."


STRATEGY_PATHS = [
    "meta.strategy",
    "meta.strategy.signal",
    "meta.strategy.signal.symbol",
    "meta.strategy.signal.side",
    "meta.strategy.signal.price",
    "meta.strategy.signal.strategy",
    "meta.strategy.status",
    "meta.strategy.agreement",
    "meta.strategy.rating",
    "meta.strategy.confidence",
    "meta.strategy.llm",
    "meta.strategy.llm.risks",
    "meta.strategy.llm_error",
    "decision.synthesis.reasoning",
]


@FUZZ
@given(st.sampled_from(STRATEGY_PATHS), JSON | st.just(...))
@example("meta.strategy.signal.price", 10**400)
@example("meta.strategy.confidence", float("nan"))
@example("meta.strategy.llm.risks", ["@everyone", "x" * 5_000])
@example("meta.strategy.signal.symbol", "")
def test_a_rated_signal_with_any_one_value_changed_gives_a_notice_or_poison(
    path: str, value: object
) -> None:
    _notice_or_poison(_with(path, value, strategy_bytes()))


def test_a_title_stays_one_line_whatever_its_parts_hold() -> None:
    notice = read_notice(strategy_bytes(strategy="ema\ncross\t 2"), ALL)
    assert notice is not None
    assert notice.title.endswith(" · ema cross 2")
    generic = read_notice(_with("decision.target.ticker", "BTC\nUSD"), ALL)
    assert generic is not None
    assert generic.title.startswith("BTC USD BUY")
