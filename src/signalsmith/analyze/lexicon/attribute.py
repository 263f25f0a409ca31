"""Which tickers a cue is about (its own subject, the nearest in its clause, those listed with
it), and which sentences a ticker's opinion reads."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from signalsmith.analyze.lexicon.context import _Context, _Cue
from signalsmith.analyze.lexicon.opinion import _Scope
from signalsmith.analyze.lexicon.tables import _CLAUSE_SPLITS, _LIST_GLUE, _MAX_LISTED, _N, _P
from signalsmith.analyze.lexicon.tokens import _SILENCED, _Anchor, _Doc
from signalsmith.raters import BROKERS


class _Mentions:
    """One sentence's ticker mentions, indexed once for the questions every cue asks: which
    are in its clause, where a ticker is named, which tickers it names at all."""

    __slots__ = ("anchors", "by_clause", "by_symbol", "symbols")

    def __init__(self, anchors: list[_Anchor]) -> None:
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


def _nearest(cue: _Cue, anchors: list[_Anchor], candidates: list[int], positions: list[int]) -> int:
    """Which of several tickers in a clause a cue is about: attachment mode, then distance.
    ``positions`` are the candidates' token positions, in order."""
    split = bisect_left(positions, cue.start)
    past = bisect_left(positions, cue.end)
    before = candidates[split - 1] if split else -1
    after = candidates[past] if past < len(candidates) else -1
    if before < 0 and after < 0:  # the ticker is a word of the cue itself
        return candidates[0]
    if before < 0 or (cue.mode == _N and after >= 0):
        return after
    if after < 0 or cue.mode == _P:
        return before
    gap_before = cue.start - anchors[before].pos
    gap_after = anchors[after].pos - cue.end + 1
    return before if gap_before <= gap_after else after


def _glued(left: int, right: int, low: list[str]) -> bool:
    """Whether two ticker mentions form a list ("NVDA, AMD and AVGO"); the blanked words of a
    company name ("Ford and General Motors") are part of the mention, not between."""
    between = [tok for tok in low[left + 1 : right] if tok != _SILENCED]
    return len(between) <= 2 and all(tok in _LIST_GLUE for tok in between)


def _listed(k: int, anchors: list[_Anchor], low: list[str]) -> set[str]:
    """The ticker at ``k`` plus any listed together with it (at most _MAX_LISTED each way)."""
    lo = hi = k
    while hi + 1 < len(anchors) and hi - k < _MAX_LISTED:
        if not _glued(anchors[hi].pos, anchors[hi + 1].pos, low):
            break
        hi += 1
    while lo > 0 and k - lo < _MAX_LISTED and _glued(anchors[lo - 1].pos, anchors[lo].pos, low):
        lo -= 1
    return {anchor.sym for anchor in anchors[lo : hi + 1]}


def _has_object(cue: _Cue, low: list[str]) -> bool:
    """A verb-like cue followed by a word: its object is something other than a ticker."""
    return cue.end < len(low) and low[cue.end] not in _CLAUSE_SPLITS


def _targets(
    cue: _Cue, doc: _Doc, by_sentence: dict[int, list[_Anchor]], indexed: dict[int, _Mentions]
) -> set[str] | None:
    """Tickers a cue belongs to; None means every ticker (its sentence names none).
    ``indexed`` keeps each sentence's mentions once indexed: only sentences with cues are."""
    mentions = indexed.get(cue.sent)
    if mentions is None:
        anchors = by_sentence.get(cue.sent)
        if anchors is None:
            return None
        mentions = indexed[cue.sent] = _Mentions(anchors)
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
        if cue.mode == _N and _has_object(cue, doc.low):
            return set()
        return mentions.symbols
    indices, positions = in_clause
    if cue.rates and len(indices) > 1:
        indices, positions = _rated(indices, positions, anchors)
    k = indices[0] if len(indices) == 1 else _nearest(cue, anchors, indices, positions)
    return _listed(k, anchors, doc.low)


def _rated(
    indices: list[int], positions: list[int], anchors: list[_Anchor]
) -> tuple[list[int], list[int]]:
    """The mentions an analyst's action may be about: not the research firms, when the
    clause names anything else ("UBS downgrades Tesla" is Tesla's, even with UBS asked)."""
    kept = [n for n, k in enumerate(indices) if anchors[k].sym not in BROKERS]
    if not kept or len(kept) == len(indices):
        return indices, positions
    return [indices[n] for n in kept], [positions[n] for n in kept]


def _scope(
    ticker: str, cues: Sequence[_Cue], ctx: _Context, by_sentence: dict[int, list[_Anchor]]
) -> _Scope:
    """What a ticker's sentences hold: those naming it, naming no ticker, or holding its cues."""
    cue_sents = {cue.sent for cue in cues}
    others = {
        sentence
        for sentence, anchors in by_sentence.items()
        if sentence not in cue_sents and all(anchor.sym != ticker for anchor in anchors)
    }

    def count(sentences: Iterable[int]) -> int:
        return sum(sentence not in others for sentence in sentences)

    return _Scope(count(ctx.hedges), bool(ctx.sarcasm), count(ctx.unscored), count(ctx.scheduled))
