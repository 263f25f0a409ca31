"""The SQL store: every decision, queryable (SQLAlchemy 2; SQLite by default, PostgreSQL).

rows (envelope -> row, pure) · schema (the table) · migrations/ + migrate (Alembic, from code) ·
database (URL, engine, errors) · writer (rows in one transaction, then dead letters and acks) ·
consumer (the handler the engine drives) · backfill + commands (``signalsmith db``)
"""
