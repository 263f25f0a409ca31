"""The store's reading of STRATEGY_STREAM (its own group, STRATEGY_STORE_GROUP): each signal
gets its ``llm_enhancement_tasks`` row, ``pending``, as soon as it is queued, so SQL lists a
signal from the moment it arrives; the strategy pipeline's decision, stored from the decision
log, later makes that row ``done``, ``failed`` or ``expired``. A well-formed signal that the
pipeline dead-letters (past MAX_DELIVERIES, an internal error) makes no decision: the store
reads the pipeline's dead letters too (same group name), and marks that row ``failed``.

A signal the pipeline will dead-letter (malformed) gets no row here: its dead letter, on the
pipeline's dead-letter stream, is its record. So this handler dead-letters nothing itself. The
group starts at the next signal queued when it is first created: an older signal may have been
decided long ago, its decision trimmed from the log, and its row would stay pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from signalsmith.deadletters import read_dead_letter
from signalsmith.engine.outcome import Commit, InlineHandler
from signalsmith.errors import PoisonInput
from signalsmith.normalize import decode_fields, utc_now
from signalsmith.source.redis_streams import Entry, entry_time
from signalsmith.store.strategy_rows import failed_task, pending_task
from signalsmith.strategy.signals import facts, signal_from_fields, signal_id_of


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """What the strategy pipeline accepts, so that the same signals get a row."""

    stream: str  # STRATEGY_STREAM: a signal without an id gets the one derived from it
    max_message_bytes: int
    max_bars: int


class PendingTaskHandler(InlineHandler):
    """Entry -> ``Commit(entry.id, parts=(pending row,))``, or no part for a signal that is
    no signal; inline, it never waits."""

    def __init__(self, limits: IntakeLimits, clock: Callable[[], datetime] = utc_now) -> None:
        self._limits = limits
        self._clock = clock

    def handle_now(self, entry: Entry) -> Commit:
        limits, now = self._limits, self._clock()
        queued = entry_time(entry.id, now)
        try:
            fields = decode_fields(entry.fields or {}, limits.max_message_bytes)
            # A timestamp ahead of the clock is judged against when the signal was queued,
            # which the pipeline's own clock can only be past: what it refuses, this refuses.
            signal = signal_from_fields(
                fields, limits.stream, entry.id, now=min(queued, now), max_bars=limits.max_bars
            )
        except PoisonInput:
            return Commit(entry.id)
        return Commit(entry.id, parts=(pending_task(facts(signal), queued, now),))


class FailedTaskHandler(InlineHandler):
    """A dead letter of STRATEGY_STREAM -> ``Commit(entry.id, parts=(failure,))``: its signal's
    pending row (if it has one) becomes ``failed``, ``last_error`` the reason. Anything else on
    the dead-letter stream is acknowledged untouched."""

    def __init__(self, limits: IntakeLimits, clock: Callable[[], datetime] = utc_now) -> None:
        self._limits = limits
        self._clock = clock

    def handle_now(self, entry: Entry) -> Commit:
        letter = read_dead_letter(entry.id.encode(), entry.fields or {})
        if letter.stream != self._limits.stream or not letter.fields:
            return Commit(entry.id)
        try:
            fields = decode_fields(letter.fields, self._limits.max_message_bytes)
        except PoisonInput:
            return Commit(entry.id)
        signal_id = signal_id_of(fields, letter.stream, letter.entry_id)
        if signal_id is None:
            return Commit(entry.id)
        failed_at = entry_time(entry.id, self._clock())
        return Commit(
            entry.id, parts=(failed_task(signal_id, letter.reason, letter.detail, failed_at),)
        )
