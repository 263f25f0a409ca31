"""An output envelope → the notice a person reads: a one-line title and a short body, bounded by
a channel's length limit. Pure. The input is untrusted: anything that cannot become a notice
raises ``PoisonInput`` (``bad_envelope``, ``unknown_schema``, ``oversize``), nothing else.

insight     title "BTC-USD BUY (conf 0.62)"; body the insight text (at most 100 words)
strategy    title "AAPL buy 189.5 · confirm 7/10 (conf 0.80) · sma_cross" (with the status
            when not ok; "expired, not rated" for one too old); body one short line of the
            reasoning, then the model's risks (at most three) or why the model gave no rating
post, spike, consensus
            title "NVDA BUY (conf 0.71) · post"; body one short line of the reasoning, and the
            post's link when it has one. A strategy envelope whose ``meta.strategy`` cannot be
            read is told this way too (" · strategy").

Texts come from posts and models, so mentions that would ping a whole channel (``@everyone``,
``@here``, Slack's ``<!channel>``, Discord's ``<@id>``) are defused with a zero-width space, and
control characters other than newlines and tabs are dropped.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, TypeGuard

from pydantic_core import from_json

from signalsmith.errors import PoisonInput
from signalsmith.notify.rules import AlertFacts, Rule, matches_any

MAX_ENVELOPE_BYTES: Final = 1 << 20
KINDS: Final = frozenset({"post", "consensus", "spike", "insight", "strategy"})
VERDICTS: Final = frozenset({"BUY", "SELL", "HOLD"})
ELLIPSIS: Final = "…"
TITLE_MAX: Final = 200  # a title is one line; apprise's default title limit is 250
SHORT_LINE: Final = 280  # the body of a kind other than insight
MAX_TICKER: Final = 64
SEPARATOR: Final = 2  # apprise joins a title and body with a line break where they merge
SIDES: Final = frozenset({"buy", "sell"})
AGREEMENTS: Final = frozenset({"confirm", "caution", "reject"})
MAX_RISKS: Final = 3
RISK_LINE: Final = 120
MAX_STRATEGY_NAME: Final = 64
_LABEL: Final = {
    "insight": "",
    "post": " · post",
    "consensus": " · consensus",
    "spike": " · mention spike",
    "strategy": " · strategy",
}
_KEY_SAFE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_MENTION: Final = re.compile(r"@(everyone|here)\b|<([!@#])", re.IGNORECASE)
_ZWSP: Final = "\u200b"
_WORD_BREAK_SHARE: Final = 0.8  # cut at a space only when at least this share of text remains


@dataclass(frozen=True, slots=True)
class Notice:
    """What one record says to a person, and the key it is sent once under."""

    kind: str
    correlation_id: str
    title: str
    body: str
    ticker: str = ""  # what a cooldown is kept per

    @property
    def ticker_key(self) -> str:
        """The ticker as a Redis key part (as ``key`` does for the correlation id)."""
        return _key_part(self.ticker.upper())

    @property
    def key(self) -> str:
        """The correlation id as a Redis key part: itself when short and plain, else "~" and
        a hash ("~" is never in a plain id, so the two cannot meet)."""
        return _key_part(self.correlation_id)


def _key_part(text: str) -> str:
    if _KEY_SAFE.fullmatch(text):
        return text
    return "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def read_notice(raw: bytes, kinds: Collection[str], rules: Sequence[Rule] = ()) -> Notice | None:
    """The notice for one envelope (the ``data`` field of an output entry), or None when its
    kind is not one of ``kinds``, or it matches none of ``rules`` when there are some (nothing
    to send)."""
    envelope = _parse(raw)
    version = envelope.get("schema_version")
    if version != "1":
        raise PoisonInput("unknown_schema", f"schema_version {_short(version)}")
    decision = _object(envelope.get("decision"), "decision")
    kind = _text(decision.get("kind"), "decision.kind", 32, empty=False)
    if kind not in kinds or kind not in KINDS:  # a kind added later is skipped, not refused
        return None
    correlation_id = _text(envelope.get("correlation_id"), "correlation_id", 512, empty=False)
    facts = _facts(kind, decision, envelope.get("meta"))
    if rules and not matches_any(rules, facts):
        return None
    if kind == "strategy" and (told := _strategy(decision, envelope.get("meta"))) is not None:
        return Notice(kind, correlation_id, *told, ticker=facts.ticker)
    return Notice(
        kind=kind,
        correlation_id=correlation_id,
        title=_title(facts, decision.get("status")),
        body=_body(kind, decision, envelope),
        ticker=facts.ticker,
    )


def fit(notice: Notice, limit: int, title_limit: int = TITLE_MAX) -> tuple[str, str]:
    """(title, body) within ``limit`` UTF-16 units together (with the line break between them)
    and the title within ``title_limit`` (0: the service has no titles, it goes in the body).
    What is cut ends in "…"."""
    title = truncate(notice.title, min(TITLE_MAX, title_limit or TITLE_MAX, limit))
    room = limit - units(title) - (SEPARATOR if title else 0)
    return title, truncate(notice.body, room)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-16 units, ending in "…" where cut: at a word boundary when
    one is near the end, never inside a character."""
    if units(text) <= limit:
        return text
    if limit <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        kept.append(char)
        used += size
    cut = "".join(kept)
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= _WORD_BREAK_SHARE * len(cut):
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def units(text: str) -> int:
    """``text``'s length in UTF-16 code units (a character beyond the BMP counts twice)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def defuse(text: str) -> str:
    """``text`` without control characters and with channel-wide mentions made inert."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _MENTION.sub(_defused, text)


def _one_line(text: str) -> str:
    """``text`` defused, its runs of white space (line breaks included) one space: a title
    stays one line."""
    return " ".join(defuse(text).split())


def _defused(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return f"@{_ZWSP}{match.group(1)}"
    return f"<{_ZWSP}{match.group(2)}"


def _facts(kind: str, decision: dict[str, object], meta: object) -> AlertFacts:
    """What an alert rule looks at: the decision's target, synthesis and status, and a
    strategy signal's agreement and rating (None when absent or of the wrong shape)."""
    target = _object(decision.get("target"), "decision.target")
    synthesis = _object(decision.get("synthesis"), "decision.synthesis")
    ticker = _text(target.get("ticker"), "ticker", MAX_TICKER, empty=False)
    verdict = synthesis.get("verdict")
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        raise _bad(f"verdict {_short(verdict)}")
    status = decision.get("status")
    strategy = meta.get("strategy") if isinstance(meta, dict) else None
    strategy = strategy if isinstance(strategy, dict) else {}
    agreement, rating = strategy.get("agreement"), strategy.get("rating")
    return AlertFacts(
        kind=kind,
        ticker=ticker.strip().upper(),
        verdict=verdict,
        confidence=_confidence(synthesis.get("confidence")),
        status=status if isinstance(status, str) else "ok",
        agreement=agreement if isinstance(agreement, str) and agreement in AGREEMENTS else None,
        rating=rating if _rating(rating) else None,
    )


def _title(facts: AlertFacts, status: object) -> str:
    note = f", {_one_line(status)[:16]}" if isinstance(status, str) and status != "ok" else ""
    head = f"{_one_line(facts.ticker)} {facts.verdict} (conf {facts.confidence:.2f}{note})"
    return head + _LABEL[facts.kind]


def _body(kind: str, decision: dict[str, object], envelope: dict[str, object]) -> str:
    synthesis = _object(decision.get("synthesis"), "decision.synthesis")
    reasoning = _text(synthesis.get("reasoning", ""), "reasoning", MAX_ENVELOPE_BYTES)
    if kind == "insight":
        text = _insight_text(envelope.get("meta")) or reasoning
        if not text.strip():
            raise _bad("an insight without text (meta.insight.text)")
        return defuse(text).strip()
    line = truncate(defuse(reasoning).strip().split("\n", 1)[0], SHORT_LINE)
    link = _link(decision.get("source"))
    return f"{line}\n{link}".strip() if link else line


def _strategy(decision: dict[str, object], meta: object) -> tuple[str, str] | None:
    """(title, body) of a rated strategy signal from ``meta.strategy``; None when it cannot be
    read (the generic notice is sent instead)."""
    strategy = meta.get("strategy") if isinstance(meta, dict) else None
    signal = strategy.get("signal") if isinstance(strategy, dict) else None
    if not isinstance(strategy, dict) or not isinstance(signal, dict):
        return None
    symbol, side, price = signal.get("symbol"), signal.get("side"), signal.get("price")
    name = signal.get("strategy")
    if not (isinstance(symbol, str) and symbol.strip() and len(symbol) <= MAX_TICKER):
        return None
    if not isinstance(side, str) or side not in SIDES or not _finite(price):
        return None
    head = f"{_one_line(symbol)} {side} {price:.10g}"
    named = _one_line(name) if isinstance(name, str) and len(name) <= MAX_STRATEGY_NAME else ""
    tail = f" · {named}" if named else ""
    status = strategy.get("status")
    agreement, rating = strategy.get("agreement"), strategy.get("rating")
    if status == "expired":
        title = f"{head} · expired, not rated{tail}"
    elif isinstance(agreement, str) and agreement in AGREEMENTS and _rating(rating):
        confidence = strategy.get("confidence")
        if not _finite(confidence) or not 0 <= confidence <= 1:
            return None
        note = f", {_one_line(status)[:16]}" if isinstance(status, str) and status != "ok" else ""
        title = f"{head} · {agreement} {rating}/10 (conf {confidence:.2f}{note}){tail}"
    else:
        return None
    return title, _strategy_body(decision, strategy)


def _strategy_body(decision: dict[str, object], strategy: dict[str, object]) -> str:
    synthesis = decision.get("synthesis")
    reasoning = synthesis.get("reasoning") if isinstance(synthesis, dict) else None
    lines = []
    if isinstance(reasoning, str) and reasoning.strip():
        lines.append(truncate(defuse(reasoning).strip().split("\n", 1)[0], SHORT_LINE))
    model = strategy.get("llm")
    risks = model.get("risks") if isinstance(model, dict) else None
    if isinstance(risks, list):
        named = [truncate(defuse(r).strip(), RISK_LINE) for r in risks if isinstance(r, str)]
        if named := [risk for risk in named if risk][:MAX_RISKS]:
            lines.append("Risks: " + "; ".join(named))
    error = strategy.get("llm_error")
    if isinstance(error, str) and error.strip():
        lines.append("No model rating: " + truncate(defuse(error).strip(), RISK_LINE))
    return "\n".join(lines)


def _rating(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10


def _finite(value: object) -> TypeGuard[int | float]:
    """A JSON number that is finite (and not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) < 10**15


def _insight_text(meta: object) -> str:
    insight = meta.get("insight") if isinstance(meta, dict) else None
    text = insight.get("text") if isinstance(insight, dict) else None
    return _text(text, "meta.insight.text", MAX_ENVELOPE_BYTES) if text is not None else ""


def _link(source: object) -> str:
    """The post's URL when it is a plain http(s) link, else nothing."""
    url = source.get("url") if isinstance(source, dict) else None
    if isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 2_048:
        return defuse(url) if not any(c.isspace() for c in url) else ""
    return ""


def _parse(raw: bytes) -> dict[str, object]:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise PoisonInput("oversize", f"{len(raw)} bytes, more than {MAX_ENVELOPE_BYTES}")
    try:
        envelope = from_json(raw)
    except ValueError as exc:
        raise _bad(f"not JSON: {str(exc)[:120]}") from None
    return _object(envelope, "the envelope")


def _object(value: object, name: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _bad(f"{name} must be an object, not {type(value).__name__}")
    return value


def _text(value: object, name: str, limit: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string, not {type(value).__name__}")
    if not empty and not value.strip():
        raise _bad(f"{name} is empty")
    if len(value) > limit:
        raise _bad(f"{name} is longer than {limit} characters")
    return value


def _confidence(value: object) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not 0 <= number <= 1:  # NaN compares false; a huge int stays an int
        raise _bad(f"confidence {_short(value)}")
    return float(number)


def _short(value: object) -> str:
    return f"{value!r:.40}"


def _bad(detail: str) -> PoisonInput:
    return PoisonInput("bad_envelope", detail)
