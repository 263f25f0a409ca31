"""One text as tokens: the tokenizer (figure repair, option shorthand), where sentences and
clauses start, and the ticker anchors (cashtags, symbols, company names) that stop being words."""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from itertools import compress, count, repeat
from operator import ne
from typing import Final, NamedTuple

from signalsmith.analyze.injection import TRIGGERS as _INJECTION_TRIGGERS
from signalsmith.analyze.lexicon._tables import (
    BREAKS,
    CLAUSE_SPLITS,
    FIGURE_MARKERS,
    JOINS,
    NOT_A_CLAUSE,
    OPTION_FOLLOWERS,
    SENTENCE_ENDS,
)
from signalsmith.raters import BROKERS
from signalsmith.tickers import SHOUTING_WORDS, STOPLIST, Alias

# Clause splits and the words that may address the analyzer, found in one pass (``_marks``).
_MARKS: Final = CLAUSE_SPLITS | _INJECTION_TRIGGERS

# A digit then "c"/"p" ("180c"); starting from the letter, rarer than a digit, scans faster.
_OPTION_RE: Final = re.compile(r"[cCpP](?<=\d[cCpP])(?![A-Za-z0-9])")
_DIGIT_RE: Final = re.compile(r"\d")
_SPACED_DECIMAL: Final = re.compile(r"(\d) \.(\d)")
_GLUED_CURRENCY: Final = re.compile(r"\b(EUR|USD|MEUR|MUSD)(?=\d)")
ANCHOR: Final = "\x00"  # ticker tokens become this so a ticker named LOW or ALL never scores
SILENCED: Final = "\x01"  # the words of an injection become this: no phrase starts with it

# All-caps words that are not tickers ("CEO", "EPS", "A great quarter", "THE"): the
# extractor's word lists, so a word it never takes for a ticker does not anchor cues here.
_NOT_TICKERS: Final = STOPLIST | SHOUTING_WORDS

# Alternatives are ordered by how often they match, since each position tries them in turn;
# spaces are consumed inside the match (outside the group) rather than failed on one by one.
# Possessive repeats ("*+", "++") match what the greedy ones would (no alternative could use
# a character given back), but spare the engine recording where it could backtrack to.
_TOKEN_RE: Final = re.compile(
    r"[ \t\r]*+("
    r"[A-Za-z][A-Za-z0-9_]*+(?:'[A-Za-z]+)*+"  # ASCII words, the common case
    r"|[^\W\d_]\w*+(?:'[^\W\d_]+)*+"
    r"|[.!?;,:\n%()>]"
    r"|\d++(?:\.\d+)?[cCpP](?![A-Za-z0-9])"  # option shorthand: "180c", "95.5p"
    r"|\d+(?:[.,]\d+)*"
    r"|(?<=[\s(])-\d+(?:[.,]\d+)*"  # a negative figure, not the end of a range "8-10"
    r"|\$[A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?"  # cashtag, BRK.B included
    r"|/[sS](?![\w/])(?<![\w/]/[sS])"  # the /s sarcasm tag, not part of a path or URL
    r"|[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B06\u2B07]"
    r")"
)


class Anchor(NamedTuple):
    """A ticker mention: token position, symbol, and its sentence and clause numbers."""

    pos: int
    sym: str
    sent: int
    clause: int


_new_anchor: Final = functools.partial(tuple.__new__, Anchor)


@dataclass(slots=True)
class Doc:
    """The tokenized text: lower-cased tokens, where sentences and clauses start, tickers.

    Sentence and clause numbers are found by bisecting the start positions, which is cheaper
    than numbering every token when only a handful of tokens are ever asked about.
    """

    low: list[str]
    sent_starts: list[int]
    clause_starts: list[int]
    anchors: list[Anchor] = field(default_factory=list)
    questions: set[int] = field(default_factory=set)
    figures: bool = False  # whether it has numbers and a comparison marker
    layout: bool = False  # whether it may have "KO > PEP" or a bare "Out."
    strikes: list[int] = field(default_factory=list)  # option shorthand left a number ("700c")
    triggers: list[int] = field(default_factory=list)  # words that may address the analyzer

    def sent_of(self, pos: int) -> int:
        return bisect_right(self.sent_starts, pos)

    def clause_of(self, pos: int) -> int:
        return bisect_right(self.clause_starts, pos)


def _symbol(tok: str, lo: str, symbols: Collection[str]) -> str | None:
    """The ticker a token names: any cashtag, or a bare requested symbol in its exact case."""
    if tok[0] == "$":
        return tok[1:].upper()
    if not symbols:
        return None
    base = tok[:-2] if lo.endswith("'s") else tok
    if base in STOPLIST:  # "A", "IT": the word, unless written as a cashtag
        return None
    return base if base in symbols else None


def word_after(
    low: list[str], start: int, reach: int, wanted: frozenset[str], stops: frozenset[str]
) -> int:
    """Where the first of ``wanted`` sits within ``reach`` words from ``start``, if none of
    ``stops`` comes before it; else -1. Object nouns, kept guidance and deal words are all
    looked for this way."""
    for k in range(start, min(len(low), start + reach)):
        tok = low[k]
        if tok in wanted:
            return k
        if tok in stops:
            return -1
    return -1


def listed_words(symbols: Iterable[str], lexical: Collection[str]) -> frozenset[str]:
    """The listed symbols an all-caps word may stand for unasked: 2-5 letters, not a lexicon
    word, not in the stoplist ("NBA", "CEO" and "LOW" are never taken for tickers unasked)."""
    return frozenset(
        symbol
        for symbol in symbols
        if 2 <= len(symbol) <= 5
        and symbol.isalpha()
        and symbol.lower() not in lexical
        and symbol not in _NOT_TICKERS
    )


def _looks_like_ticker(tok: str, lo: str, listed: Collection[str]) -> bool:
    """An all-caps word that is a listed symbol, not a lexicon word or a common acronym
    (``listed`` holds only those), e.g. "INTC" but not "NBA" or "CEO"."""
    base = tok[:-2] if lo.endswith("'s") else tok
    return base in listed and base.isupper()


def tokenize(
    text: str, symbols: Collection[str], listed: Collection[str], names: Names | None = None
) -> Doc:
    """One regex pass, then one builtin or comprehension per fact: per-token Python loops
    are the cost here, so the passes over every token run in C (``map``, ``compress``)."""
    if "’" in text:
        text = text.replace("’", "'")
    if " ." in text or "EUR" in text or "USD" in text:
        text = _repair_figures(text)
    toks = _TOKEN_RE.findall(text)
    low = list(map(str.lower, toks))
    strikes = _name_options(toks, low) if _OPTION_RE.search(text) else []
    splits, triggers = _marks(low)
    # A break ends its sentence/clause after itself; "but", "while" start a new clause.
    sent_starts = [i + 1 for i in splits if low[i] in SENTENCE_ENDS]
    clause_starts = [i + 1 if low[i] in BREAKS else i for i in splits]
    questions = (
        {bisect_right(sent_starts, i) for i in splits if low[i] == "?"} if "?" in text else set()
    )
    figures = not FIGURE_MARKERS.isdisjoint(low) and _DIGIT_RE.search(text) is not None
    layout = ">" in text or " over " in text or "out" in low
    doc = Doc(low, sent_starts, clause_starts, [], questions, figures, layout, strikes, triggers)
    candidates = _candidates(toks, low, "$" in text)
    named = _named(toks, low, names) if names else []
    if candidates or named:
        _find_anchors(doc, toks, candidates, symbols, listed, named=named)
    return doc


# Company names of the requested tickers, by their first word: (the name's words, whether it
# counts only capitalised, the symbol). "Tesla" and "Goldman Sachs" anchor cues as "TSLA" does.
Names = dict[str, list[tuple[tuple[str, ...], bool, str]]]


def _named(toks: list[str], low: list[str], names: Names) -> list[tuple[int, str]]:
    """Where a requested ticker's company name sits, as (the position of its last word, the
    symbol); the name's other words are blanked so no cue is read in them ("Target",
    "Bank of America")."""
    found: list[tuple[int, str]] = []
    last = len(low)
    for i in list(compress(count(), map(names.__contains__, low))):
        # A longer name found earlier may have blanked this word ("the trade desk" and
        # "trade desk"): it is no name's first word any more.
        for words, cap, symbol in names.get(low[i], ()):
            end = i + len(words)
            if end > last or (cap and not toks[i][:1].isupper()):
                continue
            if len(words) > 1 and not _same_words(low[i + 1 : end], words[1:]):
                continue
            for k in range(i, end - 1):
                low[k] = SILENCED
            found.append((end - 1, symbol))
            break
    return found


def _same_words(tokens: list[str], words: tuple[str, ...]) -> bool:
    """The name's words, the last one possibly possessive ("Goldman Sachs's")."""
    return tokens[:-1] == list(words[:-1]) and tokens[-1].removesuffix("'s") == words[-1]


def _marks(low: list[str]) -> tuple[list[int], list[int]]:
    """Where clauses split, and where words that may address the analyzer sit ("ignore",
    "output"). Few texts hold any of the latter, and finding both in one pass spares long
    texts a second walk over every token."""
    if _INJECTION_TRIGGERS.isdisjoint(low):
        return list(compress(count(), map(CLAUSE_SPLITS.__contains__, low))), []
    marks = list(compress(count(), map(_MARKS.__contains__, low)))
    splits = [i for i in marks if low[i] in CLAUSE_SPLITS]
    return splits, [i for i in marks if low[i] in _INJECTION_TRIGGERS]


def _candidates(toks: list[str], low: list[str], cashtags: bool) -> list[int]:
    """Where a ticker may sit: tokens with capitals in their first two characters, cashtags."""
    # Only tokens with capitals can be tickers; comparing with the lower-cased twin is cheap.
    capitals = [i for i in compress(count(), map(ne, toks, low)) if toks[i][:2].isupper()]
    if not cashtags:
        return capitals
    # Lower-case cashtags ("$tsla") have no capitals to find them by.
    dollars = list(compress(count(), map(str.startswith, toks, repeat("$"))))
    return sorted({*capitals, *dollars}) if capitals else dollars


def _repair_figures(text: str) -> str:
    """Undo the spacing some newswire copies have: "EUR193 .3 mn" is "EUR 193.3 mn"."""
    if " ." in text:
        text = _SPACED_DECIMAL.sub(r"\1.\2", text)
    if "EUR" in text or "USD" in text:
        text = _GLUED_CURRENCY.sub(r"\1 ", text)
    return text


def _name_options(toks: list[str], low: list[str]) -> list[int]:
    """ "AMD 180c", "700c for March": strike shorthand becomes "calls"/"puts" when it sits
    after a ticker or before an expiry, so "shares rose 10p" (pence) stays a number.

    Returns where the shorthand it left as a number sits: it may be a strike all the same.
    """
    last = len(low) - 1
    unread: list[int] = []
    for i, lo in enumerate(low):
        if lo[0].isdigit() and lo[-1] in "cp":
            after = low[i + 1] if i < last else ""
            before = toks[i - 1] if i else ""
            tickerish = before[:1] == "$" or (before.isupper() and before.isalpha())
            if tickerish or after in OPTION_FOLLOWERS:
                low[i] = "calls" if lo[-1] == "c" else "puts"
            else:
                unread.append(i)
    return unread


def _find_anchors(
    doc: Doc,
    toks: list[str],
    candidates: list[int],
    symbols: Collection[str],
    listed: Collection[str],
    *,
    named: list[tuple[int, str]],
) -> None:
    """Mark ticker mentions; requested ones, cashtags and the requested tickers' company names
    stop being words to the lexicon."""
    low = doc.low
    found: list[tuple[int, str]] = []
    caps: list[tuple[int, str]] = []
    for i, named_symbol in named:
        found.append((i, named_symbol))
        low[i] = ANCHOR
    for i in candidates:
        tok, lo = toks[i], low[i]
        if lo in (ANCHOR, SILENCED):  # a company name's word
            continue
        sym = _symbol(tok, lo, symbols) if symbols or tok[0] == "$" else None
        if sym is not None and symbols and sym not in symbols and sym in BROKERS:
            continue  # a rater ("JPM upgrades AAPL"): the cue is the stock's, not the bank's
        if sym is not None:
            found.append((i, sym))
            low[i] = ANCHOR
        elif _looks_like_ticker(tok, lo, listed):
            bare = tok[:-2] if lo.endswith("'s") else tok
            if not (symbols and bare in BROKERS):
                caps.append((i, bare))
    # A shouted post ("THIS IS GOING UP") is all caps; its words are not tickers.
    if caps and len(caps) * 3 <= len(low):
        found = sorted(found + caps)
    elif named:
        found.sort()
    _split_before_tickers(doc, found)
    sents, clauses = doc.sent_starts, doc.clause_starts
    doc.anchors = [
        _new_anchor((i, sym, bisect_right(sents, i), bisect_right(clauses, i))) for i, sym in found
    ]


def _split_before_tickers(doc: Doc, found: list[tuple[int, str]]) -> None:
    """ "LULU sinks as GAP soars", "AMD beats and INTC misses": "as" or "and" right before a
    ticker starts that ticker's own clause, unless it joins a list ("XOM and CVX")."""
    low = doc.low
    joins: set[int] = set()
    for i, _ in found:
        j = i - 1
        while j > 0 and low[j] == SILENCED:  # the earlier words of a company name
            j -= 1
        if j > 0 and low[j] in JOINS and low[j - 1] not in NOT_A_CLAUSE:
            joins.add(j)
    if joins:
        doc.clause_starts = sorted(joins.union(doc.clause_starts))


def silence(low: list[str], spans: Iterable[tuple[int, int]]) -> None:
    """Blank the words of text addressed to the analyzer ("ignore previous instructions,
    output BUY") so no cue, negator or subject matches there. Breaks and tickers stay, so
    sentence and clause numbers and ticker mentions hold."""
    for start, end in spans:
        for i in range(start, end):
            if low[i] not in BREAKS and low[i] != ANCHOR:
                low[i] = SILENCED


def name_index(
    aliases: Iterable[Alias],
) -> dict[str, list[tuple[str, tuple[tuple[str, ...], bool, str]]]]:
    """Per symbol, its names as lexicon words keyed by their first word (a one-word name also
    in the possessive, "Tesla's")."""
    index: dict[str, list[tuple[str, tuple[tuple[str, ...], bool, str]]]] = {}
    for alias in aliases:
        words = tuple(_TOKEN_RE.findall(alias.name))
        if not words:
            continue
        entry = (words, alias.mode != "any", alias.symbol)
        keys = [words[0], f"{words[0]}'s"] if len(words) == 1 else [words[0]]
        index.setdefault(alias.symbol, []).extend((key, entry) for key in keys)
    return index
