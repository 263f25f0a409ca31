"""Phrase matching: the tokens against the trie, left to right and longest first, into hits."""

from __future__ import annotations

import functools
from bisect import bisect_right
from typing import Final, NamedTuple

from signalsmith.analyze.lexicon._entries import Entry, Trie
from signalsmith.analyze.lexicon._tokens import Doc


class Hit(NamedTuple):
    start: int
    end: int
    entry: Entry
    label: str
    sent: int
    clause: int


# Built from a tuple in one C call; a NamedTuple's own ``__new__`` is a Python function.
_new_hit: Final = functools.partial(tuple.__new__, Hit)


def match_hits(doc: Doc, trie: Trie) -> list[Hit]:
    """Greedy longest-phrase match, left to right; matched tokens are consumed."""
    low = doc.low
    hits: list[Hit] = []
    sent_starts, clause_starts = doc.sent_starts, doc.clause_starts
    taken = 0
    last = len(low) - 1
    for i in [i for i, lo in enumerate(low) if lo in trie]:
        if i < taken:
            continue
        single, longer = trie[low[i]]
        phrase = single
        if longer and i < last:
            for candidate in longer.get(low[i + 1], ()):
                if candidate.size == 2 or low[i : i + candidate.size] == candidate.tokens:
                    phrase = candidate
                    break
        if phrase is not None:
            sent, clause = bisect_right(sent_starts, i), bisect_right(clause_starts, i)
            taken = i + phrase.size
            hits.append(_new_hit((i, taken, phrase.entry, phrase.label, sent, clause)))
    return hits
