"""Where the SQL store lives and how to reach it: DATABASE_URL resolved (a SQLite file in the
state directory by default), the async engine for it, and its errors translated into
signalsmith's. A URL is only ever shown with its password masked.

A PostgreSQL schema is chosen the way libpq does it, in the URL:
``postgresql://user:pass@host/db?options=-csearch_path%3Dname``; the ``-c name=value`` settings
of ``options`` are sent to the server at connect (asyncpg's ``server_settings``).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from signalsmith.errors import CommitRefused, ConfigError, TransientError
from signalsmith.observe.logging import SecretScrubber
from signalsmith.redact import redact_url, url_secrets
from signalsmith.settings import Settings

SQLITE = "sqlite+aiosqlite"
POSTGRES = "postgresql+asyncpg"
DEFAULT_FILE = "signalsmith.db"
BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another's lock before failing
CONNECT_TIMEOUT_S = 10.0
_DRIVERS = {
    "sqlite": SQLITE,
    SQLITE: SQLITE,
    "postgres": POSTGRES,
    "postgresql": POSTGRES,
    POSTGRES: POSTGRES,
}
_SETTING = "DATABASE_URL"


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """One database: its URL (which holds the password: never shown) and, for PostgreSQL, the
    run-time settings sent at connect."""

    url: URL
    server_settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.url.drivername == SQLITE

    @property
    def shown(self) -> str:
        """The URL with its password masked, for messages and logs."""
        return redact_url(self.url.render_as_string(hide_password=False))

    def scrub(self, text: str) -> str:
        """``text`` without any secret this URL holds."""
        secrets = url_secrets(self.url.render_as_string(hide_password=False))
        return SecretScrubber([*secrets, self.url.password or ""]).scrub(text)


def database_target(settings: Settings) -> DatabaseTarget:
    """The configured database: DATABASE_URL, or the SQLite file in STATE_DIR."""
    if settings.database_url is None or not settings.database_url.get_secret_value():
        path = (settings.state_dir / DEFAULT_FILE).resolve()
        return DatabaseTarget(URL.create(SQLITE, database=str(path)))
    return parse_database_url(settings.database_url.get_secret_value())


def parse_database_url(raw: str) -> DatabaseTarget:
    """A SQLite or PostgreSQL URL with its driver made the async one (``postgres://`` and
    ``postgresql://`` mean asyncpg, ``sqlite://`` aiosqlite). Messages never quote the URL."""
    try:
        url = make_url(raw)
    except (sa_exc.ArgumentError, ValueError):
        raise ConfigError(_SETTING, "not a valid database URL") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(_SETTING, "expected sqlite+aiosqlite:///PATH or postgresql://...")
    url = url.set(drivername=driver)
    if driver == SQLITE:
        if not url.database or url.database == ":memory:":
            raise ConfigError(_SETTING, "a SQLite URL needs a file: sqlite+aiosqlite:///PATH")
        return DatabaseTarget(url)
    return _postgres(url)


def _postgres(url: URL) -> DatabaseTarget:
    """libpq's ``options`` and ``sslmode`` in asyncpg's terms."""
    query = dict(url.query)
    options = query.pop("options", "")
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    settings = _server_settings(options if isinstance(options, str) else " ".join(options))
    return DatabaseTarget(url.set(query=query), settings)


def _server_settings(options: str) -> dict[str, str]:
    """``-c name=value`` (also ``-cname=value`` and ``--name=value``) pairs, as libpq reads them."""
    try:
        words = shlex.split(options)
    except ValueError:
        raise ConfigError(_SETTING, "options: unbalanced quotes") from None
    settings: dict[str, str] = {}
    while words:
        word = words.pop(0)
        if word == "-c" and words:
            word = words.pop(0)
        elif word.startswith(("-c", "--")):
            word = word[2:]
        else:
            raise ConfigError(_SETTING, "options: only -c name=value settings are understood")
        name, eq, value = word.partition("=")
        if not eq or not name:
            raise ConfigError(_SETTING, "options: expected -c name=value")
        settings[name.replace("-", "_")] = value
    return settings


def create_engine(target: DatabaseTarget) -> AsyncEngine:
    """The async engine: SQLite in WAL mode with a busy timeout (its directory made, 0700),
    PostgreSQL with the URL's server settings and connections checked before use."""
    if target.is_sqlite:
        Path(target.url.database or "").parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_async_engine(target.url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        target.url,
        pool_pre_ping=True,
        connect_args={
            "server_settings": dict(target.server_settings),
            "timeout": CONNECT_TIMEOUT_S,
        },
    )


def _sqlite_pragmas(connection: DBAPIConnection, _record: object) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL mode
    finally:
        cursor.close()


@contextlib.contextmanager
def database_errors(target: DatabaseTarget) -> Iterator[None]:
    """The database's errors as signalsmith's: a row it refuses (a constraint, a value out of
    range) is ``CommitRefused`` (the transaction rolled back: nothing was written); anything
    else (unreachable, timed out, locked, not migrated yet) is ``TransientError``. Messages
    carry neither the password nor the statement's values."""
    try:
        yield
    except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
        raise CommitRefused(f"database refused the rows: {_describe(exc, target)}") from None
    except (sa_exc.DBAPIError, sa_exc.DisconnectionError, sa_exc.TimeoutError, OSError) as exc:
        raise TransientError(
            f"database {target.shown} unavailable: {_describe(exc, target)}"
        ) from None


def _describe(exc: BaseException, target: DatabaseTarget) -> str:
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    lines = str(cause).strip().splitlines() or [""]
    return target.scrub(f"{type(cause).__name__}: {lines[0][:300]}")
