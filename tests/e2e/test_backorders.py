"""The ``backorders`` channel rule end to end: the daemon's SyncEngine against the
WooCommerce and Shopify emulators over loopback HTTP.

``BO`` allows orders exceeding stock and has none; ``PLAIN`` does not and has 4. With
``"continue"`` the channel is asked to keep selling ``BO`` at 0 (and a customer can then
order it), the flag goes off again when the SKU stops allowing it or the rule goes off, and
a number offers at least that many.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sellable.config import load_settings
from sellable.emulators import ManualClock
from sellable.emulators.shopify import ShopifyEmulator
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.imports import import_products, import_stock
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.status import channel_status
from tests.cli.test_cli_commands import invoke
from tests.imports import Store, open_store

PRODUCTS = "sku,name,kind,allow_backorder\nBO,Made to order,simple,{bo}\nPLAIN,Plain,simple,false\n"
STOCK = "sku,warehouse,on_hand,locked\nBO,main,0,0\nPLAIN,main,4,0\n"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Channel:
    """One emulated shop: how to read its keep-selling flag and quantities, and order."""

    code: str
    connector: str
    shop: Any
    flag: Callable[[str], bool]
    clock: ManualClock

    def shown(self) -> dict[str, int]:
        found: dict[str, int] = self.shop.quantities()
        return {sku: found[sku] for sku in ("BO", "PLAIN")}

    def flags(self) -> dict[str, bool]:
        return {sku: self.flag(sku) for sku in ("BO", "PLAIN")}


@dataclass
class Harness:
    store: Store
    config: Path
    channel: Channel
    base: str
    engines: list[SyncEngine] = field(default_factory=list)

    def engine(self, rule: str) -> SyncEngine:
        """A daemon whose channel has ``backorders = rule`` (the configuration changed)."""
        settings = self.channel.shop.connector_settings()
        self.config.write_text(
            self.base
            + f'\n[[channels]]\ncode = "{self.channel.code}"\n'
            + f'connector = "{self.channel.connector}"\nwarehouses = ["main"]\n'
            + f"backorders = {rule}\n[channels.settings]\n"
            + "".join(f'{key} = "{value}"\n' for key, value in settings.items())
        )
        clock = self.channel.clock
        engine = SyncEngine(
            self.store.engine,
            load_settings(self.config),
            http_options={"clock": clock.monotonic, "sleep": clock.advance, "backoff_base": 0.0},
            now=clock.now,
        )
        self.engines.append(engine)
        return engine

    def run(self, engine: SyncEngine, job: str) -> JobResult:
        result = engine.run_job(self.channel.code, job)
        assert result.ok, result.error
        return result

    def run_once(self, engine: SyncEngine) -> dict[str, JobResult]:
        results = {r.job: r for r in engine.run_once()}
        assert all(r.ok for r in results.values()), {j: r.error for j, r in results.items()}
        return results

    def allow_backorder(self, allowed: bool) -> None:
        products = self.store.csv("bo.csv", PRODUCTS.format(bo=str(allowed).lower()))
        import_products(self.store.engine, products)


def woocommerce(clock: ManualClock) -> Channel:
    shop = WooCommerceEmulator(clock=clock).start()
    assert isinstance(shop, WooCommerceEmulator)
    ids = {sku: int(shop.add_listing(sku, 0)) for sku in ("BO", "PLAIN")}
    return Channel(
        "woo", "woocommerce", shop, lambda sku: shop.products[ids[sku]].backorders != "no", clock
    )


def shopify(clock: ManualClock) -> Channel:
    shop = ShopifyEmulator(clock=clock).start()
    assert isinstance(shop, ShopifyEmulator)
    for sku in ("BO", "PLAIN"):
        shop.add_listing(sku, 0)
    return Channel(
        "shopify",
        "shopify",
        shop,
        lambda sku: shop.variant_by_sku(sku).inventory_policy == "CONTINUE",
        clock,
    )


@pytest.fixture
def open_harness(
    config_file: Path,
) -> Iterator[Callable[[Callable[[ManualClock], Channel]], Harness]]:
    opened: list[Harness] = []

    def open_(make: Callable[[ManualClock], Channel]) -> Harness:
        base = config_file.read_text()
        store = open_store(config_file)
        import_products(store.engine, store.csv("p.csv", PRODUCTS.format(bo="true")))
        import_stock(store.engine, store.settings, store.csv("s.csv", STOCK))
        channel = make(ManualClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC)))
        harness = Harness(store, config_file, channel, base)
        opened.append(harness)
        return harness

    yield open_
    for harness in opened:
        for engine in harness.engines:
            engine.close()
        harness.channel.shop.stop()
        harness.store.engine.dispose()


CHANNELS = [pytest.param(woocommerce, id="woocommerce"), pytest.param(shopify, id="shopify")]


@SQLITE_ONLY
@pytest.mark.parametrize("make", CHANNELS)
def test_backorders_continue_keeps_an_oversold_listing_on_sale_and_goes_off_again(
    open_harness: Callable[[Callable[[ManualClock], Channel]], Harness],
    make: Callable[[ManualClock], Channel],
) -> None:
    h = open_harness(make)
    shop = h.channel

    off = h.engine('"off"')
    assert h.run_once(off)["reconcile"].counts["pushed"] == 2
    assert (shop.shown(), shop.flags()) == ({"BO": 0, "PLAIN": 4}, {"BO": False, "PLAIN": False})
    with pytest.raises(ValueError, match="BO"):
        shop.shop.place_order([("BO", 1)])

    # Pushed 0 without the flag, now wanted at 0 with it: pushed again for the flag alone.
    keep = h.engine('"continue"')
    assert [s["pending_pushes"] for s in channel_status(keep)] == [1]
    assert h.run(keep, "push").counts == {
        "listings": 2,
        "pending": 1,
        "pushed": 1,
        "failed": 0,
        "retry": 0,
    }
    assert (shop.shown(), shop.flags()) == ({"BO": 0, "PLAIN": 4}, {"BO": True, "PLAIN": False})
    assert h.run(keep, "push").counts["pending"] == 0

    # The customer orders 3 it does not have: the channel takes it, and then shows 0 again.
    shop.shop.place_order([("BO", 3)])
    assert shop.shown() == {"BO": -3, "PLAIN": 4}
    h.run_once(keep)
    assert (shop.shown(), shop.flags()) == ({"BO": 0, "PLAIN": 4}, {"BO": True, "PLAIN": False})
    with pytest.raises(ValueError, match="PLAIN"):
        shop.shop.place_order([("PLAIN", 5)])

    # BO stops allowing orders exceeding stock: the flag goes off.
    h.allow_backorder(False)
    assert h.run(keep, "push").counts["pushed"] == 1
    assert shop.flags() == {"BO": False, "PLAIN": False}
    h.allow_backorder(True)
    h.run(keep, "push")
    assert shop.flags() == {"BO": True, "PLAIN": False}

    # The rule goes off: the flag we set is taken back.
    off_again = h.engine('"off"')
    assert h.run(off_again, "push").counts["pushed"] == 1
    assert (shop.shown(), shop.flags()) == ({"BO": 0, "PLAIN": 4}, {"BO": False, "PLAIN": False})

    # A number offers at least that many, without the flag.
    at_least = h.engine("5")
    h.run(at_least, "push")
    assert (shop.shown(), shop.flags()) == ({"BO": 5, "PLAIN": 4}, {"BO": False, "PLAIN": False})


@pytest.mark.parametrize("make", [pytest.param(woocommerce, id="woocommerce")])
def test_backorders_flag_record_survives_a_listing_refresh(
    open_harness: Callable[[Callable[[ManualClock], Channel]], Harness],
    make: Callable[[ManualClock], Channel],
) -> None:
    """On SQLite and PostgreSQL: the push record's flag is kept across listing refreshes,
    so that turning the rule off still takes the flag back."""
    h = open_harness(make)
    keep = h.engine('"continue"')
    h.run_once(keep)
    assert h.channel.flags() == {"BO": True, "PLAIN": False}
    h.run(keep, "listings")
    assert h.run(keep, "push").counts["pending"] == 0

    off = h.engine('"off"')
    h.run(off, "listings")
    assert h.run(off, "push").counts["pushed"] == 1
    assert h.channel.flags() == {"BO": False, "PLAIN": False}


@SQLITE_ONLY
@pytest.mark.parametrize("make", [pytest.param(woocommerce, id="woocommerce")])
def test_explain_channel_shows_which_backorders_rule_applied(
    open_harness: Callable[[Callable[[ManualClock], Channel]], Harness],
    make: Callable[[ManualClock], Channel],
) -> None:
    h = open_harness(make)
    h.run_once(h.engine('"continue"'))

    as_json = invoke("explain", "BO", "--channel", "woo", "--json", "--config", h.config)
    text = invoke("explain", "BO", "--channel", "woo", "--config", h.config)
    plain = invoke("explain", "PLAIN", "--channel", "woo", "--json", "--config", h.config)

    assert (as_json.exit_code, text.exit_code, plain.exit_code) == (0, 0, 0)
    (entry,) = json.loads(as_json.stdout)["listings"]
    assert entry["rules"] == [
        {"rule": "sellable over the channel's warehouses", "quantity": 0},
        {
            "rule": "backorders continue: keep selling at 0 (WooCommerce backorders=notify)",
            "quantity": 0,
        },
    ]
    assert (entry["quantity"], entry["backorders"]) == (0, True)
    assert (entry["last_pushed"], entry["last_backorders"], entry["in_step"]) == (0, True, True)
    lines = text.stdout.splitlines()
    assert f"    {'=> offered to the channel':<44} {0:>8}" in lines
    assert "    => and the channel keeps selling at 0" in lines
    assert any(
        line.startswith("    last confirmed by the channel: 0 (keep selling at 0) at ")
        for line in lines
    )
    (other,) = json.loads(plain.stdout)["listings"]
    assert other["rules"][-1] == {
        "rule": "backorders continue: not applied (no orders exceeding stock allowed)",
        "quantity": 4,
    }
    assert (other["quantity"], other["backorders"], other["in_step"]) == (4, False, True)

    h.engine("5")
    at_least = invoke("explain", "BO", "--channel", "woo", "--json", "--config", h.config)
    (entry,) = json.loads(at_least.stdout)["listings"]
    assert entry["rules"][-1] == {"rule": "backorders 5: offer at least 5", "quantity": 5}
    assert (entry["quantity"], entry["backorders"], entry["in_step"]) == (5, False, False)
