"""Regenerate the dashboard's screenshots in ``docs/screenshots/`` (run by
``scripts/screenshots``): the example catalog with costs, orders (shipped, open and held),
reorder points and a build, served by ``sellable dashboard`` and photographed in Debian's
Chromium at 1280 px wide.

Usage::

    python -m tests.browser.screenshots [FOLDER]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import sellable
from tests.browser.dashboard import CHROMIUM_ARGS, ORDERS_HEADER, Dashboard, Shop, chromium_path

PAGES = {
    "stock": "/",
    "sku": "/skus/GIFT-SET-COFFEE",
    "channels": "/channels",
    "orders": "/orders",
    "reorder": "/reorder",
    "money": "/money",
}

STOCK_COSTS = """\
sku,warehouse,on_hand,unit_cost
BEANS-12OZ,main,50,6.50
MUG-CERAMIC,main,30,3.20
SCOOP-WOOD,main,100,0.80
GIFT-SET-COFFEE,main,10,11.00
ABC,main,120,4.00
DEF,main,50,4.50
GHI,main,75,5.00
ALPHABET-BUNDLE,fba-us,8,14.00
COMP-A,main,50,1.00
COMP-B,main,30,1.50
DSLR-CAMERA-BLACK,main,12,520.00
LENS-18-55,main,4,90.00
LENS-18-135,main,3,210.00
CAMERA-BAG,main,20,25.00
"""

LONG_SKU = "ESPRESSO-MACHINE-DELUXE-STAINLESS-STEEL-WITH-MILK-FROTHER-EU-PLUG"

REORDER_POINTS = """\
sku,name,kind,reorder_point,reorder_quantity
MUG-CERAMIC,Ceramic Mug,simple,40,60
BEANS-12OZ,Premium Coffee Beans (12oz),simple,45,100
GIFT-SET-COFFEE,Coffee Lover's Gift Set (assembled),assembly,20,10
LENS-18-55,Standard lens 18-55mm,simple,5,10
"""

ORDERS = (
    ORDERS_HEADER.rstrip("\n")
    + ",unit_price\n"
    + "shop,1001,GIFT-SET-COFFEE,3,main,1,shipped,,29.00\n"
    + "shop,1002,GIFT-KIT-COFFEE,2,main,1,shipped,,27.00\n"
    + "shop,1003,ALPHABET-BUNDLE,4,main,1,shipped,,45.00\n"
    + "shop,1004,MUG-CERAMIC,2,main,1,,,9.00\n"
    + "shop,1005,GIFT-KIT-COFFEE,1,main,1,,,27.00\n"
    + "shop,1006,CAMERA-STARTER-KIT,9,main,1,,,999.00\n"
)


def set_up(folder: Path) -> Shop:
    # The bundled catalog, counted with unit costs so that the money page has values.
    catalog = folder / "catalog"
    catalog.mkdir(parents=True)
    bundled = Path(sellable.__file__).parent / "examples"
    for name in ("products.csv", "components.csv"):
        shutil.copy(bundled / name, catalog / name)
    (catalog / "stock.csv").write_text(STOCK_COSTS)
    shop = Shop.create(folder, examples=catalog)
    shop.import_csv("products", REORDER_POINTS)
    # A long code, to show that SKU cells stay on one line (cut, the whole code in a title).
    shop.import_csv("products", f"sku,name,kind\n{LONG_SKU},Espresso machine,simple\n")
    shop.import_csv("stock", f"sku,warehouse,on_hand,unit_cost\n{LONG_SKU},main,3,310.00\n")
    shop.import_csv("orders", ORDERS)
    shop.run("build", "GIFT-SET-COFFEE", "4", "--warehouse", "main")
    return shop


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path(__file__).parents[2] / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sellable-screenshots-") as folder:
        shop = set_up(Path(folder))
        with Dashboard(shop) as dashboard, sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, path in PAGES.items():
                response = page.goto(dashboard.url + path)
                if response is None or response.status != 200:
                    status = None if response is None else response.status
                    raise SystemExit(f"{path} answered {status}, not 200")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(target / f"{name}.png"), full_page=True)
                print(target / f"{name}.png")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
