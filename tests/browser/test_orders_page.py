"""The orders page in a real browser: a held line shows with its reason, and an open page
drops it without a reload once a stock count lets it be allocated."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.dashboard import ORDERS_HEADER, Dashboard, Shop

REASON = "short 5 × MUG-CERAMIC in main (have 30, need 35)"


def test_held_order_shows_its_reason_and_goes_after_a_stock_count(page: Page, shop: Shop) -> None:
    # 35 coffee kits need 35 mugs; main has 30: the line is held.
    imported = shop.import_csv("orders", ORDERS_HEADER + "shop,1001,GIFT-KIT-COFFEE,35,main,1,,\n")
    assert imported["lines_held"] == 1, imported
    held = shop.json("orders", "--held")
    assert [line["hold_reason"] for order in held for line in order["lines"]] == [REASON]

    with Dashboard(shop) as dashboard:
        page.goto(dashboard.url + "/orders")
        row = page.locator('table#held tr[data-order="shop:1001"][data-line="1"]')
        expect(row).to_have_count(1)
        expect(row.locator('td[data-col="reason"]')).to_have_text(REASON)
        expect(page.locator('table#open-orders tr[data-order="shop:1001"]')).to_have_count(1)
        page.evaluate("window.__notReloaded = true")

        # A count of 60 mugs releases the line (held lines are served first).
        shop.import_csv("stock", "sku,warehouse,on_hand\nMUG-CERAMIC,main,60\n")
        assert shop.json("orders", "--held") == []

        expect(row).to_have_count(0)
        expect(page.locator("table#held")).to_contain_text("No held lines.")
        line = page.locator('table#open-orders tr[data-order="shop:1001"][data-line="1"]')
        expect(line.locator('td[data-col="status"]')).to_have_text("allocated")
        assert page.evaluate("window.__notReloaded") is True


SHIPBOB = """
[[warehouses]]
code = "sb-chicago"
kind = "3pl"
use_component_inventory = true

[[channels]]
code = "sb"
connector = "shipbob"
warehouses = ["sb-chicago"]
[channels.settings]
base_url = "http://127.0.0.1:9"
token = "not-used"
channel_id = 1
locations = { "sb-chicago" = 10 }
"""


def test_an_order_for_a_fulfilment_centre_without_an_address_waits_on_the_page(
    page: Page, tmp_path: Path
) -> None:
    # An order imported by CSV carries no shipping address: ShipBob cannot be sent it.
    shop = Shop.create(tmp_path / "shop", SHIPBOB)
    shop.import_csv("stock", "sku,warehouse,on_hand\nMUG-CERAMIC,sb-chicago,10\n")
    shop.import_csv("orders", ORDERS_HEADER + "shop,2001,MUG-CERAMIC,2,sb-chicago,1,,\n")
    held = shop.json("orders", "--held")
    assert [(o["order_id"], [f["status"] for f in o["fulfilments"]]) for o in held] == [
        ("2001", ["no_address"])
    ]

    with Dashboard(shop) as dashboard:
        page.goto(dashboard.url + "/orders")
        row = page.locator('table#fulfilment-attention tr[data-order="shop:2001"]')
        expect(row).to_have_count(1)
        expect(row.locator('td[data-col="channel"]')).to_have_text("sb")
        expect(row.locator('td[data-col="status"]')).to_have_text("no address")
        expect(row.locator('td[data-col="reason"]')).to_have_text(
            "no shipping address: cannot be sent to sb"
        )
        expect(page.locator("table#held")).to_contain_text("No held lines.")
        line = page.locator('table#open-orders tr[data-order="shop:2001"]')
        expect(line.locator('td[data-col="fulfilment"]')).to_have_text("sb no_address")
