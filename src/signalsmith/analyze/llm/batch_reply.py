"""Reading a batched reply: one JSON entry per asked id, each taken on its own.

A reply is ``{"items": [{"id": "1", ...}, ...]}`` or a bare list of such entries, as strict JSON,
embedded in prose or fences, or cut short (the entries complete before the cut are read). An id
answered twice gets neither answer, an entry whose id was not asked is set aside, and an asked id
without an entry is missing: the asker asks each of those again alone, so no question is dropped
and none is given another's answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from signalsmith.analyze.llm.reply import json_values, strip_thoughts

ITEMS_KEY: Final = "items"
ID_KEY: Final = "id"
_MAX_ID_CHARS: Final = 32


@dataclass(frozen=True, slots=True)
class BatchRead:
    """What a batched reply said per asked id, how it was read, and why ids went unanswered."""

    method: str  # "json", "embedded_json", "partial" or "unparseable"
    answers: Mapping[str, str]  # asked id -> its entry without the id, as JSON text
    problems: Mapping[str, str]  # asked id -> why it has no answer here


def read_batch(text: str, asked: Sequence[str]) -> BatchRead:
    """The answer for each of ``asked`` that the reply gives exactly once."""
    method, entries = _entries(text)
    by_id: dict[str, list[dict[str, object]]] = {}
    for entry in entries:
        by_id.setdefault(_id_of(entry), []).append(entry)
    answers: dict[str, str] = {}
    problems: dict[str, str] = {}
    for item in asked:
        found = by_id.get(item, [])
        if len(found) == 1:
            answer = {key: value for key, value in found[0].items() if key != ID_KEY}
            answers[item] = json.dumps(answer, ensure_ascii=False)
        elif found:
            problems[item] = f"id {item} answered {len(found)} times"
        else:
            problems[item] = _missing(method, by_id, asked)
    return BatchRead(method, answers, problems)


def _missing(method: str, by_id: Mapping[str, object], asked: Sequence[str]) -> str:
    if method == "unparseable":
        return "the batched reply has no readable entries"
    unknown = sorted(key for key in by_id if key not in asked)
    if unknown:
        shown = ", ".join(repr(key) for key in unknown[:3])
        return f"no entry for it (entries for ids not asked: {shown})"
    return "no entry for it" + (" (the reply was cut short)" if method == "partial" else "")


def _entries(text: str) -> tuple[str, list[dict[str, object]]]:
    """How the reply was read and its id-bearing entries, most trusted reading first."""
    try:
        whole: object = json.loads(text.strip())
    except (ValueError, RecursionError):
        whole = None
    entries = _listed(whole)
    if entries is not None:
        return "json", entries
    answer = strip_thoughts(text)
    values = list(json_values(answer))
    for value in reversed(values):  # a model's final answer comes last
        entries = _listed(value)
        if entries:
            return "embedded_json", entries
    # Cut short: the outer value never closes, but the entries before the cut each decode alone.
    partial = [value for value in values if _is_entry(value)]
    if partial:
        return "partial", partial  # type: ignore[return-value]  # _is_entry checked the type
    return "unparseable", []


def _listed(value: object) -> list[dict[str, object]] | None:
    """The entries of ``{"items": [...]}`` or of a bare list of entries, else None."""
    if isinstance(value, dict):
        value = value.get(ITEMS_KEY)
    if not isinstance(value, list):
        return None
    return [entry for entry in value if _is_entry(entry)]


def _is_entry(value: object) -> bool:
    return isinstance(value, dict) and _id_of(value) != ""


def _id_of(entry: Mapping[str, object]) -> str:
    """The entry's id as text ("3" and 3 are one id); "" when it has none usable."""
    value = entry.get(ID_KEY)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    return text if 0 < len(text) <= _MAX_ID_CHARS else ""


def shares(total: int, weights: Iterable[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` as whole numbers that add up to it exactly
    (largest remainder); equal parts when every weight is 0."""
    sizes = [max(0, weight) for weight in weights]
    if not sizes:
        return []
    whole = sum(sizes)
    if whole == 0:
        sizes, whole = [1] * len(sizes), len(sizes)
    exact = [total * size / whole for size in sizes]
    parts = [int(value) for value in exact]
    order = sorted(range(len(sizes)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass(frozen=True, slots=True)
class UsageShare:
    """One question's whole-token share of a batched request's usage."""

    tokens_in: int
    tokens_cached: int  # of tokens_in
    tokens_out: int


def usage_shares(
    tokens_in: int, tokens_cached: int, tokens_out: int, weights: Sequence[int]
) -> list[UsageShare]:
    """A batch's usage shared out by ``weights``: cached and uncached prompt tokens apart (so
    each share's cached tokens lie within its prompt tokens), every total kept exactly."""
    cached_total = max(0, min(tokens_cached, tokens_in))
    cached = shares(cached_total, weights)
    uncached = shares(tokens_in - cached_total, weights)
    outs = shares(tokens_out, weights)
    return [
        UsageShare(fresh + kept, kept, out)
        for fresh, kept, out in zip(uncached, cached, outs, strict=True)
    ]
