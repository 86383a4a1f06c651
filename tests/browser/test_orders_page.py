"""The orders page in a real browser: a held line shows with its reason, and an open page
drops it without a reload once a stock count lets it be allocated."""

from __future__ import annotations

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
