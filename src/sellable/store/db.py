"""Opening the database: engines for SQLite and PostgreSQL, schema upgrades, warehouse sync."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError

from sellable.config import Settings, WarehouseSettings
from sellable.errors import ConfigError, StoreError
from sellable.store import schema

MIGRATIONS = Path(__file__).with_name("migrations")


def create_db_engine(settings: Settings) -> Engine:
    """An engine for ``[database].url``; SQLite gets WAL, foreign keys and a busy timeout."""
    raw = settings.database.url.get_secret_value()
    try:
        url = make_url(raw)
    except ArgumentError as err:
        raise ConfigError(f"database.url: not a database URL ({err})") from None
    if url.get_backend_name() == "sqlite":
        timeout = settings.database.busy_timeout_seconds
        engine = create_engine(url, connect_args={"timeout": timeout})
        _configure_sqlite(engine, timeout)
        return engine
    if url.get_backend_name() == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True)
        except ImportError as err:
            raise ConfigError(
                f"database.url is a PostgreSQL URL but its driver is not installed ({err}): "
                "pip install 'sellable[postgres]' and write postgresql+psycopg://..."
            ) from None
    raise ConfigError(
        f"database.url: unsupported database {url.get_backend_name()!r} "
        "(use sqlite:///FILE or postgresql+psycopg://...)"
    )


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file of ``[database].url``; None for PostgreSQL or in memory."""
    url = make_url(settings.database.url.get_secret_value())
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database.removeprefix("file:").partition("?")[0])


def database_origin(settings: Settings) -> str:
    """Where ``database.url`` was set, for a message: the key and the file (or the
    environment variable, or the default)."""
    from sellable.config import env_variable_for, shown_path

    variable = env_variable_for(("database", "url"))
    if variable is not None:
        return f"database.url from ${variable}"
    if settings.source is not None:
        return f"database.url in {shown_path(settings.source)}"
    return "no configuration file found, so the default database.url"


def describe_database(settings: Settings) -> str:
    """The database for a message: the SQLite file, else the URL with its password hidden."""
    path = sqlite_file(settings)
    return str(path.absolute()) if path is not None else redacted_url(settings)


def require_database(settings: Settings) -> None:
    """Refuse to go on when the SQLite file is missing: opening it would create an empty
    database where the user expected theirs (only ``sellable init`` creates one)."""
    path = sqlite_file(settings)
    if path is None:
        return
    usable_path(settings)
    if path.exists():
        return
    raise StoreError(
        f"no database at {path.absolute()} ({database_origin(settings)}): run 'sellable init' "
        "to create it, or point database.url at your database"
    )


def usable_path(settings: Settings) -> None:
    """Refuse an SQLite path that cannot hold a database file (a folder, or in a missing
    folder), naming the path, the key and the file that set it."""
    path = sqlite_file(settings)
    if path is None:
        return
    try:
        problem = None
        if path.is_dir():
            problem = "it is a folder, not a database file"
        elif not path.absolute().parent.is_dir():
            problem = f"the folder {path.absolute().parent} does not exist"
    except OSError as err:  # e.g. "File name too long"
        problem = err.strerror
    if problem is not None:
        raise StoreError(
            f"cannot open the database {describe_database(settings)} "
            f"({database_origin(settings)}): {problem}"
        )


@contextmanager
def database_errors(settings: Settings) -> Iterator[None]:
    """Turn a database that cannot be used (not a database, read only, unreachable) into a
    :class:`StoreError` naming it, the key and the configuration file (exit 4)."""
    try:
        yield
    except DBAPIError as err:
        # Only a database that cannot be used: "file is not a database" (a bare
        # DatabaseError), a read-only file, a refused connection. A constraint or an SQL
        # error is a bug of ours and stays one.
        if not isinstance(err, OperationalError) and type(err) is not DatabaseError:
            raise
        reason = str(err.orig).strip() if err.orig is not None else str(err)
        raise StoreError(
            f"cannot open the database {describe_database(settings)} "
            f"({database_origin(settings)}): {reason}"
        ) from err


def _configure_sqlite(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin, so that a write
        # transaction takes the lock at BEGIN IMMEDIATE and never deadlocks on upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint every ~40 MB of WAL instead of every 4 MB (1,000 pages): a checkpoint
        # syncs the database file, and an order batch writes hundreds of pages, many of them
        # the same index pages again; fewer checkpoints write each of them once.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers (see `writing`) take the write lock at BEGIN, so they queue on the busy
        # timeout instead of failing when a read snapshot cannot be upgraded; readers
        # begin deferred and, in WAL mode, never wait.
        if connection.get_execution_options().get("sqlite_begin") == "IMMEDIATE":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def writing(engine: Engine) -> AbstractContextManager[Connection]:
    """A write transaction: ``with writing(engine) as connection: ...``.

    On SQLite it begins IMMEDIATE (the write lock is taken, or waited for, at once);
    on PostgreSQL it is a plain transaction.
    """
    return engine.execution_options(sqlite_begin="IMMEDIATE").begin()


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_schema(engine: Engine) -> str:
    """Create or upgrade the schema to the newest migration; returns the revision.

    A database that cannot be used raises the driver's error: see :func:`database_errors`."""
    cfg = _alembic_config(engine)
    command.upgrade(cfg, "head")
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not at the newest migration.

    A database that cannot be used raises the driver's error: see :func:`database_errors`."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        raise StoreError("the database has no schema yet: run 'sellable init' first")
    if current != head:
        raise StoreError(
            f"the database schema is at {current}, the code needs {head}: run 'sellable init'"
        )


def sync_warehouses(engine: Engine, configured: list[WarehouseSettings]) -> dict[str, int]:
    """Make the warehouses table match the configuration; returns code -> id.

    Warehouses removed from the configuration stay in the table (their stock and history
    remain), but are no longer used.
    """
    table = schema.warehouses
    with writing(engine) as connection:
        existing = {row.code: row for row in connection.execute(select(table))}
        for warehouse in configured:
            values = {
                "kind": warehouse.kind,
                "use_component_inventory": warehouse.uses_components,
                "assembly_on_demand": warehouse.assembly_on_demand,
            }
            row = existing.get(warehouse.code)
            if row is None:
                connection.execute(table.insert().values(code=warehouse.code, **values))
            elif any(getattr(row, key) != value for key, value in values.items()):
                connection.execute(table.update().where(table.c.id == row.id).values(**values))
        ids = {row.code: row.id for row in connection.execute(select(table.c.code, table.c.id))}
    return {w.code: ids[w.code] for w in configured}


def redacted_url(settings: Settings) -> str:
    """The database URL with any password hidden, for logs and messages."""
    return make_url(settings.database.url.get_secret_value()).render_as_string(hide_password=True)
