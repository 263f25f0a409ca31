"""Rated strategy signals (seed 002's tables): ``llm_enhancement_tasks``, one row per signal,
and ``llm_analysis_results``, one per rating; filled from the strategy decisions already
stored, and from here on kept by the store's writer.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from alembic import op

from signalsmith.store.rows import DecisionValues
from signalsmith.store.strategy_rows import strategy_rows

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FROM_DECISIONS = (
    "correlation_id",
    "ticker",
    "status",
    "published_at",
    "stored_at",
    "envelope",
)
_FILL_BATCH = 1_000
# Read back as aware times (SQLite keeps them as text).
_TYPES: dict[str, Any] = {
    "published_at": sa.DateTime(timezone=True),
    "stored_at": sa.DateTime(timezone=True),
}
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    tasks = op.create_table(
        "llm_enhancement_tasks",
        sa.Column("id", _ROW_ID, primary_key=True),
        sa.Column("signal_id", sa.String(64), nullable=False, unique=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8)),
        sa.Column("strategy", sa.String(64)),
        sa.Column("price", sa.Float()),
        sa.Column("signal_time", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer()),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.Column("processing_ms", sa.Float()),
        sa.Column("age_s", sa.Float()),
        sa.Column("last_error", sa.Text()),
        sa.Column("agreement", sa.String(16)),
        sa.Column("rating", sa.Integer()),
        sa.Column("confidence", sa.Float()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for name, columns in (
        ("ix_llm_tasks_symbol_published", ["symbol", "published_at", "id"]),
        ("ix_llm_tasks_strategy_published", ["strategy", "published_at", "id"]),
        ("ix_llm_tasks_status_published", ["status", "published_at", "id"]),
        ("ix_llm_tasks_published", ["published_at", "id"]),
    ):
        op.create_index(name, "llm_enhancement_tasks", columns)
    results = op.create_table(
        "llm_analysis_results",
        sa.Column("id", _ROW_ID, primary_key=True),
        sa.Column("signal_id", sa.String(64), nullable=False),
        sa.Column("analyst", sa.String(16), nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("rating", sa.Integer()),
        sa.Column("agreement", sa.String(16)),
        sa.Column("confidence", sa.Float()),
        sa.Column("reasoning", sa.Text()),
        sa.Column("risks", sa.Text()),
        sa.Column("key_factors", sa.Text()),
        sa.Column("tokens_in", sa.Integer()),
        sa.Column("tokens_out", sa.Integer()),
        sa.Column("cost_usd", sa.Float()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("signal_id", "analyst", name="uq_llm_analysis_results_signal_analyst"),
    )
    _fill(op.get_bind(), tasks, results)


def _fill(bind: sa.Connection, tasks: sa.Table, results: sa.Table) -> None:
    """The strategy decisions stored so far, in pages (an envelope is read whole)."""
    names = ("id", "kind", *_FROM_DECISIONS)
    decisions = sa.table("decisions", *(sa.column(name, _TYPES.get(name)) for name in names))
    query = sa.select(*(decisions.c[name] for name in _FROM_DECISIONS), decisions.c.id)
    last = -1
    while rows := bind.execute(
        query.where(decisions.c.kind == "strategy", decisions.c.id > last)
        .order_by(decisions.c.id)
        .limit(_FILL_BATCH)
    ).all():
        last = rows[-1].id
        derived = [strategy_rows(_decision(row._mapping)) for row in rows]
        bind.execute(sa.insert(tasks), [each.task for each in derived])
        if ratings := [result for each in derived for result in each.results]:
            bind.execute(sa.insert(results), ratings)


def _decision(row: Any) -> DecisionValues:
    return cast(DecisionValues, {name: row[name] for name in _FROM_DECISIONS})


def downgrade() -> None:
    op.drop_table("llm_analysis_results")
    op.drop_table("llm_enhancement_tasks")
