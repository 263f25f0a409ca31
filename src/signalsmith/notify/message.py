"""An output envelope → the notice a person reads: a one-line title and a short body, bounded by
a channel's length limit. Pure. The input is untrusted: anything that cannot become a notice
raises ``PoisonInput`` (``bad_envelope``, ``unknown_schema``, ``oversize``), nothing else.

insight     title "BTC-USD BUY (conf 0.62)"; body the insight text (at most 100 words)
post, spike, consensus, strategy
            title "NVDA BUY (conf 0.71) · post"; body one short line of the reasoning, and the
            post's link when it has one

Texts come from posts and models, so mentions that would ping a whole channel (``@everyone``,
``@here``, Slack's ``<!channel>``, Discord's ``<@id>``) are defused with a zero-width space, and
control characters other than newlines and tabs are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from pydantic_core import from_json

from signalsmith.errors import PoisonInput

MAX_ENVELOPE_BYTES: Final = 1 << 20
KINDS: Final = frozenset({"post", "consensus", "spike", "insight", "strategy"})
VERDICTS: Final = frozenset({"BUY", "SELL", "HOLD"})
ELLIPSIS: Final = "…"
TITLE_MAX: Final = 200  # a title is one line; apprise's default title limit is 250
SHORT_LINE: Final = 280  # the body of a kind other than insight
MAX_TICKER: Final = 64
SEPARATOR: Final = 2  # apprise joins a title and body with a line break where they merge
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

    @property
    def key(self) -> str:
        """The correlation id as a Redis key part: itself when short and plain, else "~" and
        a hash ("~" is never in a plain id, so the two cannot meet)."""
        if _KEY_SAFE.fullmatch(self.correlation_id):
            return self.correlation_id
        digest = hashlib.sha256(self.correlation_id.encode("utf-8", "surrogatepass"))
        return "~" + digest.hexdigest()[:32]


def read_notice(raw: bytes, kinds: Collection[str]) -> Notice | None:
    """The notice for one envelope (the ``data`` field of an output entry), or None when its
    kind is not one of ``kinds`` (nothing to send)."""
    envelope = _parse(raw)
    version = envelope.get("schema_version")
    if version != "1":
        raise PoisonInput("unknown_schema", f"schema_version {_short(version)}")
    decision = _object(envelope.get("decision"), "decision")
    kind = _text(decision.get("kind"), "decision.kind", 32, empty=False)
    if kind not in kinds or kind not in KINDS:  # a kind added later is skipped, not refused
        return None
    return Notice(
        kind=kind,
        correlation_id=_text(envelope.get("correlation_id"), "correlation_id", 512, empty=False),
        title=_title(kind, decision),
        body=_body(kind, decision, envelope),
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


def _defused(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return f"@{_ZWSP}{match.group(1)}"
    return f"<{_ZWSP}{match.group(2)}"


def _title(kind: str, decision: dict[str, object]) -> str:
    target = _object(decision.get("target"), "decision.target")
    synthesis = _object(decision.get("synthesis"), "decision.synthesis")
    ticker = _text(target.get("ticker"), "ticker", MAX_TICKER, empty=False)
    verdict = synthesis.get("verdict")
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        raise _bad(f"verdict {_short(verdict)}")
    confidence = _confidence(synthesis.get("confidence"))
    status = decision.get("status")
    note = f", {defuse(status)[:16]}" if isinstance(status, str) and status != "ok" else ""
    return f"{defuse(ticker)} {verdict} (conf {confidence:.2f}{note}){_LABEL[kind]}"


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
