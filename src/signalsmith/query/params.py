"""The query parameters that FastAPI cannot check alone (ISO 8601 times, a time window,
enumerations read case-insensitively, unknown names), each refused the way FastAPI refuses its
own: a 422 whose ``loc`` names the parameter."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal, get_args

from fastapi.exceptions import RequestValidationError

from signalsmith.domain import Status, Verdict
from signalsmith.query.models import Kind

Place = Literal["query", "path"]

KINDS: Final[tuple[str, ...]] = get_args(Kind)
VERDICTS: Final = tuple(verdict.value for verdict in Verdict)
STATUSES: Final = tuple(status.value for status in Status)
MAX_TIME_CHARS: Final = 64
MAX_SHOWN_INPUT: Final = 80  # an error quotes at most this much of what it refuses

# A "+" in a query string arrives as a space: "10:00:00 02:00" meant "10:00:00+02:00".
_SPACED_OFFSET = re.compile(
    r"(.*[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?) (\d{2}(?::?\d{2})?)"
)
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def invalid(place: Place, name: str, message: str, value: object = None) -> RequestValidationError:
    """The 422 FastAPI would give for parameter ``name``, with ``message``."""
    shown = value[:MAX_SHOWN_INPUT] if isinstance(value, str) else value
    error = {"type": "value_error", "loc": (place, name), "msg": message, "input": shown}
    return RequestValidationError([error])


def choice_param(raw: str | None, name: str, allowed: Iterable[str]) -> str | None:
    """One of ``allowed``, matched case-insensitively and returned as ``allowed`` spells it."""
    if raw is None:
        return None
    options = tuple(allowed)
    for option in options:
        if raw.lower() == option.lower():
            return option
    raise invalid("query", name, f"expected one of {', '.join(options)}", raw)


def text_param(raw: str, name: str, max_chars: int, place: Place = "path") -> str:
    """A free-form value compared as is: no control characters, at most ``max_chars``."""
    if not 1 <= len(raw) <= max_chars or _UNSAFE.search(raw):
        raise invalid(place, name, f"expected 1 to {max_chars} printable characters", raw)
    return raw


def time_param(raw: str, name: str, *, end: bool) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime. A date-time without an offset is
    UTC. A date is its first instant, or for an end (exclusive) the first instant after it, so
    ``until=2024-05-01`` includes that whole day."""
    problem = "expected an ISO 8601 date (2024-05-01) or date-time (2024-05-01T13:30:00Z)"
    if len(raw) > MAX_TIME_CHARS or _UNSAFE.search(raw):
        raise invalid("query", name, problem, raw)
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        pass
    else:
        try:
            return datetime.combine(day + timedelta(days=int(end)), time(), UTC)
        except OverflowError:
            raise invalid("query", name, "the date is out of range", raw) from None
    spaced = _SPACED_OFFSET.fullmatch(raw)
    text = f"{spaced[1]}+{spaced[2]}" if spaced else raw
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        raise invalid("query", name, problem, raw) from None
    except OverflowError:
        raise invalid("query", name, "the date-time is out of range", raw) from None


@dataclass(frozen=True, slots=True)
class Window:
    """A span of ``published_at``: ``since`` inclusive, ``until`` exclusive; None is open."""

    since: datetime | None
    until: datetime | None


def window_param(since: str | None, until: str | None) -> Window:
    """``since``/``until`` parsed; an empty window (``since`` not before ``until``) is a
    mistake, refused naming ``since``."""
    start = None if since is None else time_param(since, "since", end=False)
    stop = None if until is None else time_param(until, "until", end=True)
    if start is not None and stop is not None and start >= stop:
        raise invalid("query", "since", "since must be before until", since)
    return Window(start, stop)


def only_known(given: Iterable[str], known: Iterable[str]) -> None:
    """A parameter this endpoint does not take is refused: a misspelt filter must not
    silently widen the answer."""
    allowed = set(known)
    for name in given:
        if name not in allowed:
            listed = ", ".join(sorted(allowed))
            raise invalid("query", name[:MAX_SHOWN_INPUT], f"unknown parameter; known: {listed}")
