"""``sellable import products FILE.csv``: columns sku,name,kind[,allow_backorder][,price]
[,assembly_on_demand][,use_component_inventory][,labour_cost][,packaging_cost]
[,reorder_point][,reorder_quantity].

``reorder_point`` and ``reorder_quantity`` (whole units; blank: not watched) feed the
dashboard's reorder view and ``sellable reorder``.

``use_component_inventory`` (true/false; blank: the warehouse's setting) lets one composite
count only its own prepackaged units where its warehouse would use components."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from sellable.core import SkuKind
from sellable.imports.csvfile import (
    CsvFile,
    Progress,
    RowRejected,
    boolean,
    non_negative_int,
    optional_boolean,
    optional_decimal,
    required_text,
)
from sellable.imports.summary import ImportSummary
from sellable.store import schema
from sellable.store.db import writing
from sellable.store.sql import bump_catalog_version, chunked, upsert

KINDS = tuple(kind.value for kind in SkuKind)
#: The optional columns: left out of a file, the stored value is kept.
OPTIONAL = (
    "allow_backorder",
    "price",
    "assembly_on_demand",
    "use_component_inventory",
    "labour_cost",
    "packaging_cost",
    "reorder_point",
    "reorder_quantity",
)
#: The skus columns a products file sets, the key first.
COLUMNS = ("sku", "name", "kind", *OPTIONAL)


def _kind(column: str, value: str) -> str:
    lowered = value.lower()
    if lowered not in KINDS:
        raise RowRejected(column, value, f"unknown kind (expected one of: {', '.join(KINDS)})")
    return lowered


def import_products(
    engine: Engine, path: str | os.PathLike[str], progress: Progress | None = None
) -> ImportSummary:
    """Create or update SKUs. The whole file is rejected on any bad row."""
    csv_file = CsvFile(path, ("sku", "name", "kind"), OPTIONAL, progress)
    rows: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line, raw in csv_file:
        sku = csv_file.field(line, required_text, "sku", raw["sku"])
        kind = csv_file.field(line, _kind, "kind", raw["kind"])
        backorder = csv_file.field(line, boolean, "allow_backorder", raw["allow_backorder"])
        price = csv_file.field(line, optional_decimal, "price", raw["price"])
        on_demand = csv_file.field(
            line, optional_boolean, "assembly_on_demand", raw["assembly_on_demand"]
        )
        components = csv_file.field(
            line, optional_boolean, "use_component_inventory", raw["use_component_inventory"]
        )
        if price is not None and price < 0:
            csv_file.reject(line, "price", raw["price"], "must not be negative")
        # Added to each built unit's cost (base currency), seed 000's labour and packaging.
        extras: dict[str, Decimal | None] = {}
        for column in ("labour_cost", "packaging_cost"):
            amount = csv_file.field(line, optional_decimal, column, raw[column])
            if amount is not None and amount < 0:
                csv_file.reject(line, column, raw[column], "must not be negative")
            extras[column] = amount
        reorder: dict[str, int | None] = {}
        for column in ("reorder_point", "reorder_quantity"):
            text = raw[column]
            reorder[column] = (
                None
                if text is None or not text.strip()
                else csv_file.field(line, non_negative_int, column, text.strip())
            )
        if sku is None or kind is None:
            continue
        if sku in rows:
            csv_file.reject(
                line, "sku", sku, f"duplicate row: SKU already given on line {first_line[sku]}"
            )
            continue
        first_line[sku] = line
        rows[sku] = {
            "sku": sku,
            "name": raw["name"],
            "kind": kind,
            "allow_backorder": bool(backorder),
            "price": price,
            "assembly_on_demand": on_demand,
            "use_component_inventory": components,
            **extras,
            **reorder,
        }
    # Optional columns left out of the file keep their stored values.
    keep = [c for c in OPTIONAL if c not in csv_file.columns]
    sku_table = schema.skus
    with writing(engine) as connection:
        existing: dict[str, tuple[int, dict[str, Any]]] = {}
        for chunk in chunked(rows):
            for stored in connection.execute(
                select(sku_table.c.id, *(sku_table.c[c] for c in COLUMNS)).where(
                    sku_table.c.sku.in_(chunk)
                )
            ):
                values = dict(zip(COLUMNS, stored[1:], strict=True))
                existing[values["sku"]] = (stored[0], values)
        to_simple = {
            existing[sku][0]: sku
            for sku, row in rows.items()
            if sku in existing and row["kind"] == "simple" and existing[sku][1]["kind"] != "simple"
        }
        bom = schema.bom_lines.c
        for id_chunk in chunked(to_simple):
            for (parent_id,) in connection.execute(
                select(bom.parent_id).where(bom.parent_id.in_(id_chunk)).distinct()
            ):
                sku = to_simple[parent_id]
                csv_file.reject(
                    first_line[sku],
                    "kind",
                    "simple",
                    f"SKU {sku!r} has components and cannot become simple "
                    "(a component of a simple SKU); remove its components first",
                )
        csv_file.raise_errors()
        created = updated = 0
        changed: list[dict[str, Any]] = []
        for sku, row in rows.items():
            old = existing.get(sku)
            if old is not None:
                for column in keep:
                    row[column] = old[1][column]
                if row == old[1]:
                    continue
                updated += 1
            else:
                created += 1
            changed.append(row)
        upsert(
            connection,
            sku_table,
            changed,
            key=("sku",),
            update=COLUMNS[1:],
        )
        if changed:
            bump_catalog_version(connection)
    return ImportSummary(str(path), len(rows), created, updated, len(rows) - created - updated)
