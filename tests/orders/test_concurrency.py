"""Several processes import orders for the same last units at once.

Each worker is a real ``python -m sellable -v --config CFG import orders FILE --json``
process (started through :mod:`tests.orders.workers`' barrier, so that all of them have
their imports done and then start the command together). On PostgreSQL the stock rows
are locked with ``SELECT ... FOR UPDATE``; on SQLite writers queue on ``BEGIN
IMMEDIATE`` within the busy timeout, and no worker may see "database is locked" (``-v``
logs every retry, so a retried lock error would show too).

Last, a stock count and an order meet on a stock row that does not exist yet (threads,
with the count held between reading and writing the stock: PostgreSQL only).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from sellable.config import Settings
from sellable.imports import import_stock
from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus
from sellable.store import schema
from sellable.store.db import create_db_engine
from tests.conftest import WAREHOUSES_TOML
from tests.orders.workers import (
    WORKER_SCRIPT,
    open_store,
    order_lines,
    stock_levels,
    store_problems,
    write_csv,
)

WORKERS = 8
LAST_UNITS = 5
OTHER_UNITS = 100

PRODUCTS = """sku,name,kind,allow_backorder
LAST,The part there are only a few of,simple,false
LAST-BO,A part that may be backordered,simple,true
OTHER,A part there is plenty of,simple,false
LAST-KIT,Kit of LAST and OTHER,kit,false
LAST-ASM,Assembly of LAST and OTHER (built on demand in main),assembly,false
"""
COMPONENTS = """parent_sku,component_sku,quantity
LAST-KIT,LAST,1
LAST-KIT,OTHER,1
LAST-ASM,LAST,1
LAST-ASM,OTHER,1
"""
ORDERS_HEADER = "channel,order_id,sku,quantity,warehouse,line_id"


def _store(request: pytest.FixtureRequest, config: Path, folder: Path) -> tuple[Settings, Engine]:
    app_settings, engine = open_store(config, PRODUCTS, COMPONENTS, folder)
    request.addfinalizer(engine.dispose)
    import_stock(
        engine,
        app_settings,
        write_csv(
            folder / "stock.csv",
            "sku,warehouse,on_hand",
            [
                ("LAST", "main", LAST_UNITS),
                ("LAST-BO", "main", LAST_UNITS),
                ("OTHER", "main", OTHER_UNITS),
            ],
        ),
    )
    return app_settings, engine


def _run_workers(config: Path, files: list[Path]) -> list[dict[str, Any]]:
    """Start one CLI import per file, release them together, and return their JSON
    results; every worker must succeed, and none may have met a locked database."""
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER_SCRIPT),
                "cli-at-barrier",
                "-v",
                "--config",
                str(config),
                "import",
                "orders",
                str(path),
                "--json",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            ready = worker.stdout.readline()
            assert ready == "ready\n", worker.communicate()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert "database is locked" not in stderr
        assert "Traceback" not in stderr, stderr
    return [json.loads(stdout) for stdout, _stderr in outputs]


def _write_orders(folder: Path, rows_per_worker: list[list[tuple[object, ...]]]) -> list[Path]:
    return [
        write_csv(folder / f"orders-{index}.csv", ORDERS_HEADER, rows)
        for index, rows in enumerate(rows_per_worker)
    ]


def test_concurrent_imports_never_allocate_the_last_units_twice(
    request: pytest.FixtureRequest, config_file: Path, tmp_path: Path
) -> None:
    """8 workers × 2 orders, each wanting one unit of LAST (itself, in a kit, or built into
    an assembly on demand): exactly 5 are served, the other 11 lines are held. Each worker
    also orders one LAST-BO, which allows backorder: all 8 are allocated, 3 short."""
    _app_settings, engine = _store(request, config_file, tmp_path)
    skus = ["LAST", "LAST-KIT", "LAST-ASM"]
    files = _write_orders(
        tmp_path,
        [
            [("shop", f"w{w}-{n}", skus[(2 * w + n) % 3], 1, "main", "1") for n in range(2)]
            + [("shop", f"w{w}-bo", "LAST-BO", 1, "main", "1")]
            for w in range(WORKERS)
        ],
    )
    demand = 2 * WORKERS

    results = _run_workers(config_file, files)

    totals = Counter[str]()
    for result in results:
        totals.update({k: v for k, v in result.items() if isinstance(v, int)})
    assert (totals["orders_created"], totals["lines_allocated"], totals["lines_held"]) == (
        demand + WORKERS,
        LAST_UNITS + WORKERS,
        demand - LAST_UNITS,
    )
    assert store_problems(engine) == []
    with engine.connect() as connection:
        stock = stock_levels(connection)
        lines = order_lines(connection)
    statuses = Counter(
        (sku == "LAST-BO", status)
        for order in lines.values()
        for key, (sku, _qty, status) in order.items()
        if key
    )
    assert statuses == {
        (False, "allocated"): LAST_UNITS,
        (False, "held"): demand - LAST_UNITS,
        (True, "allocated"): WORKERS,
    }
    built = stock[("LAST-ASM", "main")][0]
    kits = sum(
        1
        for order in lines.values()
        for key, (sku, _qty, status) in order.items()
        if key and sku == "LAST-KIT" and status == "allocated"
    )
    # Every unit of LAST went to exactly one line: as itself, in a kit, or built into
    # an assembly (then the assembly is allocated). Nothing is left, nothing is short.
    # Each held line claims the one LAST it wants (all 11, beyond stock), and a held kit
    # or assembly line also its one OTHER: of the 10 kit and assembly lines (5 each),
    # ``kits`` and ``built`` were served.
    held = demand - LAST_UNITS
    assert stock[("LAST", "main")] == (LAST_UNITS - built, 0, LAST_UNITS - built, held)
    assert stock[("LAST-ASM", "main")] == (built, 0, built, 0)
    assert stock[("OTHER", "main")] == (OTHER_UNITS - built, 0, kits, 10 - kits - built)
    assert stock.get(("LAST-KIT", "main"), (0, 0, 0, 0)) == (0, 0, 0, 0)
    # Backorder: every order taken, availability short by exactly the excess.
    assert stock[("LAST-BO", "main")] == (LAST_UNITS, 0, WORKERS, 0)


def test_concurrent_delivery_of_the_same_order_stores_it_once(
    request: pytest.FixtureRequest, config_file: Path, tmp_path: Path
) -> None:
    """Every worker delivers the same order (a re-pull racing itself): one creates it,
    the others find it unchanged; its stock is allocated once."""
    _app_settings, engine = _store(request, config_file, tmp_path)
    order = [
        ("shop", "dup-1", "LAST", 2, "main", "a"),
        ("shop", "dup-1", "LAST-KIT", 1, "main", "b"),
    ]
    files = _write_orders(tmp_path, [order] * WORKERS)

    results = _run_workers(config_file, files)

    assert sorted((r["orders_created"], r["orders_unchanged"]) for r in results) == [(0, 1)] * (
        WORKERS - 1
    ) + [(1, 0)]
    assert sum(r["movements"] for r in results) == 3
    assert store_problems(engine) == []
    with engine.connect() as connection:
        stock = stock_levels(connection)
        lines = order_lines(connection)
        m = schema.movements.c
        by_type = dict(
            connection.execute(
                select(m.type, func.count())
                .where(m.reference == "order shop:dup-1")
                .group_by(m.type)
            ).all()
        )
    assert lines == {
        ("shop", "dup-1"): {
            "": ("open", 0, ""),
            "a": ("LAST", 2, "allocated"),
            "b": ("LAST-KIT", 1, "allocated"),
        }
    }
    assert stock[("LAST", "main")] == (LAST_UNITS, 0, 3, 0)
    assert stock[("OTHER", "main")] == (OTHER_UNITS, 0, 1, 0)
    assert by_type == {"Allocation": 3}


@pytest.mark.postgres
def test_concurrent_count_creating_a_stock_row_and_an_order_keep_the_ledger(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> None:
    """The first count of LAST-ASM in main (it has no stock row yet) reads the stock; then
    an order builds one LAST-ASM on demand, or waits for the count; then the count writes.
    Either way the ledger explains the row, and the count (absolute) has the last word.

    PostgreSQL only: a SQLite count holds the write lock from its BEGIN IMMEDIATE, so no
    order can write between its read and its write."""
    config = tmp_path / "sellable.toml"
    config.write_text(f'[database]\nurl = "{postgres_url}"\n{WAREHOUSES_TOML}')
    app_settings, engine = _store(request, config, tmp_path)
    counter = create_db_engine(app_settings)
    request.addfinalizer(counter.dispose)
    has_read, resume = threading.Event(), threading.Event()

    @event.listens_for(counter, "after_cursor_execute")
    def _pause_after_reading_stock(*args: object) -> None:
        statement = str(args[2])
        if "FROM stock" in statement and "FOR UPDATE" in statement:
            has_read.set()
            resume.wait(60)

    count_file = write_csv(
        tmp_path / "count.csv", "sku,warehouse,on_hand", [("LAST-ASM", "main", 3)]
    )
    order = OrderIn("shop", "asm-1", "main", OrderStatus.OPEN, (OrderLineIn("1", "LAST-ASM", 1),))
    book = OrderBook(engine, app_settings)
    counting = _Background(lambda: import_stock(counter, app_settings, count_file))
    try:
        assert has_read.wait(60), "the count never read the stock"
        ordering = _Background(lambda: book.apply([order]))
        deadline = time.monotonic() + 60
        while ordering.is_alive() and not _someone_waits_for_a_lock(engine):
            assert time.monotonic() < deadline, "the order neither finished nor waited"
    finally:
        resume.set()
    counting.result()
    result = ordering.result()
    assert result.lines_allocated == 1
    assert store_problems(engine) == []
    with engine.connect() as connection:
        stock = stock_levels(connection)
    assert stock[("LAST-ASM", "main")] == (3, 0, 1, 0)


class _Background(threading.Thread):
    """Runs ``work`` in a thread; :meth:`result` joins it and returns or re-raises."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.outcome: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.outcome = self.work()
        except BaseException as err:  # re-raised in the test's thread by result()
            self.error = err

    def result(self) -> Any:
        self.join(120)
        assert not self.is_alive(), "still running after 120 s"
        if self.error is not None:
            raise self.error
        return self.outcome


def _someone_waits_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).scalar()
        )
