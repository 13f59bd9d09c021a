"""Database setup: migrations at start, SQLite in WAL mode, PostgreSQL URLs accepted as written."""

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app.core.db import ALEMBIC_DIR, make_engine, run_migrations
from app.models import Base


def test_migrations_create_the_schema_and_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    run_migrations(engine)  # a second start changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {"users", "conversations", "messages", "refresh_tokens", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
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


def _insert_0003_conversation(
    connection: Any, conversation_id: str, rows: list[tuple[str, int, str, str, str]]
) -> None:
    connection.execute(
        text(
            "INSERT INTO conversations (id, user_id, title, settings, created_at, updated_at) "
            "VALUES (:id, 'u', 'Old', '{}', '2026-01-01', '2026-01-01')"
        ),
        {"id": conversation_id},
    )
    for message_id, position, role, content, status in rows:
        connection.execute(
            text(
                "INSERT INTO messages (id, conversation_id, position, role, content, status, created_at) "
                "VALUES (:id, :conversation, :position, :role, :content, :status, '2026-01-01')"
            ),
            {
                "id": message_id,
                "conversation": conversation_id,
                "position": position,
                "role": role,
                "content": content,
                "status": status,
            },
        )


def _messages(connection: Any) -> list[tuple[Any, ...]]:
    query = (
        "SELECT conversation_id, position, id, role, content, status FROM messages ORDER BY conversation_id, position"
    )
    return [tuple(row) for row in connection.execute(text(query))]


def test_0004_links_the_messages_written_before_it_into_one_path_each_and_downgrades(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine, "0003")
    first = [
        ("a0", 0, "user", "Hi", "complete"),
        ("a1", 1, "ai", "Hello! ✨", "complete"),
        ("a2", 2, "user", "Tell me a joke", "complete"),
        ("a3", 3, "ai", "Why did", "cancelled"),
    ]
    second = [("b0", 0, "user", "Only a question", "complete"), ("b1", 1, "ai", "", "interrupted")]
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (id, email, created_at) VALUES ('u', 'u@example.com', '2026-01-01')")
        )
        _insert_0003_conversation(connection, "a", first)
        _insert_0003_conversation(connection, "b", second)
        _insert_0003_conversation(connection, "empty", [])
        before = _messages(connection)

    run_migrations(engine)

    with engine.connect() as connection:
        assert _messages(connection) == before  # order, content and statuses unchanged
        parents = {row[0]: row[1] for row in connection.execute(text("SELECT id, parent_id FROM messages"))}
        leaves = {row[0]: row[1] for row in connection.execute(text("SELECT id, active_leaf_id FROM conversations"))}
    assert parents == {"a0": None, "a1": "a0", "a2": "a1", "a3": "a2", "b0": None, "b1": "b0"}
    assert leaves == {"a": "a3", "b": "b1", "empty": None}

    run_migrations_down(engine, "0003")
    with engine.connect() as connection:
        assert _messages(connection) == before
        assert "parent_id" not in {column["name"] for column in inspect(connection).get_columns("messages")}
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
    engine.dispose()


def test_0004_downgrade_keeps_the_path_shown_of_a_branched_conversation(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (id, email, created_at) VALUES ('u', 'u@example.com', '2026-01-01')")
        )
        _insert_0003_conversation(
            connection,
            "a",
            [
                ("q", 0, "user", "Hi", "complete"),
                ("r1", 1, "ai", "First", "complete"),
                ("r2", 1, "ai", "Second", "complete"),
            ],
        )
        connection.execute(text("UPDATE messages SET parent_id = 'q' WHERE id IN ('r1', 'r2')"))
        connection.execute(text("UPDATE conversations SET active_leaf_id = 'r1'"))

    run_migrations_down(engine, "0003")
    with engine.connect() as connection:
        assert _messages(connection) == [
            ("a", 0, "q", "user", "Hi", "complete"),
            ("a", 1, "r1", "ai", "First", "complete"),
        ]
    engine.dispose()


def test_0005_adds_import_keys_unique_per_user_and_keeps_the_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine, "0004")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (id, email, created_at) VALUES ('u', 'u@example.com', '2026-01-01')")
        )
        for conversation_id in ("a", "b"):
            connection.execute(
                text(
                    "INSERT INTO conversations (id, user_id, title, settings, created_at, updated_at) "
                    f"VALUES ('{conversation_id}', 'u', 'Old', '{{}}', '2026-01-01', '2026-01-01')"
                )
            )
        connection.execute(
            text(
                "INSERT INTO messages (id, conversation_id, position, role, content, status, created_at) "
                "VALUES ('m', 'a', 0, 'user', 'Hi', 'complete', '2026-01-01')"
            )
        )

    run_migrations(engine)
    with engine.connect() as connection:
        keys = connection.execute(text("SELECT id, import_key FROM conversations ORDER BY id")).all()
        assert [tuple(row) for row in keys] == [("a", None), ("b", None)]  # not imported: no key, no clash
        assert _messages(connection) == [("a", 0, "m", "user", "Hi", "complete")]
    with engine.begin() as connection:
        connection.execute(text("UPDATE conversations SET import_key = 'k' WHERE id = 'a'"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE conversations SET import_key = 'k' WHERE id = 'b'"))

    run_migrations_down(engine, "0004")
    with engine.connect() as connection:
        assert "import_key" not in {column["name"] for column in inspect(connection).get_columns("conversations")}
        assert _messages(connection) == [("a", 0, "m", "user", "Hi", "complete")]
        assert connection.execute(text("SELECT COUNT(*) FROM conversations")).scalar() == 2
    engine.dispose()


def run_migrations_down(engine: Any, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
