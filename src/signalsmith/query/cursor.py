"""The keyset cursor: the last row's (published_at, id), as base64url JSON with a checksum.
Not a secret and not signed (a hand-made cursor only names another position), but anything
that is not a cursor this API gave out, byte for byte, is refused."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from signalsmith.query.params import MAX_TIME_CHARS, invalid

VERSION: Final = 1
MAX_CURSOR_CHARS: Final = 256
MAX_ROW_ID: Final = 2**63 - 1
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_KEYS = frozenset({"v", "p", "i", "c"})


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: rows after it are older, or as old with a smaller id."""

    published_at: datetime
    row_id: int


def encode_cursor(position: Position) -> str:
    published = position.published_at.astimezone(UTC).isoformat(timespec="microseconds")
    body = {"v": VERSION, "p": published, "i": position.row_id}
    body["c"] = _check(published, position.row_id)
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Position:
    """The position ``cursor`` names, or a 422 naming ``cursor``."""
    try:
        return _decode(cursor)
    except _NotACursor:
        raise invalid("query", "cursor", "not a cursor this API gave out", cursor) from None


class _NotACursor(Exception):
    pass


def _decode(cursor: str) -> Position:
    if len(cursor) > MAX_CURSOR_CHARS or not _ALPHABET.fullmatch(cursor):
        raise _NotACursor
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):  # not base64, not UTF-8, not JSON
        raise _NotACursor from None
    # Only the canonical spelling: bits past the last byte must not change what it means.
    _require(base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == cursor)
    _require(isinstance(body, dict) and set(body) == _KEYS and body["v"] == VERSION)
    published, row_id = body["p"], body["i"]
    _require(isinstance(published, str) and len(published) <= MAX_TIME_CHARS)
    _require(not isinstance(row_id, bool) and isinstance(row_id, int))
    _require(0 < row_id <= MAX_ROW_ID and body["c"] == _check(published, row_id))
    try:
        when = datetime.fromisoformat(published)
    except ValueError:
        raise _NotACursor from None
    _require(when.utcoffset() is not None)
    return Position(when, row_id)


def _require(condition: bool) -> None:
    if not condition:
        raise _NotACursor


def _check(published: str, row_id: int) -> str:
    return hashlib.blake2b(f"{published}|{row_id}".encode(), digest_size=4).hexdigest()
