"""The ``Lexicon``: the stages in order over one text, for the whole text (``judge``) or per
ticker (``judge_for``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from signalsmith.analyze.injection import injected_spans
from signalsmith.analyze.lexicon._attribute import (
    Buckets,
    Mentions,
    Scopes,
    naming,
    targets_of,
)
from signalsmith.analyze.lexicon._context import Context, Cue, gather_context
from signalsmith.analyze.lexicon._entries import build_trie
from signalsmith.analyze.lexicon._match import match_hits
from signalsmith.analyze.lexicon._opinion import opinion_of, whole_scope
from signalsmith.analyze.lexicon._score import score_cues
from signalsmith.analyze.lexicon._tokens import (
    Anchor,
    Doc,
    Names,
    listed_words,
    name_index,
    silence,
    tokenize,
)
from signalsmith.domain import Opinion
from signalsmith.tickers import Alias, load_symbol_book

_NAME_SETS_KEPT = 4096  # ticker sets whose company names are kept (cleared when full)
_NAME_SET_SIZE = 8  # only sets of up to this many tickers are kept


class Lexicon:
    """Finance-aware lexicon and rule engine.

    Beside each opinion it counts ``Signals``: the cues by kind, whether the text is sarcastic,
    its hedges and questions, dates and upcoming events, and its coverage gaps — market terms it
    recognised but could not score: a change word with nothing it changes ("fees rose"), an
    event verb without its object ("signed on Monday"), a change told by figures of nothing
    named ("from 80 to 95"), option shorthand left a number ("150c").
    """

    def __init__(self, aliases: Iterable[Alias] | None = None) -> None:
        self._trie = build_trie()
        book = load_symbol_book()
        self._listed = listed_words(book.names, frozenset(self._trie))
        self._names = name_index(book.aliases.values() if aliases is None else aliases)
        self._names_by_set: dict[frozenset[str], Names | None] = {}

    def _names_of(self, symbols: frozenset[str]) -> Names | None:
        """The company names of these tickers, by first word (None: they have none); kept
        per ticker set, since a stream asks about the same few sets again and again."""
        if symbols in self._names_by_set:
            return self._names_by_set[symbols]
        names: Names = {}
        for symbol in symbols:
            for first, entry in self._names.get(symbol, ()):
                names.setdefault(first, []).append(entry)
        if len(symbols) <= _NAME_SET_SIZE:  # a huge set is one hostile text's, not a stream's
            if len(self._names_by_set) >= _NAME_SETS_KEPT:
                self._names_by_set.clear()
            self._names_by_set[symbols] = names or None
        return names or None

    def _analyse(
        self, text: str, symbols: Collection[str], names: Names | None = None
    ) -> tuple[Doc, Context, list[Cue]]:
        doc = tokenize(text, symbols, self._listed, names)
        if doc.triggers:
            spans = injected_spans(doc.low, doc.triggers, doc.sent_starts, doc.clause_starts)
            silence(doc.low, spans)
        hits = match_hits(doc, self._trie)
        ctx = gather_context(doc, hits)
        return doc, ctx, score_cues(doc, hits, ctx)

    def judge(self, text: str) -> Opinion:
        """The whole text's opinion: verdict, confidence, signed score, the cues behind it and
        the ``Signals`` that say how settled it is."""
        _, ctx, cues = self._analyse(text, ())
        return opinion_of(cues, whole_scope(ctx))

    def judge_for(self, text: str, tickers: Sequence[str]) -> dict[str, Opinion]:
        """One opinion per ticker, attributing each cue to the tickers its sentence is about.

        A ticker the text never names (it was found through a company name) gets the
        whole-text opinion.
        """
        symbols = frozenset(tickers)
        if not symbols:
            return {}
        doc, ctx, cues = self._analyse(text, symbols, self._names_of(symbols))
        by_sentence: dict[int, list[Anchor]] = {}
        for anchor in doc.anchors:
            by_sentence.setdefault(anchor.sent, []).append(anchor)
        indexed: dict[int, Mentions] = {}
        buckets = Buckets((a.sym for a in doc.anchors if a.sym in symbols), indexed)
        for k, cue in enumerate(cues):
            buckets.add(k, targets_of(cue, doc, by_sentence, indexed))
        named = naming(by_sentence)
        scopes = Scopes(ctx, by_sentence)
        whole: Opinion | None = None
        result: dict[str, Opinion] = {}
        for ticker in tickers:
            if ticker in buckets:
                own = buckets.cues_of(ticker, named[ticker], cues)
                result[ticker] = opinion_of(own, scopes.of(named[ticker], own))
            else:
                whole = whole or opinion_of(cues, whole_scope(ctx))
                result[ticker] = whole
        return result
