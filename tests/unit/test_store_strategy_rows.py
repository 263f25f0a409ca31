"""A strategy decision → its ``llm_enhancement_tasks`` row and one ``llm_analysis_results`` row
per rating: a contract-shaped envelope (``strategy.contract``) comes out column by column, the
envelope's status decides the task's (ok → done, degraded → failed with the model's error,
expired → expired, without ratings); whatever ``meta.strategy`` holds instead, the rows are
still made, each piece it cannot read left NULL or cut to fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from signalsmith.errors import PoisonInput
from signalsmith.store.rows import row_from_envelope
from signalsmith.store.strategy_rows import (
    MAX_ITEM_CHARS,
    MAX_LISTED,
    MAX_TEXT_CHARS,
    StrategyRows,
    strategy_rows,
)
from signalsmith.strategy.contract import (
    Agreement,
    ModelRating,
    OfflineRating,
    Outcome,
    Side,
    SignalFacts,
    StrategyMeta,
)
from tests.unit.test_store_rows import JSON

SIGNAL_TIME = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)
PUBLISHED_AT = SIGNAL_TIME + timedelta(seconds=2)
STORED = SIGNAL_TIME + timedelta(seconds=3)


def strategy_meta(
    signal_id: str = "sig-1",
    status: Outcome = "ok",
    *,
    symbol: str = "AAPL",
    strategy: str = "ema_cross",
    side: Side = "buy",
    rating: int = 8,
    agreement: Agreement = "confirm",
    processing_ms: float = 850.0,
    model: bool = True,
    tokens: tuple[int, int] = (900, 60),
    cost_usd: float = 0.0012,
) -> StrategyMeta:
    """``meta.strategy`` as the strategy pipeline writes it. ``ok`` with ``model`` is rated by
    the model (whose rating is the final one), ``ok`` without by the rules alone; ``degraded``
    asked a model that gave no valid rating; ``expired`` was not rated."""
    signal: SignalFacts = {
        "signal_id": signal_id,
        "symbol": symbol,
        "side": side,
        "price": 187.25,
        "timestamp": SIGNAL_TIME.isoformat(),
        "strategy": strategy,
        "indicators": {"rsi": 31.5, "atr": 2.4},
    }
    offline: OfflineRating | None = None
    if status != "expired":
        offline = {
            "score": 0.4,
            "rating": 7 if model and status == "ok" else rating,
            "agreement": "caution" if model and status == "ok" else agreement,
            "confidence": 0.55,
            "reasons": ["rsi 31.5 < 35: oversold supports buy", "atr 2.4: normal range"],
            "unread": ["stochastic: stochastic_k missing"],
        }
    llm: ModelRating | None = None
    if status == "ok" and model:
        llm = {
            "rating": rating,
            "agreement": agreement,
            "confidence": 0.8,
            "reasoning": "Oversold bounce with a rising 50-day average.",
            "risks": ["earnings next week"],
            "key_factors": ["rsi oversold", "trend up"],
            "model": "groq/llama-3.3-70b",
            "tokens_in": tokens[0],
            "tokens_out": tokens[1],
            "cost_usd": cost_usd,
            "latency_ms": 640.0,
        }
    return {
        "signal": signal,
        "status": status,
        "offline": offline,
        "llm": llm,
        "llm_error": "reply: rating 14 is outside 1..10" if status == "degraded" else None,
        "agreement": None if status == "expired" else agreement,
        "rating": None if status == "expired" else rating,
        "confidence": 0.0 if status == "expired" else (0.8 if llm else 0.55),
        "age_s": 1.5 if status != "expired" else 900.0,
        "received_at": (SIGNAL_TIME + timedelta(seconds=1)).isoformat(),
        "processed_at": PUBLISHED_AT.isoformat(),
        "processing_ms": processing_ms,
        "attempts": 1,
        "bars": [],
    }


def strategy_envelope(
    meta: StrategyMeta | dict[str, Any], published_at: datetime = PUBLISHED_AT
) -> bytes:
    """The v1 envelope around ``meta``, as the contract describes it."""
    signal: dict[str, Any] = meta["signal"] if isinstance(meta.get("signal"), dict) else {}
    signal_id = signal.get("signal_id", "sig-x")
    side = signal.get("side", "buy")
    confirmed = meta.get("agreement") == "confirm"
    verdict = ("BUY" if side == "buy" else "SELL") if confirmed else "HOLD"
    confidence = meta.get("confidence")
    llm = meta.get("llm") if isinstance(meta.get("llm"), dict) else None
    envelope = {
        "schema_version": "1",
        "arena": "trading_intelligence",
        "correlation_id": signal_id,
        "arena_id": "signalsmith",
        "published_at": published_at.isoformat(),
        "decision": {
            "kind": "strategy",
            "status": meta.get("status", "ok"),
            "target": {
                "ticker": signal.get("symbol", "AAPL"),
                "trade_date": SIGNAL_TIME.date().isoformat(),
                "exchange": "",
                "asset_class": "equity",
            },
            "synthesis": {
                "verdict": verdict,
                "confidence": confidence if _share(confidence) else 0.0,
                "ensemble_score": 0.4,
                "reasoning": "",
            },
            "agent_signals": [],
            "source_metrics": {
                "total_calls": 0,
                "successful": 0,
                "failed": 0,
                "total_bytes": 0,
                "by_source": {},
            },
            "phase_timings": [],
            "arena_total_seconds": None,
            "source": {"stream": "strategy-signals", "entry_id": "1796000000000-0"},
        },
        "meta": {
            "producer": "signalsmith strategy",
            "analyzers": ["rules", "llm"] if llm else ["rules"],
            "models": [llm["model"]] if llm and isinstance(llm.get("model"), str) else [],
            "tokens": {"input": _tokens(llm, "tokens_in"), "output": _tokens(llm, "tokens_out")},
            "cost_usd": _cost(llm),
            "strategy": meta,
        },
    }
    return json.dumps(envelope).encode()


def _tokens(llm: dict[str, Any] | None, name: str) -> int:
    value = (llm or {}).get(name)
    return value if isinstance(value, int) and 0 <= value < 2**31 else 0


def _cost(llm: dict[str, Any] | None) -> float:
    value = (llm or {}).get("cost_usd")
    return value if isinstance(value, float) and value >= 0 else 0.0


def _share(value: object) -> bool:
    return isinstance(value, float) and 0 <= value <= 1


def rows_of(meta: StrategyMeta | dict[str, Any]) -> StrategyRows:
    return strategy_rows(row_from_envelope(strategy_envelope(meta), STORED))


def test_a_signal_the_model_rated_becomes_a_done_task_with_two_ratings() -> None:
    rows = rows_of(strategy_meta("sig-1"))
    assert rows.task == {
        "signal_id": "sig-1",
        "symbol": "AAPL",
        "side": "buy",
        "strategy": "ema_cross",
        "price": 187.25,
        "signal_time": SIGNAL_TIME,
        "status": "done",
        "attempts": 1,
        "received_at": SIGNAL_TIME + timedelta(seconds=1),
        "processed_at": PUBLISHED_AT,
        "processing_ms": 850.0,
        "age_s": 1.5,
        "last_error": None,
        "agreement": "confirm",
        "rating": 8,
        "confidence": 0.8,
        "published_at": PUBLISHED_AT,
        "created_at": STORED,
    }
    rules, llm = rows.results
    assert rules == {
        "signal_id": "sig-1",
        "analyst": "rules",
        "model": "rules",
        "rating": 7,
        "agreement": "caution",
        "confidence": 0.55,
        "reasoning": "rsi 31.5 < 35: oversold supports buy; atr 2.4: normal range",
        "risks": None,
        "key_factors": json.dumps(
            ["rsi 31.5 < 35: oversold supports buy", "atr 2.4: normal range"]
        ),
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": 0.0,
        "latency_ms": None,
        "created_at": STORED,
    }
    assert llm == {
        "signal_id": "sig-1",
        "analyst": "llm",
        "model": "groq/llama-3.3-70b",
        "rating": 8,
        "agreement": "confirm",
        "confidence": 0.8,
        "reasoning": "Oversold bounce with a rising 50-day average.",
        "risks": json.dumps(["earnings next week"]),
        "key_factors": json.dumps(["rsi oversold", "trend up"]),
        "tokens_in": 900,
        "tokens_out": 60,
        "cost_usd": 0.0012,
        "latency_ms": 640.0,
        "created_at": STORED,
    }


def test_a_signal_rated_by_the_rules_alone_is_done_with_one_rating() -> None:
    rows = rows_of(strategy_meta("sig-2", model=False, rating=6, agreement="caution"))
    assert (rows.task["status"], rows.task["rating"], rows.task["agreement"]) == (
        "done",
        6,
        "caution",
    )
    assert [result["analyst"] for result in rows.results] == ["rules"]


def test_degraded_is_failed_with_the_models_error_and_the_rules_rating_only() -> None:
    rows = rows_of(strategy_meta("sig-3", "degraded", rating=4, agreement="reject"))
    assert rows.task["status"] == "failed"
    assert rows.task["last_error"] == "reply: rating 14 is outside 1..10"
    assert (rows.task["rating"], rows.task["agreement"]) == (4, "reject")
    assert [(r["analyst"], r["rating"]) for r in rows.results] == [("rules", 4)]


def test_expired_is_expired_without_ratings() -> None:
    rows = rows_of(strategy_meta("sig-4", "expired"))
    assert rows.task["status"] == "expired"
    assert (rows.task["rating"], rows.task["agreement"], rows.task["age_s"]) == (None, None, 900.0)
    assert rows.results == []


def test_a_strategy_decision_of_another_status_is_failed() -> None:
    """A producer outside the contract may publish ``error``: not rated, so failed."""
    envelope = json.loads(strategy_envelope(strategy_meta("sig-5", model=False)))
    envelope["decision"]["status"] = "error"
    rows = strategy_rows(row_from_envelope(json.dumps(envelope).encode(), STORED))
    assert rows.task["status"] == "failed"


def test_pieces_of_the_wrong_type_or_range_are_left_out_and_long_text_is_cut() -> None:
    meta: dict[str, Any] = dict(strategy_meta("sig-6"))
    meta["signal"] = {
        **meta["signal"],
        "side": "long",
        "price": "187",
        "timestamp": "yesterday",
        "strategy": "s\x00" * 100,
    }
    meta.update(
        attempts=-1,
        received_at=12,
        processing_ms=True,
        age_s=10**400,
        rating=11,
        agreement="maybe",
        confidence=1.5,
        llm_error="e" * (MAX_TEXT_CHARS + 10),
    )
    assert meta["llm"] is not None
    meta["llm"] = {
        **meta["llm"],
        "rating": 0,
        "model": ["x"],
        "reasoning": "r" * (MAX_TEXT_CHARS * 2),
        "risks": "not a list",
        "key_factors": [1, "k" * (MAX_ITEM_CHARS + 1), None, *["f"] * 100],
        "tokens_in": 2**40,
        "cost_usd": -1.0,
        "latency_ms": "fast",
    }
    meta["offline"] = {"reasons": "one reason", "rating": 9.5}
    rows = rows_of(meta)
    task = rows.task
    assert task["symbol"] == "AAPL"  # the envelope's ticker
    assert (task["side"], task["price"], task["signal_time"]) == (None, None, None)
    assert task["strategy"] == "s" * 64
    assert (task["attempts"], task["received_at"], task["processing_ms"]) == (None, None, None)
    assert (task["age_s"], task["rating"], task["agreement"]) == (None, None, None)
    assert task["confidence"] is None
    assert task["last_error"] == "e" * MAX_TEXT_CHARS
    rules, llm = rows.results
    assert (rules["rating"], rules["reasoning"], rules["key_factors"]) == (None, None, None)
    assert (llm["rating"], llm["model"], llm["risks"]) == (None, None, None)
    assert llm["reasoning"] == "r" * MAX_TEXT_CHARS
    factors = json.loads(llm["key_factors"] or "")
    assert factors[0] == "k" * MAX_ITEM_CHARS
    assert len(factors) == MAX_LISTED
    assert (llm["tokens_in"], llm["cost_usd"], llm["latency_ms"]) == (None, None, None)


def test_without_meta_strategy_the_task_still_comes_from_the_envelope() -> None:
    envelope = json.loads(strategy_envelope(strategy_meta("sig-7")))
    del envelope["meta"]["strategy"]
    rows = strategy_rows(row_from_envelope(json.dumps(envelope).encode(), STORED))
    assert (rows.task["signal_id"], rows.task["symbol"], rows.task["status"]) == (
        "sig-7",
        "AAPL",
        "done",
    )
    assert rows.task["strategy"] is None
    assert rows.results == []


_PARTS = ["signal", "offline", "llm", "rating", "agreement", "attempts", "processed_at"]
_INNER = ["rating", "reasons", "risks", "key_factors", "model", "side", "price", "tokens_in"]
# Anything at all, or an object whose known parts hold anything (objects of known names too).
_META = JSON | st.dictionaries(
    st.sampled_from(_PARTS), JSON | st.dictionaries(st.sampled_from(_INNER), JSON)
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=_META)
def test_any_meta_strategy_still_makes_rows(strategy: object) -> None:
    envelope = json.loads(strategy_envelope(strategy_meta("sig-8")))
    envelope["meta"]["strategy"] = strategy
    try:  # NaN, infinity or a lone surrogate: the decision row's to refuse (store.rows)
        decision = row_from_envelope(json.dumps(envelope).encode(), STORED)
    except PoisonInput:
        assume(False)
    rows = strategy_rows(decision)
    assert rows.task["signal_id"] == "sig-8"
    assert rows.task["status"] == "done"
    assert rows.task["rating"] is None or 1 <= rows.task["rating"] <= 10
    assert len(rows.results) <= 2
    for result in rows.results:
        for column in ("risks", "key_factors"):
            value = result[column]  # type: ignore[literal-required]
            assert value is None or isinstance(json.loads(value), list)
        text = result["reasoning"]
        assert text is None or (0 < len(text) <= MAX_TEXT_CHARS and "\x00" not in text)
