"""Raters versus subjects: a bank, broker or rating agency that upgrades, downgrades or puts a
target on another company's stock is the one who said it, not the stock the news is about, so
it gets no verdict.

Works on the raw text and the ticker mentions found in it (with their character spans). Only
the listed research firms (``BROKERS``) can be raters, and one is a rater only when every
mention of it is in a rater's place, so "UBS cuts Tesla; UBS shares slip" keeps UBS a subject.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

# Listed firms whose analysts rate other stocks (banks, brokers, research houses, rating
# agencies): the only ones that can be raters. Anyone else that "upgrades" or "cuts" something
# named beside it is doing business with it ("Microsoft upgrades Azure with NVDA chips",
# "Apple cut Qualcomm"); research shops that are not listed have no ticker to misplace.
_BROKER_SYMBOLS: Final = """GS MS JPM UBS C BAC WFC DB BCS JEF RJF PIPR EVR SF MFG NMR OPY KEY
    TFC BMO RY TD HSBC LAZ BNS CM ING MCO SPGI MORN HLI MC CFG AB SCHW RILY DSEEY NTRS STT
    BK SAN BBVA ITUB"""
BROKERS: Final[frozenset[str]] = frozenset(_BROKER_SYMBOLS.split())

# Rating vocabulary: what makes "at UBS" a rater's place, and "cuts" a rating action.
_RATING_WORDS: Final = re.compile(
    r"\b(?:(?:up|down)grad\w*|initiat\w*|reiterat\w*|re-?rat\w*|rat(?:es|ed|ing|ings)"
    r"|price[- ]targets?|targets?|PTs?|overweight|underweight|(?:out|under)perform\w*"
    r"|equal[- ]weight|(?:market|sector|peer)[- ](?:perform|weight)|in[- ]line|coverage|top pick"
    r"|estimates?|(?:to|an?|as)\s+(?:buy|sell|hold|neutral|accumulate|reduce)|upside|downside)\b",
    re.IGNORECASE,
)

# Right before a firm that is being quoted or that acted: "downgraded to sell at UBS",
# "upgraded by BofA", "a target cut from Citi", "according to Jefferies".
_RATED_BY: Final = re.compile(
    r"\b(?:at|by|from|per|via|according\s+to|analysts?\s+at)\s+(?:the\s+)?\Z", re.IGNORECASE
)
# Quoted about a stock named in the same sentence: "Tesla will fall, says UBS" (not "Jim
# Cramer says Goldman Sachs is a buy", where the firm is what is talked about).
_QUOTED_BY: Final = re.compile(
    r"[,\"”’']\s*(?:says|said|writes|wrote|notes|noted|argues|argued)\s+(?:analysts?\s+at\s+)?\Z",
    re.IGNORECASE,
)

# Right after a firm that acts on another stock: "Goldman Sachs cuts ...", "UBS downgrades ...",
# "Morgan Stanley's Adam Jonas says ...", "Jefferies analyst Ann Lee sees ...".
_WHO: Final = (
    r"(?:['’]s)?(?:\s+(?:analysts?|strategists?|research|team|just|now|also|today|again"
    r"|[A-Z][\w.]*)){0,3}\s+"
)
# A rating verb: a rating when the stock it names follows, or with rating words after it.
_RATES: Final = re.compile(
    _WHO + r"(?:double[- ])?(?:(?:up|down)grades?|initiates?|reiterates?|re-?rates|rates)\b"
)
# A move that is a rating action only with rating words after it: "cuts its target on".
_MOVES: Final = re.compile(
    _WHO + r"(?:raises|lifts|boosts|hikes|bumps|ups|cuts|lowers|trims|slashes|reduces|sets"
    r"|moves|keeps|maintains|starts|begins|assumes|resumes|places|puts|slaps|assigns|gives"
    r"|slapped|put|placed|assigned|gave)\b"
)
# A rating verb in the past tense is the firm's act only with the stock right after it
# ("BofA downgraded $CCL"); "Tesla downgraded to sell at UBS" is the stock being rated.
_RATED_PAST: Final = re.compile(
    _WHO + r"(?:double[- ])?(?:(?:up|down)graded|initiated|reiterated|re-?rated|rated|cut"
    r"|raised|lowered|trimmed|slashed|boosted|lifted)\s+(?:coverage\s+(?:of|on)\s+)?\Z"
)
_CLAUSE_END: Final = re.compile(r"[,(]|\s-\s|\s(?:and|but|while|as|after)\s")
_RATING_REACH: Final = 48  # characters after a verb in which its rating words must come
# A research call: "Goldman sees 20% upside in ...", "UBS: ...".
_CALLS: Final = re.compile(
    _WHO + r"(?:says|said|sees|saw|expects|thinks|likes|prefers|names|calls|adds|removes"
    r"|turns|warns|predicts|forecasts|recommends|favou?rs|analysts?|strategists?"
    r"|(?:is|remains|stays|turns|gets)\s+(?:bullish|bearish|positive|negative|cautious))\b"
    r"|(?:['’]s)?\s*:"
)
# Where a sentence (or a clause after a semicolon) ends; not after "Inc." or an initial ("J.P.").
_SENTENCE_END: Final = re.compile(
    r"[.!?;](?<!\bInc.)(?<!\bCorp.)(?<!\bCo.)(?<!\bLtd.)(?<!\bvs.)(?<!\b[A-Z].)(?=\s|$)|\n"
)
_BRACKETED: Final = re.compile(r"\s*\(\s*(?:[A-Za-z]{2,8}\s*:\s*)?")  # " (NYSE:", " ("
_CLOSE: Final = re.compile(r"\s*\)")
_BRACKETED_TAIL: Final = re.compile(r"\s*\([^()]*\)\Z")
_BEFORE_CHARS: Final = 24  # how far back "at", "by", "according to" may sit
_WINDOW: Final = 200  # characters read on either side of a mention: the rest is another clause


@dataclass(frozen=True, slots=True)
class Mention:
    """Where a ticker is named in a text, and how (the text of the name or symbol)."""

    start: int
    end: int
    symbol: str


@dataclass(frozen=True, slots=True)
class Rater:
    """A firm that only rated another stock: its symbol and its name as written."""

    symbol: str
    name: str


def raters(text: str, mentions: Sequence[Mention]) -> tuple[Rater, ...]:
    """The firms named in ``text`` only as raters of another mentioned stock, in order.

    Linear in the mentions: each is read once, within a bounded window around it, and a firm
    found in a subject's place is not looked at again."""
    if not any(mention.symbol in BROKERS for mention in mentions):
        return ()  # most texts: nobody in them can rate anything
    mentions = _merged(text, mentions)
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    placed: dict[str, bool] = {}
    names: dict[str, str] = {}
    for mention, sentence in _in_sentences(mentions, ends, len(text)):
        if mention.symbol in BROKERS and placed.get(mention.symbol, True):
            placed[mention.symbol] = _rates(text, mention, sentence)
        names.setdefault(mention.symbol, text[mention.start : mention.end])
    return tuple(
        Rater(symbol, _BRACKETED_TAIL.sub("", names[symbol]))
        for symbol, only in placed.items()
        if only
    )


def _merged(text: str, mentions: Sequence[Mention]) -> list[Mention]:
    """The mentions, a name and its symbol in brackets right after it taken as one:
    "Goldman Sachs (NYSE:GS) downgrades ..." names the firm once, in one place."""
    merged: list[Mention] = []
    for mention in mentions:
        last = merged[-1] if merged else None
        if last is not None and last.symbol == mention.symbol:
            bracket = _BRACKETED.match(text, last.end)
            if bracket is not None and bracket.end() == mention.start:
                close = _CLOSE.match(text, mention.end)
                end = close.end() if close else mention.end
                merged[-1] = Mention(last.start, end, last.symbol)
                continue
        merged.append(mention)
    return merged


@dataclass(frozen=True, slots=True)
class _Sentence:
    """Around one mention: its sentence's span, whether another stock is named in it, and
    where the next other stock named after it starts (-1: none)."""

    start: int
    stop: int
    others: bool
    next_other: int


def _in_sentences(
    mentions: Sequence[Mention], ends: list[int], size: int
) -> Iterator[tuple[Mention, _Sentence]]:
    """Each mention with what its sentence holds, in one pass per sentence."""
    groups: dict[int, list[Mention]] = {}
    for mention in mentions:
        groups.setdefault(bisect_right(ends, mention.start), []).append(mention)
    for index, group in groups.items():
        start = ends[index - 1] if index else 0
        stop = ends[index] if index < len(ends) else size
        symbols = Counter(mention.symbol for mention in group)
        following = [-1] * len(group)  # the next mention of another stock, scanning back
        for k in range(len(group) - 2, -1, -1):
            different = group[k + 1].symbol != group[k].symbol
            following[k] = group[k + 1].start if different else following[k + 1]
        for k, mention in enumerate(group):
            others = symbols[mention.symbol] < len(group)
            yield mention, _Sentence(start, stop, others, following[k])


def _rates(text: str, mention: Mention, sentence: _Sentence) -> bool:
    """Whether this mention is in a rater's place: acting on a stock, or quoted or named as the
    source of a rating ("at UBS"). The stock it rated need not be one we know."""
    stop = min(sentence.stop, mention.end + _WINDOW)
    if _acts(text, mention.end, stop, sentence.next_other):
        return True
    before = text[max(sentence.start, mention.start - _BEFORE_CHARS) : mention.start]
    if sentence.others and _QUOTED_BY.search(before) is not None:
        return True
    if _RATED_BY.search(before) is None:
        return False
    # Only where a rating came from: "pulled $20bn from Wells Fargo" is the bank's own news.
    window = max(sentence.start, mention.start - _WINDOW)
    return _RATING_WORDS.search(text, window, mention.start) is not None


def _acts(text: str, at: int, stop: int, next_other: int) -> bool:
    """Whether the words after a firm make it act on a stock: a rating verb with the stock
    named after it or rating words right after it, a move with rating words right after it,
    a past-tense rating act with the stock right after it ("BofA downgraded $CCL"), or a
    research call ("JPMorgan sees 20% upside in Nvidia")."""
    after = text[at:stop]
    later = next_other >= 0
    verb = _RATES.match(after)
    if verb is not None and (later or _rating_follows(after, verb.end())):
        return True
    verb = _MOVES.match(after)
    if verb is not None and _rating_follows(after, verb.end()):
        return True
    if later and next_other - at <= _WINDOW and _RATED_PAST.match(text[at:next_other]):
        return True
    verb = _CALLS.match(after)
    if verb is None:
        return False
    # A call: on a stock named later, or with rating words anywhere after it.
    return later or _RATING_WORDS.search(after, verb.end()) is not None


def _rating_follows(after: str, at: int) -> bool:
    """Rating words within the verb's own clause: "cuts its target on", not "cuts prices
    again, price target ..."."""
    reach = after[at : at + _RATING_REACH]
    cut = _CLAUSE_END.search(reach)
    return _RATING_WORDS.search(reach[: cut.start()] if cut else reach) is not None
