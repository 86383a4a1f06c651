"""Small SQL helpers shared by the writers: dialect-aware upsert, chunked IN queries, time."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

# SQLite allows 32766 bound parameters per statement; PostgreSQL 65535.
IN_CHUNK = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back naive datetimes; they are UTC)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET update = excluded.update, for many rows."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: statement.excluded[column] for column in update},
    )
    connection.execute(statement, list(rows))


def chunked(items: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bump_catalog_version(connection: Connection) -> None:
    """Tell running daemons that SKUs or BOMs changed, so they reload the catalog."""
    from sellable.store import schema

    upsert(
        connection,
        schema.meta,
        [{"key": "catalog_version", "value": uuid.uuid4().hex}],
        key=("key",),
        update=("value",),
    )


def driver_executemany(
    connection: Connection, statement: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Run ``statement`` (with ``?`` placeholders) for many tuples straight through the
    driver's executemany: the bulk path for million-row imports, where building a
    parameter dictionary per row costs more than the database does."""
    if not rows:
        return
    if connection.dialect.paramstyle != "qmark":
        statement = statement.replace("?", "%s")
    connection.exec_driver_sql(statement, list(rows))


def db_time(connection: Connection, moment: datetime) -> Any:
    """``moment`` as the driver takes it for a DateTime column written by
    :func:`driver_executemany` (SQLite stores SQLAlchemy's text form, in UTC)."""
    if connection.dialect.name == "sqlite":
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def fetch_tuples(
    connection: Connection, query: Any, size: int = 50_000
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` as the driver returns them, fetched in blocks: for reading
    millions of plain integer/text rows without a Row object each."""
    result = connection.execute(query)
    cursor = result.cursor
    try:
        while True:
            block = cursor.fetchmany(size)
            if not block:
                return
            yield from block
    finally:
        result.close()
