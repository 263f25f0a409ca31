"""Turn a raw stream entry (flat fields, ``text``, or one JSON ``data`` field) into a ``Post``.

Pure: anything that cannot become a valid post raises ``PoisonInput`` with a short reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import cast

from signalsmith.domain import Post
from signalsmith.errors import PoisonInput

KNOWN_FIELDS = frozenset(
    {"id", "title", "body", "text", "url", "author", "subreddit", "created", "source", "tickers"}
)
_TICKER = re.compile(r"^\$?([A-Za-z0-9][A-Za-z0-9.\-]{0,11})$")
_EPOCH_MS_THRESHOLD = 10**11  # larger epoch values are milliseconds
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a pair's halves, or a lone one
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_FIELDS = 1_000  # fields in one entry; a post has a dozen, the rest is kept as metadata
MAX_DEPTH = 32  # nesting of the JSON in a ``data`` field (and of what it holds)
MAX_TICKERS_GIVEN = 1_000  # symbols a producer may list; MAX_TICKERS_PER_POST caps the decisions
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # chatter older than this is a producer's bug
FUTURE_SLACK = timedelta(days=1)  # clocks drift and time zones confuse; a day ahead is accepted


def decode_fields(raw: Mapping[bytes, bytes], max_bytes: int) -> dict[str, str]:
    """Decode a Redis entry's fields to text, enforcing the size and field-count bounds first."""
    size = sum(len(key) + len(value) for key, value in raw.items())
    if size > max_bytes:
        raise PoisonInput("oversize", f"{size} bytes, limit {max_bytes}")
    if len(raw) > MAX_FIELDS:
        raise PoisonInput("too_many_fields", f"{len(raw)} fields, limit {MAX_FIELDS}")
    try:
        return {key.decode(): value.decode() for key, value in raw.items()}
    except UnicodeDecodeError as exc:
        raise PoisonInput("bad_encoding", str(exc)) from None


def to_post(
    fields: Mapping[str, str], entry_id: str, stream: str = "", now: datetime | None = None
) -> Post:
    """Build a Post from decoded fields; ``entry_id`` names it when the producer gave no id.
    ``now`` bounds ``created`` from above (a day of slack)."""
    values = _unwrap_data(fields) if _is_data_form(fields) else dict(fields)
    title = _string(values, "title").strip()
    body = _string(values, "body").strip()
    text = _string(values, "text").strip()
    if text and not (title or body):
        body = text
    if not (title or body):
        raise PoisonInput("no_text", "the entry has no title, body or text")
    return Post(
        id=_string(values, "id") or entry_id,
        title=title,
        body=body,
        url=_string(values, "url"),
        author=_string(values, "author"),
        subreddit=_string(values, "subreddit"),
        created=parse_created(values.get("created"), now or utc_now()),
        source=_string(values, "source") or stream,
        tickers=parse_tickers(values.get("tickers")),
        metadata=_metadata(values),
    )


def _is_data_form(fields: Mapping[str, str]) -> bool:
    return "data" in fields and not (KNOWN_FIELDS & fields.keys())


def _unwrap_data(fields: Mapping[str, str]) -> dict[str, object]:
    text = fields["data"]
    if _depth_over(text, MAX_DEPTH):
        raise PoisonInput("too_deep", f"field 'data' nests deeper than {MAX_DEPTH} levels")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoisonInput("bad_json", f"field 'data': {exc.msg} at {exc.pos}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4,300 digits
        raise PoisonInput("bad_json", f"field 'data': {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise PoisonInput("wrong_type", f"field 'data' holds {type(payload).__name__}, not object")
    if _SURROGATE_ESCAPE.search(text):
        payload = cast(dict[str, object], _without_lone_surrogates(payload))
    extra = {key: value for key, value in fields.items() if key != "data"}
    return {**extra, **payload}


def _without_lone_surrogates(value: object) -> object:
    """JSON may escape half of a UTF-16 pair (``"\\ud800"``, text cut in the middle of an
    emoji); no UTF-8 output can carry it, so it becomes U+FFFD. Nesting is bounded already."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _without_lone_surrogates(key): _without_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


def _depth_over(text: str, limit: int) -> bool:
    """True when the brackets in ``text`` nest deeper than ``limit`` (those inside strings count
    too: over-counting only rejects absurd documents, and it needs no parse to find out)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth = max(0, depth - 1)
    return False


def _string(values: Mapping[str, object], name: str) -> str:
    value = values.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and name == "id":
        return str(value)
    raise PoisonInput("wrong_type", f"field {name!r} must be a string, not {type(value).__name__}")


def parse_created(value: object, now: datetime) -> datetime | None:
    """Epoch seconds or milliseconds (number or numeric string), or ISO-8601; empty is None.
    A time before 2000 or more than a day after ``now`` is poison: it would file the post's
    decision under a day no consumer looks at."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PoisonInput(
            "wrong_type", f"field 'created' must be a time, not {type(value).__name__}"
        )
    parsed = _epoch(value) if _numeric(value) else _iso(str(value))
    if not EARLIEST <= parsed <= now + FUTURE_SLACK:
        raise PoisonInput(
            "bad_timestamp",
            f"field 'created' is {parsed.isoformat()}, outside 2000-01-01 to now + 1 day",
        )
    return parsed


def _numeric(value: str | int | float) -> bool:
    if not isinstance(value, str):
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


def _epoch(value: str | int | float) -> datetime:
    try:
        seconds = float(value)
    except (OverflowError, ValueError):  # an integer too large for a float; a huge numeral
        raise PoisonInput(
            "bad_timestamp", f"field 'created' is out of range: {value!r:.60}"
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise PoisonInput("bad_timestamp", f"field 'created' is out of range: {seconds}")
    if seconds > _EPOCH_MS_THRESHOLD:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise PoisonInput("bad_timestamp", f"field 'created' is out of range: {seconds}") from None


def _iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PoisonInput("bad_timestamp", f"field 'created' is not a time: {text!r:.60}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_tickers(value: object) -> tuple[str, ...]:
    """Tickers given by the producer: "NVDA,AMD", "$NVDA AMD" or a JSON list of strings."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: list[object] = list(re.split(r"[\s,;]+", value.strip()))
    elif isinstance(value, list):
        items = list(value)
    else:
        raise PoisonInput("wrong_type", "field 'tickers' must be a string or a list of strings")
    if len(items) > MAX_TICKERS_GIVEN:
        raise PoisonInput("too_many_tickers", f"{len(items)} symbols, limit {MAX_TICKERS_GIVEN}")
    tickers: list[str] = []
    for item in items:
        match = _TICKER.match(item) if isinstance(item, str) else None
        if match is None:
            raise PoisonInput("wrong_type", f"field 'tickers' has a bad symbol: {item!r:.40}")
        symbol = match.group(1).upper()
        if symbol not in tickers:
            tickers.append(symbol)
    return tuple(tickers)


def _metadata(values: Mapping[str, object]) -> dict[str, str]:
    extra = {key: value for key, value in values.items() if key not in KNOWN_FIELDS}
    return {
        key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for key, value in extra.items()
    }


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
