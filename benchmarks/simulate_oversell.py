"""Issue 15's simulator: a week of demand replayed against the real product, per allocation mode.

Usage (from the project root, with the project's virtualenv)::

    .venv/bin/python benchmarks/simulate_oversell.py                 # every scenario, both modes
    .venv/bin/python benchmarks/simulate_oversell.py --scenario hub --days 2 --seed 7
    .venv/bin/python benchmarks/run.py --only oversell               # the same, from run.py

What is real and what is simulated:

* real: the configuration (a TOML file loaded by :func:`sellable.config.load_settings`, with
  ``[allocation] mode`` for the shared mode), an SQLite database file in a temporary folder,
  the CSV imports of the catalog and stock, the connector plugin discovery, the order pull
  job (``SyncEngine.run_job(code, "orders")``: cursor, overlap, ``order_in_for``,
  ``OrderBook.apply``), receipts (:func:`sellable.costing.moves.receive`, which serves held
  lines first) and what each listing should show (``SyncEngine.desired_quantities``, i.e.
  ``desired_offers``: the allocation mode's quantities);
* simulated: the channels (:mod:`oversell_channel`: each shows the quantity of our last push
  that reached it and decrements it on every order it accepts, as a storefront does), the
  customers (Poisson arrivals per listing and channel, drawn from ``--seed`` before the
  run, identical for every mode), the latencies (a channel's orders reach the order book at
  its next order pull, every ``pull_every``; a push reaches the channel ``push_latency``
  after we decided it) and the clock: an event queue moves a simulated clock, which the
  engine (``now=``) and the store (:data:`sellable.store.sql.simulated_clock`: every
  movement, import and velocity window) read. Nothing waits.

The daemon is modelled as it behaves: after every order pull that changed a sellable figure,
and after every receipt, it works out what every listing should show and pushes the
listings whose figure changed; every ``reconcile_every`` it does so again (a rebalance by
velocity can change a share without any stock change). A pull of a channel that took no
order since its last pull is skipped (it would import nothing).

The counted days follow ``--warmup-days`` (default 2) simulated alike but not counted, so
that velocity weights start from a history, as for a merchant switching modes; the
figures count the customers who arrive after the warm-up (and their orders, wherever the
book stands when they are pulled).

Figures, per scenario and mode (units, unless named orders):

* demand: units customers asked for (accepted or not);
* accepted: units the channels accepted (their shown quantity covered the order);
* oversold: units of accepted orders the order book could not fill when it imported them
  (held lines), and ``held orders``: how many such orders; ``held at end``: still held when
  the week ends (not served by a later receipt);
* lost: units of orders a channel refused (it showed fewer than ordered) while the units
  existed, unpromised: a *shadow* order book (a second real database, with the same
  receipts, into which every accepted order is applied the instant it is placed, i.e. with
  no pull latency) would have allocated them in full to that listing's warehouses at that
  instant. A refusal when the shadow book has no units either is a stock-out, not a lost
  sale (``refused, no stock``). ``lost %`` is lost units / demand units;
* revenue: the list price of accepted units whose line is allocated at the end of the week
  (a held line later served by a receipt counts; one still held does not).

Runs (``--mode``, repeatable; default all three): "full"; "shared" (the strict split,
every other ``[allocation]`` setting at its default); "latency" (shared with ``headroom =
"latency"`` and each channel's ``push_latency`` set to what the simulated channel takes, as
a merchant would configure it). ``--allocation KEY=VALUE`` adds settings to both shared
runs.

Goal (issue 15): "shared" cuts oversold units by at least 90% against "full", with lost
sales at most 5% of demand, on each scenario. The verdict line says PASS or MISS per
scenario and shared run; when the configuration does not accept ``[allocation] mode =
"shared"`` (the mode is not built yet) the shared run is reported as unavailable, with the
configuration's error, and no figure is made up.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from oversell_channel import (  # noqa: E402
    CHANNELS,
    CONNECTOR,
    SimChannel,
    register_plugin,
    unregister_plugin,
)
from sqlalchemy import Engine, select  # noqa: E402

import sellable.store.sql as store_sql  # noqa: E402
from sellable.config import Settings, load_settings  # noqa: E402
from sellable.costing.moves import ReceiptIn, receive  # noqa: E402
from sellable.errors import ConfigError  # noqa: E402
from sellable.imports import import_components, import_products, import_stock  # noqa: E402
from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus  # noqa: E402
from sellable.store import schema  # noqa: E402
from sellable.store.db import create_db_engine, sync_warehouses, upgrade_schema  # noqa: E402
from sellable.sync.engine import SyncEngine  # noqa: E402

#: The runs: "full"; "shared" (the strict split, every other setting at its default);
#: "latency" (shared with ``headroom = "latency"``, each channel's ``push_latency`` set to
#: what the simulated channel takes, as a merchant would configure it).
MODES = ("full", "shared", "latency")
#: The ``[allocation] mode`` of each run.
ALLOCATION_MODE = {"full": "full", "shared": "shared", "latency": "shared"}
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; only its being fixed matters
WAREHOUSE = "main"
EXAMPLES = HERE.parent / "src" / "sellable" / "examples"
#: Units per order and their odds: mean 1.25 units.
ORDER_SIZES = ((1, 0.80), (2, 0.15), (3, 0.05))
MEAN_ORDER_SIZE = sum(units * odds for units, odds in ORDER_SIZES)
OVERSOLD_CUT_GOAL = 0.90
LOST_SHARE_GOAL = 0.05


# -- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSpec:
    """A channel: how often we pull its orders, how long a push takes to show, and its
    share of the customers."""

    code: str
    pull_every: timedelta
    push_latency: timedelta
    demand_share: float
    pull_phase: timedelta = timedelta(0)


@dataclass(frozen=True)
class Arrival:
    """A customer: ``quantity`` of ``sku`` on channel ``channel`` at ``at`` (from the start)."""

    at: timedelta
    channel: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class Restock:
    at: timedelta
    units: dict[str, int]


@dataclass
class Scenario:
    """A catalog (the three CSV files' rows), its listings and demand, and the receipts.

    Demand is ``rates`` (orders per day per listing, over all channels, split by the
    channels' ``demand_share``) unless ``arrivals`` lists the customers one by one."""

    name: str
    title: str
    products: list[dict[str, str]]
    components: list[dict[str, str]]
    stock: list[dict[str, str]]
    listed: list[str]
    rates: dict[str, float]
    restocks: list[Restock]
    channels: list[ChannelSpec]
    days: float = 7.0
    arrivals: list[Arrival] | None = None
    #: The first days of ``days`` are a warm-up: simulated alike, so that the order book
    #: holds a history (velocity weights), but not counted in the figures.
    warmup_days: float = 0.0
    warehouses_toml: str = (
        '[[warehouses]]\ncode = "main"\nkind = "own"\nuse_component_inventory = true\n'
        "assembly_on_demand = true\n"
    )
    reconcile_every: timedelta = timedelta(minutes=15)

    def price(self, sku: str) -> Decimal:
        for row in self.products:
            if row["sku"] == sku:
                return Decimal(row.get("price") or "0")
        return Decimal(0)


#: The three channels of every generated scenario: a WooCommerce shop pulled every 5
#: minutes (a push shows within a minute), a Shopify store pulled every 2 minutes (30 s), an
#: Amazon account pulled every 15 minutes whose quantity feed takes 30 minutes to apply.
CHANNELS_3 = [
    ChannelSpec("woo", timedelta(minutes=5), timedelta(minutes=1), 0.3),
    ChannelSpec("shopify", timedelta(minutes=2), timedelta(seconds=30), 0.4, timedelta(minutes=1)),
    ChannelSpec("amazon", timedelta(minutes=15), timedelta(minutes=30), 0.3, timedelta(minutes=7)),
]


def _bom(components: list[dict[str, str]]) -> dict[str, list[tuple[str, int, str]]]:
    bom: dict[str, list[tuple[str, int, str]]] = {}
    for row in components:
        bom.setdefault(row["parent_sku"], []).append(
            (row["component_sku"], int(row["quantity"]), row.get("slot") or "")
        )
    return bom


def leaf_demand(rates: dict[str, float], components: list[dict[str, str]]) -> dict[str, float]:
    """Expected units per day of each leaf SKU, listings exploded through their BOMs
    (a slot with options counts its first option)."""
    bom = _bom(components)
    out: dict[str, float] = {}

    def add(sku: str, units: float) -> None:
        parts = bom.get(sku)
        if not parts:
            out[sku] = out.get(sku, 0.0) + units
            return
        slots_seen: set[str] = set()
        for component, quantity, slot in parts:
            if slot:
                if slot in slots_seen:
                    continue
                slots_seen.add(slot)
            add(component, units * quantity)

    for sku, rate in rates.items():
        add(sku, rate * MEAN_ORDER_SIZE)
    return out


def periodic_restocks(
    rates: dict[str, float],
    components: list[dict[str, str]],
    every: timedelta,
    days: float,
    supply_ratio: float,
) -> list[Restock]:
    """A delivery every ``every``: each leaf SKU gets ``supply_ratio`` times its expected
    demand over the interval (rounded; SKUs that round to 0 get none)."""
    per_day = leaf_demand(rates, components)
    span = every / timedelta(days=1)
    units = {
        sku: round(rate * span * supply_ratio)
        for sku, rate in sorted(per_day.items())
        if round(rate * span * supply_ratio) > 0
    }
    out, at = [], every
    while at < timedelta(days=days):
        out.append(Restock(at, units))
        at += every
    return out


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def demo_scenario(days: float, scale: float = 1.0) -> Scenario:
    """The demo's catalog (src/sellable/examples, its stock as the opening stock), listed
    as ``sellable demo`` lists it, with ten times the demo's basket as the daily rates (a
    busy shop: 50 gift sets a day) and a delivery every day."""
    products = _csv_rows(EXAMPLES / "products.csv")
    components = _csv_rows(EXAMPLES / "components.csv")
    listed = [r["sku"] for r in products if not r["sku"].startswith(("FAQ-", "COMP-"))]
    basket = {
        "GIFT-SET-COFFEE": 5.0,
        "GIFT-KIT-COFFEE": 4.0,
        "MUG-CERAMIC": 2.0,
        "BEANS-12OZ": 2.0,
        "ALPHABET-BUNDLE": 1.0,
        "SCOOP-WOOD": 1.0,
        "ABC": 0.5,
        "DEF": 0.5,
        "GHI": 0.5,
        "CAMERA-STARTER-KIT": 0.5,
        "DSLR-CAMERA-BLACK": 0.3,
        "LENS-18-55": 0.2,
        "LENS-18-135": 0.2,
        "CAMERA-BAG": 0.3,
    }
    rates = {sku: 10 * rate * scale for sku, rate in basket.items()}
    return Scenario(
        name="demo",
        title="the demo catalog (src/sellable/examples), 14 listings on 3 channels",
        products=products,
        components=components,
        stock=_csv_rows(EXAMPLES / "stock.csv"),
        listed=listed,
        rates=rates,
        restocks=periodic_restocks(rates, components, timedelta(days=1), days, 0.9),
        channels=CHANNELS_3,
        days=days,
        warehouses_toml=(
            '[[warehouses]]\ncode = "main"\nkind = "own"\nuse_component_inventory = true\n'
            'assembly_on_demand = true\n\n[[warehouses]]\ncode = "fba-us"\nkind = "fba"\n'
        ),
    )


def hub_scenario(days: float, scale: float = 1.0, bundles: int = 20) -> Scenario:
    """One component (HUB) feeds ``bundles`` kits (each HUB + a part of its own, parts
    plentiful; 6 orders a day each) and is sold alone too (30 a day); a delivery of HUBs
    every 12 hours."""
    products = [{"sku": "HUB", "name": "Hub", "kind": "simple", "price": "20.00"}]
    components: list[dict[str, str]] = []
    stock = [{"sku": "HUB", "warehouse": WAREHOUSE, "on_hand": "40", "locked": "0"}]
    rates = {"HUB": 30.0 * scale}
    for i in range(1, bundles + 1):
        kit, part = f"KIT-{i:02d}", f"PART-{i:02d}"
        products.append({"sku": part, "name": part, "kind": "simple", "price": "5.00"})
        products.append({"sku": kit, "name": kit, "kind": "kit", "price": "30.00"})
        components.append({"parent_sku": kit, "component_sku": "HUB", "quantity": "1"})
        components.append({"parent_sku": kit, "component_sku": part, "quantity": "1"})
        stock.append({"sku": part, "warehouse": WAREHOUSE, "on_hand": "1000", "locked": "0"})
        rates[kit] = 6.0 * scale
    every = timedelta(hours=12)
    restocks = [
        Restock(r.at, {"HUB": r.units["HUB"]})
        for r in periodic_restocks(rates, components, every, days, 0.9)
    ]
    return Scenario(
        name="hub",
        title=f"one component (HUB) feeding {bundles} kits and sold alone, on 3 channels",
        products=products,
        components=components,
        stock=stock,
        listed=["HUB", *(f"KIT-{i:02d}" for i in range(1, bundles + 1))],
        rates=rates,
        restocks=restocks,
        channels=CHANNELS_3,
        days=days,
    )


def longtail_scenario(days: float, scale: float = 1.0, skus: int = 300) -> Scenario:
    """``skus`` simple products with Zipf demand (the n-th best seller 40 / n orders a
    day); each starts with 90% of half a week of its expected demand (at least 1) and gets
    a delivery twice a week."""
    products, stock, rates = [], [], {}
    for i in range(1, skus + 1):
        sku = f"LT-{i:04d}"
        rate = 40.0 * scale / i
        rates[sku] = rate
        price = f"{10 + (i * 37) % 90}.00"
        products.append({"sku": sku, "name": sku, "kind": "simple", "price": price})
        start = max(1, round(rate * MEAN_ORDER_SIZE * 3.5 * 0.9))
        stock.append({"sku": sku, "warehouse": WAREHOUSE, "on_hand": str(start), "locked": "0"})
    return Scenario(
        name="longtail",
        title=f"a long tail: {skus} simple SKUs, Zipf demand, few units each, on 3 channels",
        products=products,
        components=[],
        stock=stock,
        listed=list(rates),
        rates=rates,
        restocks=periodic_restocks(rates, [], timedelta(days=3.5), days, 0.9),
        channels=CHANNELS_3,
        days=days,
    )


SCENARIOS: dict[str, Callable[[float, float], Scenario]] = {
    "demo": demo_scenario,
    "hub": hub_scenario,
    "longtail": longtail_scenario,
}


def poisson_arrivals(scenario: Scenario, seed: int) -> list[Arrival]:
    """Each (listing, channel) gets a Poisson stream at its rate times the channel's share;
    sizes follow :data:`ORDER_SIZES`. Drawn from ``seed`` alone: every mode sees the same
    customers."""
    rng = random.Random(f"{seed}:{scenario.name}")
    horizon = scenario.days * 86400.0
    sizes, odds = zip(*ORDER_SIZES, strict=True)
    out: list[Arrival] = []
    for sku in scenario.listed:
        rate = scenario.rates.get(sku, 0.0)
        for channel in scenario.channels:
            per_second = rate * channel.demand_share / 86400.0
            if per_second <= 0:
                continue
            t = rng.expovariate(per_second)
            while t < horizon:
                quantity = rng.choices(sizes, odds)[0]
                out.append(Arrival(timedelta(seconds=round(t, 3)), channel.code, sku, quantity))
                t += rng.expovariate(per_second)
    out.sort(key=lambda a: (a.at, a.channel, a.sku))
    return out


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Figures:
    scenario: str
    mode: str
    demand_units: int = 0
    demand_orders: int = 0
    accepted_units: int = 0
    accepted_orders: int = 0
    oversold_units: int = 0
    held_orders: int = 0
    held_at_end: int = 0
    lost_units: int = 0
    lost_orders: int = 0
    refused_no_stock_units: int = 0
    revenue: Decimal = Decimal(0)
    pushes: int = 0
    pulls: int = 0
    seconds: float = 0.0
    unavailable: str | None = None

    @property
    def lost_share(self) -> float:
        return self.lost_units / self.demand_units if self.demand_units else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["revenue"] = str(self.revenue)
        out["lost_share"] = round(self.lost_share, 4)
        return out


class SharedModeUnavailable(Exception):
    """The configuration does not accept ``[allocation] mode = "shared"`` (yet)."""


def _write_csv(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(
    folder: Path,
    scenario: Scenario,
    mode: str,
    world: str,
    database: str,
    allocation: dict[str, str] | None = None,
) -> Path:
    """The TOML configuration of one run. ``mode`` "full" writes no ``[allocation]`` table
    (full is the default); any other mode writes its ``[allocation] mode`` and ``allocation``
    (raw TOML values) there; "latency" adds ``headroom = "latency"`` and each channel's
    ``push_latency``."""
    url = _toml("sqlite:///" + str(folder / database))
    parts = [f'log_level = "WARNING"\n\n[database]\nurl = {url}\n\n', scenario.warehouses_toml]
    if mode != "full":
        parts.append(f"\n[allocation]\nmode = {_toml(ALLOCATION_MODE.get(mode, mode))}\n")
        settings = dict(allocation or {})
        if mode == "latency":
            settings.setdefault("headroom", '"latency"')
        parts.extend(f"{key} = {value}\n" for key, value in settings.items())
        if mode == "latency":
            for channel in scenario.channels:
                seconds = int(channel.push_latency.total_seconds())
                parts.append(
                    f"\n[allocation.channels.{_toml(channel.code)}]\n"
                    f"push_latency = {_toml(f'{seconds}s')}\n"
                )
    for channel in scenario.channels:
        parts.append(
            f"\n[[channels]]\ncode = {_toml(channel.code)}\nconnector = {_toml(CONNECTOR)}\n"
            f'warehouses = ["{WAREHOUSE}"]\n'
            f"pull_orders_every = {_toml(f'{int(channel.pull_every.total_seconds())}s')}\n"
            f"\n[channels.settings]\nworld = {_toml(world)}\n"
        )
    path = folder / f"{database}.toml"
    path.write_text("".join(parts), encoding="utf-8")
    return path


def load_mode_settings(path: Path, mode: str) -> Settings:
    """The run's settings; for a mode other than "full", proof that the configuration knows
    it (``settings.allocation.mode``), else :class:`SharedModeUnavailable`."""
    try:
        settings = load_settings(path)
    except ConfigError as err:
        if mode == "full":
            raise
        raise SharedModeUnavailable(str(err).splitlines()[0][:300]) from err
    if mode != "full":
        allocation = getattr(settings, "allocation", None)
        wanted = ALLOCATION_MODE.get(mode, mode)
        if getattr(allocation, "mode", None) != wanted:
            raise SharedModeUnavailable(
                f"the configuration loaded but settings.allocation.mode is not {wanted!r}"
            )
    return settings


def _load_catalog(db: Engine, settings: Settings, folder: Path, scenario: Scenario) -> None:
    upgrade_schema(db)
    sync_warehouses(db, settings.warehouses)
    import_products(
        db,
        _write_csv(
            folder / "products.csv",
            ("sku", "name", "kind", "allow_backorder", "price"),
            [{"allow_backorder": "false", **row} for row in scenario.products],
        ),
    )
    if scenario.components:
        import_components(
            db,
            _write_csv(
                folder / "components.csv",
                ("parent_sku", "component_sku", "quantity", "slot", "price_offset"),
                scenario.components,
            ),
        )
    import_stock(
        db,
        settings,
        _write_csv(folder / "stock.csv", ("sku", "warehouse", "on_hand", "locked"), scenario.stock),
    )


@dataclass(order=True)
class _Event:
    at: datetime
    rank: int  # at one moment: receipts, pushes reaching channels, pulls, customers, reconcile
    seq: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


RANKS = {"restock": 0, "push": 1, "pull": 2, "order": 3, "reconcile": 4}


class Simulation:
    """One scenario under one allocation mode."""

    def __init__(
        self,
        scenario: Scenario,
        mode: str,
        folder: Path,
        arrivals: list[Arrival],
        allocation: dict[str, str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.mode = mode
        self.folder = folder
        self.arrivals = arrivals
        self.allocation = allocation
        self.now = START
        self.end = START + timedelta(days=scenario.days)
        self.measure_from = START + timedelta(days=scenario.warmup_days)
        #: Orders placed since ``measure_from``: (channel, order id); only they are counted.
        self.counted: set[tuple[str, str]] = set()
        self.figures = Figures(scenario.name, mode)
        self.specs = {c.code: c for c in scenario.channels}
        self.world = f"{scenario.name}-{mode}-{id(self)}"
        self.channels = {c.code: SimChannel(c.code) for c in scenario.channels}
        #: What we last decided each channel's listings show (the push in flight included).
        self.sent: dict[str, dict[str, int]] = {c: {} for c in self.channels}
        self.last_pull: dict[str, datetime | None] = {c: None for c in self.channels}
        self.held: dict[tuple[str, str], int] = {}  # (channel, order id) -> units, ever held
        self.prices = {sku: scenario.price(sku) for sku in scenario.listed}
        self._queue: list[_Event] = []
        self._seq = 0

    # -- the event queue

    def schedule(self, at: datetime, kind: str, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Event(at, RANKS[kind], self._seq, kind, payload))

    def clock(self) -> datetime:
        return self.now

    # -- running

    def run(self) -> Figures:
        started = time.perf_counter()
        with ExitStack() as stack:
            stack.enter_context(self._world())
            main_settings = load_mode_settings(
                write_config(
                    self.folder, self.scenario, self.mode, self.world, "sim.db", self.allocation
                ),
                self.mode,
            )
            shadow_settings = load_settings(
                write_config(self.folder, self.scenario, "full", self.world, "shadow.db")
            )
            self.db = create_db_engine(main_settings)
            stack.callback(self.db.dispose)
            self.shadow_db = create_db_engine(shadow_settings)
            stack.callback(self.shadow_db.dispose)
            (self.folder / "main").mkdir(exist_ok=True)
            (self.folder / "shadow").mkdir(exist_ok=True)
            _load_catalog(self.db, main_settings, self.folder / "main", self.scenario)
            _load_catalog(self.shadow_db, shadow_settings, self.folder / "shadow", self.scenario)
            self.engine = SyncEngine(self.db, main_settings, now=self.clock)
            stack.callback(self.engine.close)
            self.shadow = OrderBook(self.shadow_db, shadow_settings)
            self._start()
            self._loop()
            self._finish()
        self.figures.seconds = time.perf_counter() - started
        return self.figures

    @contextmanager
    def _world(self) -> Iterator[None]:
        for code, channel in self.channels.items():
            CHANNELS[(self.world, code)] = channel
        register_plugin(self.folder / "plugin")
        previous = store_sql.simulated_clock
        store_sql.simulated_clock = self.clock
        try:
            yield
        finally:
            store_sql.simulated_clock = previous
            unregister_plugin(self.folder / "plugin")
            for code in self.channels:
                CHANNELS.pop((self.world, code), None)

    def _start(self) -> None:
        """Listings appear on every channel; the first push reaches them before anyone
        orders (as after ``sellable run``'s first pass)."""
        for channel in self.channels.values():
            channel.shown = {sku: 0 for sku in self.scenario.listed}
        for code in self.channels:
            result = self.engine.run_job(code, "listings")
            if not result.ok:
                raise RuntimeError(f"listing refresh of {code} failed: {result.error}")
        for code, channel in self.channels.items():
            desired = self.engine.desired_quantities(code)
            channel.shown.update(desired)
            self.sent[code] = dict(desired)
        for arrival in self.arrivals:
            self.schedule(START + arrival.at, "order", arrival)
        for restock in self.scenario.restocks:
            self.schedule(START + restock.at, "restock", restock)
        for spec in self.scenario.channels:
            self.schedule(START + spec.pull_phase + spec.pull_every, "pull", spec.code)
        self.schedule(START + self.scenario.reconcile_every, "reconcile")

    def _loop(self) -> None:
        while self._queue and self._queue[0].at <= self.end:
            event = heapq.heappop(self._queue)
            self.now = event.at
            getattr(self, f"_on_{event.kind}")(event.payload)

    def _finish(self) -> None:
        """Every order placed reaches the book (a last pull of each channel), then the
        week's figures are read from the database."""
        for code in self.channels:
            self._pull(code, force=True)
        lines, orders = schema.order_lines.c, schema.orders.c
        with self.db.connect() as connection:
            rows = connection.execute(
                select(
                    orders.channel, orders.external_id, lines.sku, lines.quantity, lines.status
                ).join(schema.orders, orders.id == lines.order_id)
            ).all()
        figures = self.figures
        imported = 0
        for row in rows:
            if (row.channel, row.external_id) not in self.counted:
                continue  # a warm-up order
            imported += row.quantity
            if row.status == "held":
                figures.held_at_end += 1
            elif row.status in ("allocated", "shipped"):
                figures.revenue += self.prices.get(row.sku, Decimal(0)) * row.quantity
        if imported != figures.accepted_units:
            raise RuntimeError(
                f"{imported} units imported, {figures.accepted_units} accepted by the channels"
            )
        figures.oversold_units = sum(self.held.values())
        figures.held_orders = len(self.held)

    # -- events

    def _on_order(self, arrival: Arrival) -> None:
        counted = self.now >= self.measure_from
        # Warm-up orders go through the same paths into scratch figures.
        figures = self.figures if counted else Figures(self.scenario.name, self.mode)
        figures.demand_orders += 1
        figures.demand_units += arrival.quantity
        channel = self.channels[arrival.channel]
        order = channel.place(
            arrival.sku, arrival.quantity, self.now, self.prices.get(arrival.sku, Decimal(0))
        )
        live = self.shadow.live
        if order is None:
            with live.lock:
                live.refresh()
                there = live.sellable_in(arrival.sku, [WAREHOUSE])
            if there >= arrival.quantity:
                figures.lost_units += arrival.quantity
                figures.lost_orders += 1
            else:
                figures.refused_no_stock_units += arrival.quantity
            return
        figures.accepted_orders += 1
        figures.accepted_units += arrival.quantity
        if counted:
            self.counted.add((arrival.channel, order.order_id))
        shadow_order = OrderIn(
            channel=arrival.channel,
            order_id=order.order_id,
            warehouse=WAREHOUSE,
            status=OrderStatus.OPEN,
            lines=(OrderLineIn("1", arrival.sku, arrival.quantity),),
            created_at=self.now,
            route=(WAREHOUSE,),
        )
        with live.lock:
            live.refresh()
            self.shadow.apply([shadow_order])

    def _on_pull(self, code: str) -> None:
        self._pull(code)
        self.schedule(self.now + self.specs[code].pull_every, "pull", code)

    def _pull(self, code: str, *, force: bool = False) -> None:
        if not force and not self.channels[code].placed_after(self.last_pull[code]):
            return  # nothing new on the channel: the pull would import nothing
        self.last_pull[code] = self.now
        result = self.engine.run_job(code, "orders")
        self.figures.pulls += 1
        if not result.ok:
            raise RuntimeError(f"order pull of {code} failed: {result.error}")
        if result.counts.get("held_lines"):
            self._note_held(code)
        if result.counts.get("changed"):
            self._push_changes()

    def _note_held(self, code: str) -> None:
        lines, orders = schema.order_lines.c, schema.orders.c
        with self.db.connect() as connection:
            for row in connection.execute(
                select(orders.external_id, lines.quantity)
                .join(schema.orders, orders.id == lines.order_id)
                .where(orders.channel == code, lines.status == "held")
            ):
                if (code, row.external_id) in self.counted:
                    self.held.setdefault((code, row.external_id), row.quantity)

    def _on_restock(self, restock: Restock) -> None:
        receipts = [
            ReceiptIn(
                sku,
                WAREHOUSE,
                units,
                Decimal(1),
                "USD",
                Decimal(1),
                self.now,
                reference=f"delivery {self.now.isoformat()}",
            )
            for sku, units in restock.units.items()
        ]
        receive(self.engine.book, receipts, self.now.date())
        receive(self.shadow, receipts, self.now.date())
        self._push_changes()

    def _on_reconcile(self, _payload: None) -> None:
        self._push_changes()
        self.schedule(self.now + self.scenario.reconcile_every, "reconcile")

    def _push_changes(self) -> None:
        """What every listing should show now; the listings whose figure changed since our
        last push are pushed, and reach the channel after its push latency."""
        for code, spec in self.specs.items():
            desired = self.engine.desired_quantities(code)
            sent = self.sent[code]
            changed = {sku: q for sku, q in desired.items() if sent.get(sku) != q}
            if changed:
                sent.update(changed)
                self.figures.pushes += len(changed)
                self.schedule(self.now + spec.push_latency, "push", (code, changed))

    def _on_push(self, payload: tuple[str, dict[str, int]]) -> None:
        code, quantities = payload
        self.channels[code].shown.update(quantities)


def simulate(
    scenario: Scenario,
    mode: str,
    seed: int,
    folder: Path | None = None,
    allocation: dict[str, str] | None = None,
) -> Figures:
    """Run ``scenario`` under ``mode`` in ``folder`` (a temporary folder when None).
    A mode the configuration does not accept gives figures with ``unavailable`` set."""
    arrivals = (
        scenario.arrivals if scenario.arrivals is not None else poisson_arrivals(scenario, seed)
    )
    with ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="oversell-")))
        run_folder = folder / f"{scenario.name}-{mode}"
        run_folder.mkdir(parents=True, exist_ok=False)
        try:
            return Simulation(scenario, mode, run_folder, arrivals, allocation).run()
        except SharedModeUnavailable as err:
            return Figures(scenario.name, mode, unavailable=str(err))


# -- the report -----------------------------------------------------------------------------------

HEADER = (
    f"{'scenario':<9} {'mode':<7} {'demand':>7} {'accepted':>8} {'oversold':>8} "
    f"{'held ord':>8} {'held end':>8} {'lost':>6} {'lost %':>7} {'no stock':>8} "
    f"{'revenue':>12} {'run s':>6}"
)


def row_text(f: Figures) -> str:
    if f.unavailable is not None:
        return f"{f.scenario:<9} {f.mode:<7} unavailable: {f.unavailable}"
    return (
        f"{f.scenario:<9} {f.mode:<7} {f.demand_units:>7} {f.accepted_units:>8} "
        f"{f.oversold_units:>8} {f.held_orders:>8} {f.held_at_end:>8} {f.lost_units:>6} "
        f"{f.lost_share:>7.1%} {f.refused_no_stock_units:>8} {f.revenue:>12,.2f} "
        f"{f.seconds:>6.1f}"
    )


def verdict(full: Figures, shared: Figures) -> str:
    """Issue 15's goal for one scenario: ``shared`` (a shared run: "shared" or "latency")
    against ``full``."""
    label = f"{full.scenario} ({shared.mode})"
    if shared.unavailable is not None or full.unavailable is not None:
        return f"{label}: no verdict (shared mode unavailable)"
    if full.oversold_units == 0:
        return (
            f"{label}: no verdict: full oversold nothing, {shared.mode} "
            f"{shared.oversold_units}; {shared.mode} lost {shared.lost_share:.1%} of demand "
            "(goal <= 5%)"
        )
    cut = 1 - shared.oversold_units / full.oversold_units
    cut_text, cut_ok = f"oversold cut {cut:.1%} (goal >= 90%)", cut >= OVERSOLD_CUT_GOAL
    lost_ok = shared.lost_share <= LOST_SHARE_GOAL
    status = "PASS" if cut_ok and lost_ok else "MISS"
    return (
        f"{label}: {status}: {cut_text}; {shared.mode} lost {shared.lost_share:.1%} of "
        f"demand (goal <= 5%)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="repeatable (default: all: demo, hub, longtail)",
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=MODES,
        help="repeatable (default: full, shared and latency)",
    )
    parser.add_argument(
        "--days", type=float, default=7.0, help="simulated days counted (default 7)"
    )
    parser.add_argument(
        "--warmup-days",
        type=float,
        default=2.0,
        help="simulated days before them, not counted: the order book's history for velocity "
        "weights (default 2)",
    )
    parser.add_argument("--seed", type=int, default=42, help="demand seed (default 42)")
    parser.add_argument(
        "--demand-scale",
        type=float,
        default=1.0,
        help="multiply every scenario's order rates (and so its deliveries) by this (default 1)",
    )
    parser.add_argument(
        "--allocation",
        action="append",
        default=[],
        metavar="KEY=TOML",
        help="extra [allocation] setting for the shared runs, e.g. min_units=1 (repeatable)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument(
        "--keep", metavar="DIR", help="keep each run's configuration and databases in DIR"
    )
    args = parser.parse_args(argv)
    if args.days <= 0 or args.demand_scale <= 0 or args.warmup_days < 0:
        parser.error("--days and --demand-scale must be positive, --warmup-days at least 0")
    allocation: dict[str, str] = {}
    for item in args.allocation:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--allocation {item!r}: expected KEY=VALUE (a TOML value)")
        allocation[key.strip()] = value.strip()
    logging.getLogger("sellable").setLevel(logging.ERROR)
    scenarios = args.scenario or list(SCENARIOS)
    modes = args.mode or list(MODES)
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    print(
        f"oversell simulator: {args.days:g} simulated days counted after {args.warmup_days:g} "
        f"of warm-up, seed {args.seed}, demand scale {args.demand_scale:g}"
    )
    if "shared" in modes or "latency" in modes:
        extra = "".join(f", {key} = {value}" for key, value in allocation.items())
        print(f'shared runs: [allocation] mode = "shared"{extra} (other settings: defaults)')
    if "latency" in modes:
        print('latency runs: the same with headroom = "latency" and each channel\'s push_latency')
    print(HEADER)
    results: list[Figures] = []
    for name in scenarios:
        scenario = SCENARIOS[name](args.warmup_days + args.days, args.demand_scale)
        scenario.warmup_days = args.warmup_days
        by_mode: dict[str, Figures] = {}
        for mode in modes:
            figures = simulate(scenario, mode, args.seed, keep, allocation)
            by_mode[mode] = figures
            results.append(figures)
            print(row_text(figures), flush=True)
        for variant in ("shared", "latency"):
            if "full" in by_mode and variant in by_mode:
                print("  " + verdict(by_mode["full"], by_mode[variant]), flush=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(
            json.dumps([f.to_dict() for f in results], indent=2), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
