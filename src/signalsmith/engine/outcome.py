"""What a handler makes of an entry, and the two small interfaces the engine drives.

A handler turns one entry into an outcome: a ``Commit`` (records to publish, parts to fold, then
acknowledge; a dead letter is a commit whose record goes to the dead-letter stream) or a
``Retry`` (leave it pending: it is redelivered). A committer applies a batch of commits, each
atomically, and says which were still this consumer's to acknowledge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from signalsmith.source.redis_streams import Entry


@dataclass(frozen=True, slots=True)
class Record:
    """One XADD: fields to append to ``stream``."""

    stream: str
    fields: Mapping[str, str | bytes]
    maxlen: int = 0


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything that must happen, together, before an entry is acknowledged: ``records`` to
    publish and ``parts``, the pipeline's own updates, which its committer knows how to apply
    (the posts pipeline's consensus folds, the SQL store's rows)."""

    entry_id: str
    records: Sequence[Record] = ()
    parts: Sequence[object] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    """Leave the entry pending: it is redelivered and tried again."""

    entry_id: str
    error: str


Outcome = Commit | Retry


class Handler(Protocol):
    """A pipeline's work on one entry. ``handle`` never raises: a world briefly unavailable is a
    ``Retry``, anything else a dead letter with the reason."""

    async def handle(self, entry: Entry) -> Outcome: ...

    def handle_now(self, entry: Entry) -> Outcome | None:
        """The outcome without waiting, when the handler can reach it inline; None otherwise."""
        ...


class Committer(Protocol):
    """Applies commits, each atomically; True for each applied, False where the entry was no
    longer this consumer's. Raises ``RedisError``/``TransientError`` when it cannot (the entries
    stay pending) and ``CommitRefused`` when the batch as a whole was refused before any write."""

    async def commit(self, commits: Sequence[Commit]) -> list[bool]: ...
