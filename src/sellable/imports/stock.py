"""``sellable import stock FILE.csv``: sku,warehouse,on_hand[,locked] — a stock count.

Counts are absolute. For every difference from the stored stock an Adjustment movement
is written, so the ledger keeps explaining every stock row. Allocations are untouched.
A row without ``locked`` keeps the stored locked quantity.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, select, tuple_

from sellable.config import Settings
from sellable.errors import InputError
from sellable.imports.csvfile import CsvFile, Progress, non_negative_int
from sellable.imports.summary import ImportSummary
from sellable.store import schema
from sellable.store.db import sync_warehouses, writing
from sellable.store.sql import (
    chunked,
    db_time,
    driver_executemany,
    fetch_tuples,
    utcnow,
)

LevelsWritten = Callable[[Connection, dict[tuple[int, int], tuple[int, int, int]]], None]


def import_stock(
    engine: Engine,
    settings: Settings,
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    on_written: LevelsWritten | None = None,
) -> ImportSummary:
    """Apply a stock count. Rejects the whole file on any bad row; one transaction.

    ``on_written(connection, levels)`` runs inside that transaction with the new
    (on hand, locked, allocated) of every changed (SKU id, warehouse id) row.
    """
    csv_file = CsvFile(path, ("sku", "warehouse", "on_hand"), ("locked",), progress)
    warehouse_ids = sync_warehouses(engine, settings.warehouses)
    known_codes = ", ".join(warehouse_ids)
    counts: dict[tuple[str, int], tuple[int, int | None]] = {}
    first_line: dict[tuple[str, int], int] = {}
    reject = csv_file.reject
    for line, row in csv_file:
        sku = row["sku"]
        if not sku:
            reject(line, "sku", sku, "must not be empty")
            continue
        warehouse_id = warehouse_ids.get(row["warehouse"])
        if warehouse_id is None:
            reject(line, "warehouse", row["warehouse"], f"unknown warehouse (known: {known_codes})")
            continue
        on_hand = csv_file.field(line, non_negative_int, "on_hand", row["on_hand"])
        locked: int | None = None
        if row["locked"]:
            locked = csv_file.field(line, non_negative_int, "locked", row["locked"])
            if locked is not None and on_hand is not None and locked > on_hand:
                reject(
                    line, "locked", row["locked"], f"cannot lock more than is on hand ({on_hand})"
                )
                continue
        if on_hand is None:
            continue
        key = (sku, warehouse_id)
        if key in first_line:
            reject(
                line, "sku", sku, f"duplicate row: same SKU and warehouse as line {first_line[key]}"
            )
            continue
        first_line[key] = line
        counts[key] = (on_hand, locked)

    sku_table = schema.skus.c
    with writing(engine) as connection:
        sku_ids: dict[str, int] = {}
        wanted = {sku for sku, _ in counts}
        for sku_id, code in fetch_tuples(connection, select(sku_table.id, sku_table.sku)):
            if code in wanted:
                sku_ids[code] = sku_id
        for (sku, _), line in first_line.items():
            if sku not in sku_ids:
                reject(
                    line,
                    "sku",
                    sku,
                    "unknown SKU (import it with 'sellable import products' first)",
                )
        csv_file.raise_errors()

        by_id = {
            (sku_ids[sku], warehouse_id): value for (sku, warehouse_id), value in counts.items()
        }
        lines = {
            (sku_ids[sku], warehouse_id): line for (sku, warehouse_id), line in first_line.items()
        }
        created, updated, movements = write_stock_counts(
            connection,
            by_id,
            f"stock count {os.path.basename(path)}",
            on_written,
            problem=lambda key, reason: reject(lines[key], "on_hand", str(by_id[key][0]), reason),
        )
        csv_file.raise_errors()
    return ImportSummary(
        str(path),
        len(counts),
        created,
        updated,
        len(counts) - created - updated,
        movements=movements,
    )


def write_stock_counts(
    connection: Connection,
    counts: dict[tuple[int, int], tuple[int, int | None]],
    reference: str,
    on_written: LevelsWritten | None = None,
    problem: Callable[[tuple[int, int], str], None] | None = None,
) -> tuple[int, int, int]:
    """Set absolute (on hand, locked or None to keep) per (SKU id, warehouse id), writing an
    Adjustment movement for every difference. Returns (created, updated, movements)."""
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
    current: dict[tuple[int, int], tuple[int, int, int]] = {}
    for query in queries(st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated):
        # Locked in (warehouse, SKU) order, as the order book locks them: no deadlock.
        query = query.order_by(st.warehouse_id, st.sku_id)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()  # a count is absolute: nothing may move meanwhile
        for s, w, oh, lk, al in fetch_tuples(connection, query):
            current[(s, w)] = (oh, lk, al)

    now = db_time(connection, utcnow())
    updates: list[tuple[int, int, int, int]] = []
    new_levels: dict[tuple[int, int], tuple[int, int, int]] = {}
    movements: list[tuple[Any, ...]] = []
    created = updated = 0
    for (sku_id, warehouse_id), (on_hand, locked) in counts.items():
        old_on_hand, old_locked, allocated = current[(sku_id, warehouse_id)]
        is_new = (sku_id, warehouse_id) in created_keys
        new_locked = old_locked if locked is None else locked
        if on_hand < new_locked:
            # A count without a locked column keeps the stored lock, which cannot exceed it.
            reason = f"is below the {new_locked} unit(s) already locked; give the locked column too"
            if problem is None:
                raise InputError(f"{reference}: SKU id {sku_id}: on hand {on_hand} {reason}")
            problem((sku_id, warehouse_id), reason)
            continue
        on_hand_change = on_hand - old_on_hand
        locked_change = new_locked - old_locked
        if is_new:
            created += 1
        elif not on_hand_change and not locked_change:
            continue
        else:
            updated += 1
        new_levels[(sku_id, warehouse_id)] = (on_hand, new_locked, allocated)
        if on_hand_change or locked_change:
            # allocated is left alone: a count never touches allocations.
            updates.append((on_hand, new_locked, sku_id, warehouse_id))
            movements.append(
                (
                    sku_id,
                    warehouse_id,
                    "Adjustment",
                    on_hand_change,
                    on_hand_change,
                    locked_change,
                    0,
                    reference,
                    now,
                )
            )
    driver_executemany(
        connection,
        "UPDATE stock SET on_hand = ?, locked = ? WHERE sku_id = ? AND warehouse_id = ?",
        updates,
    )
    driver_executemany(
        connection,
        "INSERT INTO movements (sku_id, warehouse_id, type, quantity, on_hand_change, "
        "locked_change, allocated_change, reference, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        movements,
    )
    if on_written is not None:
        on_written(connection, new_levels)
    elif new_levels:
        # No calculation core at hand: name the rows in the outbox, so that running daemons
        # and order books re-read them and work out what changed.
        driver_executemany(
            connection,
            "INSERT INTO sellable_changes (sku_id, warehouse_id, at) VALUES (?, ?, ?)",
            [(s, w, now) for s, w in sorted(new_levels)],
        )
    return created, updated, len(movements)
