"""A market request (seed 001's payload) from a stream entry, an HTTP body or the CLI.

``{correlation_id, product_id, prompt: "trend_analysis", candles?, granularity?, lookback?}``
as flat fields or one ``data`` JSON field. Pure; anything that cannot become a request raises
``PoisonInput`` with the reason (``bad_request``, ``unknown_prompt``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import from_json

from signalsmith.errors import PoisonInput

PROMPTS: Final = frozenset({"trend_analysis"})  # more prompt types add a name and a handler
MAX_CANDLES: Final = 10_000
MAX_LOOKBACK: Final = 1_000
GRANULARITIES: Final = ("1m", "5m", "15m", "1h", "6h", "1d")
PRODUCT: Final = re.compile(r"[A-Z0-9]{1,15}(?:[-/][A-Z0-9]{1,15})?")
_ID: Final = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces (the store keys on it)


class MarketRequest(BaseModel):
    """One request for an insight on a product."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    correlation_id: str
    product_id: str
    prompt: str = "trend_analysis"
    candles: Annotated[list[Any], Field(max_length=MAX_CANDLES)] | None = None
    granularity: str | None = None
    lookback: Annotated[int, Field(ge=2, le=MAX_LOOKBACK)] | None = None

    @field_validator("product_id", mode="before")
    @classmethod
    def _product(cls, value: object) -> str:
        if not isinstance(value, str) or not PRODUCT.fullmatch(value.strip().upper()):
            raise ValueError("a product id such as BTC-USD or AAPL")
        return value.strip().upper().replace("/", "-")

    @field_validator("correlation_id", mode="before")
    @classmethod
    def _correlation(cls, value: object) -> str:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise ValueError("1-64 printable characters without spaces")
        return value

    @field_validator("granularity")
    @classmethod
    def _granularity(cls, value: str | None) -> str | None:
        if value is not None and value not in GRANULARITIES:
            raise ValueError(f"one of {', '.join(GRANULARITIES)}")
        return value


def request_from_fields(fields: Mapping[str, str], stream: str, entry_id: str) -> MarketRequest:
    """The request an entry's decoded fields carry; without a ``correlation_id`` it gets one
    derived from (stream, entry id), so that a redelivery yields the same id."""
    values: dict[str, Any]
    if set(fields) == {"data"} or ("data" in fields and "product_id" not in fields):
        values = _json_object(fields["data"], "data")
    else:
        values = dict(fields)
        for name in ("candles", "lookback"):
            if isinstance(values.get(name), str) and values[name].strip():
                values[name] = from_json_or_poison(values[name], name)
    values.setdefault("correlation_id", derived_id(stream, entry_id))
    return request_from_values(values)


def request_from_values(values: Mapping[str, Any]) -> MarketRequest:
    """The request in ``values`` (a parsed JSON object or the CLI's options)."""
    try:
        request = MarketRequest.model_validate(values)
    except ValidationError as exc:
        raise PoisonInput("bad_request", _first_error(exc)) from None
    if request.prompt not in PROMPTS:
        shown = request.prompt[:40]
        raise PoisonInput("unknown_prompt", f"{shown!r}: known prompts are {sorted(PROMPTS)}")
    return request


def derived_id(stream: str, entry_id: str) -> str:
    return hashlib.sha256(f"{stream}\x1f{entry_id}\x1fmarket".encode()).hexdigest()[:32]


def from_json_or_poison(text: str, name: str) -> Any:
    try:
        return from_json(text)
    except ValueError as exc:
        raise PoisonInput("bad_request", f"{name}: not JSON ({str(exc)[:120]})") from None


def _json_object(text: str, name: str) -> dict[str, Any]:
    value = from_json_or_poison(text, name)
    if not isinstance(value, dict):
        raise PoisonInput("bad_request", f"{name}: a JSON object, not {type(value).__name__}")
    return value


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "request"
    return f"{where}: {error['msg']}"[:300]
