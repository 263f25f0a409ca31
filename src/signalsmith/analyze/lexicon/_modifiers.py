"""What changes a cue's weight besides its own words: negators and boosters in its clause, and
contrast, concession, hedging and sarcasm across its sentence or the text."""

from __future__ import annotations

from typing import NamedTuple

from signalsmith.analyze.lexicon._context import QUESTION, Context, Cue
from signalsmith.analyze.lexicon._entries import Entry
from signalsmith.analyze.lexicon._match import Hit
from signalsmith.analyze.lexicon._tables import (
    ACTION_NEGATION_FLIP,
    COORDINATORS,
    DEMOTED,
    HEDGED_WEIGHT,
    NEGATION_REACH,
    PROMOTED,
    QUESTION_WEIGHT,
    SARCASM_DAMPEN,
    SARCASM_FLIP,
    SELL_NEGATION_FLIP,
)
from signalsmith.analyze.lexicon._tokens import Doc


class Modifier(NamedTuple):
    end: int
    clause: int
    factor: float
    label: str


def intensify(hit: Hit, doc: Doc, cues: list[Cue]) -> Modifier | None:
    """A post-modifier ("rose sharply") boosts the cue it follows; otherwise the next cue."""
    clause = hit.clause
    if hit.entry.post and cues:
        last = cues[-1]
        if last.end == hit.start and last.clause == clause:
            last.weight *= hit.entry.weight
            last.label = f"{last.label} {hit.label}"
            return None
    return Modifier(hit.end, clause, hit.entry.weight, hit.label)


def apply_negation(cue: Cue, negator: Modifier, entry: Entry, low: list[str]) -> Modifier | None:
    """Flip a cue the negator reaches; return the negator if it also covers an "or" after it.

    A negated cue flips but weakens: "not bullish" is doubt, not a short thesis. A negated
    buy ("not adding") mostly means staying put, so it flips even less; a negated sell
    ("never selling") is a holder's conviction and flips almost whole.
    """
    if negator.clause != cue.clause or cue.start - negator.end > NEGATION_REACH:
        return None
    if entry.rotates:
        # "Not selling a single share": refusing to sell is conviction, close to buying.
        cue.weight *= SELL_NEGATION_FLIP
    else:
        cue.weight *= ACTION_NEGATION_FLIP if entry.acquires else negator.factor
    cue.negated = True
    cue.label = f"{negator.label} {cue.label}"
    if cue.end < len(low) and low[cue.end] in COORDINATORS:
        # "not buying or selling": the negation carries over the coordinated cue.
        return negator._replace(end=cue.end + 1)
    return None


def apply_booster(cue: Cue, booster: Modifier) -> None:
    if booster.clause != cue.clause or cue.start - booster.end > 1:
        return
    cue.weight *= booster.factor
    cue.label = f"{booster.label} {cue.label}"


def apply_context(cue: Cue, ctx: Context) -> None:
    """Sentence-wide effects: contrast, concession, hedging and sarcasm."""
    factor = 1.0
    if cue.sent in ctx.demoted_sents:
        factor *= DEMOTED
    contrast = ctx.contrast.get(cue.sent)
    if contrast is not None:
        after = cue.clause >= contrast[0]
        factor *= PROMOTED if after else DEMOTED
        if after:
            cue.contrasted = True
            cue.notes += (contrast[1],)
    if cue.clause in ctx.conceded:
        factor *= DEMOTED
    hedge = ctx.hedges.get(cue.sent)
    if hedge is not None:
        cue.asked = hedge == QUESTION
        factor *= QUESTION_WEIGHT if cue.asked else HEDGED_WEIGHT
        cue.hedged = True
        cue.notes += (hedge,)
    if ctx.sarcasm:
        factor *= _sarcastic(cue, ctx.sarcasm)
    cue.weight *= factor


def _sarcastic(cue: Cue, marker: str) -> float:
    # Sarcasm inverts praise ("love this 20% drop /s"); complaints stay bearish but count less,
    # since the literal reading of a sarcastic text is unreliable.
    cue.sarcastic = True
    cue.notes += (f"sarcasm: {marker}",)
    if cue.weight > 0:
        cue.label = f"{cue.label} (sarcasm)"
        return SARCASM_FLIP
    return SARCASM_DAMPEN
