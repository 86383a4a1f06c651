"""Issue 3: importing order lines through the order book, on SQLite and on PostgreSQL.

* ``orders-sqlite`` / ``orders-postgres``: ``read_orders_csv`` + ``OrderBook.apply`` of an
  order CSV of ``--order-lines`` lines (30% of them composites) against a generated catalog
  of ``--order-skus`` SKUs with stock, the ledger written; lines/s, target > 2,000.
* the latency from applying one small order to knowing the changed sellable pairs: the
  time ``OrderBook.apply([order])`` takes to return ``result.changed_pairs`` on the warm
  book, median of ``--latency-orders`` orders (a figure without a target).
* afterwards one SQL query checks the ledger: every stock row equals the sum of its
  movements.

The databases start from the same generated catalog as the other benchmarks (SKUs, BOMs,
stock: see ``catalog_gen.py``), with one ``Adjustment`` movement per stock row as the
opening balance (so that the ledger explains the starting stock), and warehouses ``main``
and ``east`` assembling on demand. Setting up is not measured.
"""

from __future__ import annotations

import csv
import gc
import os
import random
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dbfill
import psycopg
from catalog_gen import GEN_VERSION, WAREHOUSES, SyntheticCatalog
from pydantic import SecretStr
from sqlalchemy import DateTime, Engine, func, literal, select, union_all

from sellable.config import ChannelSettings, DatabaseSettings, Settings, WarehouseSettings
from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus, read_orders_csv
from sellable.store import schema
from sellable.store.db import create_db_engine, sync_warehouses, upgrade_schema

LINES_MIN_PER_S = 2_000
COMPOSITE_SHARE = 0.30
# Where orders ship from: mostly the own warehouses (which assemble on demand), some FBA.
ORDER_WAREHOUSES = ["main"] * 60 + ["east"] * 25 + ["fba-us"] * 15
LINES_PER_ORDER = [1] * 40 + [2] * 30 + [3] * 20 + [4] * 10
LINE_QUANTITIES = [1] * 80 + [2] * 15 + [3] * 5
CHANNEL = "bench"


def order_settings(url: str) -> Settings:
    """The generated catalog's warehouses, the own ones assembling on demand."""
    return Settings(
        database=DatabaseSettings(url=SecretStr(url)),
        warehouses=[
            WarehouseSettings(
                code=w.code,
                kind=w.kind,
                use_component_inventory=w.use_component_inventory,
                assembly_on_demand=w.use_component_inventory,
            )
            for w in WAREHOUSES
        ],
        # the orders' channel, declared (import orders refuses unknown channels)
        channels=[
            ChannelSettings(
                code=CHANNEL, connector="manual", warehouses=[w.code for w in WAREHOUSES]
            )
        ],
    )


# -- the orders ---------------------------------------------------------------------------------


def _rng(spec: SyntheticCatalog, stream: str) -> random.Random:
    return random.Random(f"sellable-bench:{GEN_VERSION}:{spec.n}:{spec.seed}:orders:{stream}")


def iter_order_rows(spec: SyntheticCatalog, lines: int, prefix: str) -> Any:
    """``(order_id, line_id, sku, quantity, warehouse)``: ``lines`` rows in orders of 1-4
    distinct SKUs; a line is a composite with probability 0.3."""
    rng = _rng(spec, prefix)
    simple = [pos for pos in range(spec.n) if spec.level[pos] == 0]
    composites = spec.composites
    codes = spec.codes
    written = order = 0
    while written < lines:
        order += 1
        order_id = f"{prefix}{order:07d}"
        warehouse = rng.choice(ORDER_WAREHOUSES)
        count = min(rng.choice(LINES_PER_ORDER), lines - written)
        chosen: set[int] = set()
        while len(chosen) < count:
            pool = composites if rng.random() < COMPOSITE_SHARE else simple
            chosen.add(rng.choice(pool))
        for line_no, pos in enumerate(sorted(chosen), 1):
            yield order_id, str(line_no), codes[pos], rng.choice(LINE_QUANTITIES), warehouse
        written += count


def order_objects(spec: SyntheticCatalog, lines: int, prefix: str) -> list[OrderIn]:
    """The same orders as :func:`iter_order_rows`, as ``OrderIn`` objects."""
    grouped: dict[str, tuple[str, list[OrderLineIn]]] = {}
    for order_id, line_id, sku, quantity, warehouse in iter_order_rows(spec, lines, prefix):
        grouped.setdefault(order_id, (warehouse, []))[1].append(OrderLineIn(line_id, sku, quantity))
    return [
        OrderIn(CHANNEL, order_id, warehouse, OrderStatus.OPEN, tuple(order_lines))
        for order_id, (warehouse, order_lines) in grouped.items()
    ]


def orders_csv(data_dir: Path, spec: SyntheticCatalog, lines: int) -> Path:
    """``channel,order_id,sku,quantity,warehouse,line_id`` (cached in the data dir)."""
    path = data_dir / f"orders-n{spec.n}-lines{lines}-seed{spec.seed}-v{GEN_VERSION}.csv"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("channel", "order_id", "sku", "quantity", "warehouse", "line_id"))
        for order_id, line_id, sku, quantity, warehouse in iter_order_rows(spec, lines, "O-"):
            writer.writerow((CHANNEL, order_id, sku, quantity, warehouse, line_id))
    tmp.replace(path)
    return path


# -- the store ----------------------------------------------------------------------------------


def write_opening_balance(db: Engine) -> int:
    """One Adjustment movement per stock row, so that the ledger explains the generated
    stock (which ``dbfill`` writes without movements). Returns the number of rows."""
    st, mv = schema.stock.c, schema.movements
    now = datetime.now(UTC)
    with db.begin() as connection:
        connection.execute(
            mv.insert().from_select(
                [
                    "sku_id",
                    "warehouse_id",
                    "type",
                    "quantity",
                    "on_hand_change",
                    "locked_change",
                    "allocated_change",
                    "reference",
                    "at",
                ],
                select(
                    st.sku_id,
                    st.warehouse_id,
                    literal("Adjustment"),
                    st.on_hand,
                    st.on_hand,
                    st.locked,
                    st.allocated,
                    literal("opening balance (benchmark)"),
                    literal(now, DateTime(timezone=True)),
                ),
            )
        )
        count: int = connection.execute(select(func.count()).select_from(mv)).scalar_one()
    return count


def ledger_mismatches(db: Engine) -> tuple[int, int]:
    """(stock rows whose on hand, locked or allocated differs from the sum of its movements,
    (SKU, warehouse) pairs compared): one query, stock minus movements grouped per pair."""
    st, mv = schema.stock.c, schema.movements.c
    both = union_all(
        select(
            st.sku_id.label("s"),
            st.warehouse_id.label("w"),
            st.on_hand.label("oh"),
            st.locked.label("lk"),
            st.allocated.label("al"),
        ),
        select(
            mv.sku_id,
            mv.warehouse_id,
            -mv.on_hand_change,
            -mv.locked_change,
            -mv.allocated_change,
        ),
    ).subquery()
    per_pair = (
        select(
            both.c.s,
            both.c.w,
            (
                (func.sum(both.c.oh) != 0) | (func.sum(both.c.lk) != 0) | (func.sum(both.c.al) != 0)
            ).label("bad"),
        )
        .group_by(both.c.s, both.c.w)
        .subquery()
    )
    query = select(
        func.count().filter(per_pair.c.bad),
        func.count(),
    )
    with db.connect() as connection:
        bad, pairs = connection.execute(query).one()
    return int(bad), int(pairs)


def populate_postgres(spec: SyntheticCatalog, url: str) -> None:
    """Like ``dbfill.populate_postgres`` (schema, warehouses, rows by COPY), but ANALYZE only
    the tables it fills, as after ``sellable init`` and the CSV imports: the order tables are
    left never analyzed. (Analyzed while empty, and with autovacuum off, PostgreSQL keeps
    planning the foreign-key checks of order_lines and line_allocations as sequential scans
    for the whole import: quadratic, over 15 minutes for 100,000 lines.)"""
    engine = create_db_engine(spec.settings(url))
    try:
        upgrade_schema(engine)
        ids = sync_warehouses(engine, spec.warehouse_settings())
    finally:
        engine.dispose()
    warehouse_ids = [ids[w.code] for w in spec.warehouses]
    copies = (
        ("skus (id, sku, name, kind, allow_backorder, price)", dbfill.sku_rows(spec)),
        (
            "bom_lines (id, parent_id, slot, component_id, quantity, price_offset)",
            dbfill.bom_rows(spec),
        ),
        (
            "stock (sku_id, warehouse_id, on_hand, locked, allocated)",
            dbfill.stock_rows(spec, warehouse_ids),
        ),
    )
    with psycopg.connect(dbfill.libpq_url(url)) as conn:
        with conn.cursor() as cur:
            for target, rows in copies:
                with cur.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            for table in ("skus", "bom_lines"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()
        conn.execute("ANALYZE warehouses, skus, bom_lines, stock")
        conn.commit()


# -- the benchmark ------------------------------------------------------------------------------


def bench_orders(runner: Any, backend: str) -> None:
    """``orders-sqlite`` or ``orders-postgres``; ``runner`` is run.py's Runner."""
    args = runner.args
    spec = SyntheticCatalog(args.order_skus, args.seed)
    bench = f"orders-{backend}"
    runner.log(
        f"{bench}: import {args.order_lines:,} order lines ({COMPOSITE_SHARE:.0%} composites) "
        f"into {backend} with {spec.n:,} SKUs ({len(spec.composites):,} composites), "
        "assembly on demand in main and east"
    )
    csv_path = orders_csv(runner.data_dir, spec, args.order_lines)
    if backend == "sqlite":
        _, full = dbfill.ensure_sqlite(runner.data_dir, spec, runner.log)
        work = runner.data_dir / f"orders-{os.getpid()}.db"
        dbfill.remove_sqlite(work)
        shutil.copyfile(full, work)
        try:
            _measure(runner, bench, spec, f"sqlite:///{work}", csv_path)
        finally:
            dbfill.remove_sqlite(work)
    else:
        with dbfill.throwaway_postgres_db(args.postgres_url) as url:
            runner.log(f"  populating throwaway database {url.rsplit('/', 1)[1]} with COPY ...")
            populate_postgres(spec, url)
            _measure(runner, bench, spec, url, csv_path)


def _measure(runner: Any, bench: str, spec: SyntheticCatalog, url: str, csv_path: Path) -> None:
    args = runner.args
    backend = bench.removeprefix("orders-")
    settings = order_settings(url)
    db = create_db_engine(settings)
    try:
        opening = write_opening_balance(db)
        runner.log(f"  opening balance: {opening:,} Adjustment movements (not measured)")

        start = time.perf_counter()
        book = OrderBook(db, settings)
        load_s = time.perf_counter() - start
        runner.log(f"  OrderBook(engine, settings) loaded in {load_s:.2f} s (not in the figure)")

        gc.collect()
        start = time.perf_counter()
        orders = read_orders_csv(csv_path, settings, book.live.catalog, db)
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        result = book.apply(orders)
        apply_s = time.perf_counter() - start
        lines = sum(len(order.lines) for order in orders)
        total_s = read_s + apply_s
        runner.log(
            f"  read_orders_csv {read_s:.2f} s ({len(orders):,} orders, {lines:,} lines); "
            f"OrderBook.apply {apply_s:.2f} s"
        )
        runner.log(
            f"  {result.orders_created:,} orders created; lines {result.lines_allocated:,} "
            f"allocated, {result.lines_held:,} held; {result.assembly_orders:,} assembly "
            f"orders; {result.movements:,} movements; {len(result.changed_pairs):,} "
            f"sellable pairs changed; {len(result.rejected)} orders rejected"
        )
        if result.lines_allocated + result.lines_held != lines or result.rejected:
            runner.figure(
                bench,
                f"{backend}: every line allocated or held",
                f"{result.lines_allocated + result.lines_held:,} of {lines:,}",
                "all",
                "MISS",
            )
        rate = lines / total_s
        runner.figure(
            bench,
            f"{backend}: import {lines:,} order lines (CSV + apply)",
            f"{rate:,.0f} lines/s ({total_s:.1f} s)",
            f"> {LINES_MIN_PER_S:,} /s",
            "PASS" if rate > LINES_MIN_PER_S else "MISS",
            rate,
        )
        runner.figure(
            bench,
            f"{backend}: OrderBook.apply alone",
            f"{lines / apply_s:,.0f} lines/s ({apply_s:.1f} s)",
            "-",
            "info",
            lines / apply_s,
        )

        # Latency: one small new order on the warm book until the changed pairs are known.
        small = order_objects(spec, args.latency_orders * 4 + 8, "LAT-")[: args.latency_orders + 1]
        # The first apply after the import catches the book up with the import's own outbox
        # rows (refresh); shown apart, the figure is about a warm book.
        start = time.perf_counter()
        book.apply([small.pop(0)])
        runner.log(
            f"  first single order after the import: {time.perf_counter() - start:.2f} s "
            "(not in the figure: OrderBook.refresh reads the import's outbox rows back)"
        )
        times: list[float] = []
        changed: list[int] = []
        for order in small:
            start = time.perf_counter()
            one = book.apply([order])
            times.append(time.perf_counter() - start)
            changed.append(len(one.changed_pairs))
        times.sort()
        median = statistics.median(times)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        runner.log(
            f"  {len(times)} single orders of {min(len(o.lines) for o in small)}-"
            f"{max(len(o.lines) for o in small)} lines: "
            f"{statistics.mean(changed):.1f} changed pairs each on average"
        )
        runner.figure(
            bench,
            f"{backend}: one order -> changed pairs known",
            f"{median * 1000:.1f} ms median (p90 {p90 * 1000:.1f}, max {times[-1] * 1000:.1f})",
            "-",
            "info",
            median,
        )

        if args.profile:
            extra = order_objects(spec, min(args.order_lines, 10_000), "PROF-")
            runner.profile(bench, book.apply, extra)

        bad, pairs = ledger_mismatches(db)
        if bad:
            runner.figure(
                bench,
                f"{backend}: ledger (stock == sum of movements)",
                f"MISMATCH in {bad:,} of {pairs:,} pairs",
                "0",
                "MISS",
            )
        else:
            runner.log(f"  ledger check: stock == sum of movements for all {pairs:,} pairs: OK")
    finally:
        db.dispose()
