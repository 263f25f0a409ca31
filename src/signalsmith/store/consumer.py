"""The SQL store's handler: a decision stream entry becomes its row (a commit's part). An entry
that cannot be stored raises ``PoisonInput``, which the engine dead-letters on the store's own
dead-letter stream with the reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from signalsmith.engine.outcome import Commit, InlineHandler
from signalsmith.normalize import utc_now
from signalsmith.source.redis_streams import Entry
from signalsmith.store.rows import row_from_fields


class StoreHandler(InlineHandler):
    """Entry -> ``Commit(entry.id, parts=(row,))``; inline, it never waits."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock

    def handle_now(self, entry: Entry) -> Commit:
        return Commit(entry.id, parts=(row_from_fields(entry.fields or {}, self._clock()),))
