"""A decision stream entry's envelope JSON -> one row of ``decisions``.

Pure. The input is untrusted: anything that cannot become a row that every supported database
accepts raises ``PoisonInput`` (``bad_envelope``, ``unknown_schema``, ``oversize``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Final, TypedDict, TypeVar

from pydantic_core import from_json
from sqlalchemy import String

from signalsmith.errors import PoisonInput
from signalsmith.store.schema import DecisionRow

MAX_ENVELOPE_BYTES: Final = 1 << 20
MAX_URL_CHARS: Final = 8_192  # post_url is TEXT; a longer one is cut (the envelope keeps it)
MAX_LISTED: Final = 64  # analyzers or models joined into one column
MAX_TIMESTAMP_CHARS: Final = 64
KINDS: Final = frozenset({"post", "consensus", "spike", "insight", "strategy"})
VERDICTS: Final = frozenset({"BUY", "SELL", "HOLD"})
STATUSES: Final = frozenset({"ok", "degraded", "abstain", "error", "expired"})
INT32_MAX: Final = 2**31 - 1
# No SQL text column takes NUL, and no UTF-8 encoder a lone surrogate (JSON may escape either).
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_SYNTHESIS = ("decision", "synthesis")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
T = TypeVar("T")
_WIDTH: Final = {
    column.name: column.type.length
    for column in DecisionRow.__table__.columns
    if isinstance(column.type, String) and column.type.length
}


class DecisionValues(TypedDict):
    """One row of ``decisions``, every column but the generated id."""

    correlation_id: str
    kind: str
    ticker: str
    trade_date: date
    verdict: str
    confidence: float
    score: float
    status: str
    source_stream: str | None
    source_entry_id: str | None
    post_id: str | None
    post_url: str | None
    post_author: str | None
    post_subreddit: str | None
    post_created: datetime | None
    analyzers: str
    models: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    published_at: datetime
    stored_at: datetime
    envelope: str


def row_from_fields(fields: Mapping[bytes, bytes], stored_at: datetime) -> DecisionValues:
    """The row for a decision stream entry: its one field ``data`` holds the envelope."""
    raw = fields.get(b"data")
    if raw is None:
        raise PoisonInput("bad_envelope", "the entry has no 'data' field")
    return row_from_envelope(raw, stored_at)


def row_from_envelope(raw: bytes, stored_at: datetime) -> DecisionValues:
    """The row for one v1 envelope (JSON, UTF-8); ``stored_at`` is when it is stored."""
    text, envelope = _parse(raw)
    version = envelope.get("schema_version")
    if version != "1":
        raise PoisonInput("unknown_schema", f"schema_version {version!r:.40}")
    if envelope.get("arena") != "trading_intelligence":
        raise _bad(f"arena {envelope.get('arena')!r:.40}")
    source = _at(envelope, "decision", "source")
    if source is not None and not isinstance(source, dict):
        raise _bad(f"decision.source must be an object or null, not {type(source).__name__}")
    meta = _maybe(envelope, "meta")
    return {
        "correlation_id": _key(_at(envelope, "correlation_id"), "correlation_id"),
        "kind": _choice(_at(envelope, "decision", "kind"), "decision.kind", KINDS),
        "ticker": _key(_at(envelope, "decision", "target", "ticker"), "ticker"),
        "trade_date": _day(_at(envelope, "decision", "target", "trade_date")),
        "verdict": _choice(_at(envelope, *_SYNTHESIS, "verdict"), "verdict", VERDICTS),
        "confidence": _number(_at(envelope, *_SYNTHESIS, "confidence"), 0, 1, "confidence"),
        "score": _number(_at(envelope, *_SYNTHESIS, "ensemble_score"), -1, 1, "ensemble_score"),
        "status": _choice(_at(envelope, "decision", "status"), "decision.status", STATUSES),
        "source_stream": _label(_maybe(source, "stream"), "source_stream"),
        "source_entry_id": _label(_maybe(source, "entry_id"), "source_entry_id"),
        "post_id": _label(_maybe(source, "post_id"), "post_id"),
        "post_url": _label(_maybe(source, "url"), "post_url", MAX_URL_CHARS),
        "post_author": _label(_maybe(source, "author"), "post_author"),
        "post_subreddit": _label(_maybe(source, "subreddit"), "post_subreddit"),
        "post_created": _optional_time(_maybe(source, "created"), "decision.source.created"),
        "analyzers": _listed(_maybe(meta, "analyzers"), "analyzers"),
        "models": _listed(_maybe(meta, "models"), "models"),
        "tokens_in": _count(_maybe(meta, "tokens", "input"), "meta.tokens.input"),
        "tokens_out": _count(_maybe(meta, "tokens", "output"), "meta.tokens.output"),
        "cost_usd": _cost(_maybe(meta, "cost_usd")),
        "published_at": _time(_at(envelope, "published_at"), "published_at"),
        "stored_at": stored_at.astimezone(UTC),
        "envelope": text,
    }


def _bad(detail: str) -> PoisonInput:
    return PoisonInput("bad_envelope", detail)


def _parse(raw: bytes) -> tuple[str, dict[str, object]]:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise PoisonInput("oversize", f"{len(raw)} bytes, limit {MAX_ENVELOPE_BYTES}")
    try:
        text = raw.decode("utf-8")
        envelope = from_json(text, allow_inf_nan=False)
    except UnicodeDecodeError as exc:
        raise _bad(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:  # not JSON, nested too deep, a number out of range
        raise _bad(f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(envelope, dict):
        raise _bad(f"a JSON object is needed, not {type(envelope).__name__}")
    return text, envelope


def _at(value: object, *path: str) -> object:
    """The value at ``path``; a missing key or a step through a non-object is an error."""
    for depth, name in enumerate(path):
        if not isinstance(value, dict):
            where = ".".join(path[:depth]) or "the envelope"
            raise _bad(f"{where} must be an object, not {type(value).__name__}")
        if name not in value:
            raise _bad(f"{'.'.join(path[: depth + 1])} is missing")
        value = value[name]
    return value


def _maybe(value: object, *path: str) -> object:
    """The value at ``path``, or None where a step is missing or null."""
    for name in path:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _bad(f"{name}'s parent must be an object, not {type(value).__name__}")
        value = value.get(name)
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{where} must be a string, not {type(value).__name__}")
    if _UNSAFE.search(value):
        raise _bad(f"{where} holds a NUL or a lone surrogate")
    return value


def _key(value: object, column: str) -> str:
    """A column that identifies or filters: never empty, never cut."""
    text = _string(value, column)
    if not text or len(text) > _WIDTH[column]:
        raise _bad(f"{column} must have 1 to {_WIDTH[column]} characters, not {len(text)}")
    return text


def _choice(value: object, where: str, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _bad(f"{where} must be one of {sorted(allowed)}, not {value!r:.40}")
    return value


def _label(value: object, column: str, width: int | None = None) -> str | None:
    """A descriptive column: absent or empty is NULL, a long one is cut to the column's width."""
    if value is None:
        return None
    text = _string(value, column)
    return text[: width or _WIDTH[column]] or None


def _listed(value: object, column: str) -> str:
    """A list of names, comma-joined and cut to the column's width."""
    if value is None:
        return ""
    if not isinstance(value, list):
        raise _bad(f"meta.{column} must be a list, not {type(value).__name__}")
    names = [_string(item, f"meta.{column}[]") for item in value[:MAX_LISTED]]
    return ",".join(names)[: _WIDTH[column]]


def _number(value: object, low: float, high: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{where}: a number is needed, not {type(value).__name__}")
    if not (math.isfinite(value) and low <= value <= high):
        raise _bad(f"{where}: {value!r:.40} is outside {low}..{high}")
    return float(value)


def _count(value: object, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT32_MAX:
        raise _bad(f"{where} must be an integer from 0 to {INT32_MAX}, not {value!r:.40}")
    return value


def _cost(value: object) -> float:
    return 0.0 if value is None else _number(value, 0.0, 1e12, "meta.cost_usd")


def _day(value: object) -> date:
    text = _string(value, "trade_date")
    parsed = _parsed(date.fromisoformat, text) if _DAY.fullmatch(text) else None
    if parsed is None:
        raise _bad(f"trade_date must be a date YYYY-MM-DD, not {text!r:.40}")
    return parsed


def _time(value: object, where: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime; one without an offset is taken as UTC."""
    text = _string(value, where)
    parsed = _parsed(_utc, text) if len(text) <= MAX_TIMESTAMP_CHARS else None
    if parsed is None:
        raise _bad(f"{where} must be an ISO 8601 time, not {text!r:.60}")
    return parsed


def _utc(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _parsed(parse: Callable[[str], T], text: str) -> T | None:
    try:
        return parse(text)
    except (ValueError, OverflowError):  # not a date; a year past 9999 once moved to UTC
        return None


def _optional_time(value: object, where: str) -> datetime | None:
    return None if value is None or value == "" else _time(value, where)
