"""Opening the registry database and bringing its schema to the current revision."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from registry.models import DIRECTORY_MODELS, RegistryState

_LOGGER = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class RegistryError(RuntimeError):
    """The registry database cannot be used as it is (missing, or at another revision)."""


def engine_for(url: str, *, serialised: bool = False) -> Engine:
    """An engine for the registry at `url`. `serialised`: on SQLite, every transaction takes
    the write lock when it begins (`BEGIN IMMEDIATE`), so that what it read cannot change
    before it writes; for services that read, decide and write (alerts). PostgreSQL gets the
    same from the row locks such code takes (`SELECT ... FOR UPDATE`)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The API serves requests from a thread pool; SQLite connections may move between
        # threads because each request's session holds its own.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        if serialised:
            # Python's sqlite3 begins a transaction only before a write, so a read-then-write
            # races by default; take over BEGIN (the SQLAlchemy documentation's recipe).
            event.listen(engine, "connect", _no_implicit_begin)
            event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _no_implicit_begin(connection: Any, _record: object) -> None:
    connection.isolation_level = None


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(connection: Any, _record: object) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # SQLite ignores foreign keys unless asked
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (ingest) never block the API's writes
    cursor.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` (creating it if need be) to `revision`."""
    _LOGGER.info("registry: upgrading %s to %s", _redacted(url), revision)
    command.upgrade(alembic_config(url), revision)


def open_registry(url: str, *, serialised: bool = False) -> Engine:
    """The engine of a registry at the current revision, or a clear error saying what to run."""
    engine = engine_for(url, serialised=serialised)
    found, head = current_revision(engine), head_revision()
    if found != head:
        engine.dispose()
        state = "is empty" if found is None else f"is at revision {found}"
        raise RegistryError(
            f"registry {_redacted(url)} {state}, this Tapsense needs {head}: "
            "run `tapsense registry migrate`"
        )
    return engine


@event.listens_for(Session, "before_flush")
def _bump_generation(session: Session, _context: object, _instances: object) -> None:
    """Every flush that adds, changes or deletes what ingest reads bumps the generation."""
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(row, DIRECTORY_MODELS) for row in changed):
        session.execute(update(RegistryState).values(generation=RegistryState.generation + 1))


def generation(engine: Engine) -> int:
    with engine.connect() as db:
        return db.scalar(select(RegistryState.generation)) or 0


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    with session_factory(engine).begin() as session:
        yield session


def _redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    return make_url(url).render_as_string(hide_password=True)
