"""Hits into cues: each cue's base weight (change words by their subject, adjectives, rotations,
event verbs), its modifiers in order, then the passes over them all (figures, layout, price
moves, sentence-wide effects)."""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import NamedTuple

from signalsmith.analyze.lexicon._context import BUYS, COMPARE, MOVE, Context, Cue, Subject
from signalsmith.analyze.lexicon._entries import (
    K_CUE,
    K_DIR,
    K_INTENS,
    K_NEG,
    K_PNL,
    K_SARC,
    Entry,
)
from signalsmith.analyze.lexicon._figures import with_figures
from signalsmith.analyze.lexicon._match import Hit
from signalsmith.analyze.lexicon._modifiers import (
    Modifier,
    apply_booster,
    apply_context,
    apply_negation,
    intensify,
)
from signalsmith.analyze.lexicon._tables import (
    BREAKS,
    DEAL_STOPS_REACH,
    DISCOUNTED_MOVE,
    ECHO_LOOKBACK,
    ECHO_WEIGHT,
    FAR_LOOKS,
    FAR_SUBJECT,
    FIRST_PERSON,
    FIRST_PERSON_MOVE,
    LAYOUT_WEIGHT,
    LONGEST_SUBJECT,
    MANY_SUBJECTS,
    NEGATION_FLIP,
    NEUTRAL_DAMPEN,
    NOT_OBJECTS,
    OBJECT_REACH,
    PASSIVE,
    PERCENT,
    PERCENT_MOVE,
    PERCENT_REACH,
    POSSESSIVES,
    PREFERS,
    PRICE_LEVELS,
    PRICE_MOVE_LEAD,
    PRICE_SUBJECTS,
    PRICE_VERBS,
    RATED_SUBJECTS,
    ROTATION_LINKS,
    ROTATION_WORDS,
    SENTENCE_ENDS,
    SUBJECT_BACK,
    TRANSITIVE_CHANGES,
    A,
    N,
    P,
)
from signalsmith.analyze.lexicon._tokens import ANCHOR, Doc, word_after
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


def _subject_for(hit: Hit, ctx: Context, acts: bool) -> tuple[Subject | None, bool]:
    """The financial noun a change word is about, and whether it was found only far back.

    The nearest within reach wins (earlier on ties); a noun already claimed by a change word
    in between is not this one's ("volumes slide as shoppers shun price hikes"). Failing
    that, the sentence's last earlier noun ("Net sales in 2023 totalled EUR 81 mn, up ...").
    When the change word ``acts`` on an object ("Tesla raised prices"), a ticker before it
    is the one acting, not what changed.
    """
    sentence = hit.sent
    starts = ctx.directions.get(sentence, ())
    subjects = ctx.subjects.get(sentence, [])
    far: Subject | None = None
    if len(subjects) > MANY_SUBJECTS:  # only those within reach (a long, hostile sentence)
        subjects, far = _within_reach(subjects, hit, ctx, starts)
    best: Subject | None = None
    target: Subject | None = None  # a price target in reach: "UBS raises its PT on Tesla"
    best_distance = math.inf
    for subject in subjects:
        distance = _reach(subject, hit, starts)
        if distance is None or (acts and subject.sym and subject.end <= hit.start):
            continue
        if distance > SUBJECT_BACK and subject.end <= hit.start:
            far = subject
        elif distance < best_distance:
            best, best_distance = subject, distance
        if subject.label in RATED_SUBJECTS and target is None:
            target = subject
    if best is None and far is not None and not hit.entry.alone:
        return far, True
    if target is not None and best is not None and best.sym in BROKERS:
        return target, False  # the firm moving a target is not what the target moves
    return best, False


def _reach(subject: Subject, hit: Hit, starts: Sequence[int]) -> float | None:
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
    subjects: list[Subject], hit: Hit, ctx: Context, starts: Sequence[int]
) -> tuple[list[Subject], Subject | None]:
    """The sentence's subjects a change word may take (those near it, found by bisection in
    the sentence's subjects in order) and the nearest far one before them, so a sentence with
    thousands of them costs a few steps per change word, not thousands."""
    keys = ctx.subject_keys(hit.sent)
    lo = bisect_left(keys, hit.start - SUBJECT_BACK - LONGEST_SUBJECT)
    hi = bisect_right(keys, hit.end + max(0, hit.entry.ahead))
    far = None
    for subject in reversed(subjects[max(0, lo - FAR_LOOKS) : lo]):
        if subject.end <= hit.start and (
            subject.sym or len(starts) < 2 or not _between(starts, subject.start, hit.start)
        ):
            far = subject
            break
    return subjects[lo:hi], far


def _acts_on_object(verb: str, hit: Hit, low: list[str]) -> bool:
    """Whether a change word that can take an object ("raised", "cut") has one right after
    it: "Tesla raised prices", "UBS cut Tesla to sell", not "Tesla raised 5%" or "NVDA cut by
    half"."""
    if verb not in TRANSITIVE_CHANGES or hit.end >= len(low):
        return False
    after = low[hit.end]
    return after == ANCHOR or (after.isalpha() and after not in NOT_OBJECTS)


def _score_direction(hit: Hit, doc: Doc, ctx: Context) -> _Score | None:
    """Change word x subject polarity: "loss widened" is bad, "costs fell" is good."""
    verb = hit.label.split(" ", 1)[0]
    subject, far = _subject_for(hit, ctx, _acts_on_object(verb, hit, doc.low))
    sign = hit.entry.weight
    if subject is not None:
        if subject.start < hit.start:
            label = f"{subject.label} {hit.label}"
        else:
            label = f"{hit.label} {subject.label}"
        weight = sign * subject.polarity * (FAR_SUBJECT if far else 1.0)
        # A share-price move: a price verb ("sinks", not "widen") of a ticker or its shares.
        price = (
            not far
            and (bool(subject.sym) or subject.label in PRICE_SUBJECTS)
            and verb in PRICE_VERBS
        )
        return _Score(weight, label, subject.sym, price, subject.label in RATED_SUBJECTS)
    window = doc.low[max(0, hit.start - PERCENT_REACH) : hit.end + PERCENT_REACH]
    if not PERCENT.isdisjoint(window):
        # "down 20%" with no noun is nearly always the share price moving.
        return _Score(sign * PERCENT_MOVE, f"{hit.label} %")
    if hit.entry.alone:
        return _Score(hit.entry.alone, hit.label)
    ctx.unscored.append(hit.sent)  # "fees rose": a change, of nothing the lexicon weighs
    return None


def _score_adjective(hit: Hit, ctx: Context) -> _Score:
    """An evaluative adjective doubles when it directly qualifies a financial noun."""
    weight = hit.entry.weight
    subjects = ctx.subjects.get(hit.sent)
    if subjects:
        k = bisect_left(ctx.subject_keys(hit.sent), hit.end)  # the first at or after it
        if k < len(subjects) and subjects[k].start - hit.end <= 1:
            subject = subjects[k]
            sign = 1.0 if subject.polarity > 0 else -1.0
            return _Score(weight * 2.0 * sign, f"{hit.label} {subject.label}")
    return _Score(weight, hit.label)


def _rotation_cues(doc: Doc, ctx: Context) -> list[Cue]:
    """ "out of INTC into AMD": links only count in a sentence about rotating or selling,
    after its first rotating word ("Ford cut to sell as Target loses share to Walmart": Ford's
    "to" is no rotation)."""
    cues: list[Cue] = []
    low = doc.low
    rotating = ctx.rotating
    for anchor in doc.anchors:
        first = rotating.get(anchor.sent)
        if first is None or anchor.pos < first:
            continue
        for link, weight in ROTATION_LINKS:
            start = _link_start(low, anchor.pos, link)
            if start >= 0:
                label = f"{' '.join(link)} (rotation)"
                cue = Cue(start, anchor.pos, anchor.sent, anchor.clause, weight, label, N)
                cues.append(cue)
                break
        else:
            source = _rotation_source(low, anchor.pos)
            if source >= 0:
                label = f"{low[source]} (rotation)"
                cue = Cue(source, anchor.pos, anchor.sent, anchor.clause, -0.7, label, N)
                cue.target = anchor.sym
                cues.append(cue)
    return cues


def _rotation_source(low: list[str], pos: int) -> int:
    """Where the verb of "swapped (my) WMT for TGT" sits if ``pos`` is its object; else -1."""
    for verb in (pos - 1, pos - 2):
        if verb >= 0 and low[verb] in ROTATION_WORDS:
            if verb == pos - 2 and low[pos - 1] not in POSSESSIVES:
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


def _deal_follows(hit: Hit, low: list[str], deals: frozenset[str]) -> bool:
    """Whether a deal word follows a deal stop closely: "blocks Kroger's takeover"."""
    return word_after(low, hit.end, DEAL_STOPS_REACH, deals, frozenset()) >= 0


def _has_object_noun(hit: Hit, doc: Doc, objects: frozenset[str]) -> bool:
    """Whether one of ``objects`` follows ``hit`` within reach, in its sentence."""
    return word_after(doc.low, hit.end, OBJECT_REACH, objects, SENTENCE_ENDS) >= 0


def _score_cue(hit: Hit, doc: Doc, ctx: Context) -> _Score | None:
    entry = hit.entry
    if entry.adjective:
        return _score_adjective(hit, ctx)
    if entry.objects and not _has_object_noun(hit, doc, entry.objects):
        ctx.unscored.append(hit.sent)  # "signed on Monday": an event, of nothing named
        return None
    if entry.rotates and hit.start and doc.low[hit.start - 1] in PASSIVE:
        return None  # "products are sold in 40 countries" describes a business
    if entry.acquires and hit.clause in ctx.put_clauses:
        # "loaded up on SPY puts": buying puts is a bet on a fall.
        return _Score(-abs(entry.weight), f"{hit.label} (puts)")
    return _Score(entry.weight, hit.label)


def _score_hit(hit: Hit, doc: Doc, ctx: Context) -> _Score | None:
    """A hit's base weight and label, or None when it is not a scoring cue here."""
    entry = hit.entry
    kind = entry.kind
    if kind is K_CUE:
        return _score_cue(hit, doc, ctx)
    if kind is K_DIR:
        return _score_direction(hit, doc, ctx)
    if kind is K_PNL:
        # Puts or a short before it mean the poster profits from a fall.
        bearish = ctx.bets_on_fall(hit.sent, hit.clause, hit.start)
        return _Score(-entry.weight if bearish else entry.weight, hit.label)
    if kind is K_SARC and entry.weight:
        return _Score(entry.weight, hit.label)
    return None


def _flags(entry: Entry, weight: float) -> int:
    if entry.move:
        return MOVE
    if entry.compare:
        return COMPARE
    return BUYS if entry.acquires and weight > 0 else 0


def score_cues(doc: Doc, hits: list[Hit], ctx: Context) -> list[Cue]:
    """Score every cue and apply the modifiers that precede or follow it in its clause."""
    cues: list[Cue] = []
    buying: set[int] = set()
    negator: Modifier | None = None
    booster: Modifier | None = None
    for hit in hits:
        entry = hit.entry
        if entry.silent:
            continue
        kind = entry.kind
        if kind is K_NEG:
            negator = _negator(hit, doc) or negator
            continue
        if kind is K_INTENS:
            booster = intensify(hit, doc, cues)
            continue
        cue = _scored_cue(hit, doc, ctx)
        if cue is None:
            continue
        if cue.flags == BUYS:
            buying.add(cue.sent)
        if negator is not None:
            negator = apply_negation(cue, negator, entry, doc.low)
        if booster is not None:
            apply_booster(cue, booster)
            booster = None
        cues.append(cue)
    return _finish(cues, doc, ctx, buying)


def _negator(hit: Hit, doc: Doc) -> Modifier | None:
    """The negation a negator starts; a deal stop only with its deal after it."""
    objects = hit.entry.objects
    if objects and not _deal_follows(hit, doc.low, objects):
        return None
    return Modifier(hit.end, hit.clause, NEGATION_FLIP, hit.label)


def _scored_cue(hit: Hit, doc: Doc, ctx: Context) -> Cue | None:
    """The cue a hit makes before modifiers, or None when it does not score here ("calls"
    as a verb: "the CEO calls it a transition year")."""
    entry = hit.entry
    if ctx.option_verbs and hit.start in ctx.option_verbs:
        return None
    if entry.plain:
        cue = Cue(hit.start, hit.end, hit.sent, hit.clause, entry.weight, hit.label, entry.mode)
        cue.rates = entry.rates
        return cue
    scored = _score_hit(hit, doc, ctx)
    if scored is None:
        return None
    weight, label, target, price, rates = scored
    cue = Cue(hit.start, hit.end, hit.sent, hit.clause, weight, label, entry.mode, target)
    cue.flags = _flags(entry, weight)
    cue.price = price
    cue.rates = rates
    return cue


def _finish(cues: list[Cue], doc: Doc, ctx: Context, buying: set[int]) -> list[Cue]:
    """Add rotation, figure and layout cues, then the sentence-wide effects on every cue."""
    if ctx.rotating and doc.anchors:
        cues.extend(_rotation_cues(doc, ctx))
    if doc.figures:
        cues = with_figures(cues, doc, ctx)
    if doc.layout:
        cues.extend(_layout_cues(doc))
    if ctx.echoes:
        cues.extend(_echo_cues(cues, doc, ctx))
    _weigh_moves(cues, doc, ctx, buying)
    if ctx.colours_cues():
        for cue in cues:
            apply_context(cue, ctx)
    if ctx.neutral_ratings or ctx.neutral_clauses:
        cues = _quiet_neutral(cues, doc, ctx)
    return cues


def _quiet_neutral(cues: list[Cue], doc: Doc, ctx: Context) -> list[Cue]:
    """A neutral view stated outright ("initiates Carnival at equal weight, sees balanced risk
    after the rally") is the conclusion: the cues beside it argue for it, so they weigh less.
    An analyst's rating covers its clause and the clauses after it in its sentence up to one
    naming a ticker ("starts Nvidia at overweight and AMD at equal weight" quiets AMD's only);
    kept guidance its own clause. The words naming a kept target ("reaffirms its [delivery
    growth] target") are no news at all."""
    quiet = _rating_clauses(ctx.neutral_ratings, doc) | ctx.neutral_clauses
    spans = ctx.kept_guidance  # in order of position, apart
    starts = [start for start, _ in spans]
    kept: list[Cue] = []
    for cue in cues:
        k = bisect_right(starts, cue.start) - 1
        if k >= 0 and cue.end <= spans[k][1]:
            continue
        if cue.clause in quiet:
            cue.weight *= NEUTRAL_DAMPEN
        kept.append(cue)
    return kept


def _rating_clauses(ratings: list[int], doc: Doc) -> set[int]:
    """The clauses neutral ratings cover: each its own, then on through its sentence until a
    clause naming a ticker. Linear: a walk stops at a clause already covered."""
    named = {anchor.clause for anchor in doc.anchors}
    starts = doc.clause_starts
    covered: set[int] = set()
    for clause in ratings:
        covered.add(clause)
        sentence = _sentence_of_clause(clause, doc)
        nxt = clause + 1
        while nxt <= len(starts) and nxt not in covered and nxt not in named:
            if _sentence_of_clause(nxt, doc) != sentence:
                break
            covered.add(nxt)
            nxt += 1
    return covered


def _sentence_of_clause(clause: int, doc: Doc) -> int:
    return doc.sent_of(doc.clause_starts[clause - 1]) if clause else 0


def _echo_cues(cues: list[Cue], doc: Doc, ctx: Context) -> list[Cue]:
    """ "Delta crushed it; United not so much": the nearest clause before with a view (up to
    ECHO_LOOKBACK back), reversed, for the ticker named last before "not so much" after that
    clause, at most ECHO_WEIGHT. Only when the phrase ends its clause ("not so much worried
    about China" is something else) and names a ticker of its own to give it to."""
    by_clause: dict[int, float] = {}
    for cue in cues:
        by_clause[cue.clause] = by_clause.get(cue.clause, 0.0) + cue.weight
    low = doc.low
    places = [anchor.pos for anchor in doc.anchors]
    echoed: list[Cue] = []
    for hit in ctx.echoes:
        if hit.end < len(low) and low[hit.end] not in BREAKS:
            continue
        answered = next(
            (
                c
                for c in range(hit.clause - 1, hit.clause - 1 - ECHO_LOOKBACK, -1)
                if by_clause.get(c)
            ),
            -1,
        )
        named = bisect_left(places, hit.start) - 1
        if answered < 0 or named < 0 or doc.anchors[named].clause <= answered:
            continue
        view = by_clause[answered]
        weight = -math.copysign(min(abs(view), ECHO_WEIGHT), view)
        cue = Cue(
            hit.start, hit.end, hit.sent, hit.clause, weight, f"{hit.label} (unlike before)", P
        )
        cue.target = doc.anchors[named].sym
        echoed.append(cue)
    return echoed


def _weigh_moves(cues: list[Cue], doc: Doc, ctx: Context, buying: set[int]) -> None:
    """Price moves lead in news, and step back in a poster's own account of a trade: told in
    the first person, or naming positions ("long $HD, short $LOW is up 6% since entry")."""
    if FIRST_PERSON.isdisjoint(doc.low) and not ctx.positions:
        _weigh_price_moves(cues)
    else:  # the poster's own act is the signal: "Tesla up 5%, I'm taking profits"
        for cue in cues:
            if cue.price:
                cue.weight *= FIRST_PERSON_MOVE
    if buying:
        _discount_moves(cues, buying)


def _weigh_price_moves(cues: list[Cue]) -> None:
    """In news, the stock's own move outweighs the news it reports: "shares fell 3% even
    after record sales" is a fall. A price cue outweighs the cues against it in its sentence.
    Not in posts told in the first person, where the poster's own act is the signal ("up 5%,
    taking profits")."""
    against: dict[tuple[int, bool], float] = {}
    moves = []
    for cue in cues:
        if cue.price or cue.label in PRICE_LEVELS:
            moves.append(cue)
        key = (cue.sent, cue.weight > 0)
        against[key] = against.get(key, 0.0) + abs(cue.weight)
    for cue in moves:
        opposed = against.get((cue.sent, cue.weight < 0), 0.0)
        if opposed > 0.0:
            sign = 1.0 if cue.weight > 0 else -1.0
            cue.weight = sign * max(abs(cue.weight), PRICE_MOVE_LEAD * opposed)


def _discount_moves(cues: list[Cue], buying: set[int]) -> None:
    """ "Bought CRM after the sell-off": the fall is the occasion for buying, not a view."""
    for cue in cues:
        if cue.flags == MOVE and cue.weight < 0 and cue.sent in buying:
            cue.weight *= DISCOUNTED_MOVE


def _layout_cues(doc: Doc) -> list[Cue]:
    """ "KO > PEP" prefers the first ticker; a bare "Out." closes the position."""
    low = doc.low
    cues: list[Cue] = []
    anchors = doc.anchors
    for left, right in itertools.pairwise(anchors):
        if right.pos == left.pos + 2 and low[left.pos + 1] in PREFERS:
            label = f"{left.sym} {low[left.pos + 1]} {right.sym}"
            for anchor, sign in ((left, 1.0), (right, -1.0)):
                cue = Cue(left.pos, right.pos + 1, left.sent, left.clause, 0.0, label, A)
                cue.weight, cue.target = sign * LAYOUT_WEIGHT, anchor.sym
                cues.append(cue)
    last = len(low) - 1
    for start in (0, *doc.sent_starts):
        if start <= last and low[start] == "out" and (start == last or low[start + 1] in BREAKS):
            sentence = doc.sent_of(start)
            cue = Cue(start, start + 1, sentence, doc.clause_of(start), -LAYOUT_WEIGHT, "out", A)
            cues.append(cue)
    return cues
