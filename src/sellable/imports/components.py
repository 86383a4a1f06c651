"""``sellable import components FILE.csv``: parent_sku,component_sku,quantity[,slot][,price_offset].

Each parent named in the file gets exactly the BOM the file gives it (its old rows are
replaced); parents not named keep theirs. Rows of one parent with the same ``slot`` are
interchangeable options; a row without ``slot`` is a slot of its own.
"""

from __future__ import annotations

import os
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, Engine, select

from sellable.core import Catalog
from sellable.errors import CatalogError
from sellable.imports.csvfile import (
    CsvFile,
    Progress,
    optional_decimal,
    positive_int,
    required_text,
)
from sellable.imports.summary import ImportSummary
from sellable.store import schema
from sellable.store.db import writing
from sellable.store.sql import bump_catalog_version, chunked


def import_components(
    engine: Engine, path: str | os.PathLike[str], progress: Progress | None = None
) -> ImportSummary:
    """Replace the BOMs of the parents in the file. Rejects the whole file on any bad row."""
    csv_file = CsvFile(
        path, ("parent_sku", "component_sku", "quantity"), ("slot", "price_offset"), progress
    )
    parsed: list[tuple[int, str, str, int, str | None, Any]] = []
    for line, row in csv_file:
        parent = csv_file.field(line, required_text, "parent_sku", row["parent_sku"])
        component = csv_file.field(line, required_text, "component_sku", row["component_sku"])
        quantity = csv_file.field(line, positive_int, "quantity", row["quantity"])
        offset = csv_file.field(line, optional_decimal, "price_offset", row["price_offset"])
        if parent is None or component is None or quantity is None:
            continue
        parsed.append((line, parent, component, quantity, row["slot"] or None, offset))

    sku = schema.skus.c
    bom = schema.bom_lines
    with writing(engine) as connection:
        known: dict[str, tuple[int, str]] = {}
        names = {p for _, p, *_ in parsed} | {c for _, _, c, *_ in parsed}
        for chunk in chunked(names):
            for sku_id, code, kind in connection.execute(
                select(sku.id, sku.sku, sku.kind).where(sku.sku.in_(chunk))
            ):
                known[code] = (sku_id, kind)
        seen: dict[tuple[str, str | None, str], int] = {}
        new_rows: list[dict[str, Any]] = []
        edge_lines: dict[tuple[int, int], int] = {}
        for line, parent, component, quantity, slot, offset in parsed:
            bad = False
            for column, code in (("parent_sku", parent), ("component_sku", component)):
                if code not in known:
                    csv_file.reject(
                        line,
                        column,
                        code,
                        "unknown SKU (import it with 'sellable import products' first)",
                    )
                    bad = True
            if bad:
                continue
            if known[parent][1] == "simple":
                csv_file.reject(
                    line,
                    "parent_sku",
                    parent,
                    "is a simple SKU and cannot have components "
                    "(make it a kit, assembly, package or bundle)",
                )
                continue
            if parent == component:
                csv_file.reject(
                    line, "component_sku", component, f"BOM cycle: {parent} -> {component}"
                )
                continue
            key = (parent, slot, component)
            if key in seen:
                csv_file.reject(
                    line,
                    "component_sku",
                    component,
                    f"duplicate row: same parent, slot and component as line {seen[key]}",
                )
                continue
            seen[key] = line
            parent_id, component_id = known[parent][0], known[component][0]
            edge_lines.setdefault((parent_id, component_id), line)
            new_rows.append(
                {
                    "parent_id": parent_id,
                    "slot": slot,
                    "component_id": component_id,
                    "quantity": quantity,
                    "price_offset": offset,
                }
            )
        csv_file.raise_errors()

        parent_ids = {row["parent_id"] for row in new_rows}
        _refuse_cycles(connection, csv_file.name, parent_ids, new_rows, edge_lines)
        old: dict[int, list[tuple[Any, ...]]] = {}
        for id_chunk in chunked(parent_ids):
            for stored in connection.execute(
                select(
                    bom.c.parent_id,
                    bom.c.slot,
                    bom.c.component_id,
                    bom.c.quantity,
                    bom.c.price_offset,
                )
                .where(bom.c.parent_id.in_(id_chunk))
                .order_by(bom.c.id)
            ):
                old.setdefault(stored[0], []).append(tuple(stored))
        new: dict[int, list[tuple[Any, ...]]] = {}
        for bom_row in new_rows:
            new.setdefault(bom_row["parent_id"], []).append(
                tuple(
                    bom_row[k]
                    for k in ("parent_id", "slot", "component_id", "quantity", "price_offset")
                )
            )
        changed = [pid for pid in new if old.get(pid) != new[pid]]
        for changed_chunk in chunked(changed):
            connection.execute(bom.delete().where(bom.c.parent_id.in_(changed_chunk)))
        changed_set = set(changed)
        to_insert = [r for r in new_rows if r["parent_id"] in changed_set]
        if to_insert:
            connection.execute(bom.insert(), to_insert)
            bump_catalog_version(connection)
        created = sum(len(new[pid]) for pid in changed if pid not in old)
        updated = sum(len(new[pid]) for pid in changed if pid in old)
    return ImportSummary(
        str(path),
        len(new_rows),
        created=created,
        updated=updated,
        unchanged=len(new_rows) - created - updated,
    )


def _refuse_cycles(
    connection: Connection,
    file_name: str,
    replaced: set[int],
    new_rows: list[dict[str, Any]],
    edge_lines: dict[tuple[int, int], int],
) -> None:
    """Check the catalog that would result for BOM cycles, naming the path and the lines."""
    bom = schema.bom_lines.c
    edges = [
        (parent, child)
        for parent, child in connection.execute(select(bom.parent_id, bom.component_id))
        if parent not in replaced
    ]
    edges.extend((row["parent_id"], row["component_id"]) for row in new_rows)
    ids = sorted({i for edge in edges for i in edge})
    position = {sku_id: pos for pos, sku_id in enumerate(ids)}
    codes: dict[int, str] = {}
    kinds: dict[int, str] = {}
    sku = schema.skus.c
    for chunk in chunked(ids):
        for sku_id, code, kind in connection.execute(
            select(sku.id, sku.sku, sku.kind).where(sku.id.in_(chunk))
        ):
            codes[sku_id], kinds[sku_id] = code, kind
    try:
        Catalog.from_rows(
            [codes[i] for i in ids],
            [kinds[i] for i in ids],
            ((position[p], f"#{c}", position[c], 1) for p, c in edges),
        )
    except CatalogError as err:
        by_code = {code: sku_id for sku_id, code in codes.items()}
        path = str(err).removeprefix("BOM cycle: ").split(" -> ")
        in_file = [
            (edge_lines[(by_code[a], by_code[b])], a, b)
            for a, b in pairwise(path)
            if (by_code.get(a), by_code.get(b)) in edge_lines
        ]
        if not in_file:  # cannot happen: only the file's rows are new
            raise CatalogError(f"{file_name}: {err}; nothing was written") from None
        line, _parent, component = min(in_file)
        others = "; ".join(f"line {n}: {a} contains {b}" for n, a, b in sorted(in_file))
        raise CatalogError(
            f"{file_name} line {line}, column 'component_sku': {err} ({others}) "
            f"(value {component!r}); nothing was written"
        ) from None
