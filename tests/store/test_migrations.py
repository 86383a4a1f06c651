"""The migrations create exactly the tables ``schema.py`` declares, on SQLite and PostgreSQL,
and migration 0006 opens a layer for the stock already on hand (the costing invariant holds
from the first day of an upgraded database)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from sellable.store import schema
from sellable.store.db import _alembic_config, upgrade_schema
from tests.conftest import ledger_mismatches


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        upgrade_schema(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": False, "compare_server_default": False}
            )
            return [
                d
                for d in compare_metadata(context, schema.metadata)
                # Index and constraint naming differ between dialects' reflection; tables and
                # columns are what code relies on.
                if not (isinstance(d, tuple) and d[0] in {"add_index", "remove_index"})
                and not (isinstance(d, tuple) and d[0] in {"add_fk", "remove_fk"})
            ]
    finally:
        engine.dispose()


def test_the_migrations_create_the_declared_tables_and_columns(database_url: str) -> None:
    assert _differences(database_url) == []


def test_migration_0006_opens_layers_for_the_stock_on_hand(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        config = _alembic_config(engine)
        command.upgrade(config, "0005")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO warehouses (id, code, kind, use_component_inventory, "
                    "assembly_on_demand) VALUES (1, 'main', 'own', 1, 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO skus (id, sku, name, kind, allow_backorder) VALUES "
                    "(1, 'A', '', 'simple', 0), (2, 'B', '', 'simple', 1)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO stock (sku_id, warehouse_id, on_hand, locked, allocated, held) "
                    "VALUES (1, 1, 7, 0, 0, 0), (2, 1, -2, 0, 0, 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO movements (sku_id, warehouse_id, type, quantity, on_hand_change,"
                    " locked_change, allocated_change, held_change, reference, at) VALUES "
                    "(1, 1, 'Adjustment', 7, 7, 0, 0, 0, 'count', '2026-01-01 00:00:00'), "
                    "(2, 1, 'Sale', -2, -2, 0, 0, 0, 'order', '2026-01-01 00:00:00')"
                )
            )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            layers = sorted(
                connection.execute(
                    text("SELECT sku_id, remaining, value, unit_cost, source FROM cost_layers")
                ).all()
            )
            assert layers == [(1, 7, 0, None, "opening"), (2, -2, 0, None, "deficit")]
            assert ledger_mismatches(connection) == []
    finally:
        engine.dispose()


def test_migration_0010_adds_fulfilments_and_the_shipping_address_and_takes_them_back(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        config = _alembic_config(engine)
        command.upgrade(config, "head")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO warehouses (id, code, kind, use_component_inventory, "
                    "assembly_on_demand) VALUES (1, 'sb', '3pl', true, false)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO orders (id, channel, external_id, warehouse_id, status, "
                    "imported_at, updated_at, shipping_address) VALUES (1, 'shop', '1001', 1, "
                    "'open', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '{\"city\": \"X\"}')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO fulfilments (channel, order_id, warehouse_id, reference, "
                    "status, lines, created_at, updated_at) VALUES ('sb', 1, 1, 'shop:1001', "
                    "'pending', '[]', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
        with engine.begin() as connection:
            try:
                connection.execute(
                    text(
                        "INSERT INTO fulfilments (channel, order_id, warehouse_id, reference, "
                        "status, lines, created_at, updated_at) VALUES ('sb', 1, 1, "
                        "'shop:1001', 'pending', '[]', '2026-01-01 00:00:00', "
                        "'2026-01-01 00:00:00')"
                    )
                )
            except IntegrityError:
                duplicate_refused = True
            else:
                duplicate_refused = False
        assert duplicate_refused
        command.downgrade(config, "0009")
        names = inspect(engine).get_table_names()
        assert "fulfilments" not in names
        assert "shipping_address" not in {c["name"] for c in inspect(engine).get_columns("orders")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT external_id FROM orders")).all() == [("1001",)]
        command.upgrade(config, "head")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT shipping_address FROM orders")).all() == [
                (None,)
            ]
            assert connection.execute(text("SELECT count(*) FROM fulfilments")).scalar() == 0
    finally:
        engine.dispose()
