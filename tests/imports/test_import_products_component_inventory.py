"""``import products``' optional ``use_component_inventory`` column: true/false (the
spellings ``allow_backorder`` accepts) or blank (NULL: the warehouse's setting), stored in
``skus.use_component_inventory``; left out of a file, the stored value is kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from sellable.errors import InputError
from sellable.imports import ImportSummary, import_products
from sellable.store import schema
from tests.imports import Store, open_store, rejected

HEADER = "sku,name,kind,use_component_inventory\n"


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    opened = open_store(config_file)
    yield opened
    opened.engine.dispose()


def stored(store: Store) -> dict[str, bool | None]:
    s = schema.skus.c
    with store.engine.connect() as connection:
        return {
            sku: value
            for sku, value in connection.execute(select(s.sku, s.use_component_inventory))
        }


SPELLINGS = {
    "true": True,
    "TRUE": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "No": False,
    "n": False,
    "0": False,
    "": None,
}


def test_each_spelling_is_stored_and_blank_is_null(store: Store) -> None:
    rows = "".join(f"KIT-{i},Kit,kit,{value}\n" for i, value in enumerate(SPELLINGS))
    path = store.csv("products.csv", HEADER + rows)

    assert import_products(store.engine, path) == ImportSummary(str(path), 10, 10, 0, 0)
    found = stored(store)
    assert {value: found[f"KIT-{i}"] for i, value in enumerate(SPELLINGS)} == SPELLINGS


def test_a_change_is_an_update_and_the_same_value_is_unchanged(store: Store) -> None:
    first = store.csv("products.csv", HEADER + "KIT,Kit,kit,false\nSET,Set,assembly,\n")
    import_products(store.engine, first)

    again = store.csv("again.csv", HEADER + "KIT,Kit,kit,false\nSET,Set,assembly,true\n")
    assert import_products(store.engine, again) == ImportSummary(str(again), 2, 0, 1, 1)
    assert stored(store) == {"KIT": False, "SET": True}

    cleared = store.csv("cleared.csv", HEADER + "KIT,Kit,kit,\nSET,Set,assembly,true\n")
    assert import_products(store.engine, cleared) == ImportSummary(str(cleared), 2, 0, 1, 1)
    assert stored(store) == {"KIT": None, "SET": True}


def test_a_file_without_the_column_keeps_the_stored_value(store: Store) -> None:
    import_products(store.engine, store.csv("products.csv", HEADER + "KIT,Kit,kit,false\n"))

    renamed = store.csv("renamed.csv", "sku,name,kind\nKIT,Gift kit,kit\n")

    assert import_products(store.engine, renamed) == ImportSummary(str(renamed), 1, 0, 1, 0)
    assert stored(store) == {"KIT": False}


def test_a_bad_value_names_file_line_and_column_and_writes_nothing(store: Store) -> None:
    path = store.csv("products.csv", HEADER + "KIT,Kit,kit,false\nSET,Set,assembly,maybe\n")

    with pytest.raises(InputError) as caught:
        import_products(store.engine, path)

    assert str(caught.value) == rejected(
        path,
        f"{path} line 3, column 'use_component_inventory': must be true or false (value 'maybe')",
    )
    assert stored(store) == {}
