"""What changes a cue's weight besides its own words: negators and boosters in its clause, and
contrast, concession, hedging and sarcasm across its sentence or the text."""

from __future__ import annotations

from typing import NamedTuple

from signalsmith.analyze.lexicon.context import _QUESTION, _Context, _Cue
from signalsmith.analyze.lexicon.entries import _Entry
from signalsmith.analyze.lexicon.match import _Hit
from signalsmith.analyze.lexicon.tables import (
    _ACTION_NEGATION_FLIP,
    _COORDINATORS,
    _DEMOTED,
    _HEDGED_WEIGHT,
    _NEGATION_REACH,
    _PROMOTED,
    _QUESTION_WEIGHT,
    _SARCASM_DAMPEN,
    _SARCASM_FLIP,
    _SELL_NEGATION_FLIP,
)
from signalsmith.analyze.lexicon.tokens import _Doc


class _Modifier(NamedTuple):
    end: int
    clause: int
    factor: float
    label: str


def _intensify(hit: _Hit, doc: _Doc, cues: list[_Cue]) -> _Modifier | None:
    """A post-modifier ("rose sharply") boosts the cue it follows; otherwise the next cue."""
    clause = hit.clause
    if hit.entry.post and cues:
        last = cues[-1]
        if last.end == hit.start and last.clause == clause:
            last.weight *= hit.entry.weight
            last.label = f"{last.label} {hit.label}"
            return None
    return _Modifier(hit.end, clause, hit.entry.weight, hit.label)


def _apply_negation(
    cue: _Cue, negator: _Modifier, entry: _Entry, low: list[str]
) -> _Modifier | None:
    """Flip a cue the negator reaches; return the negator if it also covers an "or" after it.

    A negated cue flips but weakens: "not bullish" is doubt, not a short thesis. A negated
    buy ("not adding") mostly means staying put, so it flips even less; a negated sell
    ("never selling") is a holder's conviction and flips almost whole.
    """
    if negator.clause != cue.clause or cue.start - negator.end > _NEGATION_REACH:
        return None
    if entry.rotates:
        # "Not selling a single share": refusing to sell is conviction, close to buying.
        cue.weight *= _SELL_NEGATION_FLIP
    else:
        cue.weight *= _ACTION_NEGATION_FLIP if entry.acquires else negator.factor
    cue.negated = True
    cue.label = f"{negator.label} {cue.label}"
    if cue.end < len(low) and low[cue.end] in _COORDINATORS:
        # "not buying or selling": the negation carries over the coordinated cue.
        return negator._replace(end=cue.end + 1)
    return None


def _apply_booster(cue: _Cue, booster: _Modifier) -> None:
    if booster.clause != cue.clause or cue.start - booster.end > 1:
        return
    cue.weight *= booster.factor
    cue.label = f"{booster.label} {cue.label}"


def _apply_context(cue: _Cue, ctx: _Context) -> None:
    """Sentence-wide effects: contrast, concession, hedging and sarcasm."""
    factor = 1.0
    if cue.sent in ctx.demoted_sents:
        factor *= _DEMOTED
    contrast = ctx.contrast.get(cue.sent)
    if contrast is not None:
        after = cue.clause >= contrast[0]
        factor *= _PROMOTED if after else _DEMOTED
        if after:
            cue.contrasted = True
            cue.notes += (contrast[1],)
    if cue.clause in ctx.conceded:
        factor *= _DEMOTED
    hedge = ctx.hedges.get(cue.sent)
    if hedge is not None:
        cue.asked = hedge == _QUESTION
        factor *= _QUESTION_WEIGHT if cue.asked else _HEDGED_WEIGHT
        cue.hedged = True
        cue.notes += (hedge,)
    if ctx.sarcasm:
        factor *= _sarcastic(cue, ctx.sarcasm)
    cue.weight *= factor


def _sarcastic(cue: _Cue, marker: str) -> float:
    # Sarcasm inverts praise ("love this 20% drop /s"); complaints stay bearish but count less,
    # since the literal reading of a sarcastic text is unreliable.
    cue.sarcastic = True
    cue.notes += (f"sarcasm: {marker}",)
    if cue.weight > 0:
        cue.label = f"{cue.label} (sarcasm)"
        return _SARCASM_FLIP
    return _SARCASM_DAMPEN
