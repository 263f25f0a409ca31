"""A stored strategy decision -> its ``llm_enhancement_tasks`` row and an
``llm_analysis_results`` row per rating (the rules', and the model's when it rated); and a
signal just queued -> its ``pending`` task row, which the decision's row replaces.

Pure and total, like ``store.insight_rows``: the decision row is valid already, and
``meta.strategy`` (``strategy.contract.StrategyMeta``) is read leniently. A piece that is
missing, of the wrong type, out of range or too long is left out (NULL) or cut to its column;
it never fails the batch, because the envelope as published is kept whole in ``decisions``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, TypedDict

from signalsmith.store.rows import DecisionValues
from signalsmith.strategy.contract import AGREEMENTS, SignalFacts

TaskStatus = Literal["pending", "done", "failed", "expired"]
Analyst = Literal["rules", "llm"]
ANALYSTS: Final[tuple[Analyst, ...]] = ("rules", "llm")
TASK_STATUSES: Final[tuple[TaskStatus, ...]] = ("pending", "done", "failed", "expired")
DECIDED: Final[tuple[TaskStatus, ...]] = ("done", "failed", "expired")
# The envelope's status -> the task's. A strategy decision of another status (a producer
# outside the contract) was not rated either: failed.
_TASK_STATUS: Final[dict[str, TaskStatus]] = {
    "ok": "done",
    "degraded": "failed",
    "expired": "expired",
}
SIDES: Final = frozenset({"buy", "sell"})
MAX_TEXT_CHARS: Final = 4_096  # reasoning, last_error
MAX_LISTED: Final = 32  # risks, key factors
MAX_ITEM_CHARS: Final = 512
MAX_TIMESTAMP_CHARS: Final = 64
INT32_MAX: Final = 2**31 - 1
_WIDTHS: Final = {"symbol": 32, "strategy": 64, "model": 256}
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


class TaskValues(TypedDict):
    """One row of ``llm_enhancement_tasks``, every column but the generated id."""

    signal_id: str
    symbol: str
    side: str | None
    strategy: str | None
    price: float | None
    signal_time: datetime | None
    status: TaskStatus
    attempts: int | None
    received_at: datetime | None
    processed_at: datetime | None
    processing_ms: float | None
    age_s: float | None
    last_error: str | None
    agreement: str | None
    rating: int | None
    confidence: float | None
    published_at: datetime
    created_at: datetime


class ResultValues(TypedDict):
    """One row of ``llm_analysis_results``, every column but the generated id."""

    signal_id: str
    analyst: Analyst
    model: str | None
    rating: int | None
    agreement: str | None
    confidence: float | None
    reasoning: str | None
    risks: str | None
    key_factors: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_ms: float | None
    created_at: datetime


class FailedTask(TypedDict):
    """A signal dead-lettered after it was queued: its pending row becomes ``failed``."""

    signal_id: str
    last_error: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class StrategyRows:
    task: TaskValues
    results: list[ResultValues]


def strategy_rows(decision: DecisionValues) -> StrategyRows:
    """The rows of a decision of kind ``strategy``: the signal id is its correlation id and
    the symbol its ticker (the contract makes them so), the status follows the envelope's."""
    envelope = json.loads(decision["envelope"])
    meta = _object(_object(envelope.get("meta")).get("strategy"))
    task = _task(decision, meta)
    results = []
    if offline := _maybe_object(meta.get("offline")):
        results.append(_rules(decision, offline))
    if llm := _maybe_object(meta.get("llm")):
        results.append(_llm(decision, llm))
    return StrategyRows(task, results)


def pending_task(signal: SignalFacts, received_at: datetime, stored_at: datetime) -> TaskValues:
    """The row of a signal queued and not decided yet: ``pending``, with the time it reached
    the stream as its ``published_at`` until its decision's replaces it."""
    return {
        "signal_id": signal["signal_id"],
        "symbol": _clean(signal["symbol"])[: _WIDTHS["symbol"]],
        "side": signal["side"],
        "strategy": _text(signal["strategy"], _WIDTHS["strategy"]),
        "price": _finite(signal["price"]),
        "signal_time": _time(signal["timestamp"]),
        "status": "pending",
        "attempts": None,
        "received_at": received_at,
        "processed_at": None,
        "processing_ms": None,
        "age_s": None,
        "last_error": None,
        "agreement": None,
        "rating": None,
        "confidence": None,
        "published_at": received_at,
        "created_at": stored_at,
    }


def failed_task(signal_id: str, reason: str, detail: str, failed_at: datetime) -> FailedTask:
    error = _clean(f"dead-lettered: {reason}: {detail}")[:MAX_TEXT_CHARS]
    return {"signal_id": signal_id[:64], "last_error": error, "failed_at": failed_at}


def _task(decision: DecisionValues, meta: dict[str, object]) -> TaskValues:
    signal = _object(meta.get("signal"))
    side = signal.get("side")
    return {
        "signal_id": decision["correlation_id"],
        "symbol": decision["ticker"],
        "side": side if isinstance(side, str) and side in SIDES else None,
        "strategy": _text(signal.get("strategy"), _WIDTHS["strategy"]),
        "price": _finite(signal.get("price")),
        "signal_time": _time(signal.get("timestamp")),
        "status": _TASK_STATUS.get(decision["status"], "failed"),
        "attempts": _count(meta.get("attempts")),
        "received_at": _time(meta.get("received_at")),
        "processed_at": _time(meta.get("processed_at")),
        "processing_ms": _finite(meta.get("processing_ms")),
        "age_s": _finite(meta.get("age_s")),
        "last_error": _text(meta.get("llm_error"), MAX_TEXT_CHARS),
        "agreement": _agreement(meta.get("agreement")),
        "rating": _rating(meta.get("rating")),
        "confidence": _share(meta.get("confidence")),
        "published_at": decision["published_at"],
        "created_at": decision["stored_at"],
    }


def _rules(decision: DecisionValues, offline: dict[str, object]) -> ResultValues:
    """The rules' rating: their reasons are its reasoning and its key factors; no tokens."""
    reasons = _strings(offline.get("reasons"))
    return {
        **_rating_of(decision, "rules", offline),
        "model": "rules",
        "reasoning": "; ".join(reasons)[:MAX_TEXT_CHARS] if reasons else None,
        "risks": None,
        "key_factors": _listed(reasons),
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": 0.0,
        "latency_ms": None,
    }


def _llm(decision: DecisionValues, llm: dict[str, object]) -> ResultValues:
    cost = _finite(llm.get("cost_usd"))
    latency = _finite(llm.get("latency_ms"))
    return {
        **_rating_of(decision, "llm", llm),
        "model": _text(llm.get("model"), _WIDTHS["model"]),
        "reasoning": _text(llm.get("reasoning"), MAX_TEXT_CHARS),
        "risks": _listed(_strings(llm.get("risks"))),
        "key_factors": _listed(_strings(llm.get("key_factors"))),
        "tokens_in": _count(llm.get("tokens_in")),
        "tokens_out": _count(llm.get("tokens_out")),
        "cost_usd": cost if cost is None or cost >= 0 else None,
        "latency_ms": latency if latency is None or latency >= 0 else None,
    }


class _Rating(TypedDict):
    signal_id: str
    analyst: Analyst
    rating: int | None
    agreement: str | None
    confidence: float | None
    created_at: datetime


def _rating_of(decision: DecisionValues, analyst: Analyst, rated: dict[str, object]) -> _Rating:
    return {
        "signal_id": decision["correlation_id"],
        "analyst": analyst,
        "rating": _rating(rated.get("rating")),
        "agreement": _agreement(rated.get("agreement")),
        "confidence": _share(rated.get("confidence")),
        "created_at": decision["stored_at"],
    }


def _object(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _maybe_object(value: object) -> dict[str, object] | None:
    """An object, or None for null and anything else (no rating to record)."""
    return value if isinstance(value, dict) else None


def _clean(value: str) -> str:
    return _UNSAFE.sub("", value)


def _text(value: object, width: int) -> str | None:
    if not isinstance(value, str):
        return None
    return _clean(value)[:width] or None


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past a float's range
        return None
    return number if math.isfinite(number) else None


def _share(value: object) -> float | None:
    number = _finite(value)
    return number if number is not None and 0 <= number <= 1 else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= INT32_MAX else None


def _rating(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= 10 else None


def _agreement(value: object) -> str | None:
    return value if isinstance(value, str) and value in AGREEMENTS else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_CHARS:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time; a year past 9999 once moved to UTC
        return None


def _strings(value: object) -> list[str] | None:
    """The strings of a list (others dropped; at most MAX_LISTED, each cut); None when it is
    no list."""
    if not isinstance(value, list):
        return None
    kept = (_clean(item)[:MAX_ITEM_CHARS] for item in value if isinstance(item, str))
    return [item for item in kept if item][:MAX_LISTED]


def _listed(items: list[str] | None) -> str | None:
    return None if items is None else json.dumps(items, ensure_ascii=False)
