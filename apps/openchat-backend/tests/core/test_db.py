"""Database setup: migrations at start, SQLite in WAL mode, PostgreSQL URLs accepted as written."""

from pathlib import Path

from sqlalchemy import inspect, text

from app.core.db import make_engine, run_migrations


def test_migrations_create_the_schema_and_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    run_migrations(engine)  # a second start changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {"users", "conversations", "messages", "refresh_tokens", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'db.sqlite'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "nested" / "db.sqlite").exists()


def test_plain_postgresql_urls_use_psycopg_3(postgres_server: str) -> None:
    plain = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    engine = make_engine(plain)
    assert engine.dialect.driver == "psycopg"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
