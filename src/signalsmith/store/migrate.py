"""Apply the store's Alembic migrations, shipped in the package, from code (no alembic.ini)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from signalsmith.errors import ConfigError
from signalsmith.store.database import (
    DatabaseTarget,
    create_engine,
    database_errors,
    parse_database_url,
)

MIGRATIONS = Path(__file__).with_name("migrations")
# Held for the upgrade's transaction on PostgreSQL, so that workers starting together apply
# each migration once; a SQLite file takes its write lock on the first DDL statement instead.
_ADVISORY_LOCK = 0x5157_0001


def alembic_config() -> Config:
    """Alembic's configuration, in code: where the migrations are, nothing else."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


async def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema; nothing to do is fine."""
    await upgrade_database(parse_database_url(url))


async def upgrade_database(target: DatabaseTarget) -> str | None:
    """Bring ``target`` to the newest schema; returns the revision it is at now. Raises
    ``TransientError`` when the database cannot be reached, ``ConfigError`` when it holds a
    revision these migrations do not know (a newer signalsmith migrated it)."""
    engine = create_engine(target)
    try:
        async with _file_lock(target):
            with database_errors(target):
                async with engine.begin() as connection:
                    return await connection.run_sync(_upgrade)
    except CommandError as exc:
        raise ConfigError("DATABASE_URL", f"{target.shown}: {exc}") from None
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _file_lock(target: DatabaseTarget) -> AsyncIterator[None]:
    """For a SQLite file, an exclusive lock on ``<file>.migrate.lock`` while migrating: two
    processes starting together would otherwise both find no schema and both create it."""
    database = target.url.database if target.is_sqlite else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as handle:  # noqa: ASYNC230 - start-up only
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade(connection: Connection) -> str | None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return MigrationContext.configure(connection).get_current_revision()
