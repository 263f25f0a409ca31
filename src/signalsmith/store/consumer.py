"""The SQL store's handler: a decision stream entry becomes its row (a commit's part), or a
dead letter on the store's own dead-letter stream with the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from signalsmith.engine.outcome import Commit
from signalsmith.errors import PoisonInput
from signalsmith.normalize import utc_now
from signalsmith.sink.outputs import dead_letter_commit
from signalsmith.source.redis_streams import Entry
from signalsmith.store.rows import DecisionValues, row_from_fields

log = structlog.get_logger("signalsmith.store")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """What the store's handler reads from the settings."""

    stream: str  # DECISION_STREAM
    dlq_stream: str  # STORE_DLQ_STREAM
    dlq_maxlen: int
    max_deliveries: int


class StoreHandler:
    """Entry -> ``Commit(entry.id, parts=(row,))``; inline, it never waits."""

    def __init__(self, config: StoreConfig, clock: Callable[[], datetime] = utc_now) -> None:
        self._config = config
        self._clock = clock

    @property
    def immediate(self) -> bool:
        return True

    async def handle(self, entry: Entry) -> Commit:
        return self.handle_now(entry)

    def handle_now(self, entry: Entry) -> Commit:
        now = self._clock()
        try:
            return Commit(entry.id, parts=(self._row(entry, now),))
        except PoisonInput as exc:
            return self._dead_letter(entry, exc, now)

    def _row(self, entry: Entry, now: datetime) -> DecisionValues:
        if entry.deliveries > self._config.max_deliveries:
            raise PoisonInput("max_deliveries", f"delivered {entry.deliveries} times")
        if entry.fields is None:
            raise PoisonInput("deleted", "entry no longer in stream")
        return row_from_fields(entry.fields, now)

    def _dead_letter(self, entry: Entry, exc: PoisonInput, now: datetime) -> Commit:
        log.warning("dead-lettering entry", entry_id=entry.id, reason=exc.reason, detail=exc.detail)
        return dead_letter_commit(
            entry.id,
            entry.fields,
            stream=self._config.stream,
            dlq_stream=self._config.dlq_stream,
            reason=exc.reason,
            detail=exc.detail,
            now=now,
            maxlen=self._config.dlq_maxlen,
        )
