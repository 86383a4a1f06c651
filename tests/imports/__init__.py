"""Helpers shared by the CSV import tests: a store on the test database, snapshots, files."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, select

from sellable.config import Settings, load_settings
from sellable.imports import import_components, import_products, import_stock
from sellable.store import schema
from sellable.store.db import create_db_engine, upgrade_schema
from sellable.store.loader import load_engine
from tests.conftest import ledger_mismatches

EXAMPLES = Path(__file__).parents[2] / "examples"

TABLES = tuple(schema.metadata.sorted_tables)


@dataclass
class Store:
    """An initialised database (schema at head, warehouses main and fba-us) and a work dir."""

    settings: Settings
    engine: Engine
    dir: Path
    config: Path

    def csv(self, name: str, text: str) -> Path:
        """Write ``text`` to ``name`` in the work dir and return its path."""
        path = self.dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def load_examples(self) -> None:
        import_products(self.engine, EXAMPLES / "products.csv")
        import_components(self.engine, EXAMPLES / "components.csv")
        import_stock(self.engine, self.settings, EXAMPLES / "stock.csv")

    def counts(self) -> dict[str, int]:
        """Row count of every table."""
        with self.engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in TABLES
            }

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted, to prove that nothing was written."""
        with self.engine.connect() as connection:
            return {
                table.name: sorted(
                    (tuple(row) for row in connection.execute(select(table))), key=repr
                )
                for table in TABLES
            }

    def sku_rows(self) -> dict[str, tuple[str, str, bool, Any]]:
        """sku -> (name, kind, allow_backorder, price)."""
        c = schema.skus.c
        with self.engine.connect() as connection:
            return {
                sku: (name, kind, backorder, price)
                for sku, name, kind, backorder, price in connection.execute(
                    select(c.sku, c.name, c.kind, c.allow_backorder, c.price)
                )
            }

    def bom(self, parent: str) -> list[tuple[str | None, str, int, Any]]:
        """The BOM rows of ``parent`` as (slot, component, quantity, price_offset), by id."""
        b, p, c = schema.bom_lines, schema.skus.alias("p"), schema.skus.alias("c")
        with self.engine.connect() as connection:
            return [
                tuple(row)  # type: ignore[misc]
                for row in connection.execute(
                    select(b.c.slot, c.c.sku, b.c.quantity, b.c.price_offset)
                    .join(p, p.c.id == b.c.parent_id)
                    .join(c, c.c.id == b.c.component_id)
                    .where(p.c.sku == parent)
                    .order_by(b.c.id)
                )
            ]

    def stock_row(self, sku: str, warehouse: str) -> tuple[int, int, int] | None:
        """(on_hand, locked, allocated) of one stock row, None when there is none."""
        s, k, w = schema.stock.c, schema.skus.c, schema.warehouses.c
        with self.engine.connect() as connection:
            row = connection.execute(
                select(s.on_hand, s.locked, s.allocated)
                .join(schema.skus, k.id == s.sku_id)
                .join(schema.warehouses, w.id == s.warehouse_id)
                .where(k.sku == sku, w.code == warehouse)
            ).one_or_none()
        return None if row is None else (row[0], row[1], row[2])

    def movements(self) -> list[tuple[str, str, str, int, int, int, int, str | None]]:
        """(sku, warehouse, type, quantity, on_hand, locked, allocated change, reference)."""
        m, k, w = schema.movements.c, schema.skus.c, schema.warehouses.c
        with self.engine.connect() as connection:
            return [
                tuple(row)  # type: ignore[misc]
                for row in connection.execute(
                    select(
                        k.sku,
                        w.code,
                        m.type,
                        m.quantity,
                        m.on_hand_change,
                        m.locked_change,
                        m.allocated_change,
                        m.reference,
                    )
                    .join(schema.skus, k.id == m.sku_id)
                    .join(schema.warehouses, w.id == m.warehouse_id)
                    .order_by(m.id)
                )
            ]

    def ledger_mismatches(self) -> list[str]:
        """Stock rows that differ from the sum of their movements (must be empty)."""
        with self.engine.connect() as connection:
            return ledger_mismatches(connection)

    def sellable(self, sku: str, warehouse: str) -> int:
        with self.engine.connect() as connection:
            return load_engine(connection, self.settings).sellable(sku, warehouse)


WAREHOUSES_TOML = """
[[warehouses]]
code = "main"
kind = "own"
assembly_on_demand = true

[[warehouses]]
code = "fba-us"
kind = "fba"
"""

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
"""Params for a module-scoped store fixture: the same two databases as ``database_url``."""


@contextmanager
def shared_database(request: pytest.FixtureRequest, work: Path) -> Iterator[Path]:
    """A configuration file (warehouses main and fba-us) pointing at a new, empty database on
    the backend ``request.param``, for a module-scoped fixture; dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{work / 'sellable.db'}"
        server = name = None
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"sellable_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        base = server.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://")
        url = f"{base}/{name}"
    config = work / "sellable.toml"
    config.write_text(f'[database]\nurl = "{url}"\n{WAREHOUSES_TOML}')
    try:
        yield config
    finally:
        if server is not None:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def shared_store(request: pytest.FixtureRequest, work: Path) -> Iterator[Store]:
    """A store for a whole module on the backend ``request.param``, with the examples loaded.

    The tests that share it only run what must not write (rejected imports, reading
    commands), and each checks that nothing was written; a PostgreSQL database per test
    would make the suite several times slower.
    """
    with shared_database(request, work) as config:
        store = open_store(config)
        try:
            store.load_examples()
            yield store
        finally:
            store.engine.dispose()


def open_store(config_file: Path) -> Store:
    """A store on the database of ``config_file``, with the schema created."""
    settings = load_settings(config_file)
    engine = create_db_engine(settings)
    upgrade_schema(engine)
    work = config_file.parent / "csv"
    work.mkdir(exist_ok=True)
    return Store(settings, engine, work, config_file)


def rejected(path: Path, *problems: str) -> str:
    """The exact message of a file rejected for ``problems`` (one line each)."""
    return "\n".join(
        [*problems, f"{path}: rejected ({len(problems)} problem(s)); nothing was written"]
    )
