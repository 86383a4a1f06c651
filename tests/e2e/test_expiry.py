"""Issue 12: an expired lot is not sellable and drops out of what the channel shows. The
daemon's SyncEngine against the WooCommerce emulator over loopback HTTP.

MILK has 4 units of lot SOUR (past its date when received) and 3 of FRESH: the channel is
shown 3. When FRESH's date passes (the sweep a date change runs), the next push shows 0,
and the emulated shop refuses an order.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sellable.config import load_settings
from sellable.costing.moves import expire_lots
from sellable.emulators import ManualClock
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.imports import import_products
from sellable.imports.costing import import_receipts
from sellable.orders import OrderBook
from sellable.sync.engine import SyncEngine
from tests.imports import open_store

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_expired_units_drop_out_of_the_pushed_quantity(config_file: Path) -> None:
    store = open_store(config_file)
    clock = ManualClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    shop = WooCommerceEmulator(clock=clock).start()
    assert isinstance(shop, WooCommerceEmulator)
    engine: SyncEngine | None = None
    try:
        shop.add_listing("MILK", 0)
        import_products(store.engine, store.csv("p.csv", "sku,name,kind\nMILK,Milk,simple\n"))
        receipts = store.csv(
            "r.csv",
            "sku,warehouse,quantity,unit_cost,lot,expires_on\n"
            "MILK,main,4,1,SOUR,2020-01-01\n"
            "MILK,main,3,1,FRESH,2099-01-01\n",
        )
        import_receipts(OrderBook(store.engine, store.settings), store.settings, receipts)
        settings = shop.connector_settings()
        config_file.write_text(
            config_file.read_text()
            + '\n[[channels]]\ncode = "woo"\nconnector = "woocommerce"\nwarehouses = ["main"]\n'
            + "[channels.settings]\n"
            + "".join(f'{key} = "{value}"\n' for key, value in settings.items())
        )
        engine = SyncEngine(
            store.engine,
            load_settings(config_file),
            http_options={"clock": clock.monotonic, "sleep": clock.advance, "backoff_base": 0.0},
            now=clock.now,
        )
        results = {r.job: r for r in engine.run_once()}
        assert all(r.ok for r in results.values()), {j: r.error for j, r in results.items()}
        assert shop.quantities()["MILK"] == 3

        # FRESH's date passes: what a date change does in the daemon (another process here).
        assert len(expire_lots(store.engine, date(2099, 1, 2))) == 1  # MILK in main
        result = engine.run_job("woo", "push")
        assert result.ok, result.error
        assert result.counts["pushed"] == 1
        assert shop.quantities()["MILK"] == 0
        with pytest.raises(ValueError, match="MILK"):
            shop.place_order([("MILK", 1)])
    finally:
        if engine is not None:
            engine.close()
        shop.stop()
        store.engine.dispose()
