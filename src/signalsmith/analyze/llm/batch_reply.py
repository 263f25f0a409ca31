"""Reading a batched reply: one JSON entry per asked id, each taken on its own.

A reply is ``{"items": [{"id": "k3m9", ...}, ...]}`` or a bare list of such entries, as strict
JSON, embedded in prose or fences, or cut short (the entries of the items array completed before
the cut are read, and nothing nested in them or in the entry that was cut). An id
answered twice gets neither answer, an entry whose id was not asked is set aside, and an asked id
without an entry is missing: the asker asks each of those again alone, so no question is dropped
and none is given another's answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeGuard

from signalsmith.analyze.llm.reply import json_values, strip_thoughts

ITEMS_KEY: Final = "items"
ID_KEY: Final = "id"
_MAX_ID_CHARS: Final = 32  # far over the batcher's own ids (4 characters); longer is no id
# Where a JSON object with a key, or a list of objects, can begin (JSON's own blanks only).
_JSON_START: Final = re.compile(r'\{[ \t\n\r]*"|\[[ \t\n\r]*\{')
_JSON_BLANK: Final = re.compile(r"[ \t\n\r]*")
_NEXT_ELEMENT: Final = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
_MEMBER_COLON: Final = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")
_STRUCTURE: Final = re.compile(r'[{}\[\]"]')
_STRING_REST: Final = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


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
    # Cut short: the outer value never closes, but the entries before the cut each decode alone
    # (read as the elements of its items array only, never as whatever value decodes).
    partial = _cut_short(answer)
    if partial:
        return "partial", partial
    return "unparseable", []


def _listed(value: object) -> list[dict[str, object]] | None:
    """The entries of ``{"items": [...]}`` or of a bare list of entries, else None."""
    if isinstance(value, dict):
        value = value.get(ITEMS_KEY)
    if not isinstance(value, list):
        return None
    return [entry for entry in value if _is_entry(entry)]


def _cut_short(text: str) -> list[dict[str, object]]:
    """The entries of a reply that does not decode, read at its own depth only: the elements of
    its items array (or of itself, when it is a bare list) up to the first that does not decode
    (the cut). An object nested in an entry, or in the entry that was cut, is never taken for
    one, even when it carries an id. A value that never closes is the one that was cut, so
    nothing after its start is read as a value of its own; one that closes but does not decode
    and holds no entries (prose such as '{"id", "signals"}') is passed over whole."""
    decoder = json.JSONDecoder()
    position = 0
    while found := _JSON_START.search(text, position):
        start = found.start()
        whole = _decoded_end(decoder, text, start)
        if whole is not None:  # a whole value, read (or set aside) as embedded JSON
            position = whole
            continue
        array = start + 1 if text[start] == "[" else _items_array(decoder, text, start)
        entries = [] if array is None else _elements(decoder, text, array)
        end = _closing(text, start)
        if entries or end is None:
            return entries
        position = end
    return []


def _decoded(decoder: json.JSONDecoder, text: str, start: int) -> tuple[object, int] | None:
    """The JSON value that starts at ``start`` and where it ends; None when none decodes."""
    try:
        return decoder.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None


def _decoded_end(decoder: json.JSONDecoder, text: str, start: int) -> int | None:
    decoded = _decoded(decoder, text, start)
    return None if decoded is None else decoded[1]


def _closing(text: str, start: int) -> int | None:
    """Just past the bracket that closes the one at ``start`` (strings skipped, bracket kinds
    not matched), or None when it never closes."""
    depth = 0
    position = start
    while found := _STRUCTURE.search(text, position):
        position = found.end()
        char = found.group()
        if char == '"':
            string = _STRING_REST.match(text, position)
            if string is None:
                return None
            position = string.end()
        elif char in "{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return position
    return None


def _items_array(decoder: json.JSONDecoder, text: str, start: int) -> int | None:
    """Just past the ``[`` of the items array of the object that opens at ``start``, reading
    its members at its own depth only; None when it has none before the cut."""
    position = start + 1
    while True:
        member = _decoded(decoder, text, _after_blanks(text, position))
        if member is None:
            return None
        key, position = member
        colon = _MEMBER_COLON.match(text, position)
        if not isinstance(key, str) or colon is None:
            return None
        position = colon.end()
        if key == ITEMS_KEY:
            return position + 1 if text.startswith("[", position) else None
        value_end = _decoded_end(decoder, text, position)
        if value_end is None:
            return None
        comma = _NEXT_ELEMENT.match(text, value_end)
        if comma is None:
            return None
        position = comma.end()


def _elements(decoder: json.JSONDecoder, text: str, position: int) -> list[dict[str, object]]:
    """The entries among the elements of the array whose first element starts at
    ``position``, up to the first that does not decode (the cut) or the array's end."""
    entries: list[dict[str, object]] = []
    while True:
        element = _decoded(decoder, text, _after_blanks(text, position))
        if element is None:
            return entries
        value, position = element
        if _is_entry(value):
            entries.append(value)
        comma = _NEXT_ELEMENT.match(text, position)
        if comma is None:
            return entries
        position = comma.end()


def _after_blanks(text: str, position: int) -> int:
    blanks = _JSON_BLANK.match(text, position)
    return blanks.end() if blanks else position


def _is_entry(value: object) -> TypeGuard[dict[str, object]]:
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
