"""What the orders safety tests share: opening a store with a catalog, the checks every
state of the store must pass, and the entry points of the worker subprocesses.

The checks read the database only, so they hold for any writer, killed or not:

* the ledger: every stock row equals the sum of its movements;
* allocations: a stock row's ``allocated`` is what the lines hold there; only allocated
  lines hold anything, always in their order's warehouse; the movements of an order
  (reference ``order CHANNEL:ID``) add up to what its lines hold; no movement names an
  order that does not exist;
* assembly orders: each one's AssemblyBuild movements produce its quantity and consume
  exactly its components;
* orders and lines are unique.

Run as a script, it is a worker (see :func:`main`)::

    python workers.py import-orders CONFIG FILE.csv BATCH_SIZE [PAUSE_IN_BATCH]
    python workers.py cli-at-barrier ARG...
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from sellable.config import Settings, load_settings
from sellable.imports import import_components, import_products
from sellable.store import schema
from sellable.store.db import create_db_engine, upgrade_schema

WORKER_SCRIPT = Path(__file__)

#: (sku, warehouse) -> on hand, locked, allocated, held.
Levels = dict[tuple[str, str], tuple[int, int, int, int]]

# Rows of these tables are what orders, builds and counts write; the catalog stays.
_WRITTEN_TABLES = (
    schema.layer_flows,
    schema.line_costs,
    schema.cost_layers,
    schema.transfers,
    schema.sellable_changes,
    schema.assembly_order_components,
    schema.assembly_orders,
    schema.line_allocations,
    schema.order_lines,
    schema.orders,
    schema.movements,
    schema.stock,
)

_ASSEMBLY_REFERENCE = re.compile(r"^assembly order AO-(\d+)(?: for order .+)?$")


MANUAL_SHOP = (
    '\n[[channels]]\ncode = "shop"\nconnector = "manual"\nwarehouses = ["main", "fba-us"]\n'
)


def open_store(
    config: Path, products_csv: str, components_csv: str, folder: Path
) -> tuple[Settings, Engine]:
    """The configured database, migrated, with the catalog given as CSV text; the orders'
    channel ``shop`` declared as a manual channel (import orders refuses unknown ones)."""
    if 'code = "shop"' not in config.read_text():
        with config.open("a") as handle:
            handle.write(MANUAL_SHOP)
    settings = load_settings(config)
    engine = create_db_engine(settings)
    upgrade_schema(engine)
    products, components = folder / "products.csv", folder / "components.csv"
    products.write_text(products_csv)
    components.write_text(components_csv)
    import_products(engine, products)
    import_components(engine, components)
    return settings, engine


def clear_orders_and_stock(engine: Engine) -> None:
    """Forget every order, build, movement and stock row; keep the catalog."""
    with engine.begin() as connection:
        for table in _WRITTEN_TABLES:
            connection.execute(table.delete())


def write_csv(path: Path, header: str, rows: list[tuple[object, ...]]) -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


Codes = tuple[dict[int, str], dict[int, str]]  # SKU id -> code, warehouse id -> code


def _codes(connection: Connection) -> Codes:
    s, w = schema.skus.c, schema.warehouses.c
    skus = {i: c for i, c in connection.execute(select(s.id, s.sku))}
    warehouses = {i: c for i, c in connection.execute(select(w.id, w.code))}
    return skus, warehouses


def stock_levels(connection: Connection) -> Levels:
    """Every stock row by (SKU, warehouse) code."""
    skus, warehouses = _codes(connection)
    st = schema.stock.c
    return {
        (skus[s], warehouses[w]): (oh, lk, al, hd)
        for s, w, oh, lk, al, hd in connection.execute(
            select(st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated, st.held)
        )
    }


def movement_totals(connection: Connection) -> dict[str, tuple[int, int]]:
    """Per movement type: (number of movements, sum of their quantities)."""
    m = schema.movements.c
    return {
        kind: (int(count), int(total))
        for kind, count, total in connection.execute(
            select(m.type, func.count(), func.sum(m.quantity)).group_by(m.type)
        )
    }


def outbox_since(connection: Connection, seen: int) -> dict[int, tuple[str, str]]:
    """``sellable_changes`` rows after id ``seen``: id -> (SKU, warehouse)."""
    skus, warehouses = _codes(connection)
    c = schema.sellable_changes.c
    return {
        change_id: (skus[s], warehouses[w])
        for change_id, s, w in connection.execute(
            select(c.id, c.sku_id, c.warehouse_id).where(c.id > seen)
        )
    }


def backorder_skus(connection: Connection) -> set[str]:
    s = schema.skus.c
    return set(connection.execute(select(s.sku).where(s.allow_backorder)).scalars())


def order_lines(connection: Connection) -> dict[tuple[str, str], dict[str, tuple[str, int, str]]]:
    """Per order (channel, id): its order status under key ``""`` as (status, 0, "") and
    per line key (SKU, quantity, line status)."""
    o, ol = schema.orders.c, schema.order_lines.c
    found: dict[tuple[str, str], dict[str, tuple[str, int, str]]] = {}
    for channel, external_id, status in connection.execute(
        select(o.channel, o.external_id, o.status)
    ):
        found[(channel, external_id)] = {"": (status, 0, "")}
    for channel, external_id, key, sku, quantity, status in connection.execute(
        select(o.channel, o.external_id, ol.line_key, ol.sku, ol.quantity, ol.status).join(
            schema.orders, o.id == ol.order_id
        )
    ):
        found[(channel, external_id)][key] = (sku, quantity, status)
    return found


def allocation_problems(connection: Connection, codes: Codes) -> list[str]:
    """Allocated quantities that the lines and the order movements do not explain."""
    skus, warehouses = codes
    o, ol, la = schema.orders.c, schema.order_lines.c, schema.line_allocations.c
    st, m = schema.stock.c, schema.movements.c
    problems: list[str] = []
    held_by_lines: Counter[tuple[int, int]] = Counter()
    held_by_order: dict[str, Counter[tuple[int, int]]] = defaultdict(Counter)
    for channel, external_id, order_wh, key, status, sku_id, wh, qty in connection.execute(
        select(
            o.channel,
            o.external_id,
            o.warehouse_id,
            ol.line_key,
            ol.status,
            la.sku_id,
            la.warehouse_id,
            la.quantity,
        )
        .join(schema.order_lines, ol.id == la.line_id)
        .join(schema.orders, o.id == ol.order_id)
    ):
        where = f"order {channel}:{external_id} line {key}"
        if status != "allocated":
            problems.append(f"{where} is {status} but holds {qty} × {skus[sku_id]}")
        if wh != order_wh:
            problems.append(f"{where} holds stock in {warehouses[wh]}, not its order's warehouse")
        if qty <= 0:
            problems.append(f"{where} holds {qty} × {skus[sku_id]}")
        held_by_lines[(sku_id, wh)] += qty
        held_by_order[f"order {channel}:{external_id}"][(sku_id, wh)] += qty
    for channel, external_id, key in connection.execute(
        select(o.channel, o.external_id, ol.line_key)
        .join(schema.orders, o.id == ol.order_id)
        .where(ol.status == "allocated")
        .where(~select(la.id).where(la.line_id == ol.id).exists())
    ):
        problems.append(f"order {channel}:{external_id} line {key} is allocated but holds nothing")
    for sku_id, wh, allocated in connection.execute(
        select(st.sku_id, st.warehouse_id, st.allocated)
    ):
        held = held_by_lines.pop((sku_id, wh), 0)
        if allocated != held:
            problems.append(
                f"stock {skus[sku_id]}@{warehouses[wh]}: allocated {allocated}, "
                f"the lines hold {held}"
            )
    problems.extend(
        f"lines hold {q} of {p}, which has no stock row" for p, q in held_by_lines.items()
    )
    orders = {f"order {c}:{e}" for c, e in connection.execute(select(o.channel, o.external_id))}
    by_reference: dict[str, Counter[tuple[int, int]]] = defaultdict(Counter)
    for reference, sku_id, wh, change in connection.execute(
        select(m.reference, m.sku_id, m.warehouse_id, func.sum(m.allocated_change))
        .where(m.reference.like("order %"))
        .group_by(m.reference, m.sku_id, m.warehouse_id)
    ):
        if reference not in orders:
            problems.append(f"movements name {reference}, which does not exist")
        if change:
            by_reference[reference][(sku_id, wh)] = int(change)
    for reference in sorted(set(by_reference) | set(held_by_order)):
        moved = {p: q for p, q in by_reference.get(reference, Counter()).items() if q}
        held = {p: q for p, q in held_by_order.get(reference, Counter()).items() if q}
        if moved != held:
            problems.append(f"{reference}: movements allocate {moved}, its lines hold {held}")
    return problems


def assembly_problems(connection: Connection, codes: Codes) -> list[str]:
    """Assembly orders whose AssemblyBuild movements are not exactly theirs."""
    skus, _ = codes
    ao, aoc, m = schema.assembly_orders.c, schema.assembly_order_components.c, schema.movements.c
    expected: dict[int, Counter[tuple[int, int]]] = {}
    for aid, sku_id, wh, qty in connection.execute(
        select(ao.id, ao.sku_id, ao.warehouse_id, ao.quantity)
    ):
        expected[aid] = Counter({(sku_id, wh): qty})
    warehouse_of = {aid: next(iter(c))[1] for aid, c in expected.items()}
    for aid, sku_id, qty in connection.execute(
        select(aoc.assembly_order_id, aoc.sku_id, aoc.quantity)
    ):
        expected[aid][(sku_id, warehouse_of[aid])] -= qty
    moved: dict[int, Counter[tuple[int, int]]] = defaultdict(Counter)
    problems: list[str] = []
    for reference, kind, sku_id, wh, on_hand, allocated in connection.execute(
        select(
            m.reference, m.type, m.sku_id, m.warehouse_id, m.on_hand_change, m.allocated_change
        ).where((m.type == "AssemblyBuild") | m.reference.like("assembly order%"))
    ):
        match = _ASSEMBLY_REFERENCE.match(reference or "")
        if kind != "AssemblyBuild" or match is None or allocated:
            problems.append(f"odd assembly movement: {kind} {reference!r} {on_hand} {allocated}")
            continue
        moved[int(match.group(1))][(sku_id, wh)] += on_hand
    for aid in sorted(set(expected) | set(moved)):
        want = {p: q for p, q in expected.get(aid, Counter()).items() if q}
        got = {p: q for p, q in moved.get(aid, Counter()).items() if q}
        if want != got:
            named = [{f"{skus[s]}@{w}": q for (s, w), q in c.items()} for c in (want, got)]
            problems.append(f"AO-{aid}: expected {named[0]}, movements {named[1]}")
    return problems


def duplicate_problems(connection: Connection) -> list[str]:
    o, ol = schema.orders.c, schema.order_lines.c
    problems = [
        f"order {c}:{e} stored {n} times"
        for c, e, n in connection.execute(
            select(o.channel, o.external_id, func.count())
            .group_by(o.channel, o.external_id)
            .having(func.count() > 1)
        )
    ]
    problems += [
        f"line {key} of order id {oid} stored {n} times"
        for oid, key, n in connection.execute(
            select(ol.order_id, ol.line_key, func.count())
            .group_by(ol.order_id, ol.line_key)
            .having(func.count() > 1)
        )
    ]
    return problems


def store_problems(engine: Engine) -> list[str]:
    """Everything wrong with the store right now (empty when it is consistent)."""
    from tests.conftest import ledger_mismatches  # the test process only

    with engine.connect() as connection:
        codes = _codes(connection)
        return [
            *ledger_mismatches(connection),
            *allocation_problems(connection, codes),
            *assembly_problems(connection, codes),
            *duplicate_problems(connection),
        ]


# -- worker subprocesses ------------------------------------------------------------------------


def _import_orders(config: str, path: str, batch_size: str, pause_in_batch: str = "") -> None:
    """Apply an orders file with small batches (each batch commits on its own).

    With ``pause_in_batch`` N, stop inside the N-th batch's transaction right after its
    movements are inserted and before its stock rows are updated: print "paused" and
    wait for a line on stdin (the test kills the worker instead of answering)."""
    from sellable.orders import OrderBook, read_orders_csv

    settings = load_settings(config)
    engine = create_db_engine(settings)
    if pause_in_batch:
        _pause_inside_batch(engine, int(pause_in_batch))
    book = OrderBook(engine, settings, batch_size=int(batch_size))
    orders = read_orders_csv(path, settings, book.live.catalog, engine)
    result = book.apply(orders)
    print(result.orders_created, result.orders_unchanged, result.orders_updated, flush=True)


def _pause_inside_batch(engine: Engine, batch: int) -> None:
    # The ledger writes the order book's movements with sellable.store.sql.copy_rows (COPY
    # on PostgreSQL, which SQLAlchemy's cursor events never see; INSERT elsewhere).
    from sellable.store import ledger as book_module

    inserts = 0
    copy_rows = book_module.copy_rows

    def _copy_then_pause(connection: Any, table: str, columns: Any, rows: Any) -> None:
        nonlocal inserts
        copy_rows(connection, table, columns, rows)
        if table == "movements" and rows:
            inserts += 1
            if inserts == batch:
                print("paused", flush=True)
                sys.stdin.readline()

    book_module.copy_rows = _copy_then_pause  # type: ignore[assignment]


def _cli_at_barrier(args: list[str]) -> None:
    """``python -m sellable ARGS`` after a barrier: import everything, say "ready" on
    stdout, wait for a line on stdin, then run the command. The test releases all
    workers at once, so their imports race instead of their interpreter start-ups."""
    import runpy

    import sellable.cli
    import sellable.orders  # noqa: F401

    print("ready", flush=True)
    sys.stdin.readline()
    sys.argv = ["sellable", *args]
    runpy.run_module("sellable", run_name="__main__", alter_sys=True)


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "import-orders":
        _import_orders(*args)
    elif mode == "cli-at-barrier":
        _cli_at_barrier(args)
    else:
        raise SystemExit(f"unknown worker mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
