"""Changes told only by figures ("EUR 7.4 mn, compared with EUR 5.1 mn"), read as cues."""

from __future__ import annotations

import math
from typing import NamedTuple

from signalsmith.analyze.lexicon._context import COMPARE, Context, Cue
from signalsmith.analyze.lexicon._tables import (
    CURRENCIES,
    FIGURE_KINDS,
    FIGURE_MARKERS,
    FIGURE_WEIGHT,
    SENTENCE_ENDS,
    UNITS,
    A,
)
from signalsmith.analyze.lexicon._tokens import Doc


class _Figure(NamedTuple):
    """A number in the text: where, its value with the unit applied, and what it is of."""

    pos: int
    value: float
    currency: str  # the currency word before it, if any
    kind: str  # "loss", "profit" or "" from the words just before it


def _figure_at(low: list[str], pos: int, floor: int) -> _Figure | None:
    """The number token at ``pos`` read as a figure; None for years and non-numbers."""
    tok = low[pos]
    if not tok[-1].isdigit():
        return None
    value = _number(tok)
    before = low[max(floor, pos - 3) : pos]
    currency = next((word for word in reversed(before) if word in CURRENCIES), "")
    if value is None or (not currency and tok.isdigit() and 1950 <= value <= 2100):
        return None  # a year, not an amount
    if pos + 1 < len(low):
        value *= UNITS.get(low[pos + 1], 1.0)
    kind = next((FIGURE_KINDS[word] for word in before if word in FIGURE_KINDS), "")
    return _Figure(pos, value, currency, kind)


def _number(tok: str) -> float | None:
    """ "1,250.5" and "13.1" as written in English; a lone comma is a decimal comma."""
    if "," in tok:
        head, _, tail = tok.partition(",")
        tok = (
            tok.replace(",", "")
            if len(tail.split(",")[0].split(".")[0]) == 3
            else (f"{head}.{tail}")
        )
    try:
        return float(tok)
    except ValueError:
        return None


def _first_figure(low: list[str], lo: int, hi: int) -> _Figure | None:
    for pos in range(lo, min(hi, len(low))):
        if low[pos] in SENTENCE_ENDS:
            return None
        figure = _figure_at(low, pos, lo)
        if figure is not None:
            return figure
    return None


def _last_figure(low: list[str], lo: int, hi: int) -> _Figure | None:
    for pos in range(hi - 1, max(lo, 0) - 1, -1):
        if low[pos] in SENTENCE_ENDS:
            return None
        figure = _figure_at(low, pos, max(lo, 0))
        if figure is not None:
            return figure
    return None


def _compared_figures(low: list[str], marker: int) -> tuple[_Figure, _Figure] | None:
    """(current, earlier) for "to X from Y", "from Y to X", "X, compared with Y", "X (Y)"."""
    bracket = low[marker] == "("
    earlier = _first_figure(low, marker + 1, marker + (3 if bracket else 8))
    if earlier is None:
        return None
    current: _Figure | None = None
    if bracket:
        # "EUR 9.8 mn (EUR 7.3 mn)": only a short bracket right after a figure is a base.
        if ")" in low[earlier.pos + 1 : earlier.pos + 4]:
            current = _last_figure(low, marker - 8, marker)
    elif low[marker] == "from":
        after = earlier.pos + 1
        to = next((i for i in range(after, min(after + 4, len(low))) if low[i] == "to"), -1)
        if to >= 0:
            current = _first_figure(low, to + 1, to + 8)
        elif marker >= 2 and "to" in low[max(0, marker - 7) : marker]:
            current = _last_figure(low, marker - 7, marker)
    else:
        current = _last_figure(low, marker - 10, marker)
    if current is None or (earlier.currency and current.currency != earlier.currency):
        return None
    return current, earlier


def _change_sign(current: _Figure, earlier: _Figure, metric: str) -> float:
    """+1 for a rise, -1 for a fall; from a loss to a profit is a rise whatever the numbers.

    A figure with no "loss" or "profit" just before it is of the sentence's ``metric``.
    """
    now, then = current.kind or metric, earlier.kind or metric
    if now != then:
        return 1.0 if then == "loss" else -1.0
    if math.isclose(current.value, earlier.value, rel_tol=0.005):
        return 0.0
    return 1.0 if current.value > earlier.value else -1.0


def _figure_cue(low: list[str], marker: int, sentence: int, ctx: Context) -> Cue | None:
    """A change reported only through figures, scored by the metric it is of."""
    pair = _compared_figures(low, marker)
    if pair is None:
        return None
    current, earlier = pair
    subjects = [s for s in ctx.subjects.get(sentence, ()) if s.start < marker]
    metric = "loss" if subjects and subjects[-1].polarity < 0 else "profit"
    swung = (current.kind or metric) != (earlier.kind or metric)
    sign = _change_sign(current, earlier, metric)
    if not sign:
        return None
    if not (subjects or swung):
        ctx.unscored.append(sentence)  # "from 80 to 90": a change, but of nothing named
        return None
    polarity = 1.0 if swung else subjects[-1].polarity
    label = subjects[-1].label if subjects else "result"
    weight = sign * polarity * FIGURE_WEIGHT
    direction = "up" if sign > 0 else "down"
    cue = Cue(marker, marker + 1, sentence, 0, weight, f"{label} {direction} (figures)", A)
    cue.target = subjects[-1].sym if subjects else ""
    return cue


def with_figures(cues: list[Cue], doc: Doc, ctx: Context) -> list[Cue]:
    """Add changes told by figures ("EUR 7.4 mn, compared with EUR 5.1 mn") in sentences
    with no change word of their own; they replace any "compared with a loss" cue there."""
    low = doc.low
    done: set[int] = set()
    for marker, tok in enumerate(low):
        if tok not in FIGURE_MARKERS:
            continue
        sentence = doc.sent_of(marker)
        if sentence in done or sentence in ctx.directions:
            continue
        cue = _figure_cue(low, marker, sentence, ctx)
        if cue is not None:
            cue.clause = doc.clause_of(marker)
            done.add(sentence)
            cues = [c for c in cues if not (c.flags == COMPARE and c.sent == sentence)]
            cues.append(cue)
    return cues
