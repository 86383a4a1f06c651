"""Small SQL helpers shared by the writers: dialect-aware upsert, chunked IN queries, time."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, Text, any_, bindparam, cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

# SQLite allows 32766 bound parameters per statement; PostgreSQL 65535.
IN_CHUNK = 10_000


#: The clock :func:`utcnow` reads; None: the wall clock. Only the oversell simulator
#: (benchmarks/simulate_oversell.py) sets it, to replay a week of orders in minutes with
#: every timestamp the store writes (movements, imports, velocity windows) in simulated time.
simulated_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    clock = simulated_clock
    return clock() if clock is not None else datetime.now(UTC)


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


def one_of(connection: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN (values)``; on PostgreSQL ``column = ANY(array)``, one parameter however
    many values (planned and sent faster than a list of hundreds of parameters). Integers
    go as the array's text (:func:`int_array`)."""
    if connection.dialect.name == "postgresql":
        array_type = postgresql.ARRAY(column.type)
        if values and all(type(v) is int for v in values):
            return column == any_(cast(bindparam(None, int_array(values), type_=Text), array_type))
        return column == any_(bindparam(None, list(values), type_=array_type))
    return column.in_(values)


def int_array(values: Iterable[int | None]) -> str:
    """Integers as a PostgreSQL array's text (``{1,2,NULL}``), for a parameter cast to
    ``bigint[]``: psycopg adapts a list element by element in Python (about 1.5 µs each,
    a sizeable part of an order batch's time), this is one join. Anything but an integer
    or None makes PostgreSQL refuse the array (never a silent truncation)."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


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
) -> int:
    """Run ``statement`` (with ``?`` placeholders) for many tuples straight through the
    driver's executemany: the bulk path for million-row imports, where building a
    parameter dictionary per row costs more than the database does. Returns the rows the
    driver says the statements affected (0 for no tuples)."""
    if not rows:
        return 0
    if connection.dialect.paramstyle != "qmark":
        statement = statement.replace("?", "%s")
    return connection.exec_driver_sql(statement, list(rows)).rowcount


def copy_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert many rows into ``table``: ``COPY ... FROM STDIN`` on PostgreSQL (inside the
    connection's transaction; several times cheaper on the server than one INSERT per
    row), :func:`driver_executemany` elsewhere. Times as :func:`db_time` gives them."""
    if not rows:
        return
    names = ", ".join(columns)
    if connection.dialect.name != "postgresql":
        marks = ", ".join("?" * len(columns))
        driver_executemany(connection, f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        return
    statement = f"COPY {table} ({names}) FROM STDIN"
    raw = connection.connection.driver_connection
    assert raw is not None
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except dbapi_error as error:
        # As SQLAlchemy raises it for its own statements (IntegrityError, OperationalError
        # ...), so that callers tell conflicts and deadlocks apart the same way.
        raise DBAPIError.instance(
            statement, None, error, dbapi_error, dialect=connection.dialect
        ) from error


def reserve_ids(connection: Connection, counts: Sequence[tuple[str, int]]) -> list[list[int]]:
    """For each ``(table, count)``, ``count`` fresh values of ``table``'s ``id`` sequence, in
    one round trip (PostgreSQL), so that rows can be written by :func:`copy_rows` with their
    ids known beforehand (nothing read back)."""
    wanted = [(table, count) for table, count in counts if count > 0]
    if not wanted:
        return [[] for _ in counts]
    arrays = ", ".join(
        f"ARRAY(SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
        f"FROM generate_series(1, %(n{i})s))"
        for i, (table, _) in enumerate(wanted)
    )
    row = connection.exec_driver_sql(
        f"SELECT {arrays}", {f"n{i}": count for i, (_, count) in enumerate(wanted)}
    ).one()
    found = iter(row)
    return [[int(v) for v in next(found)] if count > 0 else [] for _, count in counts]


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
