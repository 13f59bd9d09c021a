"""Database setup: migrations at start, SQLite in WAL mode, PostgreSQL URLs accepted as written."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.core.db import make_engine, run_migrations
from app.models import Base


def test_migrations_create_the_schema_and_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    run_migrations(engine)  # a second start changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {"users", "conversations", "messages", "refresh_tokens", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
        # The migrations build exactly the tables the models describe.
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_0002_records_omitted_messages_and_keeps_the_existing_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (id, email, created_at) VALUES ('u', 'u@example.com', '2026-01-01')")
        )
        connection.execute(
            text(
                "INSERT INTO conversations (id, user_id, title, settings, created_at, updated_at) "
                "VALUES ('c', 'u', 'Old', '{}', '2026-01-01', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO messages (id, conversation_id, position, role, content, status, model, finish_reason, "
                "prompt_tokens, completion_tokens, created_at) "
                "VALUES ('m', 'c', 1, 'ai', 'An old reply', 'complete', 'qwen', 'stop', 31, 42, '2026-01-01')"
            )
        )
    run_migrations(engine)
    with engine.connect() as connection:
        columns = "content, status, finish_reason, prompt_tokens, completion_tokens, omitted_messages"
        row = connection.execute(text(f"SELECT {columns} FROM messages")).one()
    assert tuple(row) == ("An old reply", "complete", "stop", 31, 42, None)
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
