"""'Send again' on the orders page in a real browser: a shop order that ShipBob's connector
refused (its address had no street) is sent again once the address is fixed on the shop,
from the button, without a reload; the provider then holds the new request.

The world is tests/e2e/test_shipbob.py's: WooCommerce and ShipBob emulators over loopback,
the real engine, and ``sellable dashboard`` as a subprocess on the same SQLite file."""

# ruff: noqa: F811  (the test takes world, a fixture imported from tests/e2e/test_shipbob.py)

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.dashboard import Dashboard, Shop
from tests.e2e.test_shipbob import SHIPPING, World, world  # noqa: F401  (a fixture)

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_send_again_sends_a_refused_order_once_its_address_is_fixed(
    page: Page, world: World, config_file: Path
) -> None:
    no_street = dict(SHIPPING, address_1=" ", address_2="")
    order_id = world.woo.place_order([("MUG", 1)], shipping=no_street)
    world.run("woo", "orders")
    world.run("sb", "fulfil")
    key = f"woo:{order_id}"
    (refused,) = [o for o in world.cli("orders", "--held", "--json") if o["order_id"] == order_id]
    assert [(f["status"], f["reason"]) for f in refused["fulfilments"]] == [
        ("refused", "the shipping address lacks address1")
    ]
    # The merchant fixes the address on the shop; the next pull brings it.
    world.woo.set_shipping(order_id, SHIPPING)
    world.run("woo", "orders")

    shop = Shop(config_file.parent)
    shop.config = config_file
    with Dashboard(shop) as dashboard:
        page.goto(dashboard.url + "/orders")
        row = page.locator(f'table#fulfilment-attention tr[data-order="{key}"]')
        expect(row.locator('td[data-col="status"]')).to_have_text("refused")
        page.evaluate("window.__notReloaded = true")
        page.screenshot(path=str(config_file.parent / "send-again.png"), full_page=True)
        row.get_by_role("button", name=f"Send again: {key}").click()

        expect(page.locator("#action-result")).to_contain_text(
            f"{key}: request {key} to sb withdrawn (it was refused: the shipping address "
            "lacks address1); sb gets a new one within 1m"
        )
        expect(row).to_have_count(0)
        assert page.evaluate("window.__notReloaded") is True
        page.screenshot(path=str(config_file.parent / "sent-again.png"), full_page=True)

    sent = world.run("sb", "fulfil")
    assert sent[0].counts["sent"] == 1
    (order,) = world.shipbob_orders(f"{key}:2")
    assert order.body["recipient"]["address"]["address1"] == SHIPPING["address_1"]
