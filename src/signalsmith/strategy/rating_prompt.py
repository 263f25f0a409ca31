"""The question a model is asked about one strategy signal: the built-in prompt or
STRATEGY_PROMPT_FILE rendered from the signal, its indicators and its recent bars; the JSON
shape the reply must have (sent as ``response_format`` where the provider takes one); and the
follow-up that asks again when a reply is not that shape."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from signalsmith.errors import ConfigError
from signalsmith.strategy.contract import AGREEMENTS, Bar, SignalFacts

SETTING: Final = "STRATEGY_PROMPT_FILE"
BARS_SHOWN: Final = 20  # the most recent bars stated in the prompt (the seed's lookback)
MAX_REASONING_CHARS: Final = 1_000
MAX_LISTED: Final = 8  # risks, key factors
MAX_ITEM_CHARS: Final = 200
PLACEHOLDERS: Final = frozenset(
    {"symbol", "side", "price", "timestamp", "strategy", "indicators", "bars", "signal_id"}
)
_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FIELD: Final = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_PROMPT: Final = """\
You review a trading signal before it is acted on. The strategy "{strategy}" wants to \
{side} {symbol} at {price} (signal time {timestamp}).

Indicators at the signal:
{indicators}

Recent bars (oldest first; time, open, high, low, close, volume):
{bars}

Does the market context support this entry? Weigh trend (price against SMA 20 and SMA 50), \
momentum extremes (RSI, stochastic), the price's place in the Bollinger bands, volume \
against its average, and volatility (ATR) against a sensible stop.

Answer with one JSON object and nothing else:
{{"rating": <integer 1-10, 10 = strongly supported>, \
"agreement": "confirm" | "caution" | "reject", \
"confidence": <number 0-1>, \
"reasoning": "<at most three sentences>", \
"risks": ["<risk>", ...], \
"key_factors": ["<factor>", ...]}}
"""


def load_strategy_prompt(path: Path | None) -> str:
    """The template: the built-in one, or the file's. An unknown placeholder stops start-up."""
    if path is None:
        return DEFAULT_PROMPT
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(SETTING, f"cannot read {path}: {type(exc).__name__}") from None
    if not text.strip():
        raise ConfigError(SETTING, f"{path} is empty")
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - PLACEHOLDERS)
    if unknown:
        known = ", ".join(sorted(PLACEHOLDERS))
        raise ConfigError(SETTING, f"unknown placeholders {unknown}; known: {known}")
    return text


def build_prompt(template: str, signal: SignalFacts, bars: Sequence[Bar]) -> str:
    """The template with the signal's values; braces that are no placeholder stay as written."""
    values = {
        "symbol": signal["symbol"],
        "side": signal["side"],
        "price": _number(signal["price"]),
        "timestamp": signal["timestamp"],
        "strategy": signal["strategy"] or "unnamed",
        "signal_id": signal["signal_id"],
        "indicators": _indicators(signal["indicators"]),
        "bars": _bars(bars),
    }

    def fill(match: re.Match[str]) -> str:
        if match[1] is None:  # {{ or }}: a literal brace, as in str.format
            return match[0][0]
        return values.get(match[1], match[0])

    return _FIELD.sub(fill, template)


def _indicators(indicators: Mapping[str, float]) -> str:
    if not indicators:
        return "(none given)"
    return "\n".join(f"- {name}: {_number(value)}" for name, value in indicators.items())


def _bars(bars: Sequence[Bar]) -> str:
    shown = bars[-BARS_SHOWN:]
    if not shown:
        return "(none given)"
    columns = ("time", "open", "high", "low", "close", "volume")
    return "\n".join(", ".join(_cell(bar.get(name)) for name in columns) for bar in shown)


def _cell(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(float(value))
    return "" if value is None else str(value)


def _number(value: float) -> str:
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.2f}"


def reply_schema() -> dict[str, object]:
    """The JSON schema of a rating (strict mode: every property required, none other)."""
    text = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 10},
            "agreement": {"type": "string", "enum": list(AGREEMENTS)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": text,
            "risks": {"type": "array", "items": text},
            "key_factors": {"type": "array", "items": text},
        },
        "required": ["rating", "agreement", "confidence", "reasoning", "risks", "key_factors"],
        "additionalProperties": False,
    }


def response_format(structured: str) -> dict[str, object] | None:
    """The OpenAI ``response_format`` for a provider's structured-output support."""
    if structured == "json_schema":
        schema = {"name": "strategy_rating", "schema": reply_schema(), "strict": True}
        return {"type": "json_schema", "json_schema": schema}
    if structured == "json_object":
        return {"type": "json_object"}
    return None


def follow_up(problems: Sequence[str]) -> str:
    """The message asking once more, with what was wrong."""
    listed = "; ".join(problems)
    return (
        f"That reply cannot be used: {listed}. Answer again with only the JSON object, "
        f"exactly as specified: {json.dumps(reply_schema()['required'])} and nothing else."
    )
