"""The CSV export as a fan-out consumer of ENHANCED_STREAM: the handler reads each envelope of
kind ``strategy`` into the rows it adds (``meta.strategy``, read leniently: a piece that is
missing or of the wrong type leaves its cell empty), and the committer appends a batch to the
files (``strategy.csv_files``), then dead-letters and acknowledges it in one MULTI/EXEC.

An envelope of another kind is acknowledged without a row; an entry that is no envelope (no
``data`` field, not JSON, not an object, an unknown schema version, no signal id, oversize)
is dead-lettered on ``<ENHANCED_STREAM>:csv:dlq`` with the reason. When the files cannot take
a batch, nothing is acknowledged and the entries are redelivered: already written, they add
nothing.

``is_signal_bar``: exactly one bar per signal, the first whose time is the signal's instant
(times compared as instants, so ``Z`` and ``+00:00`` agree), else the last bar sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, get_args

from pydantic_core import from_json

from signalsmith.engine.engine import Engine, EngineConfig
from signalsmith.engine.outcome import Commit, InlineHandler
from signalsmith.errors import PoisonInput, TransientError
from signalsmith.observe.metrics import Metrics
from signalsmith.redisclient import RedisClient
from signalsmith.settings import Settings
from signalsmith.sink.redis_publish import publish_and_ack
from signalsmith.source.redis_streams import Entry, GroupRef, StreamSource
from signalsmith.strategy.contract import AGREEMENTS, SEED_INDICATORS, Outcome
from signalsmith.strategy.csv_files import (
    MODEL_COLUMNS,
    Backlog,
    ExportRecord,
    StrategyCsvFiles,
    Value,
)

MAX_ENVELOPE_BYTES: Final = 16 << 20  # a signal with STRATEGY_MAX_BARS' most bars fits
MAX_BARS: Final = 10_000  # per signal: STRATEGY_MAX_BARS' upper bound
MAX_RAW_TEXT: Final = 4_096  # characters kept of a text before the files cut it to its cell
MAX_LISTED: Final = 32  # risks, key factors
MAX_ITEM_CHARS: Final = 512
MAX_TIME_CHARS: Final = 64
_INT_LIMIT: Final = 2**63
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)
SIDES: Final = ("buy", "sell")
BAR_PRICES: Final = ("open", "high", "low", "close", "volume")

Json = dict[str, object]


# --- an envelope -> its rows ------------------------------------------------------------------


def read_record(raw: bytes) -> ExportRecord | None:
    """The rows of one envelope (the ``data`` field of an entry), None when its kind is not
    ``strategy``. Raises ``PoisonInput`` for what is no v1 envelope."""
    envelope = _parse(raw)
    if envelope.get("schema_version") != "1":
        raise PoisonInput(
            "unknown_schema", f"schema_version {str(envelope.get('schema_version'))[:40]}"
        )
    decision = envelope.get("decision")
    if not isinstance(decision, dict):
        raise PoisonInput("bad_envelope", "decision must be an object")
    if decision.get("kind") != "strategy":
        return None
    meta = _object(_object(envelope.get("meta")).get("strategy"))
    signal = _object(meta.get("signal"))
    signal_id = _signal_id(envelope.get("correlation_id")) or _signal_id(signal.get("signal_id"))
    if signal_id is None:
        raise PoisonInput("bad_envelope", "no signal id (correlation_id, meta.strategy.signal)")
    row = signal_row(envelope, decision, meta)
    return ExportRecord(signal_id, row, bar_rows(meta, row))


def _parse(raw: bytes) -> Json:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise PoisonInput("oversize", f"{len(raw)} bytes, more than {MAX_ENVELOPE_BYTES}")
    try:
        envelope = from_json(raw)
    except ValueError as exc:
        raise PoisonInput("bad_json", f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(envelope, dict):
        raise PoisonInput("bad_envelope", f"the envelope is a {type(envelope).__name__}")
    return envelope


def signal_row(envelope: Json, decision: Json, meta: Json) -> dict[str, Value]:
    """The ``llm_signals.csv`` values of a strategy envelope, by column (the id apart)."""
    signal = _object(meta.get("signal"))
    indicators = _object(signal.get("indicators"))
    offline = _object(meta.get("offline"))
    return {
        "symbol": _symbol(signal, decision),
        "side": _choice(signal.get("side"), SIDES),
        "price": _number(signal.get("price")),
        "signal_time": _text(signal.get("timestamp")),
        "strategy": _text(signal.get("strategy")),
        **{name: _number(indicators.get(name)) for name in SEED_INDICATORS},
        "status": _status(meta, decision),
        "agreement": _choice(meta.get("agreement"), AGREEMENTS),
        "rating": _rating(meta.get("rating")),
        "confidence": _number(meta.get("confidence")),
        "verdict": _text(_object(decision.get("synthesis")).get("verdict")),
        "offline_score": _number(offline.get("score")),
        "offline_rating": _rating(offline.get("rating")),
        "offline_agreement": _choice(offline.get("agreement"), AGREEMENTS),
        **_model_values(meta.get("llm")),
        "llm_error": _text(meta.get("llm_error")),
        "age_s": _number(meta.get("age_s")),
        "processing_ms": _number(meta.get("processing_ms")),
        "received_at": _text(meta.get("received_at")),
        "processed_at": _text(meta.get("processed_at")),
        "published_at": _text(envelope.get("published_at")),
    }


def _model_values(llm: object) -> dict[str, Value]:
    """The model's rating, all empty when it gave none."""
    if not isinstance(llm, dict):
        return dict.fromkeys(MODEL_COLUMNS)
    return {
        "llm_rating": _rating(llm.get("rating")),
        "llm_agreement": _choice(llm.get("agreement"), AGREEMENTS),
        "llm_confidence": _number(llm.get("confidence")),
        "llm_reasoning": _text(llm.get("reasoning")),
        "llm_risks": _joined(llm.get("risks")),
        "llm_key_factors": _joined(llm.get("key_factors")),
        "llm_model": _text(llm.get("model")),
        "llm_tokens_in": _count(llm.get("tokens_in")),
        "llm_tokens_out": _count(llm.get("tokens_out")),
        "llm_cost_usd": _number(llm.get("cost_usd")),
        "llm_latency_ms": _number(llm.get("latency_ms")),
    }


def bar_rows(meta: Json, row: Mapping[str, Value]) -> list[dict[str, Value]]:
    """The ``llm_strategy_results.csv`` values of each bar sent with the signal (at most
    MAX_BARS), with the signal's final rating, agreement, confidence and status."""
    raw = meta.get("bars")
    bars = [_object(bar) for bar in raw[:MAX_BARS]] if isinstance(raw, list) else []
    marked = signal_bar(bars, _instant(_object(meta.get("signal")).get("timestamp")))
    shared = {name: row.get(name) for name in ("symbol", "rating", "agreement", "confidence")}
    return [
        {
            **shared,
            "time": _text(bar.get("time")) or _number(bar.get("time")),
            **{name: _number(bar.get(name)) for name in (*BAR_PRICES, *SEED_INDICATORS)},
            "is_signal_bar": index == marked,
            "status": row.get("status"),
        }
        for index, bar in enumerate(bars)
    ]


def signal_bar(bars: Sequence[Json], signal_time: datetime | None) -> int:
    """The index of the signal's bar: the first at the signal's instant, else the last."""
    if signal_time is not None:
        for index, bar in enumerate(bars):
            if _instant(bar.get("time")) == signal_time:
                return index
    return len(bars) - 1


def _symbol(signal: Json, decision: Json) -> str | None:
    """The signal's symbol, else the envelope's ticker (the contract makes them one)."""
    return _text(signal.get("symbol")) or _text(_object(decision.get("target")).get("ticker"))


def _status(meta: Json, decision: Json) -> str:
    """The contract's status; anything else (a producer outside it) was not rated: degraded."""
    for value in (meta.get("status"), decision.get("status")):
        if isinstance(value, str) and value in OUTCOMES:
            return value
    return "degraded"


def _object(value: object) -> Json:
    return value if isinstance(value, dict) else {}


def _signal_id(value: object) -> str | None:
    """A non-blank id, whole (a long one is hashed into its key, never cut: no two meet)."""
    return value if isinstance(value, str) and value.strip() else None


def _text(value: object) -> str | None:
    return value[:MAX_RAW_TEXT] if isinstance(value, str) else None


def _joined(value: object) -> str | None:
    if not isinstance(value, list):
        return None
    items = [item[:MAX_ITEM_CHARS] for item in value[:MAX_LISTED] if isinstance(item, str)]
    return "; ".join(items)


def _choice(value: object, allowed: Sequence[str]) -> str | None:
    return value if isinstance(value, str) and value in allowed else None


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return value if abs(value) < _INT_LIMIT else None
    return value


def _rating(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= 10 else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value < _INT_LIMIT else None


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time; a year past 9999 once moved to UTC
        return None


# --- the engine's handler and committer -------------------------------------------------------


class CsvHandler(InlineHandler):
    """Entry -> ``Commit(entry.id, parts=(record,))``, or a bare commit for another kind;
    inline, it never waits."""

    def handle_now(self, entry: Entry) -> Commit:
        raw = (entry.fields or {}).get(b"data")
        if raw is None:
            raise PoisonInput("bad_envelope", "the entry has no 'data' field")
        record = read_record(raw)
        return Commit(entry.id, parts=(record,) if record is not None else ())


@dataclass(frozen=True, slots=True)
class StrategyBacklog:
    """The strategy stream's signals its group has not finished (lag + pending entries)."""

    redis: RedisClient
    stream: str
    group: str

    async def read(self) -> Backlog:
        from signalsmith.strategy.stats import pending_signals  # loads SQLAlchemy

        try:
            count = await pending_signals(self.redis, self.stream, self.group)
        except TransientError as exc:
            return Backlog(None, f"Redis did not say: {str(exc)[:200]}")
        if count is None:
            note = f"unknown: no group {self.group} on {self.stream} yet, or no lag reported"
            return Backlog(None, note)
        return Backlog(count)


class CsvCommitter:
    """The CSV export's ``Committer``: the batch's rows on disk first (``StrategyCsvFiles``,
    in a thread: fsync does not hold up the event loop), then its dead letters and
    acknowledgements in one MULTI/EXEC. Files that fail leave every entry pending; Redis
    failing after the rows are written leaves them to be redelivered, which adds nothing."""

    def __init__(
        self,
        files: StrategyCsvFiles,
        redis: RedisClient,
        ref: GroupRef,
        backlog: StrategyBacklog | None = None,
    ) -> None:
        self._files = files
        self._redis = redis
        self._ref = ref
        self._backlog = backlog

    async def commit(self, commits: Sequence[Commit]) -> list[bool]:
        if not commits:
            return []
        records = [_record(part) for commit in commits for part in commit.parts]
        backlog = await self._read_backlog()
        await asyncio.to_thread(self._files.write, records, backlog)
        await publish_and_ack(self._redis, self._ref, commits)
        return [True] * len(commits)

    async def _read_backlog(self) -> Backlog:
        if self._backlog is None:
            return Backlog(None, "unknown: the CSV export was given no strategy stream")
        return await self._backlog.read()


def _record(part: object) -> ExportRecord:
    if not isinstance(part, ExportRecord):
        raise TypeError(f"a CSV commit's parts are ExportRecords, not {type(part).__name__}")
    return part


# --- wiring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvExport:
    """The CSV export's engine, the group it reads, and the files to close when it is done."""

    engine: Engine
    ref: GroupRef
    files: StrategyCsvFiles


def csv_dead_letter_stream(settings: Settings) -> str:
    return f"{settings.enhanced_stream}:csv:dlq"


async def build_csv_export(settings: Settings, redis: RedisClient, metrics: Metrics) -> CsvExport:
    """The export of ENHANCED_STREAM into CSV_OUTPUT_DIR (group CSV_GROUP, reading the stream
    from its start), its files repaired and read first. Raises ``ConfigError`` when the
    directory cannot be written or holds files with other columns."""
    files = await asyncio.to_thread(StrategyCsvFiles.open, settings.csv_directory)
    ref = GroupRef(settings.enhanced_stream, settings.csv_group, settings.consumer)
    backlog = StrategyBacklog(redis, settings.strategy_stream, settings.strategy_group)
    engine = Engine(
        EngineConfig(
            stream=settings.enhanced_stream,
            dlq_stream=csv_dead_letter_stream(settings),
            dlq_maxlen=settings.dlq_maxlen,
            read_count=settings.read_count,
            max_in_flight=settings.max_in_flight,
            max_deliveries=settings.max_deliveries,
            drain_timeout_s=settings.drain_timeout,
            block_s=settings.block_ms / 1000,
        ),
        source=StreamSource(
            redis, ref, block_ms=settings.block_ms, claim_idle_ms=settings.claim_idle_ms
        ),
        committer=CsvCommitter(files, redis, ref, backlog),
        handler=CsvHandler(),
        metrics=metrics.pipeline("csv"),
    )
    return CsvExport(engine, ref, files)
