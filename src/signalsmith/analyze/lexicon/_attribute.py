"""Which tickers a cue is about (its own subject, the nearest in its clause, those listed with
it), and which sentences a ticker's opinion reads."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from signalsmith.analyze.lexicon._context import Context, Cue
from signalsmith.analyze.lexicon._opinion import Scope
from signalsmith.analyze.lexicon._tables import CLAUSE_SPLITS, LIST_GLUE, MAX_LISTED, N, P
from signalsmith.analyze.lexicon._tokens import SILENCED, Anchor, Doc
from signalsmith.raters import BROKERS


class Mentions:
    """One sentence's ticker mentions, indexed once for the questions every cue asks: which
    are in its clause, where a ticker is named, which tickers it names at all."""

    __slots__ = ("anchors", "by_clause", "by_symbol", "symbols")

    def __init__(self, anchors: list[Anchor]) -> None:
        self.anchors = anchors
        self.symbols = {anchor.sym for anchor in anchors}
        self.by_clause: dict[int, tuple[list[int], list[int]]] = {}
        self.by_symbol: dict[str, tuple[list[int], list[int]]] = {}
        for k, anchor in enumerate(anchors):
            _add(self.by_clause.setdefault(anchor.clause, ([], [])), k, anchor.pos)
            _add(self.by_symbol.setdefault(anchor.sym, ([], [])), k, anchor.pos)


def _add(where: tuple[list[int], list[int]], k: int, pos: int) -> None:
    where[0].append(k)
    where[1].append(pos)


def _nearest(cue: Cue, anchors: list[Anchor], candidates: list[int], positions: list[int]) -> int:
    """Which of several tickers in a clause a cue is about: attachment mode, then distance.
    ``positions`` are the candidates' token positions, in order."""
    split = bisect_left(positions, cue.start)
    past = bisect_left(positions, cue.end)
    before = candidates[split - 1] if split else -1
    after = candidates[past] if past < len(candidates) else -1
    if before < 0 and after < 0:  # the ticker is a word of the cue itself
        return candidates[0]
    if before < 0 or (cue.mode == N and after >= 0):
        return after
    if after < 0 or cue.mode == P:
        return before
    gap_before = cue.start - anchors[before].pos
    gap_after = anchors[after].pos - cue.end + 1
    return before if gap_before <= gap_after else after


def _glued(left: int, right: int, low: list[str]) -> bool:
    """Whether two ticker mentions form a list ("NVDA, AMD and AVGO"); the blanked words of a
    company name ("Ford and General Motors") are part of the mention, not between."""
    between = [tok for tok in low[left + 1 : right] if tok != SILENCED]
    return len(between) <= 2 and all(tok in LIST_GLUE for tok in between)


def _listed(k: int, anchors: list[Anchor], low: list[str]) -> set[str]:
    """The ticker at ``k`` plus any listed together with it (at most MAX_LISTED each way)."""
    lo = hi = k
    while hi + 1 < len(anchors) and hi - k < MAX_LISTED:
        if not _glued(anchors[hi].pos, anchors[hi + 1].pos, low):
            break
        hi += 1
    while lo > 0 and k - lo < MAX_LISTED and _glued(anchors[lo - 1].pos, anchors[lo].pos, low):
        lo -= 1
    return {anchor.sym for anchor in anchors[lo : hi + 1]}


def _has_object(cue: Cue, low: list[str]) -> bool:
    """A verb-like cue followed by a word: its object is something other than a ticker."""
    return cue.end < len(low) and low[cue.end] not in CLAUSE_SPLITS


def targets_of(
    cue: Cue, doc: Doc, by_sentence: dict[int, list[Anchor]], indexed: dict[int, Mentions]
) -> set[str] | int:
    """Tickers a cue belongs to; a sentence number means every ticker that sentence names
    (the cue's clause names none), _EVERY every ticker (its sentence names none).
    ``indexed`` keeps each sentence's mentions once indexed: only sentences with cues are."""
    mentions = indexed.get(cue.sent)
    if mentions is None:
        anchors = by_sentence.get(cue.sent)
        if anchors is None:  # "AMD? Not so much.": a cue given a ticker keeps it
            return {cue.target} if cue.target else _EVERY
        mentions = indexed[cue.sent] = Mentions(anchors)
    anchors = mentions.anchors
    if cue.target:  # its subject is a ticker: that one, and those listed with it
        named = mentions.by_symbol.get(cue.target)
        if named is None:
            return {cue.target}
        indices, positions = named
        split = bisect_left(positions, cue.start)
        return _listed(indices[split - 1] if split else indices[0], anchors, doc.low)
    in_clause = mentions.by_clause.get(cue.clause)
    if in_clause is None:
        # "Sold Exxon, bought NEE": "sold" has an object, and it is not NEE.
        if cue.mode == N and _has_object(cue, doc.low):
            return set()
        return cue.sent
    return _listed(_in_clause(cue, anchors, in_clause, doc.low), anchors, doc.low)


def _in_clause(
    cue: Cue, anchors: list[Anchor], clause: tuple[list[int], list[int]], low: list[str]
) -> int:
    """Which of its clause's mentions a cue is about."""
    indices, positions = clause
    if len(indices) == 1:
        return indices[0]
    k = _nearest(cue, anchors, indices, positions)
    if cue.rates and anchors[k].sym in BROKERS:
        k = _past_the_rater(k, cue, anchors, clause, low)
    return k


def _past_the_rater(
    k: int, cue: Cue, anchors: list[Anchor], clause: tuple[list[int], list[int]], low: list[str]
) -> int:
    """An analyst's action fell to a research firm. In a rater's place — before an action on
    a stock named a few words after it ("UBS downgrades Tesla", "cuts both Tesla and Ford"),
    or after "at", "by", "from" or "according to" ("Tesla downgraded at UBS") — the firm passes
    it to that stock; an action naming its own rating ("Goldman Sachs upgraded to buy on Apple
    Card exit") is the firm's."""
    indices, positions = clause
    pos = anchors[k].pos
    if pos < cue.start:
        after = bisect_left(positions, cue.end)
        # "upgraded to buy on ...": the action names its rating, so the firm is the one rated.
        rated = "to" not in cue.label.split()
        if (
            rated
            and after < len(indices)
            and positions[after] - cue.end <= _RATED_REACH
            and not _rater_place(positions[after], low)  # not "Citi downgraded by GS"
        ):
            return indices[after]  # the stock rated, even a bank ("downgrades BofA")
    elif _rater_place(pos, low) and pos - 1 >= cue.end:
        before = bisect_left(positions, cue.start) - 1
        if before >= 0:
            return indices[before]
    return k


_RATER_PREPS = frozenset({"at", "by", "from", "according"})


def _rater_place(pos: int, low: list[str]) -> bool:
    """Whether the mention ending at ``pos`` follows "at", "by", "from" or "according to"
    (a multi-word name's earlier words are blanked: they are skipped)."""
    k = pos - 1
    while k >= 0 and low[k] == SILENCED:
        k -= 1
    if k < 0:
        return False
    return low[k] in _RATER_PREPS or (low[k] == "to" and k > 0 and low[k - 1] == "according")


_RATED_REACH = 6  # "downgrades both Tesla and Ford", "upgrades iPhone maker Apple"


_EVERY = -1  # a cue about every ticker: its sentence names none
_COPIED = 8  # up to this many tickers, shared cues are copied to each (cheaper for a post)
_SHARED_CUES = 256  # beyond _COPIED tickers, a ticker reads at most this many per group


class Buckets:
    """Each ticker's cues, as indices into the text's cues in order.

    A cue about a whole sentence's tickers (its clause names none), or about every ticker
    (its sentence names none), is copied to each of them while the text asks about at most
    _COPIED tickers. Beyond that it is kept once, in its sentence's group or in the text's
    group of ticker-free sentences, and a ticker reads at most _SHARED_CUES cues of each
    group: a post naming thousands of tickers costs its cues and mentions, not their product.
    """

    __slots__ = ("_copy", "_indexed", "_own", "_shared")

    def __init__(self, present: Iterable[str], indexed: dict[int, Mentions]) -> None:
        self._own: dict[str, list[int]] = {sym: [] for sym in present}
        self._shared: dict[int, list[int]] = {}  # by sentence, or _EVERY
        self._indexed = indexed  # the sentences' mentions, as ``targets_of`` indexed them
        self._copy = len(self._own) <= _COPIED

    def add(self, k: int, targets: Collection[str] | int) -> None:
        own = self._own
        if isinstance(targets, int):
            if not self._copy:
                shared = self._shared.setdefault(targets, [])
                if len(shared) < _SHARED_CUES:
                    shared.append(k)
                return
            targets = own.keys() if targets == _EVERY else self._indexed[targets].symbols
        for sym in targets:
            bucket = own.get(sym)
            if bucket is not None:
                bucket.append(k)

    def __contains__(self, ticker: str) -> bool:
        return ticker in self._own

    def cues_of(self, ticker: str, named: set[int], cues: Sequence[Cue]) -> list[Cue]:
        """The ticker's cues in text order: its own, and the shared ones of the sentences
        naming it (``named``) and of the text."""
        own = self._own[ticker]
        shared = self._shared
        if shared:
            lists = [shared[sent] for sent in (_EVERY, *named) if sent in shared]
            if lists:
                own = list(heapq.merge(own, *lists)) if own or len(lists) > 1 else lists[0]
        return [cues[k] for k in own]


def naming(by_sentence: dict[int, list[Anchor]]) -> dict[str, set[int]]:
    """Per ticker, the sentences naming it."""
    named: dict[str, set[int]] = {}
    for sentence, anchors in by_sentence.items():
        for anchor in anchors:
            named.setdefault(anchor.sym, set()).add(sentence)
    return named


class Scopes:
    """What each ticker's sentences hold (hedges, unscored terms, dates): a ticker reads the
    sentences naming it, naming no ticker, or holding its cues. Counted once per text, so a
    text naming thousands of tickers costs its mentions and cues, not tickers x sentences."""

    __slots__ = ("_anchored", "_base", "_kinds", "_plain")

    def __init__(self, ctx: Context, by_sentence: dict[int, list[Anchor]]) -> None:
        sarcasm = bool(ctx.sarcasm)
        # Most texts have nothing to count: every ticker's scope is then the same.
        self._plain = None
        if not (ctx.hedges or ctx.unscored or ctx.scheduled):
            self._plain = Scope(0, sarcasm, 0, 0)
            return
        self._kinds = (Counter(ctx.hedges.keys()), Counter(ctx.unscored), Counter(ctx.scheduled))
        self._anchored = by_sentence.keys()
        # Sentences naming no ticker count for every ticker; the others only for some.
        hedges, unscored, scheduled = (
            sum(n for sentence, n in kind.items() if sentence not in by_sentence)
            for kind in self._kinds
        )
        self._base = Scope(hedges, sarcasm, unscored, scheduled)

    def of(self, named: set[int], cues: Sequence[Cue]) -> Scope:
        """The scope of a ticker named in ``named`` sentences, with these cues."""
        if self._plain is not None:
            return self._plain
        anchored = self._anchored
        extra = {cue.sent for cue in cues if cue.sent not in named and cue.sent in anchored}
        base = self._base
        hedges, unscored, scheduled = (
            _counted(kind, named) + _counted(kind, extra) for kind in self._kinds
        )
        return base._replace(
            hedges=base.hedges + hedges,
            unscored=base.unscored + unscored,
            scheduled=base.scheduled + scheduled,
        )


def _counted(kind: Counter[int], sentences: Iterable[int]) -> int:
    """How many of a kind's entries sit in ``sentences`` (each naming some ticker: those
    naming none are in the base count already)."""
    return sum(kind.get(sentence, 0) for sentence in sentences)
