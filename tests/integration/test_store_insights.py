"""The ``insights`` table on a real SQLite file and the real PostgreSQL: the writer gives each
new insight decision its row in the same transaction, once however often it is written, and
none to other kinds; a store upgraded from revision 0003 gets rows for the insights it holds."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from alembic import command
from sqlalchemy import select

from signalsmith.store.database import create_engine, parse_database_url
from signalsmith.store.migrate import alembic_config, upgrade
from signalsmith.store.rows import DecisionValues, row_from_envelope
from signalsmith.store.schema import DecisionRow, InsightRow
from signalsmith.store.writer import RowWriter
from tests.unit.test_store_insight_rows import PUBLISHED, STORED
from tests.unit.test_store_rows import envelope_bytes


def _insights(count: int) -> list[DecisionValues]:
    rows = []
    for n in range(count):
        row = row_from_envelope(PUBLISHED, STORED)
        row.update(correlation_id=f"insight-{n}", published_at=STORED + timedelta(seconds=n))
        rows.append(row)
    return rows


async def _stored(url: str) -> list[dict[str, Any]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            statement = select(InsightRow.__table__).order_by(InsightRow.correlation_id)
            return [dict(row) for row in (await connection.execute(statement)).mappings()]
    finally:
        await engine.dispose()


async def test_each_new_insight_gets_one_row_and_other_kinds_none(database_url: str) -> None:
    await upgrade(database_url)
    insights = _insights(5)
    posts = [row_from_envelope(envelope_bytes("TSLA", entry_id=f"{n}-1"), STORED) for n in (1, 2)]
    writer = RowWriter.open(parse_database_url(database_url))
    try:
        assert await writer.write_rows([*insights[:3], *posts]) == 5
        assert await writer.write_rows([*insights, *insights]) == 2  # two new, three again
    finally:
        await writer.aclose()
    stored = await _stored(database_url)
    assert [row["correlation_id"] for row in stored] == [f"insight-{n}" for n in range(5)]
    meta = json.loads(PUBLISHED)["meta"]["insight"]
    assert {row["text"] for row in stored} == {meta["text"]}
    assert json.loads(stored[0]["indicators"]) == meta["indicators"]
    assert {row["product_id"] for row in stored} == {"BTC-USD"}


async def test_upgrading_from_0003_fills_the_insights_already_stored(database_url: str) -> None:
    target = parse_database_url(database_url)
    engine = create_engine(target)

    def to_0003(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")

    posts = [row_from_envelope(envelope_bytes("NVDA", entry_id=f"{n}-1"), STORED) for n in (1, 2)]
    try:
        async with engine.begin() as connection:
            await connection.run_sync(to_0003)
            await connection.execute(DecisionRow.__table__.insert(), [*_insights(1_203), *posts])
    finally:
        await engine.dispose()
    await upgrade(database_url)
    stored = await _stored(database_url)
    assert len(stored) == 1_203  # more than one page of the migration's fill
    assert {row["correlation_id"] for row in stored} == {f"insight-{n}" for n in range(1_203)}
    assert {row["direction"] for row in stored} == {
        json.loads(PUBLISHED)["meta"]["insight"]["trend"]["direction"]
    }
