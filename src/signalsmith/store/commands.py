"""What ``signalsmith db upgrade`` and ``signalsmith db backfill`` do, given the settings."""

from __future__ import annotations

from signalsmith.errors import ConfigError
from signalsmith.lifecycle import open_redis
from signalsmith.settings import Settings
from signalsmith.store.backfill import BackfillCounts, backfill
from signalsmith.store.database import DatabaseTarget, database_target
from signalsmith.store.migrate import upgrade_database
from signalsmith.store.writer import RowWriter


async def upgrade_store(settings: Settings) -> tuple[DatabaseTarget, str | None]:
    """Apply the migrations to the configured database; where it is, and its revision now."""
    target = database_target(settings)
    return target, await upgrade_database(target)


async def backfill_store(
    settings: Settings, stream: str | None, batch: int | None
) -> BackfillCounts:
    """Bring the database up to date, then store every decision on ``stream`` (default:
    DECISION_STREAM) that it does not hold yet."""
    name = settings.decision_stream if stream is None else stream
    if not name:
        raise ConfigError("DECISION_STREAM", "empty (the decision log is off): pass --stream")
    target = database_target(settings)
    await upgrade_database(target)
    writer = RowWriter.open(target)
    try:
        async with open_redis(settings) as handle:
            return await backfill(handle.client, writer, name, batch=batch or settings.store_batch)
    finally:
        await writer.aclose()
