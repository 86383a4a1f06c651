"""``sellable import stock FILE.csv``: sku,warehouse,on_hand[,locked] — a stock count.

Counts are absolute. For every difference from the stored stock an Adjustment movement
is written, so the ledger keeps explaining every stock row. Allocations are untouched.
A row without ``locked`` keeps the stored locked quantity.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from sellable.config import Settings
from sellable.core import StockKey
from sellable.imports.csvfile import CsvFile, Progress, non_negative_int, optional_decimal
from sellable.imports.summary import ImportSummary
from sellable.store import schema
from sellable.store.db import sync_warehouses, writing
from sellable.store.ledger import LevelsWritten, write_stock_counts
from sellable.store.sql import fetch_tuples

if TYPE_CHECKING:
    from sellable.orders.book import OrderBook
    from sellable.orders.counts import CountOutcome


def import_stock(
    engine: Engine,
    settings: Settings,
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    on_written: LevelsWritten | None = None,
) -> ImportSummary:
    """Apply a stock count. Rejects the whole file on any bad row; one transaction.

    ``on_written(connection, levels)`` runs inside that transaction with the new
    (on hand, locked, allocated) of every changed (SKU id, warehouse id) row. Without a
    calculation core at hand; :func:`import_stock_counts` is the same through the order
    book (and retries held lines).
    """
    csv_file = CsvFile(path, ("sku", "warehouse", "on_hand"), ("locked", "unit_cost"), progress)
    warehouse_ids = sync_warehouses(engine, settings.warehouses)
    counts, first_line, unit_costs = _read(csv_file, warehouse_ids)
    reject = csv_file.reject
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
            StockKey(sku_ids[sku], warehouse_id): value
            for (sku, warehouse_id), value in counts.items()
        }
        lines = {
            StockKey(sku_ids[sku], warehouse_id): line
            for (sku, warehouse_id), line in first_line.items()
        }
        created, updated, movements = write_stock_counts(
            connection,
            by_id,
            f"stock count {os.path.basename(path)}",
            on_written,
            problem=lambda key, reason: reject(lines[key], "on_hand", str(by_id[key][0]), reason),
            unit_costs={
                StockKey(sku_ids[sku], warehouse_id): cost
                for (sku, warehouse_id), cost in unit_costs.items()
            },
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


def import_stock_counts(
    book: OrderBook,
    path: str | os.PathLike[str],
    progress: Progress | None = None,
) -> tuple[ImportSummary, CountOutcome]:
    """Apply a stock count through the order book (:func:`receive_stock_counts`): the
    changed sellable values are recorded and held lines retried. Rejects the whole file on
    any bad row, unknown SKUs included; one transaction."""
    from sellable.orders.counts import CountIn, receive_stock_counts

    live = book.live
    csv_file = CsvFile(path, ("sku", "warehouse", "on_hand"), ("locked", "unit_cost"), progress)
    counts, first_line, unit_costs = _read(csv_file, live.warehouse_ids)
    live.refresh()
    for (sku, _), line in first_line.items():
        if not live.knows(sku):
            csv_file.reject(
                line, "sku", sku, "unknown SKU (import it with 'sellable import products' first)"
            )
    csv_file.raise_errors()
    codes = live.warehouse_codes
    wanted = [
        CountIn(
            sku, codes[warehouse_id], on_hand, locked, unit_cost=unit_costs.get((sku, warehouse_id))
        )
        for (sku, warehouse_id), (on_hand, locked) in counts.items()
    ]
    lines = {
        (c.sku, c.warehouse): first_line[(c.sku, live.warehouse_ids[c.warehouse])] for c in wanted
    }

    def problem(count: CountIn, reason: str) -> None:
        csv_file.reject(lines[(count.sku, count.warehouse)], "on_hand", str(count.on_hand), reason)

    outcome = receive_stock_counts(
        book,
        wanted,
        f"stock count {os.path.basename(path)}",
        problem=problem,
        check=csv_file.raise_errors,
    )
    summary = ImportSummary(
        str(path),
        len(counts),
        outcome.created,
        outcome.updated,
        len(counts) - outcome.created - outcome.updated,
        movements=outcome.movements,
    )
    return summary, outcome


def _read(
    csv_file: CsvFile, warehouse_ids: dict[str, int]
) -> tuple[
    dict[tuple[str, int], tuple[int, int | None]],
    dict[tuple[str, int], int],
    dict[tuple[str, int], Decimal],
]:
    """The counts of a stock CSV by (SKU, warehouse id), the line of each, and the unit
    cost (base currency) of units a count adds, where the optional ``unit_cost`` gives it."""
    known_codes = ", ".join(warehouse_ids)
    counts: dict[tuple[str, int], tuple[int, int | None]] = {}
    first_line: dict[tuple[str, int], int] = {}
    unit_costs: dict[tuple[str, int], Decimal] = {}
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
        cost = csv_file.field(line, optional_decimal, "unit_cost", row["unit_cost"])
        if cost is not None and cost < 0:
            reject(line, "unit_cost", row["unit_cost"], "must not be negative")
        elif cost is not None:
            unit_costs[key] = cost

    return counts, first_line, unit_costs
