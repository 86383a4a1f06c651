"""Several processes import orders for the same last units at once.

Each worker is a real ``python -m sellable --config CFG import orders FILE --json``
process (started through :mod:`tests.orders.workers`' barrier, so that all of them have
their imports done and then start the command together). On PostgreSQL the stock rows
are locked with ``SELECT ... FOR UPDATE``; on SQLite writers queue on ``BEGIN
IMMEDIATE`` within the busy timeout, and no worker may see "database is locked".
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from sellable.config import Settings
from sellable.imports import import_stock
from sellable.store import schema
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


def _store(config: Path, folder: Path) -> tuple[Settings, Engine]:
    app_settings, engine = open_store(config, PRODUCTS, COMPONENTS, folder)
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
            assert worker.stdout.readline() == "ready\n"
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
    config_file: Path, tmp_path: Path
) -> None:
    """8 workers × 2 orders, each wanting one unit of LAST (itself, in a kit, or built into
    an assembly on demand): exactly 5 are served, the other 11 lines are held. Each worker
    also orders one LAST-BO, which allows backorder: all 8 are allocated, 3 short."""
    _app_settings, engine = _store(config_file, tmp_path)
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
    assert stock[("LAST", "main")] == (LAST_UNITS - built, 0, LAST_UNITS - built)
    assert stock[("LAST-ASM", "main")] == (built, 0, built)
    assert stock[("OTHER", "main")] == (OTHER_UNITS - built, 0, kits)
    assert stock.get(("LAST-KIT", "main"), (0, 0, 0)) == (0, 0, 0)
    # Backorder: every order taken, availability short by exactly the excess.
    assert stock[("LAST-BO", "main")] == (LAST_UNITS, 0, WORKERS)
    engine.dispose()


def test_concurrent_delivery_of_the_same_order_stores_it_once(
    config_file: Path, tmp_path: Path
) -> None:
    """Every worker delivers the same order (a re-pull racing itself): one creates it,
    the others find it unchanged; its stock is allocated once."""
    _app_settings, engine = _store(config_file, tmp_path)
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
    assert stock[("LAST", "main")] == (LAST_UNITS, 0, 3)
    assert stock[("OTHER", "main")] == (OTHER_UNITS, 0, 1)
    assert by_type == {"Allocation": 3}
    engine.dispose()
