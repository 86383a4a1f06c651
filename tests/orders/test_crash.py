"""``kill -9`` in the middle of an order import: each batch of orders is one transaction,
so the store keeps whole orders with all their movements or nothing of them, and running
the import again finishes the job as if it had never been interrupted.

The importer is a subprocess (:mod:`tests.orders.workers`, batches of 50 orders). It is
killed either inside a batch's transaction, between writing its movements and its stock
rows (the worker stops there and waits), or while it runs freely, as soon as 500 orders
are committed. The reference is one uninterrupted import of the same file into the same
catalog, with orders, movements and stock cleared in between.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from sellable.config import Settings
from sellable.imports import import_stock
from sellable.orders import OrderBook, read_orders_csv
from sellable.store import schema
from tests.orders.workers import (
    WORKER_SCRIPT,
    clear_orders_and_stock,
    movement_totals,
    open_store,
    order_lines,
    stock_levels,
    store_problems,
    write_csv,
)

ORDERS = 3000
BATCH_SIZE = 50
KILL_AFTER = 500  # orders committed before the kill: well inside the file

PRODUCTS = """sku,name,kind,allow_backorder
A,Part A,simple,false
B,Part B,simple,false
BO,Part that may be backordered,simple,true
KIT,Kit of A and B,kit,false
ASM,Assembly of 2 A and B (built on demand in main),assembly,false
PKG,Package: A or B,package,false
"""
COMPONENTS = """parent_sku,component_sku,quantity,slot
KIT,A,1,
KIT,B,1,
ASM,A,2,
ASM,B,1,
PKG,A,1,pick
PKG,B,1,pick
"""
SKUS = ["A", "B", "BO", "KIT", "ASM", "PKG"]


def _orders_file(path: Path) -> Path:
    """3000 orders of 1-3 lines in main and fba-us; stock runs out about half way."""
    pick = random.Random(20261123)
    rows: list[tuple[object, ...]] = []
    for number in range(ORDERS):
        warehouse = "main" if pick.random() < 0.9 else "fba-us"
        for line, sku in enumerate(pick.sample(SKUS, pick.randint(1, 3))):
            rows.append(("shop", f"o{number:05d}", sku, pick.randint(1, 3), warehouse, f"L{line}"))
    return write_csv(path, "channel,order_id,sku,quantity,warehouse,line_id", rows)


def _seed_stock(engine: Engine, app_settings: Settings, folder: Path) -> None:
    import_stock(
        engine,
        app_settings,
        write_csv(
            folder / "stock.csv",
            "sku,warehouse,on_hand",
            [
                ("A", "main", 4000),
                ("B", "main", 3000),
                ("BO", "main", 100),
                ("KIT", "fba-us", 60),
                ("A", "fba-us", 80),
            ],
        ),
    )


def _state(engine: Engine) -> dict[str, Any]:
    """What a finished import leaves, by codes (ids differ between runs)."""
    with engine.connect() as connection:
        ao = schema.assembly_orders.c
        return {
            "stock": stock_levels(connection),
            "orders": order_lines(connection),
            "movements": movement_totals(connection),
            "assembly orders": tuple(
                connection.execute(select(func.count(), func.sum(ao.quantity))).one()
            ),
        }


def _orders_committed(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(schema.orders)).scalar_one())


def _start_import(config: Path, orders: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(WORKER_SCRIPT),
            "import-orders",
            str(config),
            str(orders),
            str(BATCH_SIZE),
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_inside_a_batch(config: Path, orders: Path, engine: Engine) -> None:
    """The worker stops inside the batch after KILL_AFTER orders, between writing that
    batch's movements and its stock rows; it is killed there."""
    importer = _start_import(config, orders, str(KILL_AFTER // BATCH_SIZE + 1))
    assert importer.stdout is not None
    paused = importer.stdout.readline()
    if paused == "paused\n":
        os.kill(importer.pid, signal.SIGKILL)  # it is alive: waiting on its stdin
    _reap(importer)
    assert paused == "paused\n"


def _kill_while_running(config: Path, orders: Path, engine: Engine) -> None:
    """The worker runs freely and is killed as soon as KILL_AFTER orders are committed."""
    importer = _start_import(config, orders)
    deadline = time.monotonic() + 120
    while (
        _orders_committed(engine) < KILL_AFTER
        and importer.poll() is None
        and time.monotonic() < deadline
    ):
        pass  # each poll is one short query
    importer.send_signal(signal.SIGKILL)  # kill -9, unless it already ended (then it fails)
    _reap(importer)


def _reap(importer: subprocess.Popen[str]) -> None:
    """Make sure the worker is gone; it must have died of SIGKILL, not of anything else."""
    if importer.poll() is None:
        importer.kill()
    _out, err = importer.communicate()
    assert importer.returncode == -signal.SIGKILL, err


@pytest.mark.parametrize(
    "kill",
    [
        pytest.param(_kill_inside_a_batch, id="inside-a-batch"),
        pytest.param(_kill_while_running, id="while-running"),
    ],
)
def test_crash_kill_mid_import_keeps_whole_orders_and_rerun_finishes(
    request: pytest.FixtureRequest,
    config_file: Path,
    tmp_path: Path,
    kill: Callable[[Path, Path, Engine], None],
) -> None:
    app_settings, engine = open_store(config_file, PRODUCTS, COMPONENTS, tmp_path)
    request.addfinalizer(engine.dispose)
    orders_csv = _orders_file(tmp_path / "orders.csv")

    # The reference: one uninterrupted import into the same catalog.
    _seed_stock(engine, app_settings, tmp_path)
    book = OrderBook(engine, app_settings, batch_size=BATCH_SIZE)
    orders = read_orders_csv(orders_csv, app_settings, book.live.catalog, engine)
    book.apply(orders)
    clean = _state(engine)
    assert store_problems(engine) == []
    statuses = Counter(v[2] for lines in clean["orders"].values() for k, v in lines.items() if k)
    assert statuses["allocated"] > 1000 and statuses["held"] > 1000, statuses
    assert clean["movements"]["AssemblyBuild"][0] > 0
    wanted = {o.key: {line.line_id: (line.sku, line.quantity) for line in o.lines} for o in orders}

    clear_orders_and_stock(engine)
    _seed_stock(engine, app_settings, tmp_path)
    kill(config_file, orders_csv, engine)

    # Whole batches of whole orders, each with all its lines and movements.
    committed = _orders_committed(engine)
    assert KILL_AFTER <= committed < ORDERS
    assert committed % BATCH_SIZE == 0
    if kill is _kill_inside_a_batch:
        assert committed == KILL_AFTER
    assert store_problems(engine) == []
    with engine.connect() as connection:
        stored = order_lines(connection)
    for key, lines in stored.items():
        assert lines.pop("")[0] == "open"
        assert {k: v[:2] for k, v in lines.items()} == wanted[key]
    with_held = sum(any(v[2] == "held" for v in lines.values()) for lines in stored.values())

    # Running the same import again finishes the job, as if it had never stopped.
    book = OrderBook(engine, app_settings, batch_size=BATCH_SIZE)
    result = book.apply(read_orders_csv(orders_csv, app_settings, book.live.catalog, engine))
    # Orders with held lines are tried again (and stay held: nothing came in since).
    assert (result.orders_created, result.orders_unchanged, result.orders_updated) == (
        ORDERS - committed,
        committed - with_held,
        with_held,
    )
    assert store_problems(engine) == []
    assert _state(engine) == clean
