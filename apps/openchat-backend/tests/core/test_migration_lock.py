"""Replicas starting together on an empty PostgreSQL database: each runs the migrations at
start-up; the advisory lock in run_migrations makes them take turns (without it, both create the
same tables at once and at least one start fails)."""

import threading

import sqlalchemy
from alembic.config import Config
from alembic.script import ScriptDirectory

from app.core.db import ALEMBIC_DIR, make_engine, run_migrations
from tests.conftest import _fresh_postgres_database


def test_two_starts_at_once_on_an_empty_database_both_succeed_and_migrate_once(postgres_server: str) -> None:
    url = _fresh_postgres_database(postgres_server)
    engines = [make_engine(url) for _ in range(2)]
    together = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: sqlalchemy.Engine) -> None:
        together.wait()
        try:
            run_migrations(engine)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    with engines[0].connect() as connection:
        versions = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [ScriptDirectory.from_config(config).get_current_head()]
    for engine in engines:
        engine.dispose()
