"""A decision-log entry → the event the live feed sends: a small JSON object a page renders as
text, framed once as a server-sent event (``id`` the entry id, so a browser that reconnects
resumes after the last one it had), and the fields its filters look at.

The entry is untrusted: anything that is no v1 envelope of a known kind is left out (None),
and every text is cut. Nothing here is HTML; the page renders it as text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from pydantic_core import PydanticSerializationError, from_json, to_json

KINDS: Final = frozenset({"post", "consensus", "spike", "insight", "strategy"})
VERDICTS: Final = frozenset({"BUY", "SELL", "HOLD"})
MAX_ENTRY_BYTES: Final = 1 << 20
MAX_TICKER: Final = 32
MAX_TEXT: Final = 280  # the reasoning line, or an insight's opening
MAX_LINK: Final = 2_048
MAX_ANALYZERS: Final = 8
_BREAKS: Final = re.compile(r"[\s\x00-\x1f\x7f]")  # what no link to follow holds


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One decision as the feed sends it."""

    entry_id: str
    kind: str
    ticker: str
    verdict: str
    confidence: float
    frame: bytes  # the whole server-sent event, ready to write


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """What one client asked for; empty means any."""

    kinds: frozenset[str] = frozenset()
    tickers: frozenset[str] = frozenset()
    verdicts: frozenset[str] = frozenset()
    min_confidence: float = 0.0

    def wants(self, event: LiveEvent) -> bool:
        return (
            (not self.kinds or event.kind in self.kinds)
            and (not self.tickers or event.ticker in self.tickers)
            and (not self.verdicts or event.verdict in self.verdicts)
            and event.confidence >= self.min_confidence
        )


def live_event(entry_id: str, fields: dict[bytes, bytes]) -> LiveEvent | None:
    """The event for one decision-log entry, or None for one that is not a decision."""
    raw = fields.get(b"data")
    if raw is None or len(raw) > MAX_ENTRY_BYTES:
        return None
    try:
        envelope = from_json(raw)
    except ValueError:
        return None
    decision = _object(envelope, "decision") if isinstance(envelope, dict) else {}
    target, synthesis = _object(decision, "target"), _object(decision, "synthesis")
    kind, ticker = decision.get("kind"), target.get("ticker")
    verdict, confidence = synthesis.get("verdict"), synthesis.get("confidence")
    if not isinstance(kind, str) or kind not in KINDS or not _share(confidence):
        return None
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        return None
    share = float(confidence)
    if not isinstance(ticker, str) or not 0 < len(ticker) <= MAX_TICKER:
        return None
    shown = _shown(envelope, decision, synthesis, kind)
    shown |= {"id": entry_id, "kind": kind, "ticker": ticker, "verdict": verdict}
    shown["confidence"] = round(share, 4)
    frame = b"id: " + entry_id.encode() + b"\nevent: decision\ndata: " + _json(shown) + b"\n\n"
    return LiveEvent(entry_id, kind, ticker.upper(), verdict, share, frame)


def _json(shown: dict[str, Any]) -> bytes:
    """One line of JSON: the fast encoder, or for text holding a lone surrogate the standard
    library's (which escapes it)."""
    try:
        return to_json(shown)
    except PydanticSerializationError:
        return json.dumps(shown, separators=(",", ":")).encode()


def notice_frame(event: str, data: dict[str, Any]) -> bytes:
    """A server-sent event that is no decision (``behind``, ``gap``, ``ready``)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def parse_filter(
    kinds: Collection[str], tickers: Collection[str], verdicts: Collection[str], least: float
) -> LiveFilter:
    return LiveFilter(
        kinds=frozenset(kind.lower() for kind in kinds),
        tickers=frozenset(ticker.upper() for ticker in tickers),
        verdicts=frozenset(verdict.upper() for verdict in verdicts),
        min_confidence=least,
    )


def _shown(
    envelope: dict[str, Any], decision: dict[str, Any], synthesis: dict[str, Any], kind: str
) -> dict[str, Any]:
    """The texts and details a row shows, each checked and cut."""
    source = _object(decision, "source")
    meta = _object(envelope, "meta")
    shown: dict[str, Any] = {
        "status": _text(decision.get("status"), 16) or "ok",
        "published_at": _text(envelope.get("published_at"), 40),
        "correlation_id": _text(envelope.get("correlation_id"), 128),
        "reasoning": _text(synthesis.get("reasoning"), MAX_TEXT),
        "analyzers": _analyzers(decision.get("agent_signals")),
        "link": _link(source.get("url")),
        "title": _text(source.get("title"), MAX_TEXT),
    }
    if kind == "insight":
        shown["text"] = _text(_object(meta, "insight").get("text"), MAX_TEXT * 2)
    if kind == "strategy":
        strategy = _object(meta, "strategy")
        shown["agreement"] = _text(strategy.get("agreement"), 16)
        rating = strategy.get("rating")
        is_rating = isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 10
        shown["rating"] = rating if is_rating else None
    return shown


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name)
    return value if isinstance(value, dict) else {}


def _share(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= 1


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    return value[:limit]


def _analyzers(signals: object) -> list[str]:
    if not isinstance(signals, list):
        return []
    names = [signal.get("agent") for signal in signals if isinstance(signal, dict)]
    return [name[:32] for name in names if isinstance(name, str)][:MAX_ANALYZERS]


def _link(url: object) -> str | None:
    """A plain http(s) link, or none: a page may put it in an href."""
    if (
        not isinstance(url, str)
        or len(url) > MAX_LINK
        or not url.startswith(("https://", "http://"))
    ):
        return None
    return None if _BREAKS.search(url) else url
