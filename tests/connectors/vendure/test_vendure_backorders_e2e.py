"""``backorders = "continue"`` against a real Vendure 3.7.3 (see test_vendure_e2e.py for the
seed): the variant's own ``outOfStockThreshold`` goes to minus ``backorder_limit`` so that
an oversold SKU stays purchasable, and back to 0 when the rule goes off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sellable.config import load_settings
from sellable.imports import import_products, import_stock
from sellable.sync.engine import SyncEngine
from tests.connectors.vendure.test_vendure_e2e import book, by_job
from tests.connectors.vendure.vendure_server import SYNC_USER, VendureServer, running_vendure
from tests.imports import EXAMPLES, WAREHOUSES_TOML, open_store


@pytest.fixture(scope="module")
def vendure(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VendureServer]:
    with running_vendure(postgres_server, tmp_path_factory.mktemp("vendure")) as server:
        yield server


def threshold(server: VendureServer, sku: str) -> tuple[int, bool]:
    """(outOfStockThreshold, useGlobalOutOfStockThreshold) of ``sku``'s variant."""
    variant = server.admin(
        "query($id: ID!) { productVariant(id: $id) { outOfStockThreshold "
        "useGlobalOutOfStockThreshold } }",
        {"id": server.variant_ids[sku]},
    )["productVariant"]
    return variant["outOfStockThreshold"], variant["useGlobalOutOfStockThreshold"]


def write_config(path: Path, server: VendureServer, rule: str) -> None:
    user, password = SYNC_USER
    path.write_text(
        f'[database]\nurl = "sqlite:///{path.parent / "sellable.db"}"\n{WAREHOUSES_TOML}'
        '\n[[channels]]\ncode = "vendure"\nconnector = "vendure"\nwarehouses = ["main"]\n'
        f"backorders = {rule}\n"
        f'[channels.settings]\nadmin_api_url = "{server.admin_api_url}"\n'
        f'username = "{user}"\npassword = "{password}"\nbackorder_limit = 100\n'
    )


def test_vendure_backorders_continue_keeps_an_oversold_variant_on_sale(
    tmp_path: Path, vendure: VendureServer
) -> None:
    config = tmp_path / "sellable.toml"
    write_config(config, vendure, '"continue"')
    store = open_store(config)
    store.load_examples()
    # BEANS-12OZ now allows orders exceeding stock, and none is left in main.
    products = (EXAMPLES / "products.csv").read_text()
    products = products.replace(
        "BEANS-12OZ,Premium Coffee Beans (12oz),simple,false",
        "BEANS-12OZ,Premium Coffee Beans (12oz),simple,true",
    )
    import_products(store.engine, store.csv("products.csv", products))
    import_stock(
        store.engine,
        store.settings,
        store.csv("stock.csv", "sku,warehouse,on_hand,locked\nBEANS-12OZ,main,0,0\n"),
    )
    engines: list[SyncEngine] = []

    def engine() -> SyncEngine:
        made = SyncEngine(store.engine, load_settings(config))
        engines.append(made)
        return made

    try:
        keep = engine()
        by_job(keep.run_once())
        # Sellable offers 0 and asks Vendure to keep selling: its own threshold -100,
        # nothing made up for in stockOnHand, 100 in a cart. MUG keeps its threshold 2.
        assert (threshold(vendure, "BEANS-12OZ"), vendure.stock("BEANS-12OZ")) == (
            (-100, False),
            (0, 0),
        )
        assert vendure.saleable("BEANS-12OZ") == 100
        assert (threshold(vendure, "MUG-CERAMIC"), vendure.stock("MUG-CERAMIC")) == (
            (2, False),
            (32, 0),
        )

        placed = vendure.place_order([("BEANS-12OZ", 3)], "bo@example.com")
        results = by_job(keep.run_once())
        assert book(store) == {placed["code"]: ("open", [("BEANS-12OZ", 3, "allocated")])}
        # Vendure's allocation shows as 0 - 3 read back: pushed again, at 0 with the flag
        assert (results["reconcile"].counts["drifted"], results["reconcile"].counts["pushed"]) == (
            1,
            1,
        )
        # Ours: 0 on hand, 3 backordered, sellable 0: stockOnHand = 0 + 3 allocated.
        assert vendure.stock("BEANS-12OZ") == (3, 3)
        assert vendure.saleable("BEANS-12OZ") == 100

        write_config(config, vendure, '"off"')
        off = engine()
        assert by_job([off.run_job("vendure", "push")])["push"].counts["pushed"] == 1
        assert (threshold(vendure, "BEANS-12OZ"), vendure.stock("BEANS-12OZ")) == (
            (0, False),
            (3, 3),
        )
        assert vendure.saleable("BEANS-12OZ") == 0
    finally:
        for made in engines:
            made.close()
        store.engine.dispose()
