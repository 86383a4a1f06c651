"""Issue 12: costing on the ledger, on SQLite and on PostgreSQL.

* ``costing-sqlite`` / ``costing-postgres``: the orders benchmark's catalog (``--order-skus``
  SKUs, see ``bench_orders.py``) with no stock, stock received through ``import_receipts``
  as many cost layers (3-8 receipts per stocked (SKU, warehouse), each its own lot, unit
  cost and received date, most with an expiry date, a few already expired, one in ten in
  EUR), then ``--order-lines`` order lines imported open (allocation, builds that consume
  component layers) and then the same orders imported again as shipped (every shipped line
  consumes layers FEFO/FIFO and writes its ``line_costs``). Two figures: import lines/s and
  ship lines/s, each ``read_orders_csv`` + ``OrderBook.apply``; target > 2,000 lines/s each.
  Then ``reconcile`` (``sellable valuation --check``) is timed, and, outside every timing,
  its result must be ``ok``, the stock rows must equal the sum of their movements, and every
  shipped line must have its cost rows.
* ``valuation-sqlite`` / ``valuation-postgres``: ``--valuation-layers`` open cost layers
  (default 1,000,000) over ``layers / 10`` SKUs in three warehouses, written straight into
  ``cost_layers``, ``layer_flows`` (a receipt flow each, a write-off flow for one in four)
  and ``stock`` (on hand and expired = the layers' sums), consistent so that ``reconcile``
  passes; then ``reports.valuation(connection)`` and ``reports.reconcile(connection)`` are
  timed (median of ``--repeat``). Figures in seconds; the issue sets no target.

Generated files (CSVs, working databases) live in a temporary directory removed afterwards;
only the catalog's SQLite file is taken from (and cached in) the data dir, as the other
benchmarks do. PostgreSQL: a throwaway database on ``--postgres-url``, dropped afterwards.
"""

from __future__ import annotations

import csv
import gc
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import bench_orders
import dbfill
import psycopg
from catalog_gen import GEN_VERSION, SyntheticCatalog
from sqlalchemy import Engine, func, select

from sellable.config import Settings
from sellable.costing import reports
from sellable.imports.costing import import_rates, import_receipts
from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus, read_orders_csv
from sellable.store import schema
from sellable.store.db import create_db_engine, sync_warehouses, upgrade_schema

LINES_MIN_PER_S = 2_000  # issue 12: import and ship rate with costing and lots on
RECEIPTS_PER_PAIR = (3, 8)  # receipts (layers) per stocked (SKU, warehouse)
RECEIPT_QUANTITY = (5, 25)  # units per receipt
# Receipts are imported as deliveries of at most this many rows each (a pair's receipts in
# one file), as deliveries come.
RECEIPT_FILE_ROWS = 10_000
EXPIRY_SHARE = 0.6  # receipts with an expiry date
EXPIRED_SHARE = 0.02  # of those, already expired when received
FOREIGN_SHARE = 0.1  # receipts in EUR, converted at EUR_RATE
EUR_RATE = "1.08"
# Order lines carry a unit price: shipping also splits each line's revenue (line_costs).
UNIT_PRICES = True
VALUATION_WRITEOFF_SHARE = 0.25  # layers of the valuation store partly written off


def _rng(spec: SyntheticCatalog, stream: str) -> random.Random:
    return random.Random(f"sellable-bench:{GEN_VERSION}:{spec.n}:{spec.seed}:costing:{stream}")


# -- costing: the data --------------------------------------------------------------------------


def iter_receipts(spec: SyntheticCatalog, today: date) -> Iterator[list[tuple[Any, ...]]]:
    """Per (SKU, warehouse) the generator stocks (simple SKUs everywhere but 1 in 32,
    prepackaged composites for some), its receipts: 3-8 of 5-25 units at costs around the
    SKU's own, oldest first, each its own lot; rows ``sku, warehouse, quantity, unit_cost,
    currency, lot, expires_on, received_at``."""
    rng = _rng(spec, "receipts")
    base_cost: dict[int, float] = {}
    for pos, w, on_hand, _locked, _allocated in spec.iter_stock():
        if on_hand <= 0:
            continue
        warehouse = spec.warehouses[w].code
        cost = base_cost.setdefault(pos, rng.uniform(1.0, 80.0))
        received = datetime.combine(today, datetime.min.time(), UTC) - timedelta(days=400)
        pair = []
        for _ in range(rng.randint(*RECEIPTS_PER_PAIR)):
            received += timedelta(days=rng.randint(5, 50), minutes=rng.randrange(1440))
            quantity = rng.randint(*RECEIPT_QUANTITY)
            currency = "EUR" if rng.random() < FOREIGN_SHARE else ""
            unit_cost = Decimal(cost * rng.uniform(0.8, 1.2)).quantize(Decimal("0.0001"))
            expires = ""
            if rng.random() < EXPIRY_SHARE:
                if rng.random() < EXPIRED_SHARE:
                    expires = (today - timedelta(days=rng.randint(1, 60))).isoformat()
                else:
                    expires = (today + timedelta(days=rng.randint(30, 900))).isoformat()
            lot = f"L{rng.getrandbits(40):010X}"
            stamp = received.strftime("%Y-%m-%dT%H:%M:%SZ")
            pair.append(
                (spec.codes[pos], warehouse, quantity, unit_cost, currency, lot, expires, stamp)
            )
        yield pair


def write_receipts_csvs(spec: SyntheticCatalog, work: Path, today: date) -> tuple[list[Path], int]:
    """The receipts as files of at most :data:`RECEIPT_FILE_ROWS` rows. Returns the files
    and the units received."""
    header = ("sku", "warehouse", "quantity", "unit_cost", "currency", "lot", "expires_on")
    paths: list[Path] = []
    units = 0
    handle = writer = None
    rows = 0
    for pair in iter_receipts(spec, today):
        if writer is None or rows + len(pair) > RECEIPT_FILE_ROWS:
            if handle is not None:
                handle.close()
            paths.append(work / f"receipts-{len(paths) + 1:03d}.csv")
            handle = paths[-1].open("w", newline="", encoding="utf-8")
            writer = csv.writer(handle)
            writer.writerow((*header, "received_at"))
            rows = 0
        writer.writerows(pair)
        rows += len(pair)
        units += sum(r[2] for r in pair)
    if handle is not None:
        handle.close()
    return paths, units


def order_rows(spec: SyntheticCatalog, lines: int, prefix: str) -> list[tuple[Any, ...]]:
    """The orders benchmark's orders (:func:`bench_orders.iter_order_rows`), each line with
    a unit price (None without :data:`UNIT_PRICES`): ``(order_id, line_id, sku, quantity,
    warehouse, unit_price)``."""
    rng = _rng(spec, f"prices:{prefix}")
    return [
        (*row, Decimal(rng.randint(500, 20_000)) / 100 if UNIT_PRICES else None)
        for row in bench_orders.iter_order_rows(spec, lines, prefix)
    ]


def write_orders_csv(rows: list[tuple[Any, ...]], path: Path, status: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            (
                "channel",
                "order_id",
                "sku",
                "quantity",
                "warehouse",
                "line_id",
                "status",
                "unit_price",
            )
        )
        for order_id, line_id, sku, quantity, warehouse, price in rows:
            writer.writerow(
                (bench_orders.CHANNEL, order_id, sku, quantity, warehouse, line_id, status, price)
            )


def order_objects(rows: list[tuple[Any, ...]], status: OrderStatus) -> list[OrderIn]:
    """The same orders as ``OrderIn`` objects (for the profile run)."""
    grouped: dict[str, tuple[str, list[OrderLineIn]]] = {}
    for order_id, line_id, sku, quantity, warehouse, price in rows:
        grouped.setdefault(order_id, (warehouse, []))[1].append(
            OrderLineIn(line_id, sku, quantity, revenue=None if price is None else price * quantity)
        )
    return [
        OrderIn(bench_orders.CHANNEL, order_id, warehouse, status, tuple(order_lines))
        for order_id, (warehouse, order_lines) in grouped.items()
    ]


def populate_postgres_catalog(spec: SyntheticCatalog, url: str) -> None:
    """Schema, warehouses, SKUs and BOMs by ``COPY``; no stock (it arrives by receipts).
    Only the filled tables are analyzed (see the note in ``bench_orders.populate_postgres``)."""
    engine = create_db_engine(spec.settings(url))
    try:
        upgrade_schema(engine)
        sync_warehouses(engine, spec.warehouse_settings())
    finally:
        engine.dispose()
    copies = (
        ("skus (id, sku, name, kind, allow_backorder, price)", dbfill.sku_rows(spec)),
        (
            "bom_lines (id, parent_id, slot, component_id, quantity, price_offset)",
            dbfill.bom_rows(spec),
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
        conn.execute("ANALYZE warehouses, skus, bom_lines")
        conn.commit()


# -- costing: the benchmark ---------------------------------------------------------------------


def bench_costing(runner: Any, backend: str) -> None:
    """``costing-sqlite`` or ``costing-postgres``; ``runner`` is run.py's Runner."""
    args = runner.args
    spec = SyntheticCatalog(args.order_skus, args.seed)
    bench = f"costing-{backend}"
    runner.log(
        f"{bench}: receipts as cost layers with lots, then {args.order_lines:,} order lines "
        f"imported open and then shipped, {backend}, {spec.n:,} SKUs "
        f"({len(spec.composites):,} composites), assembly on demand in main and east"
    )
    with tempfile.TemporaryDirectory(prefix="sellable-bench-costing-") as tmp:
        work = Path(tmp)
        if backend == "sqlite":
            nostock, _ = dbfill.ensure_sqlite(runner.data_dir, spec, runner.log)
            db_path = work / "costing.db"
            shutil.copyfile(nostock, db_path)
            _measure_costing(runner, bench, spec, f"sqlite:///{db_path}", work)
        else:
            with dbfill.throwaway_postgres_db(args.postgres_url) as url:
                runner.log(f"  populating throwaway database {url.rsplit('/', 1)[1]} (COPY) ...")
                populate_postgres_catalog(spec, url)
                _measure_costing(runner, bench, spec, url, work)


def _scalar(db: Engine, query: Any) -> int:
    with db.connect() as connection:
        return int(connection.execute(query).scalar_one() or 0)


def _measure_costing(runner: Any, bench: str, spec: SyntheticCatalog, url: str, work: Path) -> None:
    args = runner.args
    backend = bench.removeprefix("costing-")
    settings: Settings = bench_orders.order_settings(url)
    today = settings.costing.today()
    db = create_db_engine(settings)
    try:
        # -- setting up (not measured): rates, receipts, the order files
        rates_csv = work / "rates.csv"
        rates_csv.write_text(f"currency,rate,valid_from\nEUR,{EUR_RATE},2000-01-01\n")
        import_rates(db, settings, rates_csv)
        receipt_files, n_units = write_receipts_csvs(spec, work, today)
        book = OrderBook(db, settings)
        start = time.perf_counter()
        n_receipts = movements = 0
        for path in receipt_files:
            summary, outcome = import_receipts(book, settings, path)
            n_receipts += summary.rows
            movements += outcome.movements
        receipts_s = time.perf_counter() - start
        runner.log(
            f"  import_receipts of {len(receipt_files)} files: {n_receipts:,} receipts "
            f"({n_units:,} units, {movements:,} Receipt movements) in {receipts_s:.1f} s"
        )
        runner.figure(
            bench,
            f"{backend}: import receipts, {n_receipts:,} in files of <= {RECEIPT_FILE_ROWS:,}",
            f"{n_receipts / receipts_s:,.0f} receipts/s ({receipts_s:.1f} s)",
            "-",
            "info",
            n_receipts / receipts_s,
        )
        cl, lf = schema.cost_layers.c, schema.layer_flows.c
        expired_layers = _scalar(db, select(func.count()).where(cl.expired))
        runner.log(
            f"  {_scalar(db, select(func.count()).select_from(schema.cost_layers)):,} cost "
            f"layers ({expired_layers:,} expired on arrival)"
        )
        rows = order_rows(spec, args.order_lines, "O-")
        open_csv, shipped_csv = work / "orders-open.csv", work / "orders-shipped.csv"
        write_orders_csv(rows, open_csv, "open")
        write_orders_csv(rows, shipped_csv, "shipped")
        lines = len(rows)

        start = time.perf_counter()
        book = OrderBook(db, settings)
        runner.log(f"  OrderBook(engine, settings) in {time.perf_counter() - start:.2f} s")

        # -- 1. the orders imported open: allocation (and builds consuming component layers)
        read_s, apply_s, result = _import(book, settings, db, open_csv)
        runner.log(
            f"  open: read_orders_csv {read_s:.2f} s, OrderBook.apply {apply_s:.2f} s; "
            f"{result.orders_created:,} orders; lines {result.lines_allocated:,} allocated, "
            f"{result.lines_held:,} held; {result.assembly_orders:,} assembly orders; "
            f"{result.movements:,} movements; {len(result.rejected)} orders rejected"
        )
        if result.lines_allocated + result.lines_held != lines or result.rejected:
            runner.figure(
                bench,
                f"{backend}: every line allocated or held",
                f"{result.lines_allocated + result.lines_held:,} of {lines:,}",
                "all",
                "MISS",
            )
        _rate_figure(
            runner, bench, f"{backend}: import {lines:,} lines open", lines, read_s, apply_s
        )
        flows_before = _scalar(db, select(func.count()).select_from(schema.layer_flows))

        # -- 2. the same orders imported shipped: every line consumes layers, line_costs
        read_s, apply_s, shipped = _import(book, settings, db, shipped_csv)
        sale_flows = _scalar(db, select(func.count()).where(lf.kind == "sale"))
        deficits = _scalar(db, select(func.count()).where(cl.source == "deficit"))
        runner.log(
            f"  shipped: read_orders_csv {read_s:.2f} s, OrderBook.apply {apply_s:.2f} s; "
            f"{shipped.lines_shipped:,} lines shipped ({shipped.lines_allocated:,} held ones "
            f"allocated first); {shipped.movements:,} movements; "
            f"{_scalar(db, select(func.count()).select_from(schema.layer_flows)) - flows_before:,}"
            f" layer flows ({sale_flows:,} sale flows, "
            f"{sale_flows / max(1, shipped.lines_shipped):.2f} per line); "
            f"{deficits:,} deficit layers (sold past stock)"
        )
        if shipped.lines_shipped != lines or shipped.rejected:
            runner.figure(
                bench,
                f"{backend}: every line shipped",
                f"{shipped.lines_shipped:,} of {lines:,}",
                "all",
                "MISS",
            )
        _rate_figure(
            runner,
            bench,
            f"{backend}: ship {lines:,} lines (consume layers)",
            lines,
            read_s,
            apply_s,
        )

        # -- 3. valuation --check (reconcile), timed; then its verdict, not timed
        with db.connect() as connection:
            gc.collect()
            start = time.perf_counter()
            check = reports.reconcile(connection)
            check_s = time.perf_counter() - start
            gc.collect()
            start = time.perf_counter()
            value = reports.valuation(connection)
            value_s = time.perf_counter() - start
        layers = _scalar(db, select(func.count()).select_from(schema.cost_layers))
        runner.figure(
            bench,
            f"{backend}: valuation --check (reconcile), {layers:,} layers",
            f"{check_s:.2f} s",
            "-",
            "info",
            check_s,
        )
        runner.figure(
            bench,
            f"{backend}: valuation, {len(value['rows']):,} rows",
            f"{value_s:.2f} s",
            "-",
            "info",
            value_s,
        )
        _check_books(runner, bench, backend, db, check, lines)

        if args.profile:
            extra = order_rows(spec, min(args.order_lines, 10_000), "PROF-")
            runner.profile(f"{bench}-open", book.apply, order_objects(extra, OrderStatus.OPEN))
            runner.profile(f"{bench}-ship", book.apply, order_objects(extra, OrderStatus.SHIPPED))
    finally:
        db.dispose()


def _import(
    book: OrderBook, settings: Settings, db: Engine, path: Path
) -> tuple[float, float, Any]:
    gc.collect()
    start = time.perf_counter()
    orders = read_orders_csv(path, settings, book.live.catalog, db)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    result = book.apply(orders)
    return read_s, time.perf_counter() - start, result


def _rate_figure(
    runner: Any, bench: str, name: str, lines: int, read_s: float, apply_s: float
) -> None:
    total_s = read_s + apply_s
    rate = lines / total_s
    runner.figure(
        bench,
        f"{name} (CSV + apply)",
        f"{rate:,.0f} lines/s ({total_s:.1f} s)",
        f"> {LINES_MIN_PER_S:,} /s",
        "PASS" if rate > LINES_MIN_PER_S else "MISS",
        rate,
    )


def _check_books(
    runner: Any,
    bench: str,
    backend: str,
    db: Engine,
    check: reports.Reconciliation,
    lines: int,
) -> None:
    """Outside the timings: the books must be right, else the figures mean nothing."""
    d = check.to_dict()
    if check.ok:
        runner.log(
            f"  reconcile ok: receipts {d['receipts']} - COGS {d['cogs']} - write-offs "
            f"{d['write_offs']} + adjustments {d['adjustments']} + builds "
            f"{d['labour_and_packaging']} = valuation {d['valuation']}"
        )
    else:
        for problem in check.problems:
            runner.log(f"  reconcile problem: {problem}")
        runner.figure(
            bench,
            f"{backend}: valuation --check ok",
            f"NOT reconciled (difference {d['difference']}, {len(check.problems)} problems)",
            "ok",
            "MISS",
        )
    bad, pairs = bench_orders.ledger_mismatches(db)
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
    lc = schema.line_costs.c
    costed = _scalar(db, select(func.count(lc.line_id.distinct())))
    if costed != lines:
        runner.figure(
            bench, f"{backend}: shipped lines with costs", f"{costed:,}", f"{lines:,}", "MISS"
        )
    else:
        runner.log(f"  line_costs: all {costed:,} shipped lines have their cost rows: OK")


# -- valuation: 1,000,000 layers written straight into the tables -------------------------------


class _Layer(NamedTuple):
    id: int
    sku_id: int
    warehouse_id: int
    quantity: int
    remaining: int
    value: int  # micros, of the remaining units
    unit_cost: int  # micros
    lot: str
    expires_on: date | None
    received_at: datetime
    expired: bool
    written_off: int  # units
    written_off_value: int  # micros


def iter_layers(
    spec: SyntheticCatalog, count: int, warehouse_ids: list[int], today: date
) -> Iterator[_Layer]:
    """``count`` open layers, 1-6 per (SKU, warehouse) in SKU then warehouse order (all
    SKUs and warehouses are reached when ``spec.n`` is about ``count / 10``), most with a
    lot expiry date, 3% expired, one in four partly written off. Deterministic."""
    rng = _rng(spec, f"valuation:{count}")
    randint, random_ = rng.randint, rng.random
    start = datetime.combine(today, datetime.min.time(), UTC) - timedelta(days=720)
    layer_id = 0
    pairs = spec.n * len(warehouse_ids)
    pair = 0
    while layer_id < count:
        sku_id = pair // len(warehouse_ids) % spec.n + 1
        warehouse_id = warehouse_ids[pair % len(warehouse_ids)]
        pair = (pair + 1) % pairs
        unit_base = randint(1_000_000, 80_000_000)
        for _ in range(min(randint(1, 6), count - layer_id)):
            layer_id += 1
            quantity = randint(1, 200)
            unit_cost = unit_base * randint(80, 120) // 10_000 * 100  # 4 places
            value = unit_cost * quantity
            expires_on: date | None = None
            expired = False
            if random_() < 0.6:
                if random_() < 0.05:
                    expires_on, expired = today - timedelta(days=randint(1, 90)), True
                else:
                    expires_on = today + timedelta(days=randint(1, 900))
            off = off_value = 0
            if random_() < VALUATION_WRITEOFF_SHARE and quantity > 1:
                off = randint(1, quantity - 1)
                off_value = (value * off + quantity // 2) // quantity
            yield _Layer(
                layer_id,
                sku_id,
                warehouse_id,
                quantity,
                quantity - off,
                value - off_value,
                unit_cost,
                f"V{layer_id:08d}",
                expires_on,
                start + timedelta(minutes=randint(0, 720 * 1440)),
                expired,
                off,
                off_value,
            )


class _Totals(NamedTuple):
    layers: int
    flows: int
    pairs: int
    units: int
    value: int  # micros


def _valuation_rows(
    spec: SyntheticCatalog,
    count: int,
    warehouse_ids: list[int],
    today: date,
    sqlite: bool,
) -> tuple[Iterator[tuple[Any, ...]], Iterator[tuple[Any, ...]], Any]:
    """Generators of cost_layers and layer_flows rows (one pass of :func:`iter_layers`
    each), and a function returning the stock rows and totals afterwards."""

    def when(moment: datetime) -> Any:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else moment

    def day(value: date | None) -> Any:
        return value.isoformat() if sqlite and value is not None else value

    def flag(value: bool) -> Any:
        return int(value) if sqlite else value

    def layer_rows() -> Iterator[tuple[Any, ...]]:
        for x in iter_layers(spec, count, warehouse_ids, today):
            yield (
                x.id,
                x.sku_id,
                x.warehouse_id,
                x.quantity,
                x.remaining,
                x.value,
                x.unit_cost,
                x.lot,
                day(x.expires_on),
                when(x.received_at),
                "receipt",
                f"bench receipt {x.id}",
                flag(x.expired),
                flag(False),
            )

    stock: dict[tuple[int, int], list[int]] = {}
    sums = [0, 0, 0]  # flows, units, value

    def flow_rows() -> Iterator[tuple[Any, ...]]:
        flow_id = 0
        for x in iter_layers(spec, count, warehouse_ids, today):
            flow_id += 1
            yield (
                flow_id,
                x.id,
                x.sku_id,
                x.warehouse_id,
                "receipt",
                x.quantity,
                x.value + x.written_off_value,
                f"bench receipt {x.id}",
                when(x.received_at),
            )
            if x.written_off:
                flow_id += 1
                yield (
                    flow_id,
                    x.id,
                    x.sku_id,
                    x.warehouse_id,
                    "writeoff",
                    -x.written_off,
                    -x.written_off_value,
                    "bench write-off",
                    when(x.received_at + timedelta(days=1)),
                )
            levels = stock.setdefault((x.sku_id, x.warehouse_id), [0, 0])
            levels[0] += x.remaining
            if x.expired:
                levels[1] += x.remaining
            sums[1] += x.remaining
            sums[2] += x.value
        sums[0] = flow_id

    def after() -> tuple[list[tuple[int, ...]], _Totals]:
        rows = [(s, w, oh, 0, 0, 0, ex) for (s, w), (oh, ex) in sorted(stock.items())]
        return rows, _Totals(count, sums[0], len(rows), sums[1], sums[2])

    return layer_rows(), flow_rows(), after


LAYER_COLUMNS = (
    "id, sku_id, warehouse_id, quantity, remaining, value, unit_cost, lot, expires_on, "
    "received_at, source, reference, expired, estimated"
)
FLOW_COLUMNS = "id, layer_id, sku_id, warehouse_id, kind, quantity, value, reference, at"
STOCK_COLUMNS = "sku_id, warehouse_id, on_hand, locked, allocated, held, expired"


def fill_valuation_sqlite(path: Path, spec: SyntheticCatalog, count: int, today: date) -> _Totals:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        ids = [
            i
            for (i,) in connection.execute(
                "SELECT id FROM warehouses WHERE code IN (?, ?, ?) ORDER BY id",
                [w.code for w in spec.warehouses],
            )
        ]
        layers, flows, after = _valuation_rows(spec, count, ids, today, sqlite=True)
        connection.execute("BEGIN")
        for table, columns, rows in (
            ("cost_layers", LAYER_COLUMNS, layers),
            ("layer_flows", FLOW_COLUMNS, flows),
        ):
            marks = ", ".join("?" * len(columns.split(", ")))
            for chunk in dbfill._chunks(rows):
                connection.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", chunk)
        stock, totals = after()
        connection.executemany(
            f"INSERT INTO stock ({STOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", stock
        )
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return totals


def fill_valuation_postgres(url: str, spec: SyntheticCatalog, count: int, today: date) -> _Totals:
    engine = create_db_engine(spec.settings(url))
    try:
        upgrade_schema(engine)
        ids_by_code = sync_warehouses(engine, spec.warehouse_settings())
    finally:
        engine.dispose()
    ids = [ids_by_code[w.code] for w in spec.warehouses]
    layers, flows, after = _valuation_rows(spec, count, ids, today, sqlite=False)
    with psycopg.connect(dbfill.libpq_url(url)) as conn:
        with conn.cursor() as cur:
            copies: list[tuple[str, Any]] = [
                ("skus (id, sku, name, kind, allow_backorder, price)", dbfill.sku_rows(spec)),
                (
                    "bom_lines (id, parent_id, slot, component_id, quantity, price_offset)",
                    dbfill.bom_rows(spec),
                ),
                (f"cost_layers ({LAYER_COLUMNS})", layers),
                (f"layer_flows ({FLOW_COLUMNS})", flows),
            ]
            for target, rows in copies:
                with cur.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            stock, totals = after()
            with cur.copy(f"COPY stock ({STOCK_COLUMNS}) FROM STDIN") as copy:
                for row in stock:
                    copy.write_row(row)
            for table in ("skus", "bom_lines", "cost_layers", "layer_flows"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()
        conn.execute("ANALYZE warehouses, skus, bom_lines, cost_layers, layer_flows, stock")
        conn.commit()
    return totals


def bench_valuation(runner: Any, backend: str) -> None:
    """``valuation-sqlite`` or ``valuation-postgres``."""
    args = runner.args
    count = args.valuation_layers
    spec = SyntheticCatalog(max(100, count // 10), args.seed)
    bench = f"valuation-{backend}"
    today = datetime.now(UTC).date()
    runner.log(
        f"{bench}: reports.valuation and reports.reconcile over {count:,} open cost layers "
        f"({spec.n:,} SKUs x {len(spec.warehouses)} warehouses), {backend}"
    )
    with tempfile.TemporaryDirectory(prefix="sellable-bench-valuation-") as tmp:
        start = time.perf_counter()
        if backend == "sqlite":
            nostock, _ = dbfill.ensure_sqlite(runner.data_dir, spec, runner.log)
            path = Path(tmp) / "valuation.db"
            shutil.copyfile(nostock, path)
            totals = fill_valuation_sqlite(path, spec, count, today)
            runner.log(f"  filled in {time.perf_counter() - start:.1f} s (not measured)")
            _measure_valuation(runner, bench, spec.settings(f"sqlite:///{path}"), totals)
        else:
            with dbfill.throwaway_postgres_db(args.postgres_url) as url:
                runner.log(f"  filling throwaway database {url.rsplit('/', 1)[1]} (COPY) ...")
                totals = fill_valuation_postgres(url, spec, count, today)
                runner.log(f"  filled in {time.perf_counter() - start:.1f} s (not measured)")
                _measure_valuation(runner, bench, spec.settings(url), totals)


def _measure_valuation(runner: Any, bench: str, settings: Settings, totals: _Totals) -> None:
    backend = bench.removeprefix("valuation-")
    runner.log(
        f"  {totals.layers:,} layers, {totals.flows:,} flows, {totals.pairs:,} stock rows, "
        f"{totals.units:,} units worth {Decimal(totals.value) / 1_000_000:,.2f}"
    )
    db = create_db_engine(settings)
    valuation_s: list[float] = []
    reconcile_s: list[float] = []
    try:
        with db.connect() as connection:
            for _ in range(runner.args.repeat):
                gc.collect()
                start = time.perf_counter()
                value = reports.valuation(connection)
                valuation_s.append(time.perf_counter() - start)
                del value
                gc.collect()
                start = time.perf_counter()
                check = reports.reconcile(connection)
                reconcile_s.append(time.perf_counter() - start)
                connection.rollback()
            value = reports.valuation(connection)  # for the checks below
            if runner.args.profile:
                runner.profile(f"{bench}-valuation", reports.valuation, connection)
                runner.profile(f"{bench}-reconcile", reports.reconcile, connection)
    finally:
        db.dispose()
    for name, times, rows in (
        ("valuation", valuation_s, f"{len(value['rows']):,} rows"),
        ("valuation --check (reconcile)", reconcile_s, "every layer against its flows"),
    ):
        median = statistics.median(times)
        runner.figure(
            bench,
            f"{backend}: {name}, {totals.layers:,} layers ({rows})",
            f"{median:.2f} s (median of {len(times)}; {', '.join(f'{t:.2f}' for t in times)})",
            "-",
            "info",
            median,
        )
    expected_value = f"{(Decimal(totals.value) / 1_000_000).quantize(Decimal('0.01'))}"
    got = value["totals"]
    if (got["quantity"], got["value"], len(value["rows"])) != (
        totals.units,
        expected_value,
        totals.pairs,
    ):
        runner.figure(
            bench,
            f"{backend}: valuation totals == generated",
            f"{got['quantity']:,} units, {got['value']}, {len(value['rows']):,} rows",
            f"{totals.units:,} units, {expected_value}, {totals.pairs:,} rows",
            "MISS",
        )
    else:
        runner.log(f"  valuation totals == generated ({got['quantity']:,} units, {got['value']})")
    if not check.ok:
        for problem in check.problems:
            runner.log(f"  reconcile problem: {problem}")
        runner.figure(
            bench,
            f"{backend}: valuation --check ok",
            f"NOT reconciled (difference {check.difference})",
            "ok",
            "MISS",
        )
    else:
        runner.log("  reconcile ok")
