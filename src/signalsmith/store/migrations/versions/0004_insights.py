"""One row per market insight with what it says (text, trend read, candles, indicators), for
/api/insights; filled from the insight decisions already stored, and from here on kept by the
store's writer.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from alembic import op

from signalsmith.store.insight_rows import insight_row
from signalsmith.store.rows import DecisionValues

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FROM_DECISIONS = (
    "correlation_id",
    "ticker",
    "trade_date",
    "status",
    "verdict",
    "confidence",
    "score",
    "models",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "published_at",
    "stored_at",
    "envelope",
)
_FILL_BATCH = 1_000
# Read back as Python dates and aware times (SQLite keeps them as text).
_TYPES: dict[str, Any] = {
    "trade_date": sa.Date(),
    "published_at": sa.DateTime(timezone=True),
    "stored_at": sa.DateTime(timezone=True),
}


def upgrade() -> None:
    insights = op.create_table(
        "insights",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("correlation_id", sa.String(64), nullable=False, unique=True),
        sa.Column("product_id", sa.String(32), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("direction", sa.String(16)),
        sa.Column("strength", sa.Float()),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("prompt", sa.String(64)),
        sa.Column("granularity", sa.String(16)),
        sa.Column("candles", sa.Integer()),
        sa.Column("candle_source", sa.String(16)),
        sa.Column("last_candle", sa.DateTime(timezone=True)),
        sa.Column("models", sa.String(1024), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("indicators", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_insights_product_published", "insights", ["product_id", "published_at", "id"]
    )
    op.create_index("ix_insights_published", "insights", ["published_at", "id"])
    _fill(op.get_bind(), insights)


def _fill(bind: sa.Connection, insights: sa.Table) -> None:
    """The insight decisions stored so far, in pages (an envelope is read whole)."""
    names = ("id", "kind", *_FROM_DECISIONS)
    decisions = sa.table("decisions", *(sa.column(name, _TYPES.get(name)) for name in names))
    query = sa.select(*(decisions.c[name] for name in _FROM_DECISIONS), decisions.c.id)
    last = -1
    while rows := bind.execute(
        query.where(decisions.c.kind == "insight", decisions.c.id > last)
        .order_by(decisions.c.id)
        .limit(_FILL_BATCH)
    ).all():
        last = rows[-1].id
        values = [insight_row(_decision(row._mapping)) for row in rows]
        bind.execute(sa.insert(insights), values)


def _decision(row: Any) -> DecisionValues:
    return cast(DecisionValues, {name: row[name] for name in _FROM_DECISIONS})


def downgrade() -> None:
    op.drop_table("insights")
