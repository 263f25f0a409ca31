"""Per ticker and hour, and per ticker and trade date, the sums of its post rows that
/api/tickers ranks by and a ticker's daily history shows, filled from the rows already stored;
from here on the store's writer keeps them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from signalsmith.store.schema import SUMS
from signalsmith.store.summary import recompute

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COUNTS = ("mentions", "posts", "buy", "sell")
_TOTALS = ("weight_sum", "weighted_score", "confidence_sum")


def upgrade() -> None:
    op.create_table(
        "ticker_hours",
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("ticker", sa.String(32), primary_key=True),
        *_sums(),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ticker_days",
        sa.Column("ticker", sa.String(32), primary_key=True),
        sa.Column("trade_date", sa.Date(), primary_key=True),
        *_sums(),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.create_index(
            "ix_ticker_hours_covering",
            "ticker_hours",
            ["hour"],
            postgresql_include=["ticker", *SUMS],
        )
    for statement in recompute(bind.dialect.name):
        bind.execute(statement)
    if bind.dialect.name == "postgresql":  # plan the first reads with the filled tables' sizes
        bind.execute(sa.text("ANALYZE ticker_hours"))
        bind.execute(sa.text("ANALYZE ticker_days"))


def _sums() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS),
        *(sa.Column(name, sa.Float(), nullable=False) for name in _TOTALS),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    ]


def downgrade() -> None:
    op.drop_table("ticker_days")
    op.drop_table("ticker_hours")
