"""Long SKU codes stay on one line in the tables (never broken mid-code): cut with an
ellipsis, the whole code in the cell's title and the link. Money links look like links and
show their focus. Measured in the browser, where wrapping happens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.dashboard import ORDERS_HEADER, Dashboard, Shop

LONG = "ESPRESSO-MACHINE-DELUXE-STAINLESS-STEEL-WITH-MILK-FROTHER-EU-PLUG-2026"
LONG_KIT = "BARISTA-STARTER-BUNDLE-WITH-GRINDER-AND-TAMPER-AND-CLEANING-SET-XL"


@pytest.fixture(scope="module")
def long_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    shop = Shop.create(tmp_path_factory.mktemp("long-skus"))
    shop.import_csv(
        "products",
        f"sku,name,kind\n{LONG},Espresso machine,simple\n{LONG_KIT},Barista bundle,kit\n",
    )
    shop.import_csv(
        "components",
        f"parent_sku,component_sku,quantity\n{LONG_KIT},{LONG},1\n{LONG_KIT},MUG-CERAMIC,1\n",
    )
    shop.import_csv("stock", f"sku,warehouse,on_hand\n{LONG},main,1\n")
    # Three bundles with one machine: held, bottleneck the long code.
    shop.import_csv(
        "orders",
        ORDERS_HEADER
        + f"shop,7001,{LONG_KIT},3,main,1,open,\n"
        + "shop,7002,GIFT-SET-COFFEE,1,main,1,shipped,\n",
    )
    return shop


@pytest.fixture(scope="module")
def long_dashboard(long_shop: Shop) -> Iterator[Dashboard]:
    with Dashboard(long_shop) as running:
        yield running


def box(cell: Locator) -> dict[str, Any]:
    """How the cell lays its code out: the lines its text takes (distinct line tops of the
    text's boxes), whether it is cut, its title and the styles that do it."""
    found: dict[str, Any] = cell.evaluate(
        """(el) => {
            const style = getComputedStyle(el);
            const range = document.createRange();
            range.selectNodeContents(el);
            const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            return {lines: tops.size,
                    clipped: el.scrollWidth > el.clientWidth,
                    title: el.getAttribute('title'),
                    overflow: style.textOverflow, wrap: style.whiteSpace};
        }"""
    )
    return found


def assert_one_line(cell: Locator, code: str) -> None:
    found = box(cell)
    assert found["wrap"] == "nowrap", found
    assert found["overflow"] == "ellipsis", found
    assert found["lines"] == 1, found  # never broken mid-code
    assert found["clipped"] is True, found  # longer than the cell: cut with the ellipsis
    assert found["title"] == code, found


def test_long_sku_codes_stay_on_one_line_in_the_stock_table(
    page: Page, long_dashboard: Dashboard
) -> None:
    page.goto(long_dashboard.url + "/?q=espresso")
    row = page.locator(f'table#stock tr[data-sku="{LONG}"][data-warehouse="main"]')
    expect(row).to_have_count(1)
    assert_one_line(row.locator('td[data-col="sku"]'), LONG)
    link = row.locator('td[data-col="sku"] a')
    expect(link).to_have_attribute("href", f"/skus/{LONG}")

    page.goto(long_dashboard.url + "/?q=barista")
    kit = page.locator(f'table#stock tr[data-sku="{LONG_KIT}"][data-warehouse="main"]')
    assert_one_line(kit.locator('td[data-col="sku"]'), LONG_KIT)
    assert_one_line(kit.locator('td[data-col="bottleneck"]'), LONG)


def test_long_sku_codes_stay_on_one_line_on_the_orders_page(
    page: Page, long_dashboard: Dashboard
) -> None:
    page.goto(long_dashboard.url + "/orders")
    held = page.locator('table#held tr[data-order="shop:7001"]')
    expect(held).to_have_count(1)
    assert_one_line(held.locator('td[data-col="sku"]'), LONG_KIT)
    expect(held.locator('td[data-col="release"]')).to_have_text(
        f"needs 2 more {LONG} in main (1 available to it, 3 needed)"
    )


def test_money_links_look_like_links_and_show_their_focus(
    page: Page, long_dashboard: Dashboard
) -> None:
    page.goto(long_dashboard.url + "/money")
    link = page.locator('table#margin-kits tr[data-sku="GIFT-SET-COFFEE"] a')
    expect(link).to_have_count(1)
    expect(
        page.locator('table#margin-kits tr[data-sku="GIFT-SET-COFFEE"] td[data-col="kind"]')
    ).to_have_text("assembly")
    style = link.evaluate(
        "(el) => { const s = getComputedStyle(el); return [s.color, s.textDecorationLine]; }"
    )
    assert style == ["rgb(31, 95, 191)", "underline"]  # the accent, not the heading's black
    # Reached with the keyboard, it shows a visible outline.
    for _ in range(40):
        page.keyboard.press("Tab")
        if link.evaluate("(el) => el === document.activeElement"):
            break
    else:
        raise AssertionError("the margin link is not reachable with Tab")
    outline = link.evaluate(
        "(el) => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline == ["solid", "3px"]
