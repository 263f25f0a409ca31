"""What a matched phrase means (``_Kind``, ``Entry``), and the phrase trie built once from the
tables, indexed by first and second word."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, NamedTuple

from signalsmith.analyze.lexicon._tables import (
    ACQUIRING,
    ADJECTIVES,
    ANALYST_ACTIONS,
    BEAR_POSITIONS,
    BLOCKERS,
    BULL_POSITIONS,
    COMPARED,
    CONCESSIONS,
    CONTRASTS,
    DEAL_STOPS,
    DEAL_WORDS,
    DIRECTIONS,
    ECHOES,
    GUIDANCE,
    HEDGES,
    INTENSIFIERS,
    LINGO,
    MOVES,
    NEGATORS,
    NEUTRAL_STANCES,
    NEWS,
    NOUN_DIRECTIONS,
    OBJECT_VERBS,
    PNL_PHRASES,
    PUTS,
    REAFFIRMS,
    ROTATING_SELLS,
    ROTATION_VERBS,
    SARCASM,
    SCHEDULE,
    SHARE_SHIFTS,
    SUBJECT_AHEAD,
    SUBJECTS,
    A,
    P,
)


class _Kind(IntEnum):
    CUE = 0
    DIR = 1
    SUBJ = 2
    NEG = 3
    INTENS = 4
    HEDGE = 5
    SARC = 6
    CONTRAST = 7
    CONCEDE = 8
    ROT_VERB = 9
    PNL = 10
    BLOCK = 11
    SCHED = 12
    STANCE = 13
    ECHO = 14


# The members as plain constants for the per-hit code: in Python 3.11 every ``_Kind.X``
# lookup goes through the enum machinery (~70 ns), several times per hit.
K_CUE: Final = _Kind.CUE
K_DIR: Final = _Kind.DIR
K_SUBJ: Final = _Kind.SUBJ
K_NEG: Final = _Kind.NEG
K_INTENS: Final = _Kind.INTENS
K_HEDGE: Final = _Kind.HEDGE
K_SARC: Final = _Kind.SARC
K_CONTRAST: Final = _Kind.CONTRAST
K_CONCEDE: Final = _Kind.CONCEDE
K_ROT_VERB: Final = _Kind.ROT_VERB
K_PNL: Final = _Kind.PNL
K_SCHED: Final = _Kind.SCHED
K_STANCE: Final = _Kind.STANCE
K_ECHO: Final = _Kind.ECHO


_STRUCTURAL_KINDS: Final = frozenset(
    {
        _Kind.SUBJ,
        _Kind.HEDGE,
        _Kind.SARC,
        _Kind.CONTRAST,
        _Kind.CONCEDE,
        _Kind.ROT_VERB,
        _Kind.SCHED,
        _Kind.STANCE,
        _Kind.ECHO,
    }
)


_SILENT_KINDS: Final = frozenset(
    {
        _Kind.SUBJ,
        _Kind.HEDGE,
        _Kind.CONTRAST,
        _Kind.CONCEDE,
        _Kind.ROT_VERB,
        _Kind.BLOCK,
        _Kind.SCHED,
        _Kind.STANCE,
        _Kind.ECHO,
    }
)


@dataclass(frozen=True, slots=True)
class Entry:
    """What a matched phrase means; ``weight`` is read per kind (cue weight, polarity, factor)."""

    kind: _Kind
    weight: float = 0.0
    alone: float = 0.0  # DIR: the weight when no financial noun is in reach
    mode: str = A
    ahead: int = SUBJECT_AHEAD  # DIR: how far after it a subject may sit (-1: never)
    adjective: bool = False
    acquires: bool = False
    bear: bool = False  # a position that bets on a fall
    bull: bool = False  # a position that bets on a rise
    rates: bool = False  # an analyst's action: about the stock rated, not the rating firm
    put: bool = False
    rotates: bool = False
    post: bool = False
    move: bool = False  # a price move, not a view: a buyer's sentence discounts it
    compare: bool = False  # a "compared with a loss" base, replaced by figures if given
    objects: frozenset[str] = frozenset()  # nouns one of which must follow for it to count
    # (for a STANCE, it then quiets its own clause rather than its whole sentence)
    noted: bool = field(init=False)  # whether the context needs to hear about this hit
    plain: bool = field(init=False)  # a cue whose weight needs no context at all
    silent: bool = field(init=False)  # never scores by itself (subjects, hedges, blockers...)

    def __post_init__(self) -> None:
        kind = self.kind
        noted = kind in _STRUCTURAL_KINDS or kind is _Kind.DIR or self.rotates
        noted = noted or self.bear or self.bull
        object.__setattr__(self, "noted", noted or self.put)
        special = self.adjective or self.acquires or self.rotates or bool(self.objects)
        special = special or self.move or self.compare
        plain = kind is _Kind.CUE and not special
        object.__setattr__(self, "plain", plain)
        silent = self.kind in _SILENT_KINDS or (self.kind is _Kind.SARC and not self.weight)
        object.__setattr__(self, "silent", silent)


class _Phrase(NamedTuple):
    size: int
    tokens: list[str]
    entry: Entry
    label: str


class _Node(NamedTuple):
    """Phrases starting with one token: the one-word phrase, and longer ones by second word."""

    single: _Phrase | None
    longer: dict[str, list[_Phrase]]


Trie = dict[str, _Node]


def _expand(spec: str) -> list[tuple[str, ...]]:
    """All token sequences a spec stands for (the mini-syntax is atop ``_tables``)."""
    seqs: list[tuple[str, ...]] = [()]
    for slot in spec.split():
        optional = len(slot) > 1 and slot.endswith("?")
        options = slot[:-1].split("|") if optional else slot.split("|")
        grown = [(*seq, option) for seq in seqs for option in options]
        seqs = grown + seqs if optional else grown
    return [seq for seq in seqs if seq]


def _entries() -> Iterable[tuple[str, Entry]]:
    """Every table as (spec, entry) pairs, so the trie builder stays simple."""
    yield from _cue_entries()
    yield from _modifier_entries()


def _cue_entries() -> Iterable[tuple[str, Entry]]:
    for spec, weight, mode in LINGO + NEWS:
        yield spec, Entry(_Kind.CUE, weight, mode=mode)
    for spec, weight, mode in ANALYST_ACTIONS:
        yield spec, Entry(_Kind.CUE, weight, mode=mode, rates=True)
    for spec, weight, mode in ACQUIRING:
        yield spec, Entry(_Kind.CUE, weight, mode=mode, acquires=True)
    for spec, weight, mode in BULL_POSITIONS:
        yield spec, Entry(_Kind.CUE, weight, mode=mode, bull=True)
    for spec, weight, mode in BEAR_POSITIONS:
        yield spec, Entry(_Kind.CUE, weight, mode=mode, bear=True)
    for spec, weight, mode in PUTS:
        yield spec, Entry(_Kind.CUE, weight, mode=mode, bear=True, put=True)
    for spec, weight, mode in (*ROTATING_SELLS, *SHARE_SHIFTS):
        yield spec, Entry(_Kind.CUE, weight, mode=mode, rotates=True)
    for spec, weight in ADJECTIVES:
        yield spec, Entry(_Kind.CUE, weight, adjective=True)
    for spec, weight in PNL_PHRASES:
        yield spec, Entry(_Kind.PNL, weight, mode=P)
    yield from _conditional_entries()


def _conditional_entries() -> Iterable[tuple[str, Entry]]:
    """Cues whose weight depends on what else the sentence holds."""
    for spec, weight, mode in MOVES:
        yield spec, Entry(_Kind.CUE, weight, mode=mode, move=True)
    for spec, weight, mode in COMPARED:
        yield spec, Entry(_Kind.CUE, weight, mode=mode, compare=True)
    for spec, weight, objects in OBJECT_VERBS:
        yield spec, Entry(_Kind.CUE, weight, objects=objects)


def _modifier_entries() -> Iterable[tuple[str, Entry]]:
    for spec, weight in SUBJECTS:
        yield spec, Entry(_Kind.SUBJ, weight)
    for spec, sign, alone in DIRECTIONS:
        yield spec, Entry(_Kind.DIR, sign, alone=alone, mode=P)
    for spec, sign, alone in NOUN_DIRECTIONS:
        yield spec, Entry(_Kind.DIR, sign, alone=alone, mode=P, ahead=-1)
    for spec, factor, post in INTENSIFIERS:
        yield spec, Entry(_Kind.INTENS, factor, post=post)
    for spec, weight in SARCASM:
        yield spec, Entry(_Kind.SARC, weight)
    yield from _plain(NEGATORS, _Kind.NEG)
    deal_stop = Entry(_Kind.NEG, objects=DEAL_WORDS)
    yield from ((spec, deal_stop) for spec in DEAL_STOPS)
    yield from _plain(HEDGES, _Kind.HEDGE)
    yield from _plain(CONTRASTS, _Kind.CONTRAST)
    yield from _plain(CONCESSIONS, _Kind.CONCEDE)
    yield from _plain(ROTATION_VERBS, _Kind.ROT_VERB)
    yield from _plain(BLOCKERS, _Kind.BLOCK)
    yield from _plain(SCHEDULE, _Kind.SCHED)
    yield from _plain(NEUTRAL_STANCES, _Kind.STANCE)
    yield from _plain(ECHOES, _Kind.ECHO)
    reaffirms = Entry(_Kind.STANCE, objects=GUIDANCE)
    yield from ((spec, reaffirms) for spec in REAFFIRMS)


def _plain(specs: Iterable[str], kind: _Kind) -> Iterable[tuple[str, Entry]]:
    entry = Entry(kind)
    return ((spec, entry) for spec in specs)


def build_trie() -> Trie:
    """Index phrases by first and second token, longest first, so matching is a dict hit or two."""
    singles: dict[str, _Phrase] = {}
    longer: dict[str, dict[str, list[_Phrase]]] = {}
    seen: set[tuple[str, ...]] = set()
    for spec, entry in _entries():
        for seq in _expand(spec):
            if seq in seen:
                raise ValueError(f"lexicon phrase defined twice: {' '.join(seq)!r}")
            seen.add(seq)
            phrase = _Phrase(len(seq), list(seq), entry, " ".join(seq))
            if len(seq) == 1:
                singles[seq[0]] = phrase
            else:
                longer.setdefault(seq[0], {}).setdefault(seq[1], []).append(phrase)
    for by_second in longer.values():
        for phrases in by_second.values():
            phrases.sort(key=lambda phrase: -phrase.size)
    return {first: _Node(singles.get(first), longer.get(first, {})) for first in singles | longer}
