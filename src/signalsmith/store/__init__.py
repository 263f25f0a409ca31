"""The SQL store: every decision, queryable (SQLAlchemy 2; SQLite by default, PostgreSQL)."""
