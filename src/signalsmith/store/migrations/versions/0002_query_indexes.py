"""Indexes the query API reads from alone: a ticker's or a kind's rows over a time range carry
the columns that /api/tickers and the daily history sum, and a ticker + kind page has its own.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SUMMED = ["status", "verdict", "confidence", "score"]


def upgrade() -> None:
    op.drop_index("ix_decisions_kind_published", table_name="decisions")
    op.create_index(
        "ix_decisions_kind_published",
        "decisions",
        ["kind", "published_at", "id", "ticker", *_SUMMED],
    )
    op.drop_index("ix_decisions_ticker_published", table_name="decisions")
    op.create_index(
        "ix_decisions_ticker_published",
        "decisions",
        ["ticker", "published_at", "id", "kind", *_SUMMED, "trade_date"],
    )
    op.create_index(
        "ix_decisions_ticker_kind_published", "decisions", ["ticker", "kind", "published_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_decisions_ticker_kind_published", table_name="decisions")
    op.drop_index("ix_decisions_ticker_published", table_name="decisions")
    op.create_index("ix_decisions_ticker_published", "decisions", ["ticker", "published_at", "id"])
    op.drop_index("ix_decisions_kind_published", table_name="decisions")
    op.create_index("ix_decisions_kind_published", "decisions", ["kind", "published_at", "id"])
