"""Labeled answers for the fake LLM (``signalsmith fake-llm --answers FILE``): for a text the
labeled JSONL knows, the fake answers its label, a strong reference instead of the lexicon.

Lines are ``{"text", "label", "tickers"?, "per_ticker"?}`` as in the eval sets: ``tickers`` says
which tickers the label is about (lines with one text and different tickers give each its own
label), ``per_ticker`` maps tickers to labels directly. Texts match by their canonical form
(``signalsmith.dedup.canonical``), so the prompt's quoting and spacing do not matter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from signalsmith.dedup import canonical
from signalsmith.domain import Verdict

ANY_TICKER: Final = "*"
_VERDICTS: Final = {"buy": Verdict.BUY, "sell": Verdict.SELL, "hold": Verdict.HOLD}
_SOURCE_LINE: Final = "source:"  # the prompt's own "Source: r/... by ..." line after the post


@dataclass(frozen=True, slots=True)
class Labeled:
    """What the labels say about one text: per ticker, and for the text as a whole."""

    per_ticker: Mapping[str, Verdict] = field(default_factory=dict)
    whole: Verdict | None = None

    def verdict(self, ticker: str) -> Verdict | None:
        return self.per_ticker.get(ticker, self.whole)


class Answers:
    """Labeled texts by canonical text; ``lookup`` finds a prompt's post among them."""

    def __init__(self, records: Iterable[Mapping[str, object]], confidence: float = 0.9) -> None:
        self.confidence = confidence
        merged: dict[str, tuple[dict[str, Verdict], list[Verdict]]] = {}
        for record in records:
            text, label = record.get("text"), record.get("label")
            if not isinstance(text, str) or not isinstance(label, str) or label not in _VERDICTS:
                continue  # "invalid" demo lines and the like carry no answer
            per, whole = merged.setdefault(canonical(text), ({}, []))
            per.update(_per_ticker(record, _VERDICTS[label]))
            if not record.get("tickers") or record.get("per_ticker"):
                whole.append(_VERDICTS[label])
        self._by_text = {
            key: Labeled(per, whole[0] if whole else None) for key, (per, whole) in merged.items()
        }

    def __len__(self) -> int:
        return len(self._by_text)

    @classmethod
    def load(cls, path: Path, confidence: float = 0.9) -> Answers:
        """The answers in a labeled JSONL file; raises ValueError naming a line that is not JSON."""
        records: list[Mapping[str, object]] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {number}: not JSON ({exc.msg})") from None
            if isinstance(record, dict):
                records.append(record)
        return cls(records, confidence)

    def lookup(self, post: str) -> Labeled | None:
        """The labels of the post text as the prompt shows it, if the file has that text."""
        found = self._by_text.get(canonical(post))
        if found is not None:
            return found
        lines = post.rstrip().splitlines()
        if lines and lines[-1].strip().lower().startswith(_SOURCE_LINE):
            return self._by_text.get(canonical("\n".join(lines[:-1])))
        return None


def _per_ticker(record: Mapping[str, object], label: Verdict) -> dict[str, Verdict]:
    given = record.get("per_ticker")
    if isinstance(given, dict):
        return {
            str(ticker).upper(): _VERDICTS[value]
            for ticker, value in given.items()
            if isinstance(value, str) and value in _VERDICTS
        }
    tickers = record.get("tickers")
    if isinstance(tickers, list):
        return {str(ticker).upper(): label for ticker in tickers}
    return {}
