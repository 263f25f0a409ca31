"""The decisions table: a row per decision, keyed by its correlation id.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite's rowid alias must be INTEGER; PostgreSQL gets a 64-bit key.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("correlation_id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source_stream", sa.String(256), nullable=True),
        sa.Column("source_entry_id", sa.String(64), nullable=True),
        sa.Column("post_id", sa.String(256), nullable=True),
        sa.Column("post_url", sa.Text(), nullable=True),
        sa.Column("post_author", sa.String(256), nullable=True),
        sa.Column("post_subreddit", sa.String(256), nullable=True),
        sa.Column("post_created", _WHEN, nullable=True),
        sa.Column("analyzers", sa.String(512), nullable=False),
        sa.Column("models", sa.String(1024), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("published_at", _WHEN, nullable=False),
        sa.Column("stored_at", _WHEN, nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
    )
    op.create_index("ix_decisions_ticker_published", "decisions", ["ticker", "published_at", "id"])
    op.create_index("ix_decisions_published", "decisions", ["published_at", "id"])
    op.create_index("ix_decisions_kind_published", "decisions", ["kind", "published_at", "id"])


def downgrade() -> None:
    op.drop_table("decisions")
