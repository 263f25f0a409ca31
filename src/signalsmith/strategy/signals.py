"""A trading system's signal (seed 002's payload) from a stream entry or an HTTP body.

``{signal_id, symbol, side, price, timestamp, strategy?, indicators?, bars?, stop_loss?}`` as
flat fields (``indicators`` and ``bars`` as JSON text) or one ``data`` JSON field. Pure;
anything that cannot become a signal raises ``PoisonInput("bad_signal", detail)`` whose detail
starts with the field, e.g. ``price: a finite number > 0`` or ``bars[3].close: ...``.

Times are ISO 8601 (UTC when no offset is given) or epoch numbers: a number below 1e11 is
seconds (1e11 s is the year 5138), from 1e11 on it is milliseconds (1e11 ms is March 1973), so
every time from 1973 to 5138 reads right either way.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError, from_json

from signalsmith.errors import PoisonInput
from signalsmith.strategy.contract import Bar, Side, SignalFacts

REASON: Final = "bad_signal"
CLOCK_SKEW_S: Final = 60.0  # a signal may be this far ahead of our clock (the sender's drifts)
MILLIS_FROM: Final = 1e11  # an epoch number from here on is milliseconds, below it seconds
MAX_INDICATORS: Final = 64  # per signal, and extra columns per bar
MAX_NAME_CHARS: Final = 64
MAX_STRATEGY_CHARS: Final = 64
MAX_TIME_CHARS: Final = 64
MAX_NUMBER_CHARS: Final = 64
SIDES: Final[Mapping[str, Side]] = {"buy": "buy", "long": "buy", "sell": "sell", "short": "sell"}
SYMBOL: Final = re.compile(r"(?=.*[A-Z0-9])[A-Z0-9.\-/^=]{1,32}")
NESTED: Final = ("indicators", "bars")  # JSON text in flat fields
_ID: Final = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces (the store keys on it)
_NUMERIC: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_OHLC: Final = frozenset({"time", "open", "high", "low", "close", "volume"})


def _refuse(message: str) -> PydanticCustomError:
    return PydanticCustomError(REASON, message)


def _number(value: object) -> float | None:
    """A finite number from a JSON number or numeric text; never a bool, NaN or infinity."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = _float(value)
    elif isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS:
        text = value.strip()
        number = _float(text) if _NUMERIC.fullmatch(text) else None
    return number if number is not None and math.isfinite(number) else None


def _float(value: int | float | str) -> float | None:
    try:
        return float(value)
    except OverflowError:  # an integer past 1e308
        return None


def _finite(value: object) -> float:
    number = _number(value)
    if number is None:
        raise _refuse("a finite number")
    return number


def _positive(value: object) -> float:
    number = _number(value)
    if number is None or number <= 0:
        raise _refuse("a finite number > 0")
    return number


def _time(value: object) -> datetime:
    """A UTC time from ISO 8601 text or epoch seconds or milliseconds (see the docstring)."""
    when: datetime | None = None
    if isinstance(value, datetime):
        when = _utc(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        when = _epoch(_float(value))
    elif isinstance(value, str) and len(value) <= MAX_TIME_CHARS:
        text = value.strip()
        when = _epoch(_float(text)) if _NUMERIC.fullmatch(text) else _iso(text)
    if when is None:
        raise _refuse("an ISO 8601 time, or epoch seconds or milliseconds")
    return when


def _epoch(number: float | None) -> datetime | None:
    if number is None or not math.isfinite(number) or number < 0:
        return None
    seconds = number / 1000 if number >= MILLIS_FROM else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # past the year 9999
        return None


def _iso(text: str) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):  # not a time; a year past 9999 once moved to UTC
        return None


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_CHARS:
        raise _refuse(f"a name of 1-{MAX_NAME_CHARS} characters")
    return value


def _symbol(value: object) -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if not SYMBOL.fullmatch(text):
        raise _refuse("a symbol such as AAPL or BTC-USD (A-Z 0-9 . - / ^ =, 1-32 characters)")
    return text.replace("/", "-")


def _side(value: object) -> Side:
    side = SIDES.get(value.strip().lower()) if isinstance(value, str) else None
    if side is None:
        raise _refuse("buy, sell, long or short")
    return side


def _signal_id(value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _refuse("1-64 printable characters without spaces")
    return value


def _strategy(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value.strip()) > MAX_STRATEGY_CHARS:
        raise _refuse(f"text of at most {MAX_STRATEGY_CHARS} characters")
    return value.strip()


def _indicators(value: object) -> object:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _refuse("an object of indicator name -> number")
    if len(value) > MAX_INDICATORS:
        raise _refuse(f"at most {MAX_INDICATORS} indicators, not {len(value)}")
    return value


def _bars(value: object) -> object:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise _refuse("a list of bar objects")
    return value


def _bar(value: object) -> object:
    if not isinstance(value, dict):
        raise _refuse("an object with time, open, high, low, close and numeric columns")
    if len(value.keys() - _OHLC) > MAX_INDICATORS:
        raise _refuse(f"at most {MAX_INDICATORS} columns besides time and OHLCV")
    return value


Number = Annotated[float, BeforeValidator(_finite)]
Positive = Annotated[float, BeforeValidator(_positive)]
Time = Annotated[datetime, BeforeValidator(_time)]
Name = Annotated[str, BeforeValidator(_name)]


class StrategyBar(BaseModel):
    """One bar sent with a signal: time, OHLC, optional volume, and numeric indicator columns
    (``model_extra``)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[Name, Number] = Field(init=False)

    time: Time
    open: Number
    high: Number
    low: Number
    close: Number
    volume: Number | None = None


class StrategySignal(BaseModel):
    """One trading system's signal, validated. The checks that need the caller's clock and bar
    limit (``timestamp`` not in the future, at most ``max_bars`` bars) are made by
    ``signal_from_values``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    signal_id: Annotated[str, BeforeValidator(_signal_id)]
    symbol: Annotated[str, BeforeValidator(_symbol)]  # upper case, "/" as "-"
    side: Annotated[Side, BeforeValidator(_side)]  # long and short arrive as buy and sell
    price: Positive
    timestamp: Time  # UTC
    strategy: Annotated[str, BeforeValidator(_strategy)] = ""
    indicators: Annotated[dict[Name, Number], BeforeValidator(_indicators)] = Field(
        default_factory=dict
    )
    bars: Annotated[
        tuple[Annotated[StrategyBar, BeforeValidator(_bar)], ...], BeforeValidator(_bars)
    ] = ()
    stop_loss: Positive | None = None


def signal_from_fields(
    fields: Mapping[str, str], stream: str, entry_id: str, *, now: datetime, max_bars: int
) -> StrategySignal:
    """The signal an entry's decoded fields carry; without a ``signal_id`` it gets one derived
    from (stream, entry id), so that a redelivery yields the same id."""
    values: dict[str, Any]
    if "data" in fields and "symbol" not in fields:
        values = _json_object(fields["data"], "data")
    else:
        values = {name: text for name, text in fields.items() if text.strip()}  # "" is absent
        for name in NESTED:
            if name in values:
                values[name] = _json(values[name], name)
    if values.get("signal_id") in (None, ""):
        values["signal_id"] = derived_id(stream, entry_id)
    return signal_from_values(values, now=now, max_bars=max_bars)


def signal_from_values(
    values: Mapping[str, Any], *, now: datetime, max_bars: int
) -> StrategySignal:
    """The signal in ``values`` (a parsed JSON object); its ``timestamp`` may be at most
    CLOCK_SKEW_S ahead of ``now``, and it may carry at most ``max_bars`` bars."""
    if not isinstance(values, Mapping):
        raise PoisonInput(REASON, f"signal: a JSON object, not {type(values).__name__}")
    sent = values.get("bars")
    if isinstance(sent, list | tuple) and len(sent) > max_bars:
        raise PoisonInput(REASON, f"bars: at most {max_bars} bars, not {len(sent)}")
    try:
        signal = StrategySignal.model_validate(values)
    except ValidationError as exc:
        raise PoisonInput(REASON, _first_error(exc)) from None
    _not_ahead(signal.timestamp, now)
    return signal


def _not_ahead(timestamp: datetime, now: datetime) -> None:
    ahead = (timestamp - _utc(now)).total_seconds()
    if ahead > CLOCK_SKEW_S:
        shown = f"{timestamp.isoformat()} is {ahead:.0f} s ahead of now"
        raise PoisonInput(REASON, f"timestamp: {shown} (tolerance {CLOCK_SKEW_S:g} s)")


def facts(signal: StrategySignal) -> SignalFacts:
    """The signal as the contract carries it (``meta.strategy.signal``)."""
    return SignalFacts(
        signal_id=signal.signal_id,
        symbol=signal.symbol,
        side=signal.side,
        price=signal.price,
        timestamp=signal.timestamp.isoformat(),
        strategy=signal.strategy,
        indicators=dict(signal.indicators),
    )


def bars(signal: StrategySignal) -> list[Bar]:
    """The signal's bars as the contract carries them, oldest first as sent."""
    return [_contract_bar(bar) for bar in signal.bars]


def _contract_bar(bar: StrategyBar) -> Bar:
    row: dict[str, str | float] = {
        "time": bar.time.isoformat(),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
    }
    if bar.volume is not None:
        row["volume"] = bar.volume
    row.update(bar.model_extra or {})
    return cast(Bar, row)  # Bar names the OHLCV keys; the indicator columns are any others


def signal_id_of(fields: Mapping[str, str], stream: str, entry_id: str) -> str | None:
    """The id ``signal_from_fields`` gives the signal in ``fields``, read without checking the
    rest; None when ``data`` holds no JSON object."""
    if "data" in fields and "symbol" not in fields:
        try:
            given: object = _json_object(fields["data"], "data").get("signal_id")
        except PoisonInput:
            return None
    else:
        given = fields.get("signal_id", "")
        given = given if given.strip() else None  # "" is absent, as signal_from_fields reads it
    return given if isinstance(given, str) and given else derived_id(stream, entry_id)


def derived_id(stream: str, entry_id: str) -> str:
    return hashlib.sha256(f"{stream}\x1f{entry_id}\x1fstrategy".encode()).hexdigest()[:32]


def _json(text: str, name: str) -> Any:
    try:
        return from_json(text)
    except ValueError as exc:
        raise PoisonInput(REASON, f"{name}: not JSON ({str(exc)[:120]})") from None


def _json_object(text: str, name: str) -> dict[str, Any]:
    value = _json(text, name)
    if not isinstance(value, dict):
        raise PoisonInput(REASON, f"{name}: a JSON object, not {type(value).__name__}")
    return value


def _first_error(exc: ValidationError) -> str:
    """``where: what`` for the first error; ``where`` as ``indicators.rsi`` or ``bars[2].close``."""
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ""
    for part in error["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part != "[key]":
            where += f".{part[:MAX_NAME_CHARS]}" if where else part[:MAX_NAME_CHARS]
    message = "required" if error["type"] == "missing" else error["msg"]
    return f"{where or 'signal'}: {message}"[:300]
