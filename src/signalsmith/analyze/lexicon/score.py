"""Hits into cues: each cue's base weight (change words by their subject, adjectives, rotations,
event verbs), its modifiers in order, then the passes over them all (figures, layout, price
moves, sentence-wide effects)."""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import NamedTuple

from signalsmith.analyze.lexicon.context import _BUYS, _COMPARE, _MOVE, _Context, _Cue, _Subject
from signalsmith.analyze.lexicon.entries import (
    _K_CUE,
    _K_DIR,
    _K_INTENS,
    _K_NEG,
    _K_PNL,
    _K_SARC,
    _Entry,
)
from signalsmith.analyze.lexicon.figures import _with_figures
from signalsmith.analyze.lexicon.match import _Hit
from signalsmith.analyze.lexicon.modifiers import (
    _apply_booster,
    _apply_context,
    _apply_negation,
    _intensify,
    _Modifier,
)
from signalsmith.analyze.lexicon.tables import (
    _A,
    _BREAKS,
    _DISCOUNTED_MOVE,
    _ECHO_WEIGHT,
    _FAR_LOOKS,
    _FAR_SUBJECT,
    _FIRST_PERSON,
    _FIRST_PERSON_MOVE,
    _LAYOUT_WEIGHT,
    _LONGEST_SUBJECT,
    _MANY_SUBJECTS,
    _N,
    _NEGATION_FLIP,
    _NEUTRAL_DAMPEN,
    _OBJECT_REACH,
    _P,
    _PASSIVE,
    _PERCENT,
    _PERCENT_MOVE,
    _PERCENT_REACH,
    _POSSESSIVES,
    _PREFERS,
    _PRICE_LEVELS,
    _PRICE_MOVE_LEAD,
    _PRICE_SUBJECTS,
    _PRICE_VERBS,
    _RATED_SUBJECTS,
    _ROTATION_LINKS,
    _ROTATION_WORDS,
    _SENTENCE_ENDS,
    _SUBJECT_BACK,
)
from signalsmith.analyze.lexicon.tokens import _Doc
from signalsmith.raters import BROKERS


class _Score(NamedTuple):
    weight: float
    label: str
    target: str = ""
    price: bool = False  # a move of the share price: "TSLA sinks", "shares fall"
    rates: bool = False  # an analyst's move of a target: "raises its Tesla price target"


def _between(starts: Sequence[int], lo: int, hi: int) -> bool:
    """Whether another change word sits strictly between two positions (``starts`` in order)."""
    k = bisect_right(starts, lo)
    return k < len(starts) and starts[k] < hi


def _subject_for(hit: _Hit, ctx: _Context) -> tuple[_Subject | None, bool]:
    """The financial noun a change word is about, and whether it was found only far back.

    The nearest within reach wins (earlier on ties); a noun already claimed by a change word
    in between is not this one's ("volumes slide as shoppers shun price hikes"). Failing
    that, the sentence's last earlier noun ("Net sales in 2023 totalled EUR 81 mn, up ...").
    """
    sentence = hit.sent
    starts = ctx.directions.get(sentence, ())
    subjects = ctx.subjects.get(sentence, [])
    far: _Subject | None = None
    if len(subjects) > _MANY_SUBJECTS:  # only those within reach (a long, hostile sentence)
        subjects, far = _within_reach(subjects, hit, ctx, starts)
    best: _Subject | None = None
    target: _Subject | None = None  # a price target in reach: "UBS raises its PT on Tesla"
    best_distance = math.inf
    for subject in subjects:
        distance = _reach(subject, hit, starts)
        if distance is None:
            continue
        if distance > _SUBJECT_BACK and subject.end <= hit.start:
            far = subject
        elif distance < best_distance:
            best, best_distance = subject, distance
        if subject.label in _RATED_SUBJECTS and target is None:
            target = subject
    if best is None and far is not None and not hit.entry.alone:
        return far, True
    if target is not None and best is not None and best.sym in BROKERS:
        return target, False  # the firm moving a target is not what the target moves
    return best, False


def _reach(subject: _Subject, hit: _Hit, starts: Sequence[int]) -> float | None:
    """How far a subject sits from a change word (a half more after it), or None when it
    cannot be its subject: inside it, too far ahead, or claimed by a change word between."""
    claimable = len(starts) < 2 or bool(subject.sym)
    if subject.end <= hit.start:
        if not claimable and _between(starts, subject.start, hit.start):
            return None
        return float(hit.start - subject.end)
    if subject.start >= hit.end:
        distance = subject.start - hit.end + 0.5
        if distance > hit.entry.ahead + 0.5:
            return None
        if not claimable and _between(starts, hit.start, subject.start):
            return None
        return distance
    return None


def _within_reach(
    subjects: list[_Subject], hit: _Hit, ctx: _Context, starts: Sequence[int]
) -> tuple[list[_Subject], _Subject | None]:
    """The sentence's subjects a change word may take (those near it, found by bisection in
    the sentence's subjects in order) and the nearest far one before them, so a sentence with
    thousands of them costs a few steps per change word, not thousands."""
    keys = ctx.subject_starts.get(hit.sent)
    if keys is None:
        keys = ctx.subject_starts[hit.sent] = [subject.start for subject in subjects]
    lo = bisect_left(keys, hit.start - _SUBJECT_BACK - _LONGEST_SUBJECT)
    hi = bisect_right(keys, hit.end + max(0, hit.entry.ahead))
    far = None
    for subject in reversed(subjects[max(0, lo - _FAR_LOOKS) : lo]):
        if subject.end <= hit.start and (
            subject.sym or len(starts) < 2 or not _between(starts, subject.start, hit.start)
        ):
            far = subject
            break
    return subjects[lo:hi], far


def _score_direction(hit: _Hit, doc: _Doc, ctx: _Context) -> _Score | None:
    """Change word x subject polarity: "loss widened" is bad, "costs fell" is good."""
    subject, far = _subject_for(hit, ctx)
    sign = hit.entry.weight
    if subject is not None:
        if subject.start < hit.start:
            label = f"{subject.label} {hit.label}"
        else:
            label = f"{hit.label} {subject.label}"
        weight = sign * subject.polarity * (_FAR_SUBJECT if far else 1.0)
        # A share-price move: a price verb ("sinks", not "widen") of a ticker or its shares.
        price = (
            not far
            and (bool(subject.sym) or subject.label in _PRICE_SUBJECTS)
            and hit.label.split(" ", 1)[0] in _PRICE_VERBS
        )
        return _Score(weight, label, subject.sym, price, subject.label in _RATED_SUBJECTS)
    window = doc.low[max(0, hit.start - _PERCENT_REACH) : hit.end + _PERCENT_REACH]
    if not _PERCENT.isdisjoint(window):
        # "down 20%" with no noun is nearly always the share price moving.
        return _Score(sign * _PERCENT_MOVE, f"{hit.label} %")
    if hit.entry.alone:
        return _Score(hit.entry.alone, hit.label)
    ctx.unscored.append(hit.sent)  # "fees rose": a change, of nothing the lexicon weighs
    return None


def _score_adjective(hit: _Hit, ctx: _Context) -> _Score:
    """An evaluative adjective doubles when it directly qualifies a financial noun."""
    weight = hit.entry.weight
    for subject in ctx.subjects.get(hit.sent, ()):
        if 0 <= subject.start - hit.end <= 1:
            sign = 1.0 if subject.polarity > 0 else -1.0
            return _Score(weight * 2.0 * sign, f"{hit.label} {subject.label}")
    return _Score(weight, hit.label)


def _rotation_cues(doc: _Doc, ctx: _Context) -> list[_Cue]:
    """ "out of INTC into AMD": links only count in a sentence about rotating or selling,
    after its first rotating word ("Ford cut to sell as Target loses share to Walmart": Ford's
    "to" is no rotation)."""
    cues: list[_Cue] = []
    low = doc.low
    rotating = ctx.rotating
    for anchor in doc.anchors:
        first = rotating.get(anchor.sent)
        if first is None or anchor.pos < first:
            continue
        for link, weight in _ROTATION_LINKS:
            start = _link_start(low, anchor.pos, link)
            if start >= 0:
                label = f"{' '.join(link)} (rotation)"
                cue = _Cue(start, anchor.pos, anchor.sent, anchor.clause, weight, label, _N)
                cues.append(cue)
                break
        else:
            source = _rotation_source(low, anchor.pos)
            if source >= 0:
                label = f"{low[source]} (rotation)"
                cue = _Cue(source, anchor.pos, anchor.sent, anchor.clause, -0.7, label, _N)
                cue.target = anchor.sym
                cues.append(cue)
    return cues


def _rotation_source(low: list[str], pos: int) -> int:
    """Where the verb of "swapped (my) WMT for TGT" sits if ``pos`` is its object; else -1."""
    for verb in (pos - 1, pos - 2):
        if verb >= 0 and low[verb] in _ROTATION_WORDS:
            if verb == pos - 2 and low[pos - 1] not in _POSSESSIVES:
                return -1
            return verb
    return -1


def _link_start(low: list[str], pos: int, link: tuple[str, ...]) -> int:
    """Where ``link`` starts if it ends right before ``pos`` or one word earlier; else -1."""
    size = len(link)
    for end in (pos, pos - 1):
        start = end - size
        if start >= 0 and tuple(low[start:end]) == link:
            return start
    return -1


def _has_object_noun(hit: _Hit, doc: _Doc, objects: frozenset[str]) -> bool:
    """Whether one of ``objects`` follows ``hit`` within reach, in its sentence."""
    low = doc.low
    for tok in low[hit.end : hit.end + _OBJECT_REACH]:
        if tok in objects:
            return True
        if tok in _SENTENCE_ENDS:
            return False
    return False


def _score_cue(hit: _Hit, doc: _Doc, ctx: _Context) -> _Score | None:
    entry = hit.entry
    if entry.adjective:
        return _score_adjective(hit, ctx)
    if entry.objects and not _has_object_noun(hit, doc, entry.objects):
        ctx.unscored.append(hit.sent)  # "signed on Monday": an event, of nothing named
        return None
    if entry.rotates and hit.start and doc.low[hit.start - 1] in _PASSIVE:
        return None  # "products are sold in 40 countries" describes a business
    if entry.acquires and hit.clause in ctx.put_clauses:
        # "loaded up on SPY puts": buying puts is a bet on a fall.
        return _Score(-abs(entry.weight), f"{hit.label} (puts)")
    return _Score(entry.weight, hit.label)


def _score_hit(hit: _Hit, doc: _Doc, ctx: _Context) -> _Score | None:
    """A hit's base weight and label, or None when it is not a scoring cue here."""
    entry = hit.entry
    kind = entry.kind
    if kind is _K_CUE:
        return _score_cue(hit, doc, ctx)
    if kind is _K_DIR:
        return _score_direction(hit, doc, ctx)
    if kind is _K_PNL:
        # Puts or a short before it mean the poster profits from a fall.
        bearish = ctx.bets_on_fall(hit.sent, hit.start)
        return _Score(-entry.weight if bearish else entry.weight, hit.label)
    if kind is _K_SARC and entry.weight:
        return _Score(entry.weight, hit.label)
    return None


def _flags(entry: _Entry, weight: float) -> int:
    if entry.move:
        return _MOVE
    if entry.compare:
        return _COMPARE
    return _BUYS if entry.acquires and weight > 0 else 0


def _cues(doc: _Doc, hits: list[_Hit], ctx: _Context) -> list[_Cue]:
    """Score every cue and apply the modifiers that precede or follow it in its clause."""
    cues: list[_Cue] = []
    buying: set[int] = set()
    negator: _Modifier | None = None
    booster: _Modifier | None = None
    for hit in hits:
        entry = hit.entry
        if entry.silent:
            continue
        kind = entry.kind
        if kind is _K_NEG:
            negator = _Modifier(hit.end, hit.clause, _NEGATION_FLIP, hit.label)
            continue
        if kind is _K_INTENS:
            booster = _intensify(hit, doc, cues)
            continue
        cue = _scored_cue(hit, doc, ctx)
        if cue is None:
            continue
        if cue.flags == _BUYS:
            buying.add(cue.sent)
        if negator is not None:
            negator = _apply_negation(cue, negator, entry, doc.low)
        if booster is not None:
            _apply_booster(cue, booster)
            booster = None
        cues.append(cue)
    return _finish(cues, doc, ctx, buying)


def _scored_cue(hit: _Hit, doc: _Doc, ctx: _Context) -> _Cue | None:
    """The cue a hit makes before modifiers, or None when it does not score here."""
    entry = hit.entry
    if entry.plain:
        cue = _Cue(hit.start, hit.end, hit.sent, hit.clause, entry.weight, hit.label, entry.mode)
        cue.rates = entry.rates
        return cue
    scored = _score_hit(hit, doc, ctx)
    if scored is None:
        return None
    weight, label, target, price, rates = scored
    cue = _Cue(hit.start, hit.end, hit.sent, hit.clause, weight, label, entry.mode, target)
    cue.flags = _flags(entry, weight)
    cue.price = price
    cue.rates = rates
    return cue


def _finish(cues: list[_Cue], doc: _Doc, ctx: _Context, buying: set[int]) -> list[_Cue]:
    """Add rotation, figure and layout cues, then the sentence-wide effects on every cue."""
    if ctx.rotating and doc.anchors:
        cues.extend(_rotation_cues(doc, ctx))
    if doc.figures:
        cues = _with_figures(cues, doc, ctx)
    if doc.layout:
        cues.extend(_layout_cues(doc))
    if ctx.echoes:
        cues.extend(_echo_cues(cues, ctx))
    _weigh_moves(cues, doc, ctx, buying)
    if ctx.colours_cues():
        for cue in cues:
            _apply_context(cue, ctx)
    if ctx.neutral_sents or ctx.neutral_clauses:
        cues = _quiet_neutral(cues, ctx)
    return cues


def _quiet_neutral(cues: list[_Cue], ctx: _Context) -> list[_Cue]:
    """A neutral view stated outright ("initiates at equal weight, sees balanced risk after
    the rally") is the conclusion: the cues beside it argue for it, so they weigh less. The
    words naming a kept target ("reaffirms its [delivery growth] target") are no news at all."""
    sentences, clauses, spans = ctx.neutral_sents, ctx.neutral_clauses, ctx.kept_guidance
    kept: list[_Cue] = []
    for cue in cues:
        if any(start <= cue.start and cue.end <= end for start, end in spans):
            continue
        if cue.sent in sentences or cue.clause in clauses:
            cue.weight *= _NEUTRAL_DAMPEN
        kept.append(cue)
    return kept


def _echo_cues(cues: list[_Cue], ctx: _Context) -> list[_Cue]:
    """ "Delta crushed it; United not so much": the clause before, reversed, for the ticker
    named with "not so much" (at most _ECHO_WEIGHT)."""
    by_clause: dict[int, float] = {}
    for cue in cues:
        by_clause[cue.clause] = by_clause.get(cue.clause, 0.0) + cue.weight
    echoed: list[_Cue] = []
    for hit in ctx.echoes:
        answered = by_clause.get(hit.clause - 1, 0.0)
        if answered:
            weight = -math.copysign(min(abs(answered), _ECHO_WEIGHT), answered)
            label = f"{hit.label} (unlike before)"
            echoed.append(_Cue(hit.start, hit.end, hit.sent, hit.clause, weight, label, _P))
    return echoed


def _weigh_moves(cues: list[_Cue], doc: _Doc, ctx: _Context, buying: set[int]) -> None:
    """Price moves lead in news, and step back in a poster's own account of a trade: told in
    the first person, or naming positions ("long $HD, short $LOW is up 6% since entry")."""
    if _FIRST_PERSON.isdisjoint(doc.low) and not ctx.positions:
        _weigh_price_moves(cues)
    else:  # the poster's own act is the signal: "Tesla up 5%, I'm taking profits"
        for cue in cues:
            if cue.price:
                cue.weight *= _FIRST_PERSON_MOVE
    if buying:
        _discount_moves(cues, buying)


def _weigh_price_moves(cues: list[_Cue]) -> None:
    """In news, the stock's own move outweighs the news it reports: "shares fell 3% even
    after record sales" is a fall. A price cue outweighs the cues against it in its sentence.
    Not in posts told in the first person, where the poster's own act is the signal ("up 5%,
    taking profits")."""
    against: dict[tuple[int, bool], float] = {}
    moves = []
    for cue in cues:
        if cue.price or cue.label in _PRICE_LEVELS:
            moves.append(cue)
        key = (cue.sent, cue.weight > 0)
        against[key] = against.get(key, 0.0) + abs(cue.weight)
    for cue in moves:
        opposed = against.get((cue.sent, cue.weight < 0), 0.0)
        if opposed > 0.0:
            sign = 1.0 if cue.weight > 0 else -1.0
            cue.weight = sign * max(abs(cue.weight), _PRICE_MOVE_LEAD * opposed)


def _discount_moves(cues: list[_Cue], buying: set[int]) -> None:
    """ "Bought CRM after the sell-off": the fall is the occasion for buying, not a view."""
    for cue in cues:
        if cue.flags == _MOVE and cue.weight < 0 and cue.sent in buying:
            cue.weight *= _DISCOUNTED_MOVE


def _layout_cues(doc: _Doc) -> list[_Cue]:
    """ "KO > PEP" prefers the first ticker; a bare "Out." closes the position."""
    low = doc.low
    cues: list[_Cue] = []
    anchors = doc.anchors
    for left, right in itertools.pairwise(anchors):
        if right.pos == left.pos + 2 and low[left.pos + 1] in _PREFERS:
            label = f"{left.sym} {low[left.pos + 1]} {right.sym}"
            for anchor, sign in ((left, 1.0), (right, -1.0)):
                cue = _Cue(left.pos, right.pos + 1, left.sent, left.clause, 0.0, label, _A)
                cue.weight, cue.target = sign * _LAYOUT_WEIGHT, anchor.sym
                cues.append(cue)
    last = len(low) - 1
    for start in (0, *doc.sent_starts):
        if start <= last and low[start] == "out" and (start == last or low[start + 1] in _BREAKS):
            sentence = doc.sent_of(start)
            cue = _Cue(start, start + 1, sentence, doc.clause_of(start), -_LAYOUT_WEIGHT, "out", _A)
            cues.append(cue)
    return cues
