"""A model's reply about a strategy signal → its rating, or the problems that make it unusable.

Pure. The reply is untrusted text: a JSON object in it (bare, in a code fence, or after a
reasoning block) is read leniently where the meaning is plain — "7" or 7.0 for 7, "agree" for
confirm, 70 for a confidence of 0.7 — and refused where it is not: a rating outside 1..10, an
unknown agreement, no reasoning. Never a made-up default.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass
from typing import Final

from signalsmith.strategy.contract import Agreement
from signalsmith.strategy.rating_prompt import MAX_ITEM_CHARS, MAX_LISTED, MAX_REASONING_CHARS

MAX_REPLY_CHARS: Final = 20_000
_AGREEMENT_WORDS: Final[dict[str, Agreement]] = {
    "confirm": "confirm",
    "confirmed": "confirm",
    "agree": "confirm",
    "support": "confirm",
    "supported": "confirm",
    "caution": "caution",
    "cautious": "caution",
    "neutral": "caution",
    "mixed": "caution",
    "reject": "reject",
    "rejected": "reject",
    "disagree": "reject",
    "contradict": "reject",
}
_THINKING: Final = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_RATING_TEXT: Final = re.compile(r"\s*(\d{1,2}(?:\.0+)?)\s*(?:/\s*10)?\s*")


@dataclass(frozen=True, slots=True)
class ReadRating:
    rating: int
    agreement: Agreement
    confidence: float
    reasoning: str
    risks: list[str]
    key_factors: list[str]


def read_rating(reply: str) -> ReadRating | list[str]:
    """The rating in ``reply``, or the list of what is wrong with it."""
    found = _json_object(_THINKING.sub("", reply[:MAX_REPLY_CHARS]))
    if found is None:
        return ["no JSON object in the reply"]
    problems: list[str] = []
    rating = _rating(found.get("rating"), problems)
    agreement = _agreement(found.get("agreement"), problems)
    confidence = _confidence(found.get("confidence"), problems)
    reasoning = found.get("reasoning")
    if not isinstance(reasoning, str) or not reasoning.strip():
        problems.append("reasoning: a non-empty string is needed")
    if problems or rating is None or agreement is None or confidence is None:
        return problems
    return ReadRating(
        rating=rating,
        agreement=agreement,
        confidence=confidence,
        reasoning=str(reasoning).strip()[:MAX_REASONING_CHARS],
        risks=_listed(found.get("risks")),
        key_factors=_listed(found.get("key_factors")),
    )


def _json_object(text: str) -> dict[str, object] | None:
    """The first JSON object in ``text`` that parses (a fenced block or a bare one)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _rating(value: object, problems: list[str]) -> int | None:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and (match := _RATING_TEXT.fullmatch(value)):
        number = float(match[1])
    if number is None or not math.isfinite(number) or number != int(number):
        problems.append(f"rating: an integer 1-10 is needed, not {value!r:.40}")
        return None
    if not 1 <= number <= 10:
        problems.append(f"rating: {int(number)} is outside 1-10")
        return None
    return int(number)


def _agreement(value: object, problems: list[str]) -> Agreement | None:
    word = value.strip().lower() if isinstance(value, str) else None
    if word is None or word not in _AGREEMENT_WORDS:
        problems.append(f"agreement: confirm, caution or reject is needed, not {value!r:.40}")
        return None
    return _AGREEMENT_WORDS[word]


def _confidence(value: object, problems: list[str]) -> float | None:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.strip().rstrip("%"))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"confidence: a number 0-1 is needed, not {value!r:.40}")
        return None
    if 1 < value <= 100:  # a percentage
        value = value / 100
    if not 0 <= value <= 1:
        problems.append(f"confidence: {value!r:.20} is outside 0-1")
        return None
    return float(value)


def _listed(value: object) -> list[str]:
    """Up to MAX_LISTED non-empty strings, each cut to MAX_ITEM_CHARS; anything else: none."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    items = (item.strip()[:MAX_ITEM_CHARS] for item in value if isinstance(item, str))
    return [item for item in items if item][:MAX_LISTED]
