"""The check a model's insight must pass before it is published: short, naming the product, no
introduction, and quoting only numbers that were computed. Pure; the problems it returns are
worded to be sent back to the model.

The contract, rule by rule:

* **Length**: at most ``max_words`` whitespace-separated words (100 by default), counted as
  ``trend.render_insight`` counts them.
* **The product**: the product id in any case, with ``-``, ``/``, a space or nothing between
  its two parts (``BTC-USD``, ``btc/usd``, ``BTC USD``, ``BTCUSD``); for an exchange pair
  (the quote is a currency, see ``envelope.asset_class``) the base alone (``BTC``) too. Names
  such as "Bitcoin" are not accepted: no table of them is kept, and the prompt asks for the id.
* **No introduction**: the reply must not open with a preamble (``INTRODUCTION`` lists the
  phrases: "Here is", "Sure", "Certainly", "As a seasoned analyst", "Based on the data",
  "In summary", "Let me", greetings...), nor with a heading: a first line ending in ``:`` or
  starting with ``#``. Markdown emphasis and quotes before the first word are ignored.
* **Numbers**: every number quoted must be one of ``values`` (``prompt.prompt_values``: the
  indicators, the windows and candle size, the fixed settings such as RSI 14 or MACD 12/26/9).
  A quoted number ``q`` matches a value ``v`` when ``| |q| - |v| | <= max(tolerance * |v|,
  half a unit of q's last digit)``: within 0.5% (``TOLERANCE``), or ``v`` rounded to the
  digits the text shows ("1.2%" for 1.23, "50k" for 50,123, "65" for 65.43). Signs are not
  compared, since the text says "down 1.2%" for -1.23; a sign error is not caught.
  Read as numbers: ``50,000.25``, ``.5``, ``1.2e3``, ``$50k`` (k thousand, M or mn million,
  B or bn billion, and the words; single letters only when glued to the number; a lone ``m``
  reads both as a unit and as million, since "5m candles" and "$5m" both occur). A number
  followed by ``%`` or "percent" must match a percentage: a ``*_pct`` value, the RSI, the
  stochastic lines, or the Bollinger position in % of the band. Not read: numbers glued to a
  preceding letter (``SMA20``, ``Q3``), which are names, and numbers inside the product's own
  id (``1INCH-USD``). Decimal commas (``50.000,25``) are not understood: they read as two
  numbers and fail. Only ASCII digits are read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from signalsmith.market.envelope import asset_class
from signalsmith.market.trend import MAX_INSIGHT_WORDS

TOLERANCE: Final = 0.005  # relative: a quoted number may be 0.5% off the value it quotes
_SLACK: Final = 1e-9  # float noise on the boundary ("1.25" for 1.245 is exactly half a unit off)
_MAX_NUMBER_PROBLEMS: Final = 5

INTRODUCTION: Final = re.compile(
    r"(?:here(?:['’]s| is| are)|sure|certainly|of course|absolutely|okay|ok|hello|hi|hey"
    r"|greetings|great question|happy to|i['’]d be happy|i would be happy|let me|let['’]s"
    r"|below is|the following|in summary|to summarize|to sum up|in conclusion|summary"
    r"|overview|(?:based on|according to|looking at) (?:the|this|these) (?:data|figures|numbers"
    r"|information|indicators|metrics|values|statistics)"
    r"|as an? (?:[\w-]+ ){0,3}?(?:analyst|broker|trader|expert|advisor))\b",
    re.IGNORECASE,
)
_LEADING_MARKUP: Final = re.compile(r"^[\s*_>\"'“‘`]+")
_NUMBER: Final = re.compile(
    r"(?<![\w.])"  # not inside a word or another number: SMA20 and Q3 are names
    r"(?P<mantissa>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<fraction>[0-9]+))?"
    r"|\.(?P<bare>[0-9]+))"
    r"(?:[eE](?P<exponent>[+-]?[0-9]{1,3}))?"
    r"(?P<scale>\s*(?i:thousand|million|billion|mn|bn)\b|[kKmMbB](?![A-Za-z]))?"
    r"(?P<percent>\s?%|\s+per\s?cent\b)?"
)
_SCALES: Final[Mapping[str, tuple[float, ...]]] = {
    "thousand": (1e3,),
    "k": (1e3,),
    "million": (1e6,),
    "mn": (1e6,),
    "m": (1.0, 1e6),  # "5m candles" or "$5m"
    "billion": (1e9,),
    "bn": (1e9,),
    "b": (1e9,),
}
_PERCENT_NAMES: Final = frozenset({"rsi", "stoch_k", "stoch_d"})


@dataclass(frozen=True, slots=True)
class Quoted:
    """One number as the text writes it: its readings (several when a suffix is ambiguous),
    the half unit of its last digit, and whether it is a percentage."""

    shown: str
    readings: tuple[float, ...]
    half_unit: tuple[float, ...]
    percent: bool


def check_reply(
    text: str,
    product_id: str,
    values: Mapping[str, float],
    *,
    max_words: int = MAX_INSIGHT_WORDS,
    tolerance: float = TOLERANCE,
) -> list[str]:
    """What is wrong with ``text`` as the insight on ``product_id``; empty when it may be
    published. ``values`` are the numbers the prompt stated (see the module docstring for
    every rule and the tolerance)."""
    if not text.strip():
        return ["it is empty"]
    problems: list[str] = []
    words = len(text.split())
    if words > max_words:
        problems.append(f"it has {words} words; the limit is {max_words}")
    product = product_pattern(product_id)
    if not product.search(text):
        problems.append(f"it does not name {product_id}")
    opening = introduction(text)
    if opening:
        problems.append(f'it opens with an introduction ("{opening}"); start with the substance')
    problems += _number_problems(product.sub(" ", text), values, tolerance)
    return problems


def product_pattern(product_id: str) -> re.Pattern[str]:
    """How a text may name the product (see the module docstring), as one pattern."""
    product = product_id.strip()
    parts = re.split(r"[-/]", product, maxsplit=1)
    if len(parts) == 1:
        forms = [re.escape(product)]
    else:
        base, quote = parts
        forms = [rf"{re.escape(base)}[-/–\s]?{re.escape(quote)}"]
        if asset_class(f"{base}-{quote}") == "crypto":
            forms.append(re.escape(base))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{'|'.join(forms)})(?![A-Za-z0-9])", re.IGNORECASE)


def introduction(text: str) -> str:
    """The opening phrase or heading that makes ``text`` start with an introduction, or ""."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    start = _LEADING_MARKUP.sub("", first)
    found = INTRODUCTION.match(start)
    if found:
        return found.group(0)
    heading = first.strip().rstrip("*_ ")
    if heading.startswith("#") or heading.endswith(":"):
        return heading[:40]
    return ""


def quoted_numbers(text: str) -> Iterator[Quoted]:
    """Every number ``text`` quotes, in order, read as the module docstring says."""
    for found in _NUMBER.finditer(text):
        digits = found["mantissa"].replace(",", "")
        decimals = len(found["fraction"] or found["bare"] or "")
        exponent = int(found["exponent"] or 0)
        scale = (found["scale"] or "").strip()
        scales = _SCALES.get(scale.lower(), (1.0,)) if scale else (1.0,)
        # Through text, so a huge exponent reads as inf (and then matches nothing), not an error.
        base = float(f"{digits}e{exponent}")
        half = float(f"5e{exponent - decimals - 1}")
        yield Quoted(
            shown=found.group(0).strip(),
            readings=tuple(base * factor for factor in scales),
            half_unit=tuple(half * factor for factor in scales),
            percent=found["percent"] is not None,
        )


def matches(quoted: Quoted, pool: Sequence[float], tolerance: float = TOLERANCE) -> bool:
    """Whether any reading of ``quoted`` is one of ``pool`` within the tolerance."""
    for reading, half in zip(quoted.readings, quoted.half_unit, strict=True):
        if not (math.isfinite(reading) and math.isfinite(half)):
            continue
        for value in pool:
            size = abs(value)
            allowed = max(tolerance * size, half) + _SLACK * max(1.0, size)
            if abs(reading - size) <= allowed:
                return True
    return False


def percent_pool(values: Mapping[str, float]) -> list[float]:
    """The values a number followed by ``%`` may quote."""
    pool = [v for name, v in values.items() if name.endswith("_pct") or name in _PERCENT_NAMES]
    if "bb_position" in values:
        pool.append(100.0 * values["bb_position"])
    return pool


def _number_problems(text: str, values: Mapping[str, float], tolerance: float) -> list[str]:
    every = [v for v in values.values() if math.isfinite(v)]
    percents = [v for v in percent_pool(values) if math.isfinite(v)]
    wrong: list[str] = []
    for quoted in quoted_numbers(text):
        pool = percents if quoted.percent else every
        if quoted.shown not in wrong and not matches(quoted, pool, tolerance):
            wrong.append(quoted.shown)
    problems = [f"it quotes {shown}, which is none of the numbers given" for shown in wrong]
    if len(problems) > _MAX_NUMBER_PROBLEMS:
        more = len(problems) - _MAX_NUMBER_PROBLEMS
        problems = [*problems[:_MAX_NUMBER_PROBLEMS], f"and {more} more numbers not given"]
    return problems
