"""What scoring reads beside the hits: the sentence-level context gathered before any cue is
scored (subjects, hedges, contrasts, rotation, sarcasm), and the cue record it fills in."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Final, NamedTuple

from signalsmith.analyze.lexicon._entries import (
    K_CONCEDE,
    K_CONTRAST,
    K_DIR,
    K_ECHO,
    K_HEDGE,
    K_ROT_VERB,
    K_SARC,
    K_SCHED,
    K_STANCE,
    K_SUBJ,
)
from signalsmith.analyze.lexicon._match import Hit
from signalsmith.analyze.lexicon._tables import (
    BARE_POSITIONS,
    CLAUSE_SPLITS,
    NOT_GUIDANCE,
    OPTION_WORDS,
    POSITION_LINKS,
    SENTENCE_ENDS,
    VERB_OBJECTS,
    VERB_SUBJECTS,
)
from signalsmith.analyze.lexicon._tokens import ANCHOR, Doc, word_after

QUESTION: Final = "question"  # the hedge a question puts on its sentence
# What ``Cue.flags`` may hold: a buying cue, a price move, a "compared with a loss" base.
BUYS: Final = 1
MOVE: Final = 2
COMPARE: Final = 3


class Subject(NamedTuple):
    start: int
    end: int
    polarity: float
    label: str
    sent: int
    sym: str = ""  # the ticker, when the subject is a ticker mention


@dataclass(slots=True)
class Cue:
    """One scored cue after modifiers, positioned so it can be attributed to a ticker."""

    start: int
    end: int
    sent: int
    clause: int
    weight: float
    label: str
    mode: str
    target: str = ""  # the one ticker the cue is about, when its subject is that ticker
    negated: bool = False
    hedged: bool = False  # by a hedge word or a question
    asked: bool = False  # in a question
    contrasted: bool = False  # after a contrast word
    sarcastic: bool = False
    flags: int = 0  # BUYS, MOVE, COMPARE
    notes: tuple[str, ...] = ()
    price: bool = False  # a move or level of the share price
    rates: bool = False  # an analyst's action: never the rating firm's own cue


class Context:
    """Sentence-level facts gathered from the hits before any cue is scored.

    A plain slotted class: one is built per text, and literals are cheaper than the
    default factories a dataclass would call.
    """

    __slots__ = (
        "conceded",
        "contrast",
        "demoted_sents",
        "directions",
        "echoes",
        "hedges",
        "kept_guidance",
        "neutral_clauses",
        "neutral_ratings",
        "option_verbs",
        "positions",
        "put_clauses",
        "rotating",
        "sarcasm",
        "scheduled",
        "subject_starts",
        "subjects",
        "unscored",
    )

    def __init__(self) -> None:
        self.subjects: dict[int, list[Subject]] = {}  # by sentence, in order of position
        self.subject_starts: dict[int, list[int]] = {}  # their starts, where bisected
        self.directions: dict[int, list[int]] = {}  # change-word starts
        self.rotating: dict[int, int] = {}  # sentence -> where its first rotating word starts
        # Positions named, by sentence: where each starts, whether it bets on a fall, its clause.
        self.positions: dict[int, tuple[list[int], list[bool], list[int]]] = {}
        self.put_clauses: set[int] = set()
        self.hedges: dict[int, str] = {}
        self.contrast: dict[int, tuple[int, str]] = {}
        self.demoted_sents: set[int] = set()
        self.conceded: set[int] = set()
        self.sarcasm = ""
        self.unscored: list[int] = []  # sentences of unscored market terms
        self.scheduled: list[int] = []  # sentences of dates, upcoming events
        self.echoes: list[Hit] = []  # "not so much": the previous clause's view, reversed
        self.option_verbs: set[int] = set()  # where "calls"/"puts" is a verb, not a position
        self.neutral_ratings: list[int] = []  # clauses of analysts' neutral ratings, in order
        self.neutral_clauses: set[int] = set()  # guidance kept as it was
        self.kept_guidance: list[tuple[int, int]] = []  # the words naming the guidance kept

    def subject_keys(self, sentence: int) -> list[int]:
        """Where the sentence's subjects start, in order (built once, when first bisected)."""
        keys = self.subject_starts.get(sentence)
        if keys is None:
            subjects = self.subjects.get(sentence, ())
            keys = self.subject_starts[sentence] = [subject.start for subject in subjects]
        return keys

    def bets_on_fall(self, sentence: int, clause: int, pos: int) -> bool:
        """Whether the position a gain reported at ``pos`` is about bets on a fall: the last
        one named before it in its sentence, else the next one in its clause, else the previous
        sentence's last ("Bought puts. Printing, unlike my calls"), else the next one."""
        named = self.positions.get(sentence)
        before = bisect_left(named[0], pos) if named is not None else 0
        if named is not None and before:
            return named[1][before - 1]
        if named is not None and named[2][0] == clause:  # "printing on my SPY puts"
            return named[1][0]
        earlier = self.positions.get(sentence - 1)
        if earlier is not None:
            return earlier[1][-1]
        return named is not None and named[1][0]

    def colours_cues(self) -> bool:
        """Whether any sentence-wide effect applies, so plain texts skip that pass."""
        return bool(
            self.hedges or self.contrast or self.demoted_sents or self.conceded or self.sarcasm
        )


def gather_context(doc: Doc, hits: list[Hit]) -> Context:
    """Collect subjects, hedges, contrasts, rotation and sarcasm before scoring cues."""
    ctx = Context()
    for anchor in doc.anchors:
        # A ticker is a price subject: "NVDA fell 5%" is a fall in something good to hold.
        subject = Subject(anchor.pos, anchor.pos + 1, 0.7, anchor.sym, anchor.sent, anchor.sym)
        ctx.subjects.setdefault(anchor.sent, []).append(subject)
    for sentence in doc.questions:
        ctx.hedges[sentence] = QUESTION
    if doc.strikes:
        ctx.unscored.extend(doc.sent_of(pos) for pos in doc.strikes)
    for hit in hits:
        entry = hit.entry
        if not entry.noted:
            continue
        _note_kind(hit, doc, ctx)
        if entry.rotates or entry.kind is K_ROT_VERB:
            ctx.rotating.setdefault(hit.sent, hit.start)
        if entry.bear or entry.bull:
            _note_position(hit, doc, ctx)
        if entry.put and hit.start not in ctx.option_verbs:
            ctx.put_clauses.add(hit.clause)
    for subjects in ctx.subjects.values():
        subjects.sort()  # in order of position: ties go to the earlier, bisection works
    return ctx


def _note_position(hit: Hit, doc: Doc, ctx: Context) -> None:
    """A position held is noted for the gains reported after it; "calls" or "puts" used as
    a verb is no cue at all."""
    if _option_verb(hit, doc):
        ctx.option_verbs.add(hit.start)
    elif _held(hit, doc):
        starts, bears, clauses = ctx.positions.setdefault(hit.sent, ([], [], []))
        starts.append(hit.start)  # hits come in order of position
        bears.append(hit.entry.bear)
        clauses.append(hit.clause)


def _held(hit: Hit, doc: Doc) -> bool:
    """Whether a position word names a position: a bare "long" or "short" only beside a
    ticker ("long $NVDA", "$TSLA short", "long position in AMD"; not "puts long enough",
    "long dated"); every other position phrase ("short position", "shorted", "puts")."""
    low = doc.low
    if hit.end - hit.start > 1 or low[hit.start] not in BARE_POSITIONS:
        return True
    after = low[hit.end] if hit.end < len(low) else ""
    if (hit.start and low[hit.start - 1] == ANCHOR) or after == ANCHOR:
        return True
    return after in POSITION_LINKS and hit.end + 1 < len(low) and low[hit.end + 1] == ANCHOR


def _option_verb(hit: Hit, doc: Doc) -> bool:
    """Whether "calls" or "puts" is a verb here: a pronoun acts ("he calls", "she puts") or
    is acted on ("the CEO calls it a transition year", "puts his money"). Anything else is a
    position: "puts on SPY", "Tesla puts printing", "Jan calls on AAPL"."""
    low = doc.low
    if hit.end - hit.start > 1 or low[hit.start] not in OPTION_WORDS:
        return False  # "buy calls", "call options": a position by their own words
    if hit.end < len(low) and low[hit.end] in VERB_OBJECTS:
        return True
    return hit.start > 0 and low[hit.start - 1] in VERB_SUBJECTS


def _note_kind(hit: Hit, doc: Doc, ctx: Context) -> None:
    entry, sentence = hit.entry, hit.sent
    kind = entry.kind
    if kind is K_DIR:
        ctx.directions.setdefault(sentence, []).append(hit.start)
    elif kind is K_SUBJ:
        subject = Subject(hit.start, hit.end, entry.weight, hit.label, sentence)
        ctx.subjects.setdefault(sentence, []).append(subject)
    elif kind is K_HEDGE:
        ctx.hedges.setdefault(sentence, f"hedge: {hit.label}")
    elif kind is K_SARC and not ctx.sarcasm:
        # A sarcastic poster rarely turns sincere halfway, so the marker covers the whole text.
        ctx.sarcasm = hit.label
    elif kind is K_CONTRAST:
        _note_contrast(hit, doc, ctx, sentence)
    elif kind is K_CONCEDE:
        ctx.conceded.add(doc.clause_of(hit.end - 1))
    elif kind is K_SCHED:
        ctx.scheduled.append(sentence)
    elif kind is K_STANCE:
        _note_stance(hit, doc, ctx)
    elif kind is K_ECHO:
        ctx.echoes.append(hit)


def _note_stance(hit: Hit, doc: Doc, ctx: Context) -> None:
    """A neutral rating covers its clause and the ticker-free ones after it in its sentence;
    kept guidance its clause, once its noun is found."""
    nouns = hit.entry.objects
    if not nouns:
        ctx.neutral_ratings.append(hit.clause)
        return
    noun = _guidance_noun(hit, doc, nouns)
    if noun >= 0:
        ctx.neutral_clauses.add(hit.clause)
        ctx.kept_guidance.append((hit.end, noun))


def _guidance_noun(hit: Hit, doc: Doc, nouns: frozenset[str]) -> int:
    """Where the guidance noun after "reaffirms" sits ("reaffirms fiscal-year cloud growth
    target"), if one comes in reach before a rating word ("reiterates buy, $300 target"), a
    clause break, a ticker or other news; else -1."""
    return word_after(doc.low, hit.end, _GUIDANCE_REACH, nouns, _NOT_KEPT_GUIDANCE)


# "reaffirms fiscal-year cloud growth target": the noun within this many words, and none of
# these before it ("confirms record demand and raises its outlook" keeps nothing).
_GUIDANCE_REACH: Final = 6
_NOT_KEPT_GUIDANCE: Final = (
    NOT_GUIDANCE | CLAUSE_SPLITS | {"and", "as", "with", "after", "despite", ANCHOR}
)


def _note_contrast(hit: Hit, doc: Doc, ctx: Context, sentence: int) -> None:
    # "However," opening a sentence demotes the previous sentence; mid-sentence "but" demotes
    # the clauses before it and promotes the ones after it.
    opens = hit.start == 0 or doc.low[hit.start - 1] in SENTENCE_ENDS
    if opens and sentence > 0:
        ctx.demoted_sents.add(sentence - 1)
    ctx.contrast.setdefault(sentence, (hit.clause, f"contrast: {hit.label}"))
