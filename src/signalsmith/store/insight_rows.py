"""A stored insight decision -> its row of ``insights``.

Pure and total: the decision row is already valid (``store.rows``), and what ``meta.insight``
adds is read leniently. A piece that is missing, of the wrong type or too long is left out
(NULL) or cut to its column; it never fails the batch, because the envelope as published is
kept whole in ``decisions``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Final, TypedDict

from signalsmith.store.rows import DecisionValues

MAX_TEXT_CHARS: Final = 4_096
MAX_INDICATORS: Final = 64
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_WIDTHS: Final = {"direction": 16, "prompt": 64, "granularity": 16, "candle_source": 16}


class InsightValues(TypedDict):
    """One row of ``insights``, every column but the generated id."""

    correlation_id: str
    product_id: str
    trade_date: date
    status: str
    verdict: str
    confidence: float
    score: float
    direction: str | None
    strength: float | None
    text: str
    prompt: str | None
    granularity: str | None
    candles: int | None
    candle_source: str | None
    last_candle: datetime | None
    models: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    indicators: str
    published_at: datetime
    stored_at: datetime


def insight_row(decision: DecisionValues) -> InsightValues:
    """The ``insights`` row of a decision of kind ``insight``."""
    envelope = json.loads(decision["envelope"])
    insight = _object(_object(envelope.get("meta")).get("insight"))
    trend = _object(insight.get("trend"))
    candles = _object(insight.get("candles"))
    return {
        "correlation_id": decision["correlation_id"],
        "product_id": decision["ticker"],
        "trade_date": decision["trade_date"],
        "status": decision["status"],
        "verdict": decision["verdict"],
        "confidence": decision["confidence"],
        "score": decision["score"],
        "direction": _text(trend.get("direction"), _WIDTHS["direction"]),
        "strength": _finite(trend.get("strength")),
        "text": _text(insight.get("text"), MAX_TEXT_CHARS) or "",
        "prompt": _text(insight.get("prompt"), _WIDTHS["prompt"]),
        "granularity": _text(candles.get("granularity"), _WIDTHS["granularity"]),
        "candles": _count(candles.get("count")),
        "candle_source": _text(candles.get("source"), _WIDTHS["candle_source"]),
        "last_candle": _time(candles.get("last")),
        "models": decision["models"],
        "tokens_in": decision["tokens_in"],
        "tokens_out": decision["tokens_out"],
        "cost_usd": decision["cost_usd"],
        "indicators": _indicators(insight.get("indicators")),
        "published_at": decision["published_at"],
        "stored_at": decision["stored_at"],
    }


def _object(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _text(value: object, width: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _UNSAFE.sub("", value)[:width] or None


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value < 2**31 else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time; a year past 9999 once moved to UTC
        return None


def _indicators(value: object) -> str:
    """The numeric indicators as a JSON object (at most MAX_INDICATORS of them, keys cut)."""
    numbers = {
        _UNSAFE.sub("", name)[:64]: number
        for name, raw in list(_object(value).items())[:MAX_INDICATORS]
        if (number := _finite(raw)) is not None
    }
    return json.dumps(numbers, separators=(",", ":"), allow_nan=False)
