"""The store on SQLite and PostgreSQL: schema, imports, ledger invariant, loading into the core."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from sellable.config import load_settings
from sellable.imports import import_components, import_products, import_stock
from sellable.store.db import create_db_engine, upgrade_schema
from sellable.store.loader import load_engine

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_store_examples_import_and_load(
    config_file: Path, tmp_path: Path, ledger_check: Callable[[Engine], None]
) -> None:
    settings = load_settings(config_file)
    engine = create_db_engine(settings)
    upgrade_schema(engine)
    import_products(engine, EXAMPLES / "products.csv")
    import_components(engine, EXAMPLES / "components.csv")
    summary = import_stock(engine, settings, EXAMPLES / "stock.csv")
    assert summary.movements == 14
    with engine.connect() as connection:
        core = load_engine(connection, settings)
    assert core.sellable("GIFT-SET-COFFEE", "main") == 40
    assert core.sellable("GIFT-KIT-COFFEE", "main") == 30
    assert core.sellable("ALPHABET-BUNDLE", "main") == 50
    assert core.sellable("ALPHABET-BUNDLE", "fba-us") == 8
    assert core.sellable("CAMERA-STARTER-KIT", "main") == 7
    # A recount writes only the differences, and the ledger still explains every row.
    recount = tmp_path / "recount.csv"
    recount.write_text("sku,warehouse,on_hand\nMUG-CERAMIC,main,29\nBEANS-12OZ,main,50\n")
    again = import_stock(engine, settings, recount)
    assert (again.updated, again.unchanged, again.movements) == (1, 1, 1)
    ledger_check(engine)
    with engine.connect() as connection:
        core = load_engine(connection, settings)
    assert core.sellable("GIFT-SET-COFFEE", "main") == 39
    engine.dispose()
