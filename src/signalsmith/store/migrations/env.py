"""Alembic's entry point for the store's migrations. They run on the connection that
``signalsmith.store.migrate`` hands over (no alembic.ini, no URL here, nothing offline)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from signalsmith.errors import ConfigError
from signalsmith.store.schema import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(_connection, Connection):
    raise ConfigError("migrations", "apply them with `signalsmith db upgrade`")
run(_connection)
