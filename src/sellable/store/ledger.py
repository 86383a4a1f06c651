"""The stock ledger's transaction: lock stock rows, write movements, move stock rows.

Every stock change is a movement; a stock row always equals the sum of its movements.
The stock rows a transaction touches are locked (``SELECT ... FOR UPDATE`` on PostgreSQL;
SQLite serialises writers with ``BEGIN IMMEDIATE``) in (warehouse, SKU) order, so
concurrent writers never deadlock nor allocate the same last units twice. On PostgreSQL
rows are written with COPY and stock rows moved with one UPDATE joined to arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    select,
    tuple_,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from sellable.core import StockKey, StockLevels
from sellable.costing.layers import CostBook, lots_text, total
from sellable.errors import InputError
from sellable.store import schema
from sellable.store.live import KNOWN_STOCK_LIMIT
from sellable.store.schema import Money, micros
from sellable.store.sql import (
    chunked,
    copy_rows,
    db_time,
    driver_executemany,
    fetch_tuples,
    int_array,
    utcnow,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A stock row's key made from a plain (sku id, warehouse id) tuple without StockKey's
#: constructor (the hot path: every locked row of every batch). Equal and hashed alike.
_key = cast(Callable[[tuple[int, int]], StockKey], tuple)

#: The constraint two importers creating the same order at once run into.
ORDER_UNIQUENESS = "uq_orders_channel_external_id"

#: Columns of a movement row, as :func:`write_movements` takes them.
MOVEMENT_COLUMNS = (
    "sku_id",
    "warehouse_id",
    "type",
    "quantity",
    "on_hand_change",
    "locked_change",
    "allocated_change",
    "held_change",
    "expired_change",
    "reference",
    "at",
    "lot",
    "value",
)

#: Called inside a count's transaction with the new levels of every changed stock row.
LevelsWritten = Callable[[Connection, dict[StockKey, StockLevels]], Any]


def is_transient(error: BaseException) -> bool:
    """Conflicts another writer caused: a deadlock, a serialisation failure, a lock
    timeout, or two importers creating the same order at once. Retrying is safe.

    Only the order-uniqueness constraint counts: any other integrity error is a bug or bad
    data, which a retry would only repeat."""
    if isinstance(error, IntegrityError):
        return _violates_order_uniqueness(error)
    if isinstance(error, OperationalError | DBAPIError):
        code = getattr(error.orig, "sqlstate", None)
        return code in {"40001", "40P01", "55P03"} or "database is locked" in str(error.orig)
    return False


def _violates_order_uniqueness(error: IntegrityError) -> bool:
    text = str(error.orig)
    if ORDER_UNIQUENESS in text:
        return True  # PostgreSQL names the constraint
    # SQLite names the columns: "UNIQUE constraint failed: orders.channel, orders.external_id"
    return "UNIQUE constraint failed: orders.channel, orders.external_id" in text


def retrying(func: Callable[..., T], *args: Any) -> T:
    """Run one transaction, again when another writer's conflict made it fail."""
    for attempt in Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(10),
        wait=wait_random_exponential(multiplier=0.05, max=2),
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    ):
        with attempt:
            result = func(*args)
    return result


def lock_stock(
    connection: Connection, pairs: set[StockKey], known: set[StockKey]
) -> dict[StockKey, StockLevels]:
    """Make sure the stock rows exist, lock them in a fixed order, and read them.

    ``known`` holds pairs whose stock row was seen to exist (stock rows are never deleted):
    on PostgreSQL only the others are created (``ON CONFLICT DO NOTHING``), without first
    reading which exist."""
    if not pairs:
        return {}
    if connection.dialect.name == "postgresql":
        return _lock_stock_postgres(connection, pairs, known)
    st = schema.stock.c
    by_warehouse: dict[int, list[int]] = {}
    for sku_id, warehouse_id in pairs:
        by_warehouse.setdefault(warehouse_id, []).append(sku_id)

    def rows(*columns: Any) -> Iterator[tuple[Any, ...]]:
        # One `warehouse = w AND sku IN (...)` query per warehouse and chunk: both columns
        # of the primary key are used (a list of (sku, warehouse) tuples plans as an OR).
        for warehouse_id in sorted(by_warehouse):
            for chunk in chunked(sorted(by_warehouse[warehouse_id]), 5000):
                query = (
                    select(*columns)
                    .where((st.warehouse_id == warehouse_id) & st.sku_id.in_(chunk))
                    .order_by(st.warehouse_id, st.sku_id)
                )
                yield from connection.execute(query)

    existing = {(s, w) for s, w in rows(st.sku_id, st.warehouse_id)}
    missing = sorted(pairs - existing, key=lambda p: (p[1], p[0]))
    driver_executemany(
        connection,
        "INSERT INTO stock (sku_id, warehouse_id, on_hand, locked, allocated) "
        "VALUES (?, ?, 0, 0, 0) ON CONFLICT (sku_id, warehouse_id) DO NOTHING",
        missing,
    )
    # Plain (sku id, warehouse id) tuples as keys: equal to, and hashed as, StockKey, and
    # several times cheaper to make for the thousands of rows of each batch.
    return {
        _key((s, w)): StockLevels(oh, lk, al, hd, ex)
        for s, w, oh, lk, al, hd, ex in rows(
            st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated, st.held, st.expired
        )
    }


def _lock_stock_postgres(
    connection: Connection, pairs: set[StockKey], known: set[StockKey]
) -> dict[StockKey, StockLevels]:
    ordered = sorted(pairs, key=lambda p: (p[1], p[0]))
    _create_stock_rows(connection, [p for p in ordered if p not in known])
    levels = _select_stock_for_update(connection, ordered)
    if len(levels) != len(ordered):
        # A row believed to exist is not there (cannot happen while stock rows are never
        # deleted): create and lock it too.
        gone = [p for p in ordered if p not in levels]
        _create_stock_rows(connection, gone)
        levels.update(_select_stock_for_update(connection, gone))
    if len(known) > KNOWN_STOCK_LIMIT:
        known.clear()
    known.update(levels)
    return levels


def _create_stock_rows(connection: Connection, ordered: list[StockKey]) -> None:
    """Create the missing stock rows among ``ordered`` (sorted by warehouse, SKU), in one
    statement (existing rows are left alone)."""
    if not ordered:
        return
    connection.exec_driver_sql(
        "INSERT INTO stock (sku_id, warehouse_id, on_hand, locked, allocated) "
        "SELECT s, w, 0, 0, 0 FROM unnest(%(s)s::bigint[], %(w)s::bigint[]) AS p(s, w) "
        "ORDER BY w, s ON CONFLICT (sku_id, warehouse_id) DO NOTHING",
        {"s": int_array(p[0] for p in ordered), "w": int_array(p[1] for p in ordered)},
    )


def _select_stock_for_update(
    connection: Connection, ordered: list[StockKey]
) -> dict[StockKey, StockLevels]:
    """Lock and read the stock rows of ``ordered`` in (warehouse, SKU) order: one
    ``warehouse_id = w AND sku_id = ANY(...)`` query per warehouse (both columns of the
    primary key are used, whatever the planner thinks of the list's length)."""
    by_warehouse: dict[int, list[int]] = {}
    for sku_id, warehouse_id in ordered:
        by_warehouse.setdefault(warehouse_id, []).append(sku_id)
    levels: dict[StockKey, StockLevels] = {}
    for warehouse_id in sorted(by_warehouse):
        for s, w, oh, lk, al, hd, ex in connection.exec_driver_sql(
            "SELECT sku_id, warehouse_id, on_hand, locked, allocated, held, expired FROM stock "
            "WHERE warehouse_id = %(w)s AND sku_id = ANY(%(s)s::bigint[]) "
            "ORDER BY warehouse_id, sku_id FOR UPDATE",
            {"w": warehouse_id, "s": int_array(by_warehouse[warehouse_id])},
        ):
            levels[_key((s, w))] = StockLevels(oh, lk, al, hd, ex)
    return levels


def add_to_stock(connection: Connection, deltas: list[tuple[int, int, int, int, int, int]]) -> None:
    """``(on hand delta, allocated delta, held delta, expired delta, sku id, warehouse id)``
    added to the (locked) stock rows: one UPDATE joined to the arrays on PostgreSQL, one per
    row elsewhere."""
    if not deltas:
        return
    if connection.dialect.name != "postgresql":
        driver_executemany(
            connection,
            "UPDATE stock SET on_hand = on_hand + ?, allocated = allocated + ?, "
            "held = held + ?, expired = expired + ? WHERE sku_id = ? AND warehouse_id = ?",
            deltas,
        )
        return
    # A few hundred rows of a table of any size, each found on the primary key: the planner
    # would rather hash the whole stock table (several times slower on a catalog of tens of
    # thousands of SKUs). For the rest of this transaction (nothing else is planned after
    # this but the outbox's max(id)), joins are nested loops.
    connection.exec_driver_sql(
        "SELECT set_config('enable_hashjoin', 'off', true), "
        "set_config('enable_mergejoin', 'off', true)"
    )
    connection.exec_driver_sql(
        "UPDATE stock SET on_hand = stock.on_hand + d.oh, allocated = stock.allocated + d.al, "
        "held = stock.held + d.hd, expired = stock.expired + d.ex "
        "FROM unnest(%(oh)s::bigint[], %(al)s::bigint[], %(hd)s::bigint[], %(ex)s::bigint[], "
        "%(s)s::bigint[], %(w)s::bigint[]) AS d(oh, al, hd, ex, s, w) "
        "WHERE stock.sku_id = d.s AND stock.warehouse_id = d.w",
        {
            name: int_array(d[i] for d in deltas)
            for i, name in enumerate(("oh", "al", "hd", "ex", "s", "w"))
        },
    )


def update_rows(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Set ``columns`` of the rows ``(id, *values)``. PostgreSQL: one ``UPDATE ... FROM
    unnest(arrays)`` (one statement, not one per row); elsewhere an executemany."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(
            table.update()
            .where(table.c.id == bindparam("id_"))
            .values({c: bindparam(f"{c}_") for c in columns}),
            [{f"{c}_": v for c, v in zip(("id", *columns), row, strict=True)} for row in rows],
        )
        return
    names = ("id", *columns)
    arrays: dict[str, list[Any]] = {f"a{i}": [] for i in range(len(names))}
    money = {i for i, c in enumerate(names) if isinstance(table.c[c].type, Money)}
    for row in rows:
        for i, value in enumerate(row):
            arrays[f"a{i}"].append(micros(value) if i in money and value is not None else value)
    types = ["bigint" if i in money else _pg_type(table.c[c].type) for i, c in enumerate(names)]
    params: dict[str, Any] = {
        key: int_array(values) if kind == "bigint" else values
        for (key, values), kind in zip(arrays.items(), types, strict=True)
    }
    casts = ", ".join(f"%(a{i})s::{kind}[]" for i, kind in enumerate(types))
    sets = ", ".join(f"{c} = d.{c}" for c in columns)
    connection.exec_driver_sql(
        f"UPDATE {table.name} SET {sets} FROM unnest({casts}) AS d({', '.join(names)}) "
        f"WHERE {table.name}.id = d.id",
        params,
    )


def _pg_type(column_type: Any) -> str:
    """The PostgreSQL array element type of a column :func:`update_rows` sets."""
    if isinstance(column_type, Integer | BigInteger):
        return "bigint"
    if isinstance(column_type, DateTime):
        return "timestamptz" if column_type.timezone else "timestamp"
    if isinstance(column_type, Date):
        return "date"
    if isinstance(column_type, String):
        return "text"
    raise TypeError(f"no array type for {column_type!r}")


def write_movements(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append movements (values of :data:`MOVEMENT_COLUMNS`, ``value`` in millionths as
    :func:`~sellable.store.schema.micros` gives it): COPY on PostgreSQL."""
    copy_rows(connection, "movements", MOVEMENT_COLUMNS, rows)


def write_stock_counts(
    connection: Connection,
    counts: dict[StockKey, tuple[int, int | None]],
    reference: str,
    on_written: LevelsWritten | None = None,
    problem: Callable[[StockKey, str], None] | None = None,
    unit_costs: Mapping[StockKey, Decimal] | None = None,
) -> tuple[int, int, int]:
    """Set absolute (on hand, locked or None to keep) per (SKU id, warehouse id), writing an
    Adjustment movement for every difference. Returns (created, updated, movements).

    Costing: a count that raises on hand opens a layer at ``unit_costs[key]``, else at the
    SKU's last known unit cost (uncosted when none is known); one that lowers it writes
    off layers, expired units first, then earliest expiry, then oldest."""
    st = schema.stock.c
    ordered = sorted(counts, key=lambda k: (k[1], k[0]))
    big = len(counts) > 20_000  # a big count: one scan of its warehouses beats many lookups
    warehouses = sorted({w for _, w in counts})

    def queries(*columns: Any) -> list[Any]:
        if big:
            return [select(*columns).where(st.warehouse_id.in_(warehouses))]
        return [
            select(*columns).where(tuple_(st.sku_id, st.warehouse_id).in_(chunk))
            for chunk in chunked(ordered, 2000)
        ]

    existing = {
        (s, w)
        for query in queries(st.sku_id, st.warehouse_id)
        for s, w in fetch_tuples(connection, query)
    }
    # Create the missing rows first, at zero (which their empty ledger explains), so that
    # they are there to be locked: a concurrent order cannot slip in between.
    missing = [(s, w) for s, w in ordered if (s, w) not in existing]
    driver_executemany(
        connection,
        "INSERT INTO stock (sku_id, warehouse_id, on_hand, locked, allocated) "
        "VALUES (?, ?, 0, 0, 0) ON CONFLICT (sku_id, warehouse_id) DO NOTHING",
        missing,
    )
    created_keys = set(missing)
    current: dict[StockKey, StockLevels] = {}
    for query in queries(
        st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated, st.held, st.expired
    ):
        # Locked in (warehouse, SKU) order, as the order book locks them: no deadlock.
        query = query.order_by(st.warehouse_id, st.sku_id)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()  # a count is absolute: nothing may move meanwhile
        for s, w, oh, lk, al, hd, ex in fetch_tuples(connection, query):
            current[StockKey(s, w)] = StockLevels(oh, lk, al, hd, ex)

    moment = utcnow()
    now = db_time(connection, moment)
    costs = CostBook(connection, moment, moment.date())
    costs.load(
        key
        for key, (on_hand, _) in counts.items()
        if on_hand != current[StockKey(key[0], key[1])].on_hand
    )
    updates: list[tuple[int, int, int, int, int]] = []
    new_levels: dict[StockKey, StockLevels] = {}
    movements: list[tuple[Any, ...]] = []
    created = updated = 0
    for (sku_id, warehouse_id), (on_hand, locked) in counts.items():
        old = current[StockKey(sku_id, warehouse_id)]
        old_on_hand, old_locked, allocated = old.on_hand, old.locked, old.allocated
        is_new = (sku_id, warehouse_id) in created_keys
        new_locked = old_locked if locked is None else locked
        if on_hand < new_locked:
            # A count without a locked column keeps the stored lock, which cannot exceed it.
            reason = f"is below the {new_locked} unit(s) already locked; give the locked column too"
            if problem is None:
                raise InputError(f"{reference}: SKU id {sku_id}: on hand {on_hand} {reason}")
            problem(StockKey(sku_id, warehouse_id), reason)
            continue
        on_hand_change = on_hand - old_on_hand
        locked_change = new_locked - old_locked
        if is_new:
            created += 1
        elif not on_hand_change and not locked_change:
            continue
        else:
            updated += 1
        expired_change, lot, value = 0, None, None
        if on_hand_change > 0:
            known = (unit_costs or {}).get(StockKey(sku_id, warehouse_id))
            unit = known if known is not None else costs.last_unit_cost(sku_id)
            costs.open(
                sku_id,
                warehouse_id,
                on_hand_change,
                None if unit is None else unit * on_hand_change,
                "count",
                source="count",
                reference=reference,
                unit_cost=unit,
            )
            value = Decimal(0) if unit is None else unit * on_hand_change
        elif on_hand_change < 0:
            taken = costs.take(
                sku_id,
                warehouse_id,
                -on_hand_change,
                "writeoff",
                reference=reference,
                expired_first=True,
            )
            expired_change = -sum(t.quantity for t in taken if t.expired)
            lot, value = lots_text(taken), -total(taken)
        new_levels[StockKey(sku_id, warehouse_id)] = StockLevels(
            on_hand, new_locked, allocated, old.held, old.expired + expired_change
        )
        if on_hand_change or locked_change:
            # allocated is left alone: a count never touches allocations.
            updates.append((on_hand, new_locked, expired_change, sku_id, warehouse_id))
            movements.append(
                (
                    sku_id,
                    warehouse_id,
                    "Adjustment",
                    on_hand_change,
                    on_hand_change,
                    locked_change,
                    0,
                    0,
                    expired_change,
                    reference,
                    now,
                    lot,
                    None if value is None else micros(value),
                )
            )
    costs.flush()
    driver_executemany(
        connection,
        "UPDATE stock SET on_hand = ?, locked = ?, expired = expired + ? "
        "WHERE sku_id = ? AND warehouse_id = ?",
        updates,
    )
    write_movements(connection, movements)
    if on_written is not None:
        on_written(connection, new_levels)
    elif new_levels:
        note_changes(connection, new_levels, now)
    return created, updated, len(movements)


def note_changes(connection: Connection, keys: Iterable[StockKey], at: Any) -> None:
    """Name stock rows written without a calculation core at hand in the outbox, so that
    running daemons and order books re-read them and work out what changed."""
    driver_executemany(
        connection,
        "INSERT INTO sellable_changes (sku_id, warehouse_id, at) VALUES (?, ?, ?)",
        [(s, w, at) for s, w in sorted(keys)],
    )
