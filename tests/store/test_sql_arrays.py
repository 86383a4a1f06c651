"""The bulk helpers that send integer lists as one array parameter (``one_of``,
``update_rows``; on PostgreSQL the array's text, see ``int_array``) select and set exactly
the rows asked for, on SQLite and PostgreSQL; anything but an integer in such an array is
refused by the database, never truncated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.exc import DBAPIError

from sellable.store import schema
from sellable.store.db import upgrade_schema
from sellable.store.ledger import update_rows
from sellable.store.sql import int_array, one_of


def test_int_array_text() -> None:
    assert int_array([]) == "{}"
    assert int_array([1, -2, None, 3_000_000_000_000]) == "{1,-2,NULL,3000000000000}"


def test_one_of_and_update_rows_with_integer_arrays(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        upgrade_schema(engine)
        sk, ao = schema.skus, schema.assembly_orders
        with engine.begin() as connection:
            connection.execute(
                insert(schema.warehouses),
                [
                    {
                        "id": 1,
                        "code": "main",
                        "kind": "own",
                        "use_component_inventory": False,
                        "assembly_on_demand": False,
                    }
                ],
            )
            connection.execute(
                insert(sk),
                [{"id": i, "sku": f"S{i}", "name": "", "kind": "simple"} for i in range(1, 3001)],
            )
            now = datetime(2026, 12, 6, tzinfo=UTC)
            connection.execute(
                insert(ao),
                [
                    {
                        "id": i,
                        "sku_id": i,
                        "warehouse_id": 1,
                        "quantity": i,
                        "origin": "manual",
                        "created_at": now,
                    }
                    for i in (1, 2, 3)
                ],
            )
        with engine.connect() as connection:
            wanted = list(range(2, 3001, 3))  # 1,000 ids, one parameter on PostgreSQL
            found = connection.execute(select(sk.c.id).where(one_of(connection, sk.c.id, wanted)))
            assert sorted(found.scalars()) == wanted
            texts = connection.execute(select(sk.c.id).where(one_of(connection, sk.c.sku, ["S7"])))
            assert list(texts.scalars()) == [7]
            # bigint, text and money columns in one UPDATE (NULL among them)
            update_rows(
                connection,
                ao,
                ("quantity", "lot", "components_cost", "labour_cost"),
                [(1, 10, "L1", 12, None), (3, 30, None, 5, 7)],
            )
            rows = connection.execute(
                select(
                    ao.c.id, ao.c.quantity, ao.c.lot, ao.c.components_cost, ao.c.labour_cost
                ).order_by(ao.c.id)
            ).all()
            assert [tuple(r) for r in rows] == [
                (1, 10, "L1", 12, None),
                (2, 2, None, None, None),
                (3, 30, None, 5, 7),
            ]
            connection.rollback()
            if connection.dialect.name == "postgresql":
                with pytest.raises(DBAPIError):
                    update_rows(connection, ao, ("quantity",), [(1, 1.5)])
    finally:
        engine.dispose()
