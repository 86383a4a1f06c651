"""``sellable demo``: the whole product on one machine, in the foreground.

It starts the channel emulators that have an installed connector, writes a configuration
with an SQLite database in a working folder, imports the example catalog (the seeds' coffee
gift set as an assembly with assembly-on-demand and as a virtual kit, shared components, an
FBA bundle), lists the catalog on every channel, and then runs sync passes — the very jobs
the daemon schedules (listings, stock, orders, reconcile and push) — while simulated
customers order on the emulated channels at a steady pace and the warehouse ships each
order on the pass after it was placed. Each pass prints the orders pulled, the assembly
orders built, the quantities pushed per channel, the bottleneck of each bundle and whether
every channel now shows what Sellable computed.

With the ShipBob connector installed, a ShipBob account is emulated too: its fulfilment
centre ``sb-chicago`` (a 3PL warehouse that uses component inventory: ShipBob keeps stock
per component, so a bundle there is what its components can make) holds coffee
components, WooCommerce sells from it first, its orders are sent to ShipBob, and ShipBob's
shipments come back as sales on the next pass.

Each run starts from an empty database unless ``resume`` is asked for.
"""

from __future__ import annotations

import csv
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from sellable.config import Settings, load_settings
from sellable.core.explain import Explanation, explain
from sellable.emulators import EmulatorServer, emulator_class
from sellable.errors import ConfigError
from sellable.imports import import_components, import_products, import_stock
from sellable.store import schema
from sellable.store.db import create_db_engine, sync_warehouses, upgrade_schema
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.plugins import load_connector

EXAMPLES = Path(__file__).parent / "examples"
#: channel code -> emulator / connector name, in the order they are shown. ``shipbob`` is
#: the fulfilment provider (a 3PL), not a storefront: no customer orders there.
CHANNELS = {"woo": "woocommerce", "shopify": "shopify", "amazon": "amazon", "shipbob": "shipbob"}
#: The connectors of fulfilment providers: they serve warehouses, and list nothing.
FULFILMENT_CONNECTORS = {"shipbob"}
#: ShipBob's fulfilment centre: our warehouse code and ShipBob's ``location_id`` (Cicero).
SHIPBOB_CENTRE = "sb-chicago"
SHIPBOB_LOCATION = 10
#: Components at ShipBob's centre (it holds no bundle): 12 coffee kits can be made there.
SHIPBOB_STOCK = {"BEANS-12OZ": 24, "MUG-CERAMIC": 12, "SCOOP-WOOD": 40}
#: The storefront that sells from ShipBob's centre first (then from main).
SHIPBOB_SELLER = "woo"
#: The bundles whose figures and bottleneck each pass shows.
BUNDLES = ("GIFT-SET-COFFEE", "GIFT-KIT-COFFEE", "ALPHABET-BUNDLE", "CAMERA-STARTER-KIT")
#: What the simulated customers buy, and how often (relative weights).
BASKET = {
    "GIFT-SET-COFFEE": 5,
    "GIFT-KIT-COFFEE": 4,
    "MUG-CERAMIC": 2,
    "BEANS-12OZ": 2,
    "ALPHABET-BUNDLE": 1,
}
#: Every this many passes a delivery arrives and main is counted back to the example's stock
#: (the orders shipped since the last count have taken their units off the shelves).
RESTOCK_EVERY = 15
DATABASE = "sellable-demo.db"
WAREHOUSES = """
[[warehouses]]
code = "main"
kind = "own"
use_component_inventory = true
assembly_on_demand = true

[[warehouses]]
code = "fba-us"
kind = "fba"
"""
#: ShipBob keeps stock per component, never per bundle, and picks a kit's components at
#: shipment: a bundle's sellable there is what its components can make.
SHIPBOB_WAREHOUSE = f"""
[[warehouses]]
code = "{SHIPBOB_CENTRE}"
kind = "3pl"
use_component_inventory = true
"""

Echo = Callable[[str], None]


def toml_value(value: Any) -> str:
    """A TOML literal for the plain values connector settings hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")


#: Emulator options for the demo. Amazon applies an accepted quantity change after a
#: delay (minutes on the real service); the demo's emulator applies it at once, and the
#: connector still confirms it by reading the listing back on the next pass. Its reports
#: and feeds are queued and processed in tenths of a second instead of the emulator's
#: default 5 s, so that a pass (which refreshes the listings from a report) takes about a
#: second rather than six.
EMULATOR_OPTIONS: dict[str, dict[str, Any]] = {
    # WooCommerce publishes no rate limit; the emulator's default (25 requests per 10 s, a
    # host's) would make every pass wait on it. The demo's shop allows 10 times that, and
    # its connector is told so (DEMO_SETTINGS).
    "woocommerce": {"rate_limit": 250},
    "amazon": {
        "fba_warehouse": "fba-us",
        "patch_delay": 0.0,
        "report_queue_seconds": 0.1,
        "report_base_seconds": 0.2,
        "feed_queue_seconds": 0.1,
        "feed_base_seconds": 0.2,
    },
}
#: Connector settings the demo adds to what each emulator hands out.
DEMO_SETTINGS: dict[str, dict[str, Any]] = {"woocommerce": {"requests_per_second": 25.0}}
#: The channel's warehouses: Amazon sells merchant-fulfilled offers from ``main``; its FBA
#: stock and FBA orders are booked in ``fba_warehouse`` (above), which need not be listed.
CHANNEL_WAREHOUSES = {"amazon": ["main"]}
#: Pre-packed units at FBA (the seeds' alphabet bundle), shown to Amazon's FBA inventory.
FBA_STOCK = {"ALPHABET-BUNDLE": 8}


@dataclass
class DemoChannel:
    code: str
    emulator: EmulatorServer
    settings: dict[str, Any]
    warehouses: list[str] = field(default_factory=lambda: ["main"])
    #: A fulfilment provider (ShipBob): it serves warehouses, no customer orders there.
    fulfilment: bool = False


@dataclass
class PassReport:
    number: int
    placed: list[str] = field(default_factory=list)
    shipped: list[str] = field(default_factory=list)
    shipped_by_provider: list[str] = field(default_factory=list)
    results: list[JobResult] = field(default_factory=list)
    builds: list[str] = field(default_factory=list)
    new_orders: dict[str, int] = field(default_factory=dict)
    restocked: bool = False


class Demo:
    """The demo's state: emulators, configuration, database and the sync engine."""

    def __init__(self, folder: Path, channels: list[DemoChannel], seed: int) -> None:
        self.folder = folder
        #: The storefronts (customers order there; their listings are pushed).
        self.channels = [c for c in channels if not c.fulfilment]
        #: The fulfilment provider, if emulated (ShipBob).
        self.provider = next((c for c in channels if c.fulfilment), None)
        self.random = random.Random(seed)
        self.config_path = folder / "sellable.toml"
        self.config_path.write_text(self._config())
        self.settings: Settings = load_settings(self.config_path)
        self.db: Engine = create_db_engine(self.settings)
        self.passes = 0
        self.orders_placed = 0
        self._last_build = 0
        #: orders placed and not yet shipped: (channel, the channel's order id)
        self._to_ship: list[tuple[DemoChannel, str]] = []
        #: (channel code, order id) -> the order number the shop shows (Shopify's "#1001")
        self._numbers: dict[tuple[str, str], str] = {}

    def _config(self) -> str:
        database = (self.folder / DATABASE).resolve()
        parts = [f'log_level = "WARNING"\n\n[database]\nurl = "sqlite:///{database}"\n', WAREHOUSES]
        if self.provider is not None:
            parts.append(SHIPBOB_WAREHOUSE)
        for channel in self.all_channels:
            parts.append(
                f"\n[[channels]]\ncode = {toml_value(channel.code)}\n"
                f"connector = {toml_value(channel.emulator.connector)}\n"
                f"warehouses = {toml_value(channel.warehouses)}\n"
                'initial_lookback = "1h"\n'
                f"\n[channels.settings]\n"
            )
            parts.extend(f"{k} = {toml_value(v)}\n" for k, v in channel.settings.items())
        return "".join(parts)

    @property
    def all_channels(self) -> list[DemoChannel]:
        return self.channels + ([self.provider] if self.provider is not None else [])

    # -- setup ------------------------------------------------------------------------------

    def load_catalog(self, echo: Echo, *, resumed: bool = False) -> None:
        upgrade_schema(self.db)
        sync_warehouses(self.db, self.settings.warehouses)
        echo(import_products(self.db, EXAMPLES / "products.csv").describe("product"))
        echo(import_components(self.db, EXAMPLES / "components.csv").describe("component"))
        if not resumed:  # a resumed run keeps the stock the previous one left
            echo(import_stock(self.db, self.settings, EXAMPLES / "stock.csv").describe("stock"))
        with self.db.connect() as connection:
            self._last_build = connection.execute(
                select(func.coalesce(func.max(schema.assembly_orders.c.id), 0))
            ).scalar_one()
        skus = [
            (row["sku"], row["name"])
            for row in _csv_rows(EXAMPLES / "products.csv")
            if not row["sku"].startswith("FAQ-") and not row["sku"].startswith("COMP-")
        ]
        for channel in self.channels:
            for sku, name in skus:
                channel.emulator.add_listing(sku, 0, name)
            add_fba = getattr(channel.emulator, "add_fba_listing", None)
            if add_fba is not None:
                for sku, units in FBA_STOCK.items():
                    add_fba(sku, units)

    # -- one pass ---------------------------------------------------------------------------

    def customers(self, report: PassReport, orders: int) -> None:
        """Place ``orders`` orders on random channels, each for something the channel shows
        in stock (as a shop would only sell)."""
        skus, weights = zip(*BASKET.items(), strict=True)
        for _ in range(orders):
            channel = self.random.choice(self.channels)
            shown = channel.emulator.quantities()
            sku = self.random.choices(skus, weights)[0]
            quantity = self.random.randint(1, 2)
            if shown.get(sku, 0) < quantity:
                continue
            order_id = channel.emulator.place_order([(sku, quantity)])
            self.orders_placed += 1
            self._to_ship.append((channel, order_id))
            report.placed.append(
                f"{channel.code} {self.number(channel, order_id)} {quantity}×{sku}"
            )

    def number(self, channel: DemoChannel, order_id: str) -> str:
        """The order number as the shop shows it: ``#1001`` (a Shopify order's id is a GID
        such as ``gid://shopify/Order/1``, not what a merchant or customer sees)."""
        key = (channel.code, order_id)
        if key not in self._numbers:
            name = getattr(channel.emulator, "order_name", None)
            self._numbers[key] = str(name(order_id)) if callable(name) else f"#{order_id}"
        return self._numbers[key]

    def ship_at_provider(self, report: PassReport, engine: SyncEngine) -> None:
        """ShipBob ships every order it was sent before this pass, and its webhook pokes the
        shipments poll at once (as in the daemon), which books them as sales."""
        if self.provider is None:
            return
        shipbob: Any = self.provider.emulator
        with shipbob.lock:
            waiting = [
                (s.id, shipbob.orders[s.order_id].reference_id)
                for s in shipbob.shipments.values()
                if s.status == "Processing"
            ]
        for shipment_id, reference in waiting:
            shipbob.ship(shipment_id)
            code, _, order_id = reference.partition(":")
            number = self._numbers.get((code, order_id), f"#{order_id}")
            report.shipped_by_provider.append(f"{code} {number}")
        if waiting:
            report.results.append(engine.run_job(self.provider.code, "shipments"))

    def ship(self, report: PassReport) -> None:
        """The warehouse ships every order placed before this pass; the pass's order pull
        then sees them shipped, and their units leave the shelves (an order ShipBob
        shipped is marked completed on its shop, as ShipBob's store integration does)."""
        shipping, self._to_ship = self._to_ship, []
        for channel, order_id in shipping:
            emulator: Any = channel.emulator
            if hasattr(emulator, "fulfill_order"):  # Shopify
                emulator.fulfill_order(order_id)
            elif hasattr(emulator, "set_order_status"):  # WooCommerce
                emulator.set_order_status(order_id, "completed")
            elif hasattr(emulator, "ship_order"):  # Amazon
                emulator.ship_order(order_id)
            else:
                continue
            report.shipped.append(f"{channel.code} {self.number(channel, order_id)}")

    def restock(self) -> None:
        import_stock(self.db, self.settings, EXAMPLES / "stock.csv")
        if self.provider is not None:
            stock_shipbob(self.provider.emulator)

    def run_pass(self, engine: SyncEngine, orders: int) -> PassReport:
        self.passes += 1
        report = PassReport(self.passes)
        if self.passes > 1 and self.passes % RESTOCK_EVERY == 0:
            self.restock()
            report.restocked = True
        self.ship_at_provider(report, engine)
        self.ship(report)
        self.customers(report, orders)
        before = self._orders_per_channel()
        report.results += engine.run_once()
        after = self._orders_per_channel()
        report.new_orders = {code: n - before.get(code, 0) for code, n in after.items()}
        report.builds = self._new_builds()
        return report

    def _orders_per_channel(self) -> dict[str, int]:
        orders = schema.orders.c
        with self.db.connect() as connection:
            return {
                row.channel: row.n
                for row in connection.execute(
                    select(orders.channel, func.count().label("n")).group_by(orders.channel)
                )
            }

    def _new_builds(self) -> list[str]:
        ao, skus = schema.assembly_orders.c, schema.skus.c
        with self.db.connect() as connection:
            rows = connection.execute(
                select(ao.id, ao.quantity, ao.reference, skus.sku)
                .join(schema.skus, skus.id == ao.sku_id)
                .where(ao.id > self._last_build)
                .order_by(ao.id)
            ).all()
        if rows:
            self._last_build = rows[-1].id
        return [f"AO-{r.id} {r.quantity}×{r.sku} for {self._order_of(r.reference)}" for r in rows]

    def _order_of(self, reference: str | None) -> str:
        """``order shopify:gid://shopify/Order/1`` (the store's reference) as the shop shows
        it: ``order shopify #1001``."""
        if not reference:
            return "stock"
        code, _, order_id = reference.removeprefix("order ").partition(":")
        number = self._numbers.get((code, order_id))
        return f"order {code} {number}" if number else reference

    # -- what it shows ----------------------------------------------------------------------

    def render(self, report: PassReport, engine: SyncEngine) -> list[str]:
        lines = [f"── pass {report.number} " + "─" * 60]
        if report.restocked:
            lines.append(
                "  delivery received: main counted back to the example stock "
                "(after the orders shipped since the last count)"
            )
        if report.shipped_by_provider:
            lines.append("  ShipBob shipped: " + "; ".join(report.shipped_by_provider))
        if report.shipped:
            lines.append("  shipped: " + "; ".join(report.shipped))
        lines.append(
            "  customers ordered: " + ("; ".join(report.placed) if report.placed else "nothing")
        )
        for channel in self.channels:
            mine = {r.job: r for r in report.results if r.channel == channel.code}
            pulled = mine["orders"].counts.get("orders", 0) if "orders" in mine else 0
            new = report.new_orders.get(channel.code, 0)
            push = mine.get("reconcile")
            failures = [r for r in mine.values() if not r.ok]
            text = (
                f"  {channel.code:<8} new orders {new:>2} (orders read {pulled:>2})   "
                f"listings pushed {push.counts.get('pushed', 0) if push else 0:>2}"
            )
            waiting = push.counts.get("retry", 0) if push else 0
            if waiting:
                text += f" ({waiting} accepted, awaiting the channel's confirmation)"
            if failures:
                text += "   FAILED: " + "; ".join(f"{r.job}: {r.error}" for r in failures)
            lines.append(text)
        if self.provider is not None:
            code = self.provider.code
            ran = [r for r in report.results if r.channel == code]
            sent = sum(r.counts.get("sent", 0) for r in ran if r.job == "fulfil")
            shipped = sum(r.counts.get("lines_shipped", 0) for r in ran if r.job == "shipments")
            text = f"  {code:<8} orders sent {sent:>2}   order lines shipped {shipped:>2}"
            failures = [r for r in ran if not r.ok]
            if failures:
                text += "   FAILED: " + "; ".join(f"{r.job}: {r.error}" for r in failures)
            lines.append(text)
        for build in report.builds:
            lines.append(f"  assembly order {build}")
        core = engine.book.live.core
        shown = {channel.code: channel.emulator.quantities() for channel in self.channels}
        fba = any(c.settings.get("fba_warehouse") == "fba-us" for c in self.channels)
        header = f"  {'bundle':<20}" + "".join(f"{c.code:>9}" for c in self.channels)
        if fba:
            header += f"{'at FBA':>9}"
        if self.provider is not None:
            header += f"{'at ShipBob':>11}"
        lines.append(header + "   bottleneck in main")
        for sku in BUNDLES:
            figures = "".join(f"{shown[c.code].get(sku, 0):>9}" for c in self.channels)
            if fba:  # FBA does not use component inventory: pre-packed units only
                figures += f"{core.sellable(sku, 'fba-us'):>9}"
            if self.provider is not None:  # ShipBob: what its components there can make
                figures += f"{core.sellable(sku, SHIPBOB_CENTRE):>11}"
            lines.append(f"  {sku:<20}{figures}   {_bottleneck(explain(core, sku, 'main'))}")
        lagging = self.lagging(engine)
        lines.append(
            "  every channel shows what Sellable computed"
            if not lagging
            else f"  still to push: {', '.join(lagging[:6])}"
        )
        return lines

    def lagging(self, engine: SyncEngine) -> list[str]:
        """Listings whose channel figure differs from what Sellable wants it to show."""
        out: list[str] = []
        for channel in self.channels:
            desired = engine.desired_quantities(channel.code)
            skus = listing_skus(engine, channel.code)
            by_sku: dict[str, int] = {}
            for listing_id, quantity in desired.items():
                sku = skus[listing_id]
                by_sku[sku] = by_sku.get(sku, 0) + quantity
            shown = channel.emulator.quantities()
            out.extend(
                f"{channel.code}:{sku} {shown.get(sku)}→{quantity}"
                for sku, quantity in sorted(by_sku.items())
                if shown.get(sku) != quantity
            )
        return out


def listing_skus(engine: SyncEngine, code: str) -> dict[str, str]:
    """Our SKU of each matched listing of the channel."""
    listings, skus = schema.listings.c, schema.skus.c
    with engine.db.connect() as connection:
        return {
            row.listing_id: row.sku
            for row in connection.execute(
                select(listings.listing_id, skus.sku)
                .join(schema.listings, listings.sku_id == skus.id)
                .where(listings.channel == code)
            )
        }


def _bottleneck(node: Explanation) -> str:
    if not node.children:
        return f"{node.sellable} pre-packed (no components counted here)"
    limiting = next((c for c in node.children if c.limiting), None)
    built = f"{node.available} assembled on the shelf + " if node.available > 0 else ""
    if limiting is None:
        return f"{built}{node.component} from components"
    return (
        f"{built}{node.component} from components; limited by {limiting.sku} "
        f"({limiting.sellable} left, {limiting.per_unit} per unit)"
    )


def stock_shipbob(emulator: Any) -> None:
    """ShipBob's centre counted at the demo's component stock (ShipBob's own count)."""
    for sku, units in SHIPBOB_STOCK.items():
        emulator.set_inventory(sku, SHIPBOB_LOCATION, on_hand=units)


def _remove_database(folder: Path, echo: Echo) -> None:
    """A fresh start: the previous run's SQLite database and its WAL files go."""
    removed = False
    for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}.lock"):
        path = folder / name
        if path.exists():
            path.unlink()
            removed = True
    if removed:
        echo(f"starting afresh: removed the previous run's {folder / DATABASE} (--resume keeps it)")


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


@contextmanager
def started_channels(names: list[str], echo: Echo) -> Iterator[list[DemoChannel]]:
    """Start the emulator of each named channel whose connector is installed."""
    with ExitStack() as stack:
        channels: list[DemoChannel] = []
        for code, name in CHANNELS.items():
            if name not in names:
                continue
            try:
                load_connector(name)
                emulator = emulator_class(name)(port=0, **EMULATOR_OPTIONS.get(name, {}))
            except (ConfigError, ImportError, KeyError) as err:
                echo(f"{name}: skipped ({err})")
                continue
            stack.enter_context(emulator)
            settings = emulator.connector_settings() | DEMO_SETTINGS.get(name, {})
            if name in FULFILMENT_CONNECTORS:
                settings["locations"] = {SHIPBOB_CENTRE: SHIPBOB_LOCATION}
                stock_shipbob(emulator)
                channels.append(DemoChannel(code, emulator, settings, [SHIPBOB_CENTRE], True))
                echo(f"{name} emulator listening on {emulator.url} (3PL, centre {SHIPBOB_CENTRE})")
                continue
            warehouses = CHANNEL_WAREHOUSES.get(name, ["main"])
            channels.append(DemoChannel(code, emulator, settings, warehouses))
            echo(f"{name} emulator listening on {emulator.url}")
        storefronts = [c for c in channels if not c.fulfilment]
        if storefronts and len(storefronts) < len(channels):
            # the storefront that sells from ShipBob's centre first, then from main
            seller = next((c for c in storefronts if c.code == SHIPBOB_SELLER), storefronts[0])
            seller.warehouses = [SHIPBOB_CENTRE, *seller.warehouses]
        yield channels


def run_demo(
    folder: Path,
    names: list[str],
    *,
    passes: int | None,
    interval: float,
    orders_per_pass: int,
    seed: int,
    echo: Echo,
    stop: threading.Event,
    resume: bool = False,
) -> int:
    """Run the demo until ``stop`` is set or ``passes`` passes are done; returns the number
    of listings still out of step at the end (0 when every channel caught up). The previous
    run's database is removed first, unless ``resume``."""
    folder.mkdir(parents=True, exist_ok=True)
    resumed = resume and (folder / DATABASE).exists()
    if not resume:
        _remove_database(folder, echo)
    logging.getLogger("sellable").setLevel(logging.WARNING)
    with started_channels(names, echo) as channels:
        if not [c for c in channels if not c.fulfilment]:
            raise ConfigError(
                "no channel to demonstrate: install the connectors with "
                "pip install -e connectors/woocommerce -e connectors/shopify -e connectors/amazon"
            )
        demo = Demo(folder, channels, seed)
        echo(f"configuration: {demo.config_path}")
        if resumed:
            echo(f"resuming the previous run's database: {folder / DATABASE}")
        demo.load_catalog(echo, resumed=resumed)
        engine = SyncEngine(demo.db, demo.settings)
        try:
            echo("first pass: listings matched and every quantity pushed")
            while not stop.is_set():
                started = time.monotonic()
                report = demo.run_pass(engine, 0 if demo.passes == 0 else orders_per_pass)
                for line in demo.render(report, engine):
                    echo(line)
                if passes is not None and demo.passes >= passes:
                    break
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
            lagging = demo.lagging(engine)
            echo(
                f"demo stopped after {demo.passes} passes and {demo.orders_placed} orders; "
                f"inspect it with: sellable --config {demo.config_path} status"
            )
            return len(lagging)
        finally:
            engine.close()
