"""Cues into an ``Opinion``: the sum with repeats discounted, the HOLD dead zone, confidence,
the evidence lines and the ``Signals`` counts."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Final, NamedTuple

from signalsmith.analyze.lexicon._context import Context, Cue
from signalsmith.analyze.lexicon._tables import MAX_EVIDENCE, NO_EVIDENCE_CONFIDENCE
from signalsmith.decide import DEAD_ZONE
from signalsmith.domain import Opinion, Signals, Verdict

# One HOLD dead zone for the lexicon and the decision. The weakest words weigh 0.17, which
# squashes to 0.145: alone ("what a nice weekend") they stay HOLD, two of them are a view.
_DEAD_ZONE: Final = DEAD_ZONE


def _describe(cue: Cue) -> str:
    if cue.negated:
        return f"negated: {cue.label}"
    return f"{'+' if cue.weight > 0 else '-'} {cue.label}"


class Scope(NamedTuple):
    """What the sentences an opinion reads hold besides its cues (see ``Signals``)."""

    hedges: int
    sarcasm: bool
    unscored: int
    scheduled: int


def whole_scope(ctx: Context) -> Scope:
    return Scope(len(ctx.hedges), bool(ctx.sarcasm), len(ctx.unscored), len(ctx.scheduled))


_HOLD: Final = Verdict.HOLD  # module constants for the same reason as ``_entries.K_CUE``
_BUY: Final = Verdict.BUY
_SELL: Final = Verdict.SELL

# Texts repeat a few small combinations of counts; a frozen instance is safe to share, and
# building one (through object.__setattr__) costs more than finding it.
_signals: Final = functools.lru_cache(maxsize=4096)(Signals)


@functools.lru_cache(maxsize=1024)
def _silent(scope: Scope) -> Opinion:
    """The opinion of a text (or ticker) with no cues: it depends on its scope alone."""
    signals = _signals(0, 0, 0, 0, 0, 0, *scope)
    return _verdict(0.0, 0.0, 0.0, False, (), signals=signals)


def opinion_of(cues: Sequence[Cue], scope: Scope) -> Opinion:
    """Sum the cues (repeats of one cue count less each time) and turn that into an Opinion."""
    if not cues:
        return _silent(scope)
    total = magnitude = hedged = 0.0
    sarcastic = False
    repeats: dict[str, int] = {}
    evidence: dict[str, None] = {}
    bullish = bearish = negated = hedged_cues = asked = contrasted = 0
    for cue in cues:
        seen = repeats.get(cue.label, 0)
        repeats[cue.label] = seen + 1
        weight = cue.weight * 0.5**seen  # "🚀🚀🚀" is enthusiasm, not three reasons
        total += weight
        magnitude += abs(weight)
        bullish += weight > 0
        bearish += weight < 0
        negated += cue.negated
        if cue.hedged:
            hedged += abs(weight)
            hedged_cues += not cue.asked
            asked += cue.asked
        contrasted += cue.contrasted
        sarcastic = sarcastic or cue.sarcastic
        evidence[_describe(cue)] = None
        if cue.notes:
            evidence.update(dict.fromkeys(cue.notes))
    signals = _signals(bullish, bearish, negated, hedged_cues, asked, contrasted, *scope)
    evidence_lines = tuple(evidence)[:MAX_EVIDENCE]
    return _verdict(total, magnitude, hedged, sarcastic, evidence_lines, signals=signals)


def _verdict(
    total: float,
    magnitude: float,
    hedged: float,
    sarcastic: bool,
    evidence: tuple[str, ...],
    *,
    signals: Signals,
) -> Opinion:
    """Score squashes the sum into (-1, 1); a dead zone around 0 is HOLD.

    Confidence grows with how much evidence there is and how much of it agrees, and shrinks
    with the share of it that was hedged or asked as a question, and with sarcasm.
    """
    if magnitude == 0.0:
        return Opinion(_HOLD, NO_EVIDENCE_CONFIDENCE, 0.0, evidence, signals)
    score = total / (abs(total) + 1.0)
    agreement = abs(total) / magnitude
    strength = 1.0 - math.exp(-magnitude)
    damping = 1.0 - 0.45 * (hedged / magnitude)
    if sarcastic:
        damping *= 0.85
    if abs(score) < _DEAD_ZONE:
        verdict = _HOLD
        confidence = (0.25 + 0.35 * (1.0 - agreement) * strength) * damping
    else:
        verdict = _BUY if score > 0 else _SELL
        confidence = (0.3 + 0.65 * agreement * strength) * damping
    confidence = round(min(1.0, max(0.0, confidence)), 4)
    return Opinion(verdict, confidence, round(min(1.0, max(-1.0, score)), 4), evidence, signals)
