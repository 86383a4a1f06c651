"""The reorder page in a real browser: the Build action (by mouse and by keyboard alone)
changes the figures on every open page without a reload and writes the ledger; a component
below its reorder point is listed with its days of cover."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.dashboard import ORDERS_HEADER, Dashboard, Shop

PRODUCTS_HEADER = "sku,name,kind,reorder_point,reorder_quantity\n"


def row(page: Page, table: str, sku: str, warehouse: str) -> Locator:
    return page.locator(f'table#{table} tr[data-sku="{sku}"][data-warehouse="{warehouse}"]')


def cell(row: Locator, column: str) -> Locator:
    return row.locator(f'td[data-col="{column}"]')


def test_build_changes_every_open_page_without_reload_and_writes_the_ledger(
    context: BrowserContext, shop: Shop
) -> None:
    shop.import_csv(
        "products", PRODUCTS_HEADER + "GIFT-SET-COFFEE,Coffee Lover's Gift Set,assembly,20,10\n"
    )
    with Dashboard(shop) as dashboard:
        stock = context.new_page()
        stock.goto(dashboard.url + "/")
        set_row = row(stock, "stock", "GIFT-SET-COFFEE", "main")
        kit_row = row(stock, "stock", "GIFT-KIT-COFFEE", "main")
        mug_row = row(stock, "stock", "MUG-CERAMIC", "main")
        expect(cell(set_row, "on_hand")).to_have_text("10")
        expect(cell(set_row, "assemblable")).to_have_text("30")
        expect(cell(kit_row, "sellable")).to_have_text("30")
        expect(cell(mug_row, "on_hand")).to_have_text("30")
        stock.evaluate("window.__notReloaded = true")

        reorder = context.new_page()
        reorder.goto(dashboard.url + "/reorder")
        build_row = row(reorder, "to-build", "GIFT-SET-COFFEE", "main")
        expect(cell(build_row, "buildable")).to_have_text("30")
        expect(cell(build_row, "to_reorder_point")).to_have_text("10")  # point 20, has 10
        reorder.evaluate("window.__notReloaded = true")
        build_row.get_by_label("Quantity of GIFT-SET-COFFEE to build in main").fill("5")
        build_row.get_by_role("button", name="Build").click()

        expect(cell(build_row, "buildable")).to_have_text("25")
        expect(cell(build_row, "to_reorder_point")).to_have_text("5")
        # The other tab, never reloaded: 5 more assembled, 5 fewer mugs, same sellable.
        expect(cell(set_row, "on_hand")).to_have_text("15")
        expect(cell(set_row, "assemblable")).to_have_text("25")
        expect(cell(set_row, "sellable")).to_have_text("40")
        expect(cell(kit_row, "sellable")).to_have_text("25")
        expect(cell(mug_row, "on_hand")).to_have_text("25")
        assert stock.evaluate("window.__notReloaded") is True
        assert reorder.evaluate("window.__notReloaded") is True

    built = [m for m in shop.json("ledger", "GIFT-SET-COFFEE") if m["type"] == "AssemblyBuild"]
    assert [(m["warehouse"], m["quantity"], m["balance"]) for m in built] == [("main", 5, 15)]
    mugs = [m for m in shop.json("ledger", "MUG-CERAMIC") if m["type"] == "AssemblyBuild"]
    assert [(m["warehouse"], m["quantity"], m["balance"]) for m in mugs] == [("main", -5, 25)]


def test_build_larger_than_possible_is_refused_on_the_page(page: Page, shop: Shop) -> None:
    with Dashboard(shop) as dashboard:
        page.goto(dashboard.url + "/reorder")
        build_row = row(page, "to-build", "GIFT-SET-COFFEE", "main")
        expect(cell(build_row, "buildable")).to_have_text("30")
        build_row.get_by_label("Quantity of GIFT-SET-COFFEE to build in main").fill("31")
        with page.expect_response(lambda r: r.url.endswith("/actions/build")) as answer:
            build_row.get_by_role("button", name="Build").click()
        assert answer.value.status == 409, answer.value.text()
        expect(page.locator("p[role=alert]")).to_be_visible()
        expect(cell(build_row, "buildable")).to_have_text("30")
    assert shop.position("GIFT-SET-COFFEE", "main")["prepackaged"]["on_hand"] == 10
    assert [m for m in shop.json("ledger", "GIFT-SET-COFFEE") if m["type"] == "AssemblyBuild"] == []


def test_build_works_by_keyboard_alone(page: Page, shop: Shop) -> None:
    with Dashboard(shop) as dashboard:
        page.goto(dashboard.url + "/reorder")
        build_row = row(page, "to-build", "GIFT-SET-COFFEE", "main")
        quantity = build_row.locator('input[name="quantity"]')
        button = build_row.get_by_role("button", name="Build")
        for _ in range(80):
            page.keyboard.press("Tab")
            if quantity.evaluate("element => element === document.activeElement"):
                break
        else:
            raise AssertionError("Tab never reached the quantity of GIFT-SET-COFFEE in main")
        page.keyboard.press("Control+A")
        page.keyboard.type("2")
        page.keyboard.press("Tab")
        expect(button).to_be_focused()
        page.keyboard.press("Enter")
        expect(cell(build_row, "available")).to_have_text("12")
        expect(cell(build_row, "buildable")).to_have_text("28")
    assert shop.position("GIFT-SET-COFFEE", "main")["prepackaged"]["on_hand"] == 12


def test_reorder_lists_a_component_below_its_point_with_its_days_of_cover(
    page: Page, shop: Shop
) -> None:
    shop.import_csv(
        "products",
        PRODUCTS_HEADER + "MUG-CERAMIC,Ceramic Mug,simple,40,60\n"
        "SCOOP-WOOD,Wooden Scoop,simple,50,100\n",
    )
    shop.import_csv(
        "orders",
        ORDERS_HEADER + "shop,2001,MUG-CERAMIC,6,main,1,shipped,\n"
        "shop,2002,GIFT-KIT-COFFEE,4,main,1,shipped,\n"
        "shop,2003,MUG-CERAMIC,3,main,1,,\n",
    )
    shop.run("build", "GIFT-SET-COFFEE", "5", "--warehouse", "main")
    # Mugs used in the last 30 days, by hand: 6 sold + 4 inside kits sold + 3 on an open
    # order + 5 built into gift sets = 18. Available: 30 - 6 - 4 - 5 on hand, 3 allocated
    # = 12. Days of cover: 12 / (18 / 30) = 20.0.
    mug = shop.position("MUG-CERAMIC", "main")["prepackaged"]
    assert (mug["on_hand"], mug["allocated"], mug["available"]) == (15, 3, 12)

    with Dashboard(shop) as dashboard:
        page.goto(dashboard.url + "/reorder")
        listed = row(page, "reorder", "MUG-CERAMIC", "main")
        expect(cell(listed, "available")).to_have_text("12")
        expect(cell(listed, "reorder_point")).to_have_text("40")
        expect(cell(listed, "consumed_30_days")).to_have_text("18")
        expect(cell(listed, "days_of_cover")).to_have_text("20.0")
        # 100 - 4 - 5 = 91 scoops: above their point of 50, not listed.
        expect(row(page, "reorder", "SCOOP-WOOD", "main")).to_have_count(0)
        expect(row(page, "reorder", "BEANS-12OZ", "main")).to_have_count(0)
