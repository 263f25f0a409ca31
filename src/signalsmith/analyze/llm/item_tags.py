"""Defusing the item delimiter of batched requests in a question's text.

A batched request puts each question between ``<item id="...">`` and ``</item>``, so text in a
question that a model could read as one of those tags could open or close an item of its own.
Such tags become ``[item]`` / ``[/item]``: plain ones in any case and spacing, and near misses
a model may read the same way, found on a folded copy of the text (NFKC, so fullwidth and
small-form ``<`` and fullwidth letters become plain ones; invisible characters such as zero-width
spaces and joiners, the word joiner, the BOM and the soft hyphen removed; HTML character
references such as ``&lt;``, ``&#60;`` and ``&#x3c;`` decoded, ``lt``/``gt`` in any case;
Cyrillic and Greek letters that look like those of "item" read as them). Only
the tags are replaced, where they stand in the text as written: the rest is sent unchanged, so
folding never turns a near miss of some other delimiter (a fullwidth ``</post>``) into a
real one.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Final, NamedTuple

# The tag with its attributes when a '>' closes it within 200 characters, else its opening alone.
# One run of blanks before the optional '/' and one after it: two adjacent runs, as in
# "<\s*/?\s*", take time quadratic in a long run of blanks (a hostile post's).
ITEM_TAG: Final = re.compile(r"<\s*(/\s*)?item\b(?:[^<>]{0,200}>)?", re.IGNORECASE)
# '<' and '&', and the characters NFKC folds into one of them: without any, no tag can hide.
_OPENERS: Final = re.compile("[<&\uff1c\ufe64\uff06\ufe60]")
_NON_ASCII: Final = re.compile(r"[^\x00-\x7f]+")
_REFERENCE: Final = re.compile(
    r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,7}|[A-Za-z][A-Za-z0-9]{0,31});?"
)
# "&lt;", "&LT", "&Lt;", "&ltitem": read as "<" (or ">") whatever the case and the rest.
_LT_GT: Final = re.compile(r"&([lg])t;?", re.IGNORECASE)
# Characters that show nothing, removed from the folded copy (after NFKC, which maps the
# Hangul fillers U+3164 and U+FFA0 to U+1160).
_INVISIBLE: Final = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)

# Letters of other scripts that look like those of "item" (and "ITEM") in common fonts: NFKC
# leaves them as they are, a model may read them as the Latin ones.
_LOOK_ALIKES: Final = {
    **dict.fromkeys("\u0456\u03b9\u0131", "i"),  # Cyrillic і, Greek ι, dotless ı
    **dict.fromkeys("\u0406\u04c0\u0399", "I"),  # Cyrillic І and Ӏ, Greek Ι
    **dict.fromkeys("\u0442\u03c4", "t"),  # Cyrillic т, Greek τ
    **dict.fromkeys("\u0422\u03a4", "T"),  # Cyrillic Т, Greek Τ
    **dict.fromkeys("\u0435\u03b5", "e"),  # Cyrillic е, Greek ε
    **dict.fromkeys("\u0415\u0395", "E"),  # Cyrillic Е, Greek Ε
    **dict.fromkeys("\u043c", "m"),  # Cyrillic м
    **dict.fromkeys("\u041c\u039c", "M"),  # Cyrillic М, Greek Μ
}
_LATIN_FOR: Final = str.maketrans(_LOOK_ALIKES)
_LOOK_ALIKE: Final = re.compile(f"[{''.join(_LOOK_ALIKES)}]")


class _Fold(NamedTuple):
    """One stretch of a text that folding changed: where it lies in the folded copy and where
    it lies in the text."""

    folded_start: int
    folded_end: int
    start: int
    end: int


class _Change(NamedTuple):
    """A stretch of a text, ``start`` to ``end``, and what folding makes of it."""

    start: int
    end: int
    into: str


class _Folded(NamedTuple):
    """A folded copy of a text, and the stretches folding changed, in order."""

    text: str
    folds: list[_Fold]
    ends: list[int]  # each fold's ``folded_end``, for bisecting

    def source(self, position: int, *, end: bool) -> int:
        """Where a tag that starts (or ends) at ``position`` of the folded copy starts (or
        ends) in the text: a stretch that folding changed is taken whole."""
        after = bisect_right(self.ends, position)  # folds[:after] end at or before position
        if after < len(self.folds):
            fold = self.folds[after]
            if fold.folded_start < position or (not end and fold.folded_start == position):
                return fold.end if end else fold.start
        if after == 0:
            return position
        before = self.folds[after - 1]
        return before.end + position - before.folded_end


def defuse_item_tags(text: str) -> str:
    """``text`` with everything a model could read as an item tag replaced by ``[item]`` or
    ``[/item]``; unchanged when it holds none."""
    # Cheap for ordinary posts: a near miss needs '<' or '&' (or a form of either), and in
    # ASCII text one can only hide behind an HTML reference.
    if (text.isascii() and "&" not in text) or not _OPENERS.search(text):
        return ITEM_TAG.sub(_bracketed, text)
    # Characters first (so a fullwidth '&' starts a reference), then the references. Tags are
    # found on the folded copy only: there "<item&#105;" is "<itemi", no tag, as a model reads it.
    characters = (
        _Folded(text, [], []) if _kept_as_written(text) else _folded(text, _NON_ASCII, _characters)
    )
    references = _folded(characters.text, _REFERENCE, _reference)
    if not characters.folds and not references.folds:
        return ITEM_TAG.sub(_bracketed, text)
    parts: list[str] = []
    done = 0
    for tag in ITEM_TAG.finditer(references.text):
        start = characters.source(references.source(tag.start(), end=False), end=False)
        parts += [text[done : max(done, start)], _bracketed(tag)]
        done = characters.source(references.source(tag.end(), end=True), end=True)
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _bracketed(tag: re.Match[str]) -> str:
    return "[/item]" if tag.group(1) else "[item]"


def _folded(
    text: str, units: re.Pattern[str], change: Callable[[re.Match[str]], Iterator[_Change]]
) -> _Folded:
    """``text`` with each ``units`` match changed as ``change`` says."""
    pieces: list[str] = []
    folds: list[_Fold] = []
    done = 0  # the text is copied up to here
    size = 0  # the length of the folded copy so far
    for unit in units.finditer(text):
        for start, end, into in change(unit):
            pieces += [text[done:start], into]
            size += start - done
            folds.append(_Fold(size, size + len(into), start, end))
            size += len(into)
            done = end
    if not folds:
        return _Folded(text, [], [])
    pieces.append(text[done:])
    return _Folded("".join(pieces), folds, [fold.folded_end for fold in folds])


def _characters(run: re.Match[str]) -> Iterator[_Change]:
    """The characters of a non-ASCII run that NFKC changes or that show nothing."""
    written = run.group()
    if _kept_as_written(written):
        return  # the usual case for text in other scripts: nothing to fold
    for offset, char in enumerate(written, start=run.start()):
        into = _fold(char)
        if into != char:
            yield _Change(offset, offset + 1, into)


def _reference(reference: re.Match[str]) -> Iterator[_Change]:
    """An HTML character reference, decoded when it is one."""
    written = reference.group()
    into = _decoded(written)
    if into != written:
        yield _Change(reference.start(), reference.end(), into)


@lru_cache(maxsize=4096)
def _decoded(written: str) -> str:
    """What an HTML character reference stands for, folded ("S&P", "AT&T": what was written)."""
    lt_gt = _LT_GT.match(written)
    if lt_gt:
        return ("<" if lt_gt.group(1) in "lL" else ">") + written[lt_gt.end() :]
    return _fold(html.unescape(written))


def _kept_as_written(text: str) -> bool:
    """Whether folding leaves ``text`` as it is."""
    return (
        unicodedata.is_normalized("NFKC", text)
        and not _INVISIBLE.search(text)
        and not _LOOK_ALIKE.search(text)
    )


@lru_cache(maxsize=4096)
def _fold(text: str) -> str:
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(_LATIN_FOR)
