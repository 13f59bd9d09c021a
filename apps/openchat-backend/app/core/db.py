"""Database engine, sessions and migrations (SQLite by default, PostgreSQL via DATABASE_URL)."""

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "alembic"


def make_engine(
    url: str, pool_size: int = 5, max_overflow: int = 10, pool_timeout_s: float = 30, busy_timeout_s: float = 30
) -> Engine:
    parsed = make_url(url)
    # hide_parameters: SQL errors and SQL logging leave out the values (message text, password
    # and token hashes), so a logged database error never carries them.
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout_s,
        "hide_parameters": True,
    }
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.database in (None, "", ":memory:"):
            options = {"hide_parameters": True}  # in memory: SQLAlchemy's own pool (a connection per thread), no sizes
        else:
            # A fixed set of connections, opened at start (open_pool), never closed under load:
            # SQLite keeps the descriptor of a connection closed while another holds a lock on the
            # file, so overflow connections opened and closed under load left up to one descriptor
            # each behind (docs/stress.md: idle descriptors 28 -> 36 in the soak).
            options["pool_size"], options["max_overflow"] = pool_size + max_overflow, 0
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s}, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers (conversation list) run while a reply is being written.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        # Only psycopg 3 is installed; accept plain postgresql:// URLs.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **options)


def open_pool(engine: Engine) -> None:
    """Open every connection of a fixed pool (a SQLite file's, see make_engine) at start-up, so
    that the process's descriptors do not change under load; other pools open as needed."""
    if engine.dialect.name != "sqlite" or not isinstance(engine.pool, QueuePool):  # in memory: none to open
        return
    with ExitStack() as held:
        for _ in range(engine.pool.size()):
            held.enter_context(engine.connect())


def make_event_loop_reader(engine: Engine) -> Engine | None:
    """For a SQLite file: an engine of one connection, for short reads on the event loop's thread
    (a chat's access check). Such a read takes ~50 µs; handing it to a worker thread cost a new
    chat ~2 ms of time to first token while a local engine's threads held both cores
    (docs/benchmarks.md). Its one connection, used by one thread and never across an await, is
    never waited for, and WAL readers do not wait for writers (1 s at most, then an error).
    None for other databases: a read is a network round trip, made in a worker thread."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return make_engine(engine.url.render_as_string(hide_password=False), 1, 0, busy_timeout_s=1)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


# Any fixed 64-bit number: the PostgreSQL advisory lock that replicas take around their migrations.
MIGRATION_LOCK_ID = 0x0C4A7_0001


def run_migrations(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision`. On PostgreSQL, replicas starting together take turns
    (an advisory lock held for the transaction): the first migrates, the others then find the
    database at head and do nothing. SQLite locks its file for the transaction anyway."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
