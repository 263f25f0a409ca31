"""The query API's connection to the store: one engine, created in the event loop that serves
the requests (uvicorn's own thread) on first use, read-only, and disposed of when that loop
ends. A database that cannot answer is ``StoreUnavailable`` (a 503)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import structlog
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from signalsmith.errors import TransientError
from signalsmith.store.database import DatabaseTarget, create_engine, database_errors

log = structlog.get_logger("signalsmith.query")

# PostgreSQL: every transaction read-only, and no statement may hold a connection for long.
STATEMENT_TIMEOUT_MS: Final = 10_000
_READ_ONLY: Final = {
    "default_transaction_read_only": "on",
    "statement_timeout": str(STATEMENT_TIMEOUT_MS),
}


class StoreUnavailable(Exception):
    """The store cannot answer now (unreachable, timed out, not migrated yet)."""


class QueryDatabase:
    """The engine the queries share. Used from one event loop at a time."""

    def __init__(self, target: DatabaseTarget) -> None:
        if target.is_sqlite:
            self._target = target
        else:
            settings = {**target.server_settings, **_READ_ONLY}
            self._target = DatabaseTarget(target.url, settings)
        self._engine: AsyncEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keeper: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; the database's failures come out as ``StoreUnavailable``."""
        try:
            with database_errors(self._target):
                async with self._engine_here().connect() as connection:
                    yield connection
        except TransientError as exc:
            log.warning("the store cannot answer a query", error=str(exc))
            raise StoreUnavailable from None

    def _engine_here(self) -> AsyncEngine:
        loop = asyncio.get_running_loop()
        if self._engine is None or self._loop is not loop:
            self._engine, self._loop = create_engine(self._target), loop
            if self._target.is_sqlite:
                event.listen(self._engine.sync_engine, "connect", _query_only)
            self._keeper = loop.create_task(_dispose_at_loop_end(self._engine))
        return self._engine


async def _dispose_at_loop_end(engine: AsyncEngine) -> None:
    """Waits until the loop's runner cancels what is left at shutdown (``asyncio.run`` does,
    uvicorn's too), then closes the pool there, in the loop its connections belong to; this
    holds whether or not the server runs the app's lifespan (the service's does not). SQLite's
    connections would otherwise leave a thread each behind."""
    try:
        await asyncio.Event().wait()
    finally:
        await engine.dispose()


def _query_only(connection: DBAPIConnection, _record: object) -> None:
    """SQLite: after the store's own pragmas, this connection may only read."""
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()
