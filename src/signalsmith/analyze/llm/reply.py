"""Reply parsing for the LLM analyzer: whatever text a chat model returned becomes validated
per-ticker calls, or ``UnparseableReply`` — never a neutral verdict made up for it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from signalsmith.domain import Verdict

RAW_LIMIT: Final = 2_000  # characters of a failed reply kept for the error record
WHOLE_TEXT: Final = "*"  # the pseudo-ticker for "the post as a whole"
DEFAULT_CONFIDENCE: Final = 0.5  # for formats that carry a verdict but no confidence

FLAG_NO_CONFIDENCE: Final = "confidence not given"
FLAG_PERCENT: Final = "confidence given as a percentage"
FLAG_UNKNOWN_TICKER: Final = "ticker not in post and not a known symbol"
FLAG_NOT_REQUESTED: Final = "ticker not requested"
FLAG_NO_TICKER: Final = "ticker not given"

_REASONING_LIMIT: Final = 1_000  # prose-format replies use the whole analysis as reasoning

_VERDICT_WORDS: Final[Mapping[str, Verdict]] = {
    "buy": Verdict.BUY,
    "bullish": Verdict.BUY,
    "long": Verdict.BUY,
    "sell": Verdict.SELL,
    "bearish": Verdict.SELL,
    "short": Verdict.SELL,
    "hold": Verdict.HOLD,
    "neutral": Verdict.HOLD,
    "none": Verdict.HOLD,
    "no signal": Verdict.HOLD,
}
# The replaced worker's codes: 0 = no signal, 1 = buy, 2 = sell.
_CODE_VERDICTS: Final[Mapping[str, str]] = {"0": "HOLD", "1": "BUY", "2": "SELL"}

_THINK_BLOCK: Final = re.compile(r"<(think|thinking)>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN: Final = re.compile(r"<(?:think|thinking)>", re.IGNORECASE)
_THINK_CLOSE: Final = re.compile(r"</(?:think|thinking)\s*>", re.IGNORECASE)
# Where a reply-shaped JSON value can begin: an object with a key, or a list of objects. Other
# braces and brackets ("{a}", "[1]", ":-[") are prose and cost no decode attempt.
_JSON_START: Final = re.compile(r'\{\s*"|\[\s*\{')
# Each failed decode costs up to the text's length, so a reply made of broken JSON fragments
# (or deeply nested ones) stops being scanned after this many.
_MAX_FAILED_DECODES: Final = 200
# "analysis---NVDA---1": the code must not be the start of a longer number ("---X---1.5").
_SEED_SEGMENT: Final = re.compile(
    r"---[ \t]*\$?([A-Za-z*][A-Za-z0-9.\-]{0,14}?)[ \t]*---[\s*]*([012])(?!\w|\.\d)"
)
# A final 0/1/2 after which only spaces and closing punctuation ("." "**" ")") follow. Not part
# of a number, price or rank ("3.2", "$2", "#1"), and never followed by "}" or "]", so the
# last number of a rejected JSON object cannot pass for a code.
_TRAILING_CODE: Final = re.compile(r"(?<![\w.,$#/+\-])([012])[\s.!*_`'\")]*\Z")


@dataclass(frozen=True, slots=True)
class TickerCall:
    """One validated verdict about one ticker, with what was odd about it in ``flag``."""

    ticker: str
    verdict: Verdict
    confidence: float
    reasoning: str
    flag: str = ""


class ParseMethod(StrEnum):
    """Which reading of the reply worked, in the order they are tried."""

    JSON = "json"
    EMBEDDED_JSON = "embedded_json"
    SEED_000 = "seed_000"
    TRAILING_CODE = "trailing_code"


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """The calls a reply made about the requested tickers, and what it left out or added."""

    method: ParseMethod
    calls: Mapping[str, TickerCall]  # keyed by the requested ticker, as requested
    missing: tuple[str, ...]  # requested tickers without a valid item
    extra: tuple[TickerCall, ...]  # valid items about tickers nobody asked for (flagged)
    rejected: tuple[str, ...] = ()  # why items were dropped, for the audit trail


class UnparseableReply(Exception):
    """Nothing valid could be read from a reply; the caller records an error, not a verdict."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"unparseable reply: {reason}")
        self.raw = raw[:RAW_LIMIT]
        self.reason = reason


class _Rejected(ValueError):
    """One reply item fails validation; the reason goes to ``ParsedReply.rejected``."""


def parse_reply(
    text: str,
    requested: Sequence[str],
    post_text: str,
    is_known: Callable[[str], bool],
) -> ParsedReply:
    """Read ``text`` as JSON, embedded JSON, seed ``---TICKER---code`` or a trailing code."""
    if not text.strip():
        raise UnparseableReply(text, "empty reply")
    default_ticker = _normalize(requested[0]) if len(requested) == 1 else None
    rejected: list[str] = []
    for method, items in _readings(text, requested):
        if not items:
            rejected.append("the reply lists no items")
        calls: list[TickerCall] = []
        for index, item in enumerate(items):
            try:
                call = _call_from(item, default_ticker)
            except _Rejected as error:
                rejected.append(f"item {index}: {error}")
                continue
            calls.append(_checked_mention(call, post_text, is_known))
        if calls:
            return _assign(method, calls, requested, rejected)
    reason = "; ".join(dict.fromkeys(rejected)) or "no JSON, ---TICKER--- code or final 0/1/2"
    raise UnparseableReply(text, reason)


def _readings(text: str, requested: Sequence[str]) -> Iterator[tuple[ParseMethod, list[object]]]:
    """Candidate item lists, lazily, in the order the formats are trusted."""
    whole = _strict_json(text)
    if whole is not None:
        yield ParseMethod.JSON, whole
    answer = strip_thoughts(text)
    embedded = _last_embedded_json(answer)
    if embedded is not None:
        yield ParseMethod.EMBEDDED_JSON, embedded
    segments = _seed_segments(answer)
    if segments:
        yield ParseMethod.SEED_000, segments
    coded = _trailing_code(answer, requested)
    if coded:
        yield ParseMethod.TRAILING_CODE, coded


def strip_thoughts(text: str) -> str:
    """``text`` without reasoning-model thoughts, which may hold decoy answers."""
    text = _THINK_BLOCK.sub(" ", text)
    # A closing tag with no opening one: the chat template opened the block, so everything
    # before it is thought and only the part after it is the answer.
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    # An opening tag never closed: the model ran out of tokens while still thinking.
    opened = _THINK_OPEN.search(text)
    return text[: opened.start()] if opened else text


# --- the four readings --------------------------------------------------------------------


def _items_of(value: object) -> list[object] | None:
    """The reply items in a decoded JSON value, or None when it is not shaped like a reply."""
    if isinstance(value, dict):
        signals: object = value.get("signals")
        if isinstance(signals, list):
            return list(signals)
        return [value] if "ticker" in value or "verdict" in value else None
    if isinstance(value, list) and any(
        isinstance(element, dict) and _items_of(element) for element in value
    ):
        return list(value)
    return None


def _strict_json(text: str) -> list[object] | None:
    try:
        value: object = json.loads(text.strip())
    except (ValueError, RecursionError):
        return None
    return _items_of(value)


def json_values(text: str) -> Iterator[object]:
    """Every top-level JSON object or array in prose, fences included, left to right.

    ``raw_decode`` is a brace-balanced scan that respects strings; after a success the scan
    resumes past the value, so objects nested in it are not reported again.
    """
    decoder = json.JSONDecoder()
    position = 0
    failures = 0
    while failures < _MAX_FAILED_DECODES and (start := _JSON_START.search(text, position)):
        try:
            value, position = decoder.raw_decode(text, start.start())
        except (ValueError, RecursionError):
            failures += 1
            position = start.start() + 1
            continue
        yield value


def _last_embedded_json(text: str) -> list[object] | None:
    """The items of the last reply-shaped JSON value: a model's final answer comes last."""
    found: list[object] | None = None
    for value in json_values(text):
        items = _items_of(value)
        if items is not None:
            found = items
    return found


def _seed_segments(text: str) -> list[object]:
    """Items from the replaced worker's ``analysis---TICKER---code`` segments."""
    items: list[object] = []
    previous_end = 0
    for match in _SEED_SEGMENT.finditer(text):
        analysis = text[previous_end : match.start()]
        ticker, code = match.groups()
        items.append({"ticker": ticker, "verdict": _CODE_VERDICTS[code], "reasoning": analysis})
        previous_end = match.end()
    return items


def _trailing_code(text: str, requested: Sequence[str]) -> list[object]:
    """One item per requested ticker from a final 0/1/2 code, which covers the whole post."""
    match = _TRAILING_CODE.search(text)
    if match is None:
        return []
    verdict = _CODE_VERDICTS[match.group(1)]
    # The markup around the code ("Decision: **1**") is not part of the analysis.
    analysis = text[: match.start()].rstrip(" \t\n*_`#:")
    return [{"ticker": ticker, "verdict": verdict, "reasoning": analysis} for ticker in requested]


# --- validating one item ------------------------------------------------------------------


def _normalize(ticker: str) -> str:
    """Canonical form, as the ticker extractor writes it: "$brk.b" -> "BRK-B"."""
    return ticker.strip().removeprefix("$").strip().upper().replace(".", "-")


def _call_from(item: object, default_ticker: str | None) -> TickerCall:
    """A validated call from one decoded item; raises ``_Rejected`` with the reason."""
    if not isinstance(item, dict):
        raise _Rejected("not an object")
    flags: list[str] = []
    ticker = _ticker_of(item.get("ticker"))
    if not ticker:
        if default_ticker is None:
            raise _Rejected("no ticker")
        # With one ticker asked about, an item without one can only be about that ticker.
        ticker = default_ticker
        flags.append(FLAG_NO_TICKER)
    verdict = _verdict_of(item.get("verdict"), ticker)
    confidence, confidence_flag = _confidence_of(item.get("confidence"), ticker)
    if confidence_flag:
        flags.append(confidence_flag)
    reasoning = _reasoning_of(item.get("reasoning"))
    return TickerCall(ticker, verdict, confidence, reasoning, "; ".join(flags))


def _ticker_of(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Rejected(f"ticker {value!r} is not text")
    return _normalize(value)


def _verdict_of(value: object, ticker: str) -> Verdict:
    if isinstance(value, str):
        words = " ".join(value.replace("_", " ").replace("-", " ").lower().split())
        verdict = _VERDICT_WORDS.get(words)
        if verdict is not None:
            return verdict
    raise _Rejected(f"{ticker}: verdict {value!r} is not BUY, SELL or HOLD")


def _confidence_of(value: object, ticker: str) -> tuple[float, str]:
    """The confidence in 0..1 and a flag; percentages (1 < x <= 100) are scaled and flagged."""
    if value is None:
        return DEFAULT_CONFIDENCE, FLAG_NO_CONFIDENCE
    number, percent_sign = _number_of(value)
    if percent_sign and 0 <= number <= 100:
        return number / 100, FLAG_PERCENT
    if 0 <= number <= 1:
        return float(number), ""
    if 1 < number <= 100:
        return number / 100, FLAG_PERCENT
    raise _Rejected(f"{ticker}: confidence {value!r} is outside 0..1")


def _number_of(value: object) -> tuple[float, bool]:
    """A finite number from a JSON number or numeric text ("0.8", "85%"), and whether a % sign
    was written; booleans are not numbers here even though Python treats them as ints."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, percent_sign = float(value), False
    elif isinstance(value, str):
        stripped = value.strip()
        percent_sign = stripped.endswith("%")
        try:
            number = float(stripped.removesuffix("%"))
        except ValueError:
            raise _Rejected(f"confidence {value!r} is not a number") from None
    else:
        raise _Rejected(f"confidence {value!r} is not a number")
    if not math.isfinite(number):
        raise _Rejected(f"confidence {value!r} is not a finite number")
    return number, percent_sign


def _reasoning_of(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.strip()
    return text if len(text) <= _REASONING_LIMIT else text[: _REASONING_LIMIT - 1] + "…"


def _mentioned(ticker: str, post_text: str) -> bool:
    """Whether the post names ``ticker`` as "$SYM" or bare "SYM", any case, as a whole word."""
    # "BRK-B" is also written "BRK.B".
    symbol = "[.-]".join(re.escape(part) for part in ticker.split("-"))
    return re.search(rf"(?<!\w)\$?{symbol}(?!\w)", post_text, re.IGNORECASE) is not None


def _checked_mention(
    call: TickerCall, post_text: str, is_known: Callable[[str], bool]
) -> TickerCall:
    """``call`` flagged when its ticker looks invented: absent from the post and unlisted."""
    if call.ticker == WHOLE_TEXT or is_known(call.ticker) or _mentioned(call.ticker, post_text):
        return call
    return _flagged(call, FLAG_UNKNOWN_TICKER)


def _flagged(call: TickerCall, flag: str) -> TickerCall:
    return replace(call, flag=f"{call.flag}; {flag}" if call.flag else flag)


# --- matching items to the request --------------------------------------------------------


def _assign(
    method: ParseMethod,
    calls: Sequence[TickerCall],
    requested: Sequence[str],
    rejected: list[str],
) -> ParsedReply:
    """Key the calls by requested ticker; the rest become flagged extras."""
    wanted = {_normalize(ticker): ticker for ticker in requested}
    chosen: dict[str, TickerCall] = {}
    extra: list[TickerCall] = []
    for call in calls:
        key = wanted.get(call.ticker)
        if key is None:
            extra.append(call)
        elif key in chosen:
            # The first answer stands; a model that changes its mind mid-list is not trusted more.
            rejected.append(f"{call.ticker}: duplicate item ignored")
        else:
            chosen[key] = call
    if WHOLE_TEXT in wanted and WHOLE_TEXT not in chosen and len(calls) == 1 and extra:
        # Asked about the post as a whole, a single item is the answer whatever it is called.
        chosen[wanted[WHOLE_TEXT]] = extra.pop()
    return ParsedReply(
        method=method,
        calls=MappingProxyType(chosen),
        missing=tuple(dict.fromkeys(ticker for ticker in requested if ticker not in chosen)),
        extra=tuple(_flagged(call, FLAG_NOT_REQUESTED) for call in extra),
        rejected=tuple(dict.fromkeys(rejected)),
    )
