"""What a handler makes of an entry, and the two small interfaces the engine drives.

A handler turns one entry into a ``Commit`` (records to publish, parts to fold, then
acknowledge; a dead letter is a commit whose record goes to the dead-letter stream); the engine
turns what cannot finish yet into a ``Retry`` (left pending: it is redelivered). A committer
applies a batch of commits, each atomically, and says which were still this consumer's to
acknowledge.
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
    """A pipeline's work on one entry (the engine has checked its delivery count and that it
    still exists). It returns the commit to make, or raises: ``PoisonInput`` dead-letters the
    entry with the reason, ``TransientError``/``RedisError`` leave it pending to retry, and any
    other exception dead-letters it as ``internal_error``."""

    @property
    def immediate(self) -> bool:
        """True when every entry is handled inline by ``handle_now``, without waiting."""
        ...

    async def handle(self, entry: Entry) -> Commit: ...

    def handle_now(self, entry: Entry) -> Commit: ...


class InlineHandler:
    """A handler that answers without waiting (the store, the CSV export): the engine runs
    ``handle_now`` inline, a batch at a time."""

    @property
    def immediate(self) -> bool:
        return True

    async def handle(self, entry: Entry) -> Commit:
        return self.handle_now(entry)

    def handle_now(self, entry: Entry) -> Commit:
        raise NotImplementedError


class Committer(Protocol):
    """Applies commits, each atomically; True for each applied, False where the entry was no
    longer this consumer's. Raises ``RedisError``/``TransientError`` when it cannot (the entries
    stay pending) and ``CommitRefused`` when the batch as a whole was refused before any write."""

    async def commit(self, commits: Sequence[Commit]) -> list[bool]: ...
