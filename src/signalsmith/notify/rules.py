"""ALERT_RULES → the rules that choose which decisions are sent as notifications. Pure.

A decision is sent when it matches any rule::

    kind=post verdict=BUY,SELL confidence>=0.8 tickers=NVDA,TSLA; kind=spike
    kind=strategy agreement=reject

* Rules are separated by ``;`` or new lines; blank rules are ignored. No rule at all (an empty
  setting, or only blanks) turns rules off: ``parse_rules`` returns ``()``.
* A rule is conditions separated by white space, all of which must hold. A rule without
  ``kind=`` matches every kind. A field appears at most once in a rule.
* A condition is ``<field><op><value>``, with no space inside. Field names and choices are
  case-insensitive; a comma list means "any of":

  ==================  ================  ======================================================
  field               operators         value
  ==================  ================  ======================================================
  kind                =                 post, consensus, spike, insight, strategy
  verdict             =                 BUY, SELL, HOLD
  tickers (ticker)    =                 tickers, compared upper-case: 1-32 of A-Z, 0-9, ".",
                                        "-", "/" (BTC-USD, BRK.B)
  status              =                 ok, degraded, error, abstain, expired
  agreement           =                 confirm, caution, reject (strategy signals)
  confidence          >= > <= < =       a number 0..1 (0.8, .75, 1, 5e-2)
  rating              >= > <= < =       a whole number 1..10 (strategy signals)
  ==================  ================  ======================================================

  A condition on agreement or rating never matches a decision without one (anything but a
  rated strategy signal). Numbers compare as plain floats.

A setting that does not parse raises ``ConfigError("ALERT_RULES", ...)``, one line naming the
rule by its number (non-blank rules counted from 1), its text (cut to 60 characters) and what is
wrong: ``rule 2 "kind=pots": unknown kind pots; choose from consensus, insight, post, spike,
strategy``. The setting holds at most 10,000 characters and 100 rules.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from signalsmith.errors import ConfigError

SETTING: Final = "ALERT_RULES"
MAX_CHARS: Final = 10_000
MAX_RULES: Final = 100
SHOWN_CHARS: Final = 60  # of a rule's text in an error
KINDS: Final = frozenset({"post", "consensus", "spike", "insight", "strategy"})
VERDICTS: Final = frozenset({"BUY", "SELL", "HOLD"})
STATUSES: Final = frozenset({"ok", "degraded", "error", "abstain", "expired"})
AGREEMENTS: Final = frozenset({"confirm", "caution", "reject"})
_CHOICES: Final[Mapping[str, frozenset[str]]] = {
    "kind": KINDS,
    "verdict": VERDICTS,
    "status": STATUSES,
    "agreement": AGREEMENTS,
}
_RANGES: Final[Mapping[str, tuple[int, int]]] = {"confidence": (0, 1), "rating": (1, 10)}
_ALIASES: Final[Mapping[str, str]] = {"ticker": "tickers"}
FIELDS: Final = frozenset({*_CHOICES, *_RANGES, "tickers"})
_UPPER: Final = frozenset({"verdict", "tickers"})  # kept upper-case; the other choices lower
_COMPARE: Final[Mapping[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "=": operator.eq,
}
_VALUE_CHARS: Final = 32  # of a field name or value in an error
_SEPARATOR: Final = re.compile(r"[;\r\n]")
_OPERATOR: Final = re.compile(r"[<>=!]+")
_TICKER: Final = re.compile(r"[A-Z0-9./-]{1,32}")
_NUMBER: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHOLE: Final = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """What a rule can look at in one decision."""

    kind: str  # post | consensus | spike | insight | strategy
    ticker: str  # upper case
    verdict: str  # BUY | SELL | HOLD
    confidence: float
    status: str
    agreement: str | None = None  # strategy signals only
    rating: int | None = None  # strategy signals only


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``<field><op><value>``: a choice field with the values it allows (``op`` "="), or
    a number field with the bound it is compared to."""

    field: str  # one of FIELDS ("tickers" for the alias "ticker")
    op: str
    choices: frozenset[str] = frozenset()  # in the case the field is kept in
    bound: float = 0.0

    def matches(self, facts: AlertFacts) -> bool:
        """Whether ``facts`` meet the condition; never when the decision has no such value."""
        value = _fact(facts, self.field)
        if value is None:
            return False
        if isinstance(value, str):
            return value in self.choices
        return _COMPARE[self.op](value, self.bound)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: a decision matches it when it meets every condition."""

    text: str  # as written, stripped
    conditions: tuple[Condition, ...]

    def matches(self, facts: AlertFacts) -> bool:
        """Whether ``facts`` meet every condition."""
        return all(condition.matches(facts) for condition in self.conditions)

    @property
    def kinds(self) -> frozenset[str] | None:
        """The kinds the rule's ``kind=`` allows; None when it has none (any kind)."""
        for condition in self.conditions:
            if condition.field == "kind":
                return condition.choices
        return None


class _Wrong(Exception):
    """What is wrong with one rule; ``parse_rules`` names the rule."""


def parse_rules(text: str) -> tuple[Rule, ...]:
    """The rules of ALERT_RULES, in order; ``()`` when there are none (rules off). Raises
    ``ConfigError`` naming the setting, and the rule by number and text, when one is wrong."""
    if len(text) > MAX_CHARS:
        raise ConfigError(SETTING, f"{len(text)} characters; at most {MAX_CHARS}")
    written = [rule for rule in (piece.strip() for piece in _SEPARATOR.split(text)) if rule]
    if len(written) > MAX_RULES:
        raise ConfigError(SETTING, f"{len(written)} rules; at most {MAX_RULES}")
    return tuple(_rule(number, rule) for number, rule in enumerate(written, start=1))


def matches_any(rules: Sequence[Rule], facts: AlertFacts) -> bool:
    """Whether ``facts`` match one of ``rules`` (never when there are none)."""
    return any(rule.matches(facts) for rule in rules)


def rule_kinds(rules: Sequence[Rule]) -> frozenset[str]:
    """The kinds ``rules`` can match: every kind when one of them has no ``kind=``."""
    kinds: set[str] = set()
    for rule in rules:
        if rule.kinds is None:
            return KINDS
        kinds |= rule.kinds
    return frozenset(kinds)


def _rule(number: int, text: str) -> Rule:
    try:
        return Rule(text, _conditions(text))
    except _Wrong as wrong:
        shown = _shown(text, SHOWN_CHARS)
        raise ConfigError(SETTING, f'rule {number} "{shown}": {wrong}') from None


def _conditions(text: str) -> tuple[Condition, ...]:
    conditions: dict[str, Condition] = {}
    for word in text.split():
        condition = _condition(word)
        if condition.field in conditions:
            raise _Wrong(f"{condition.field} is given twice; a rule names a field once")
        conditions[condition.field] = condition
    return tuple(conditions.values())


def _condition(word: str) -> Condition:
    found = _OPERATOR.search(word)
    if found is None:
        raise _Wrong(f"{_shown(word)} has no operator; write field=value, e.g. kind=post")
    field = _field(word[: found.start()], word)
    op, value = found.group(), word[found.end() :]
    allowed = tuple(_COMPARE) if field in _RANGES else ("=",)
    if op not in allowed:
        raise _Wrong(f"{field} takes {', '.join(allowed)}, not {_shown(op)}")
    if not value:
        raise _Wrong(f"{field}{op} has no value")
    if field in _RANGES:
        return Condition(field, op, bound=_number(field, value))
    return Condition(field, op, choices=_choices(field, value))


def _field(name: str, word: str) -> str:
    if not name:
        raise _Wrong(f"{_shown(word)} names no field")
    field = _ALIASES.get(name.lower(), name.lower())
    if field not in FIELDS:
        names = ", ".join(sorted({*FIELDS, *_ALIASES}))
        raise _Wrong(f"unknown field {_shown(name)}; choose from {names}")
    return field


def _choices(field: str, value: str) -> frozenset[str]:
    items = value.split(",")
    if not all(items):
        raise _Wrong(f"{field}={_shown(value)} has an empty item")
    return frozenset(_choice(field, item) for item in items)


def _choice(field: str, item: str) -> str:
    chosen = item.upper() if field in _UPPER else item.lower()
    if field == "tickers":
        if not _TICKER.fullmatch(chosen):
            raise _Wrong(f"{_shown(item)} is not a ticker: 1-32 of A-Z, 0-9, '.', '-', '/'")
        return chosen
    allowed = _CHOICES[field]
    if chosen not in allowed:
        names = ", ".join(sorted(allowed))
        raise _Wrong(f"unknown {field} {_shown(item)}; choose from {names}")
    return chosen


def _number(field: str, value: str) -> float:
    low, high = _RANGES[field]
    whole = field == "rating"
    if not (_WHOLE if whole else _NUMBER).fullmatch(value):
        what = "a whole number" if whole else "a number"
        raise _Wrong(f"{field} {_shown(value)} is not {what}; give {low}..{high}")
    number = float(value)  # digits only: a long one is inf, never an error
    if not low <= number <= high:
        raise _Wrong(f"{field} {_shown(value)} is out of range; give {low}..{high}")
    return number


def _fact(facts: AlertFacts, field: str) -> str | float | None:
    """The decision's value of ``field``, in the case the rules keep (None: it has none)."""
    values: dict[str, str | float | None] = {
        "kind": facts.kind.lower(),
        "verdict": facts.verdict.upper(),
        "tickers": facts.ticker.upper(),
        "status": facts.status.lower(),
        "agreement": facts.agreement.lower() if facts.agreement is not None else None,
        "confidence": facts.confidence,
        "rating": facts.rating,
    }
    return values[field]


def _shown(text: str, limit: int = _VALUE_CHARS) -> str:
    """``text`` as an error quotes it: one line of printable characters, cut to ``limit``."""
    line = "".join(char if char.isprintable() else "?" for char in " ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"
