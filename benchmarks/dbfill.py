"""Populating benchmark databases with a :class:`SyntheticCatalog`, fast. Not measured.

SQLite: driver-level ``executemany`` in one transaction after ``upgrade_schema``; the files
are cached under ``benchmarks/.data/`` keyed by size, seed and generator version.
PostgreSQL: ``COPY`` through psycopg into a throwaway database created (and dropped) here.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
from alembic.script import ScriptDirectory
from catalog_gen import GEN_VERSION, SyntheticCatalog
from sqlalchemy import Engine

from sellable.store.db import MIGRATIONS, create_db_engine, sync_warehouses, upgrade_schema

CHUNK = 50_000


def _chunks(rows: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def sku_rows(spec: SyntheticCatalog) -> Iterator[tuple[Any, ...]]:
    """``skus`` rows: id, sku, name, kind, allow_backorder, price."""
    for pos, (code, kind) in enumerate(zip(spec.codes, spec.kinds, strict=True)):
        yield pos + 1, code, f"Synthetic {kind} {pos}", kind, False, None


def bom_rows(spec: SyntheticCatalog) -> Iterator[tuple[Any, ...]]:
    """``bom_lines`` rows: id, parent_id, slot, component_id, quantity, price_offset."""
    for row_id, (parent, slot, child, qty) in enumerate(spec.iter_bom(), 1):
        yield row_id, parent + 1, slot, child + 1, qty, None


def stock_rows(spec: SyntheticCatalog, warehouse_ids: list[int]) -> Iterator[tuple[int, ...]]:
    """``stock`` rows: sku_id, warehouse_id, on_hand, locked, allocated."""
    for pos, w, on_hand, locked, allocated in spec.iter_stock():
        yield pos + 1, warehouse_ids[w], on_hand, locked, allocated


# -- SQLite -------------------------------------------------------------------------------------


def schema_head() -> str:
    """The newest Alembic revision: part of the cache key, so a new migration rebuilds."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or "none"


def sqlite_paths(data_dir: Path, spec: SyntheticCatalog) -> tuple[Path, Path]:
    """(catalog without stock, catalog with stock) cache files for this size and seed."""
    stem = f"catalog-n{spec.n}-seed{spec.seed}-v{GEN_VERSION}-schema{schema_head()}"
    return data_dir / f"{stem}-nostock.db", data_dir / f"{stem}.db"


def _sqlite_engine(spec: SyntheticCatalog, path: Path) -> Engine:
    return create_db_engine(spec.settings(f"sqlite:///{path}"))


def _checkpoint_and_dispose(engine: Engine, path: Path) -> None:
    """Close every connection and fold the WAL into the file, so it can be copied alone."""
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def _building(tmp: Path) -> Iterator[None]:
    """Start from nothing; on failure leave no half-built file behind."""
    remove_sqlite(tmp)
    try:
        yield
    finally:
        remove_sqlite(tmp)  # after success it has been renamed; only -wal/-shm may be left


def ensure_sqlite(data_dir: Path, spec: SyntheticCatalog, log: Any = print) -> tuple[Path, Path]:
    """Build (or reuse) the cached SQLite files; returns (no-stock file, full file)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    nostock, full = sqlite_paths(data_dir, spec)
    for stale in data_dir.glob(f"catalog-n{spec.n}-seed{spec.seed}-*.db"):
        if stale not in (nostock, full):  # an older generator version or schema
            log(f"  removing stale cache {stale.name}")
            remove_sqlite(stale)
    if not nostock.exists():
        log(f"  building {nostock.name} (SKUs and BOMs; cached for next runs) ...")
        tmp = nostock.with_name(nostock.name + f".{os.getpid()}.tmp")
        with _building(tmp):
            engine = _sqlite_engine(spec, tmp)
            upgrade_schema(engine)
            sync_warehouses(engine, spec.warehouse_settings())
            with engine.begin() as connection:
                for chunk in _chunks(sku_rows(spec)):
                    connection.exec_driver_sql(
                        "INSERT INTO skus (id, sku, name, kind, allow_backorder, price) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        chunk,
                    )
                for chunk in _chunks(bom_rows(spec)):
                    connection.exec_driver_sql(
                        "INSERT INTO bom_lines (id, parent_id, slot, component_id, quantity, "
                        "price_offset) VALUES (?, ?, ?, ?, ?, ?)",
                        chunk,
                    )
            _checkpoint_and_dispose(engine, tmp)
            tmp.replace(nostock)
    if not full.exists():
        log(f"  building {full.name} (with stock; cached for next runs) ...")
        tmp = full.with_name(full.name + f".{os.getpid()}.tmp")
        with _building(tmp):
            shutil.copyfile(nostock, tmp)
            engine = _sqlite_engine(spec, tmp)
            ids = sync_warehouses(engine, spec.warehouse_settings())
            warehouse_ids = [ids[w.code] for w in spec.warehouses]
            with engine.begin() as connection:
                for chunk in _chunks(stock_rows(spec, warehouse_ids)):
                    connection.exec_driver_sql(
                        "INSERT INTO stock (sku_id, warehouse_id, on_hand, locked, allocated) "
                        "VALUES (?, ?, ?, ?, ?)",
                        chunk,
                    )
                connection.exec_driver_sql("ANALYZE")
            _checkpoint_and_dispose(engine, tmp)
            tmp.replace(full)
    return nostock, full


# -- PostgreSQL ---------------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@contextmanager
def throwaway_postgres_db(server_url: str) -> Iterator[str]:
    """A fresh database on ``server_url`` (dropped afterwards); yields its SQLAlchemy URL."""
    server = libpq_url(server_url)
    name = f"sellable_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server.rpartition("/")
    try:
        yield sqlalchemy_url(f"{base}/{name}")
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def populate_postgres(spec: SyntheticCatalog, url: str) -> None:
    """Schema by ``upgrade_schema``, warehouses by ``sync_warehouses``, rows by ``COPY``."""
    engine = create_db_engine(spec.settings(url))
    try:
        upgrade_schema(engine)
        ids = sync_warehouses(engine, spec.warehouse_settings())
    finally:
        engine.dispose()
    warehouse_ids = [ids[w.code] for w in spec.warehouses]
    with psycopg.connect(libpq_url(url)) as conn:
        with conn.cursor() as cur:
            copies = (
                ("skus (id, sku, name, kind, allow_backorder, price)", sku_rows(spec)),
                (
                    "bom_lines (id, parent_id, slot, component_id, quantity, price_offset)",
                    bom_rows(spec),
                ),
                (
                    "stock (sku_id, warehouse_id, on_hand, locked, allocated)",
                    stock_rows(spec, warehouse_ids),
                ),
            )
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
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
