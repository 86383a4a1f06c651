"""The sync engine end to end: the testshop connector (pip-installed, found through its entry
point) against its shop on loopback, with the example catalog, on SQLite and PostgreSQL.

Jobs run in-process with a fake sleep, so retries and the rate limiter never wait; the
shop's fault queue plays a flaky channel. Every quantity is exact: in warehouse ``main``
the example catalog gives the sellable values of :data:`SELLABLE`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import event, select, update

from sellable.orders import list_orders
from sellable.store import schema
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.status import channel_status
from tests.imports import Store, open_store

if TYPE_CHECKING:
    from sellable_testshop.server import ShopState, TestShopServer

# Sellable in warehouse ``main`` after importing examples/*.csv (see ARCHITECTURE.md).
SELLABLE = {
    "BEANS-12OZ": 50,
    "MUG-CERAMIC": 30,
    "SCOOP-WOOD": 100,
    "GIFT-SET-COFFEE": 40,  # 10 prepackaged + min(50, 30, 100) from components
    "GIFT-KIT-COFFEE": 30,  # min(50, 30, 100)
    "COMP-A": 50,
    "COMP-B": 30,
    "FAQ-KIT": 30,
    "FAQ-ASSEMBLY": 25,  # min(50 // 2, 30)
    "ABC": 120,
    "DEF": 50,
    "GHI": 75,
    "ALPHABET-BUNDLE": 50,  # its 8 prepackaged units are in fba-us, not in main
    "DSLR-CAMERA-BLACK": 10,  # 12 on hand, 2 locked
    "LENS-18-55": 4,
    "LENS-18-135": 3,
    "CAMERA-BAG": 20,
    "CAMERA-STARTER-KIT": 7,  # min(10, 4 + 3, 20)
}
LISTED = (
    "BEANS-12OZ",
    "MUG-CERAMIC",
    "SCOOP-WOOD",
    "GIFT-SET-COFFEE",
    "GIFT-KIT-COFFEE",
    "FAQ-KIT",
    "CAMERA-STARTER-KIT",
)
TOKEN = "secret-token"


def channel_toml(url: str, *, token: str = TOKEN, options: str = "", settings: str = "") -> str:
    """A ``[[channels]]`` table for the test shop at ``url``."""
    return (
        f'\n[[channels]]\ncode = "shop"\nconnector = "testshop"\nwarehouses = ["main"]\n'
        f'{options}\n[channels.settings]\nbase_url = "{url}"\ntoken = "{token}"\n{settings}\n'
    )


def listing(sku: str) -> str:
    return f"L-{sku}"


def sellable_of(*skus: str, **changed: int) -> dict[str, int]:
    """Listing id -> expected quantity: :data:`SELLABLE`, with ``changed`` (``_`` for ``-``)."""
    values = dict(SELLABLE)
    values.update({sku.replace("_", "-"): value for sku, value in changed.items()})
    return {listing(sku): values[sku] for sku in skus}


def subprocess_env(base: dict[str, str]) -> dict[str, str]:
    """``base`` without SELLABLE_* overrides from the outside world."""
    return {
        k: v
        for k, v in base.items()
        if not k.startswith("SELLABLE_") or k == "SELLABLE_TEST_POSTGRES_URL"
    }


def sellable_cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m sellable --config CONFIG ARGS`` in a subprocess that sees the plugin."""
    return subprocess.run(
        [sys.executable, "-m", "sellable", "--config", str(config), *args],
        env=subprocess_env(env),
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def levels(store: Store, sku: str) -> tuple[int, int]:
    """(on hand, allocated) of ``sku`` in main."""
    row = store.stock_row(sku, "main")
    assert row is not None, f"no stock row for {sku}"
    return row[0], row[2]


def allocation_moves(store: Store) -> dict[str, int]:
    """Reference -> number of Allocation movements, to prove nothing was allocated twice."""
    found: dict[str, int] = {}
    for move in store.movements():
        if move[2] == "Allocation":
            found[str(move[7])] = found.get(str(move[7]), 0) + 1
    return found


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests whose subject is not the store (the command line's output, a shop's answer)."""


def backends(cases: dict[str, Any], *, postgresql: tuple[str, ...]) -> pytest.MarkDecorator:
    """Parametrize ``database_url`` and ``case``: every case on SQLite, the cases named in
    ``postgresql`` on PostgreSQL too (the others differ in nothing the store sees)."""
    params = [pytest.param("sqlite", value, id=f"sqlite-{name}") for name, value in cases.items()]
    params += [
        pytest.param("postgresql", cases[name], id=f"postgresql-{name}", marks=pytest.mark.postgres)
        for name in postgresql
    ]
    return pytest.mark.parametrize(("database_url", "case"), params, indirect=["database_url"])


@dataclass
class Sync:
    """The example store, the shop and an engine over them."""

    store: Store
    shop: TestShopServer
    engine: SyncEngine
    sleeps: list[float] = field(default_factory=list)

    @property
    def state(self) -> ShopState:
        return self.shop.state

    def run(self, job: str) -> JobResult:
        return self.engine.run_job("shop", job)

    def run_once(self) -> dict[str, JobResult]:
        return {r.job: r for r in self.engine.run_once()}

    def quantities(self, *listing_ids: str) -> dict[str, int]:
        """The shop's quantity per listing (all listings when none are named)."""
        with self.state.lock:
            return {
                lid: item["quantity"]
                for lid, item in self.state.listings.items()
                if not listing_ids or lid in listing_ids
            }

    def pushes(self) -> list[dict[str, int]]:
        with self.state.lock:
            return [dict(batch) for batch in self.state.pushes]

    def levels(self, sku: str) -> tuple[int, int]:
        return levels(self.store, sku)

    def orders(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as connection:
            return list_orders(connection)

    def allocation_moves(self) -> dict[str, int]:
        return allocation_moves(self.store)

    def cursor(self) -> datetime | None:
        c = schema.channel_cursors.c
        with self.store.engine.connect() as connection:
            value = connection.execute(
                select(c.value).where((c.channel == "shop") & (c.job == "orders"))
            ).scalar()
        return None if value is None else datetime.fromisoformat(value)

    def place(self, order_id: str, lines: list[tuple[str, int]], updated_at: datetime) -> None:
        """An order on the shop with a given update time."""
        self.state.place_order(order_id, lines)
        with self.state.lock:
            self.state.orders[order_id]["updated_at"] = updated_at.isoformat()


OpenSync = Callable[..., Sync]


@pytest.fixture
def open_sync(config_file: Path, testshop: TestShopServer) -> Iterator[OpenSync]:
    """``open_sync(options=..., settings=..., listed=..., now=..., **http_options)``: the
    example catalog on the test database, the shop listing ``listed`` (all at 0), and a
    SyncEngine with a fake sleep. Later calls in a test open another engine on the same
    store and shop (a restart); the channel options of the first call stay."""
    stores: list[Store] = []
    engines: list[SyncEngine] = []

    def open_(
        *,
        options: str = "",
        settings: str = "",
        token: str = TOKEN,
        listed: tuple[str, ...] = LISTED,
        now: Callable[[], datetime] | None = None,
        **http_options: Any,
    ) -> Sync:
        if not stores:
            with config_file.open("a") as handle:
                handle.write(
                    channel_toml(testshop.url, token=token, options=options, settings=settings)
                )
            store = open_store(config_file)
            store.load_examples()
            stores.append(store)
            for sku in listed:
                testshop.state.add_listing(listing(sku), sku)
        sleeps: list[float] = []
        engine = SyncEngine(
            stores[0].engine,
            stores[0].settings,
            http_options={"sleep": sleeps.append, "backoff_base": 0.0, **http_options},
            **({"now": now} if now else {}),
        )
        engines.append(engine)
        return Sync(stores[0], testshop, engine, sleeps)

    yield open_
    for engine in engines:
        engine.close()
    for store in stores:
        store.engine.dispose()


# -- pushing only what changed -------------------------------------------------------------------


def test_sync_pushes_only_changed_quantities_and_never_repeats_a_confirmed_push(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()

    results = sync.run_once()

    assert all(r.ok for r in results.values()), results
    assert results["reconcile"].counts["pushed"] == len(LISTED)
    assert sync.pushes() == [sellable_of(*LISTED)]
    assert sync.quantities() == sellable_of(*LISTED)

    assert sync.run("push").counts == {
        "listings": 7,
        "pending": 0,
        "pushed": 0,
        "failed": 0,
        "retry": 0,
    }
    assert sync.run("reconcile").counts["drifted"] == 0
    sync.run_once()
    restarted = open_sync()  # last confirmed pushes live in the store, not in the engine
    restarted.run("push")
    restarted.run_once()
    assert sync.pushes() == [sellable_of(*LISTED)]


def test_sync_retries_a_refused_listing_while_the_rest_of_its_batch_is_confirmed(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.state.refuse.add(listing("MUG-CERAMIC"))

    first = sync.run_once()["reconcile"]
    again = sync.run("push")

    others = [sku for sku in LISTED if sku != "MUG-CERAMIC"]
    assert first.ok and again.ok  # a refused item is reported, not a failed job
    assert (first.counts["pushed"], first.counts["failed"]) == (len(others), 1)
    assert (again.counts["pending"], again.counts["pushed"], again.counts["failed"]) == (1, 0, 1)
    assert sync.pushes() == [sellable_of(*others), {}]
    (status,) = channel_status(sync.engine)
    assert status["failing_listings"] == [{"listing_id": "L-MUG-CERAMIC", "error": "refused"}]
    assert status["pending_pushes"] == 1

    sync.state.refuse.clear()
    sync.run("push")
    sync.run("push")

    assert sync.pushes()[2:] == [{"L-MUG-CERAMIC": 30}]
    assert sync.quantities() == sellable_of(*LISTED)
    (status,) = channel_status(sync.engine)
    assert (status["failing_listings"], status["pending_pushes"]) == ([], 0)


def test_sync_pushes_more_than_50_listings_in_batches_the_shop_accepts(
    open_sync: OpenSync,
) -> None:
    sync = open_sync(listed=())
    skus = list(SELLABLE)
    expected = {f"B-{n:03d}": SELLABLE[skus[n % len(skus)]] for n in range(120)}
    for n in range(120):
        sync.state.add_listing(f"B-{n:03d}", skus[n % len(skus)])

    result = sync.run_once()["reconcile"]

    assert result.ok, result.error
    assert (result.counts["pushed"], result.counts["failed"]) == (120, 0)
    assert [len(batch) for batch in sync.pushes()] == [50, 50, 20]
    assert sync.quantities() == expected


# -- a flaky channel -----------------------------------------------------------------------------

FAULTS = {
    "429-retry-after-0": {"status": 429, "retry_after": "0"},
    "500": {"status": 500},
    "timeout": {"kind": "timeout", "seconds": 1.0},
    "connection-reset": {"kind": "reset"},
    "malformed-json": {"kind": "malformed"},
}
HTTP_TIMEOUT = 0.25  # the client gives up long before a "timeout" fault answers


def test_sync_jobs_succeed_after_retrying_each_kind_of_fault(open_sync: OpenSync) -> None:
    sync = open_sync(timeout=HTTP_TIMEOUT)
    sync.state.place_order("1", [("MUG-CERAMIC", 3)])
    # One fault in front of each job's first request, every kind once.
    plan = [
        ("listings", "429-retry-after-0"),
        ("orders", "500"),
        ("reconcile", "timeout"),  # its GET /quantities
        ("orders", "connection-reset"),
        ("push", "malformed-json"),  # its POST /quantities
    ]

    outcomes = []
    for job, fault in plan:
        if job == "orders":
            sync.state.place_order(fault, [("BEANS-12OZ", 2)])
        sync.state.faults.append(dict(FAULTS[fault]))
        outcomes.append(sync.run(job))

    assert [(r.job, r.ok, r.error) for r in outcomes] == [(job, True, None) for job, _ in plan]
    assert not sync.state.faults
    assert 0.0 in sync.sleeps  # Retry-After: 0 was honoured
    assert sync.allocation_moves() == {
        "order shop:1": 1,
        "order shop:500": 1,
        "order shop:connection-reset": 1,
    }
    assert sync.levels("BEANS-12OZ") == (50, 4)
    assert sync.quantities() == sellable_of(
        *LISTED, MUG_CERAMIC=27, BEANS_12OZ=46, GIFT_SET_COFFEE=37, GIFT_KIT_COFFEE=27
    )


@backends(FAULTS, postgresql=("500",))
def test_sync_job_failing_on_a_lasting_fault_catches_up_at_the_next_run(
    open_sync: OpenSync, case: dict[str, Any]
) -> None:
    fault = case
    sync = open_sync(timeout=HTTP_TIMEOUT, max_attempts=2)
    sync.run_once()
    sync.state.place_order("1", [("MUG-CERAMIC", 3)])
    sync.state.place_order("2", [("GIFT-KIT-COFFEE", 2)])

    runs: dict[str, list[JobResult]] = {}
    for job in ("orders", "push"):
        sync.state.faults.extend(dict(fault) for _ in range(3))  # outlasts 2 attempts
        runs[job] = [sync.run(job)]
        while not runs[job][-1].ok and len(runs[job]) < 5:
            runs[job].append(sync.run(job))

    for job, results in runs.items():
        first, last = results[0], results[-1]
        assert not first.ok, f"{job} should fail while the fault lasts"
        assert str(first.error).startswith("shop: "), first.error
        assert (last.ok, last.skipped) == (True, None), f"{job} did not recover: {last}"
    assert not sync.state.faults
    assert sync.allocation_moves() == {"order shop:1": 1, "order shop:2": 3}
    assert sync.levels("MUG-CERAMIC") == (30, 5)
    assert sync.quantities() == sellable_of(
        *LISTED,
        MUG_CERAMIC=25,
        BEANS_12OZ=48,
        SCOOP_WOOD=98,
        GIFT_SET_COFFEE=35,
        GIFT_KIT_COFFEE=25,
    )
    assert sync.store.ledger_mismatches() == []


def test_sync_order_pull_broken_off_midway_loses_and_doubles_nothing(
    open_sync: OpenSync,
) -> None:
    """Page 1 is committed, page 2 fails; the cursor stays, the next pull reads all again."""
    sync: Sync

    def break_after_first_page(response: httpx.Response) -> None:
        if response.request.url.path == "/orders" and not broken:
            broken.append(response.request.url.params["page"])
            sync.state.token = "rotated"  # every later request is refused: HTTP 401

    broken: list[str] = []
    sync = open_sync(settings="page_size = 2", on_response=break_after_first_page)
    for n in range(1, 8):
        sync.state.place_order(str(n), [("MUG-CERAMIC", 1), ("SCOOP-WOOD", n)])

    failed = sync.run("orders")
    assert (failed.ok, broken) == (False, ["1"])
    assert "HTTP 401" in str(failed.error)
    assert [o["order_id"] for o in sync.orders()] == ["1", "2"]
    assert sync.cursor() is None

    sync.state.token = TOKEN
    resumed = sync.run("orders")
    sync.run("listings")
    sync.run("push")

    assert resumed.ok, resumed.error
    assert sorted(o["order_id"] for o in sync.orders()) == [str(n) for n in range(1, 8)]
    assert sync.allocation_moves() == {f"order shop:{n}": 2 for n in range(1, 8)}
    assert sync.levels("MUG-CERAMIC") == (30, 7)
    assert sync.levels("SCOOP-WOOD") == (100, 28)
    assert sync.quantities("L-MUG-CERAMIC", "L-SCOOP-WOOD") == {
        "L-MUG-CERAMIC": 23,
        "L-SCOOP-WOOD": 72,
    }
    assert sync.store.ledger_mismatches() == []


# -- orders --------------------------------------------------------------------------------------


def test_sync_order_pulled_again_in_the_overlap_window_counts_once(open_sync: OpenSync) -> None:
    sync = open_sync()
    sync.state.place_order("1", [("MUG-CERAMIC", 2)])

    first, second = sync.run("orders"), sync.run("orders")
    sync.state.set_order_status("1", "completed")
    shipped, again = sync.run("orders"), sync.run("orders")

    assert [r.counts["orders"] for r in (first, second, shipped, again)] == [1, 1, 1, 1]
    assert len(sync.orders()) == 1
    assert sync.allocation_moves() == {"order shop:1": 1}
    assert [m[2:4] for m in sync.store.movements() if m[7] == "order shop:1"] == [
        ("Allocation", -2),
        ("Sale", -2),
    ]
    assert sync.levels("MUG-CERAMIC") == (28, 0)
    assert sync.store.ledger_mismatches() == []


def test_sync_order_on_two_pages_of_one_pull_counts_once(open_sync: OpenSync) -> None:
    """An order inserted before page 2 shifts the shop's pages: order 2 comes twice."""
    sync: Sync
    first_update = datetime.now(UTC) - timedelta(minutes=1)

    def insert_before_page_two(response: httpx.Response) -> None:
        if response.request.url.path == "/orders" and not inserted:
            inserted.append(True)
            sync.place("0", [("BEANS-12OZ", 1)], first_update - timedelta(seconds=1))

    inserted: list[bool] = []
    sync = open_sync(settings="page_size = 2", on_response=insert_before_page_two)
    for n in range(1, 6):
        sync.place(str(n), [("MUG-CERAMIC", n)], first_update + timedelta(seconds=n))

    result = sync.run("orders")

    assert result.ok, result.error
    assert result.counts["orders"] == 5  # pages [1, 2] [2, 3] [4, 5]: order 2 counted once
    assert sorted(o["order_id"] for o in sync.orders()) == ["1", "2", "3", "4", "5"]
    assert sync.levels("MUG-CERAMIC") == (30, 15)
    assert sync.allocation_moves() == {f"order shop:{n}": 1 for n in range(1, 6)}

    sync.run("orders")  # the overlap window brings the order that slipped in

    assert sorted(o["order_id"] for o in sync.orders()) == ["0", "1", "2", "3", "4", "5"]
    assert sync.levels("BEANS-12OZ") == (50, 1)
    assert sync.allocation_moves() == {f"order shop:{n}": 1 for n in range(6)}
    assert sync.store.ledger_mismatches() == []


CANCELLED_VIEWS: dict[str, list[tuple[str, int]] | None] = {
    "lines-as-placed": None,
    "quantities-zeroed": [("MUG-CERAMIC", 0), ("GIFT-KIT-COFFEE", 0), ("GIFT-SET-COFFEE", 0)],
    "quantities-changed": [("MUG-CERAMIC", 1), ("GIFT-KIT-COFFEE", 9), ("GIFT-SET-COFFEE", 20)],
    "lines-dropped": [],
}


@backends(CANCELLED_VIEWS, postgresql=("quantities-changed",))
def test_sync_cancelled_order_releases_everything_whatever_quantities_it_reports(
    open_sync: OpenSync, case: list[tuple[str, int]] | None
) -> None:
    view = case
    sync = open_sync()
    # 3 mugs; a kit of 2 (components); 12 gift sets: 10 prepackaged + 2 built on demand.
    sync.state.place_order(
        "1", [("MUG-CERAMIC", 3), ("GIFT-KIT-COFFEE", 2), ("GIFT-SET-COFFEE", 12)]
    )
    sync.run_once()
    open_levels = {
        sku: sync.levels(sku) for sku in ("MUG-CERAMIC", "BEANS-12OZ", "GIFT-SET-COFFEE")
    }
    open_quantities = sync.quantities()

    if view is not None:
        with sync.state.lock:
            sync.state.orders["1"]["lines"] = [
                {"id": f"1-{n}", "sku": sku, "quantity": qty}
                for n, (sku, qty) in enumerate(view, 1)
            ]
    sync.state.set_order_status("1", "cancelled")
    results = sync.run_once()

    assert open_levels == {
        "MUG-CERAMIC": (28, 5),
        "BEANS-12OZ": (48, 2),
        "GIFT-SET-COFFEE": (12, 12),
    }
    assert open_quantities == sellable_of(
        *LISTED,
        MUG_CERAMIC=23,
        BEANS_12OZ=46,
        SCOOP_WOOD=96,
        GIFT_KIT_COFFEE=23,
        GIFT_SET_COFFEE=23,
    )
    assert results["orders"].ok, results["orders"].error
    # Builds are one way: the 2 gift sets stay built; every allocation is released.
    assert {
        sku: sync.levels(sku)
        for sku in ("MUG-CERAMIC", "BEANS-12OZ", "SCOOP-WOOD", "GIFT-SET-COFFEE")
    } == {
        "MUG-CERAMIC": (28, 0),
        "BEANS-12OZ": (48, 0),
        "SCOOP-WOOD": (98, 0),
        "GIFT-SET-COFFEE": (12, 0),
    }
    assert sync.quantities() == sellable_of(
        *LISTED,
        MUG_CERAMIC=28,
        BEANS_12OZ=48,
        SCOOP_WOOD=98,
        GIFT_KIT_COFFEE=28,
        GIFT_SET_COFFEE=40,
    )
    ((order),) = sync.orders()
    assert order["status"] == "cancelled"
    assert {line["status"] for line in order["lines"]} == {"cancelled"}
    assert sync.store.ledger_mismatches() == []


def test_sync_order_line_with_unknown_sku_is_held_and_reported_not_failed(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.state.place_order("1", [("MUG-CERAMIC", 1), ("NO-SUCH-SKU", 2)])

    result = sync.run_once()["orders"]
    again = sync.run_once()["orders"]  # the overlap window brings it back

    for pulled in (result, again):
        assert (pulled.ok, pulled.error) == (True, None)
        assert pulled.reports["unknown_skus"] == ["NO-SUCH-SKU"]
        assert pulled.counts["held_lines"] == 1
    ((order),) = sync.orders()
    assert [(x["sku"], x["quantity"], x["status"], x["hold_reason"]) for x in order["lines"]] == [
        ("MUG-CERAMIC", 1, "allocated", None),
        ("NO-SUCH-SKU", 2, "held", "unknown SKU"),
    ]
    assert sync.levels("MUG-CERAMIC") == (30, 1)
    assert sync.allocation_moves() == {"order shop:1": 1}
    assert sync.quantities(listing("MUG-CERAMIC")) == {"L-MUG-CERAMIC": 29}


def test_sync_order_lowers_the_kits_and_assemblies_sharing_its_component(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.run_once()
    sync.state.place_order("1", [("MUG-CERAMIC", 3)])

    sync.run_once()

    # Only the listings whose quantity changed are pushed: the mug and what a mug limits.
    assert sync.pushes()[1:] == [
        {"L-MUG-CERAMIC": 27, "L-GIFT-SET-COFFEE": 37, "L-GIFT-KIT-COFFEE": 27},
    ]
    assert sync.quantities() == sellable_of(
        *LISTED, MUG_CERAMIC=27, GIFT_SET_COFFEE=37, GIFT_KIT_COFFEE=27
    )


# -- channel rules, dry run, reconcile -----------------------------------------------------------

RULE_SKUS = (
    "BEANS-12OZ",
    "MUG-CERAMIC",
    "FAQ-ASSEMBLY",
    "CAMERA-STARTER-KIT",
    "LENS-18-55",
    "LENS-18-135",
)
# sellable:  50, 30, 25, 7, 4, 3
RULES = {
    "allocation_percent": ("allocation_percent = 50", (25, 15, 12, 3, 2, 1)),
    "safety_stock": ("safety_stock = 5", (45, 25, 20, 2, 0, 0)),
    "max_quantity": ("max_quantity = 25", (25, 25, 25, 7, 4, 3)),
    "zero_below": ("zero_below = 5", (50, 30, 25, 7, 0, 0)),
    "all-four": (
        "allocation_percent = 50\nsafety_stock = 2\nmax_quantity = 20\nzero_below = 5",
        (20, 13, 10, 0, 0, 0),
    ),
}


@backends(RULES, postgresql=("all-four",))
def test_sync_applies_channel_rules_to_pushed_quantities(
    open_sync: OpenSync, case: tuple[str, tuple[int, ...]]
) -> None:
    options, expected = case
    sync = open_sync(options=options, listed=RULE_SKUS)

    sync.run_once()

    assert sync.quantities() == {listing(s): q for s, q in zip(RULE_SKUS, expected, strict=True)}


def test_sync_dry_run_pushes_nothing(open_sync: OpenSync) -> None:
    sync = open_sync(options="dry_run = true")
    sync.state.place_order("1", [("MUG-CERAMIC", 3)])

    results = sync.run_once()
    push = sync.run("push")

    assert all(r.ok for r in results.values())
    assert results["reconcile"].counts["would_push"] == len(LISTED)
    assert push.counts["would_push"] == len(LISTED)
    assert sync.pushes() == []
    assert sync.quantities() == dict.fromkeys(map(listing, LISTED), 0)
    assert sync.levels("MUG-CERAMIC") == (30, 3)  # orders are still pulled


def test_sync_reconcile_pushes_only_drifted_listings(open_sync: OpenSync) -> None:
    sync = open_sync()
    sync.run_once()
    with sync.state.lock:
        sync.state.listings["L-SCOOP-WOOD"]["quantity"] = 3  # someone edited it on the shop

    pushed = sync.run("push")
    reconciled = sync.run("reconcile")

    assert pushed.counts["pushed"] == 0  # a push trusts the last confirmed value
    assert (reconciled.counts["drifted"], reconciled.counts["pushed"]) == (1, 1)
    assert sync.pushes()[1:] == [{"L-SCOOP-WOOD": 100}]
    assert sync.quantities() == sellable_of(*LISTED)


def test_sync_reconcile_rewrites_no_listing_whose_channel_shows_what_it_was_told(
    open_sync: OpenSync,
) -> None:
    """Stock moved while the channel kept the last confirmed quantities (a daemon start
    after a while down): the read-back finds every listing drifted from its offer but not
    from what it was told, so it writes none of them; all are pushed, as before."""
    sync = open_sync(options="dry_run = true")
    sync.run("listings")
    with sync.store.engine.begin() as connection:  # as if every offer had been confirmed
        connection.execute(
            update(schema.listings)
            .where(schema.listings.c.channel == "shop")
            .values(last_pushed=0, channel_quantity=0)
        )
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE LISTINGS"):
            statements.append(statement)

    event.listen(sync.store.engine, "before_cursor_execute", seen)
    try:
        reconciled = sync.run("reconcile")
    finally:
        event.remove(sync.store.engine, "before_cursor_execute", seen)

    assert (reconciled.counts["drifted"], reconciled.counts["would_push"]) == (7, 7)
    assert statements == []
    with sync.store.engine.connect() as connection:
        kept = connection.execute(
            select(schema.listings.c.last_pushed, schema.listings.c.channel_quantity).where(
                schema.listings.c.channel == "shop"
            )
        ).all()
    assert sorted(kept) == [(0, 0)] * 7


@SQLITE_ONLY
def test_sync_listing_refresh_that_sees_a_drift_has_the_next_push_fix_it(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.run_once()
    with sync.state.lock:
        sync.state.listings["L-SCOOP-WOOD"]["quantity"] = 3

    sync.run("listings")
    pushed = sync.run("push")

    assert pushed.counts["pushed"] == 1
    assert sync.pushes()[1:] == [{"L-SCOOP-WOOD": 100}]


@SQLITE_ONLY
def test_sync_pushes_a_listing_that_comes_back_with_another_quantity(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.run_once()
    with sync.state.lock:
        del sync.state.listings["L-MUG-CERAMIC"]
    removed = sync.run("listings")
    sync.state.add_listing("L-MUG-CERAMIC", "MUG-CERAMIC", 0)  # listed again, at 0
    back = sync.run("listings")

    pushed = sync.run("push")

    assert (removed.counts["removed"], back.counts["new"]) == (1, 1)
    assert pushed.counts["pushed"] == 1
    assert sync.quantities("L-MUG-CERAMIC") == {"L-MUG-CERAMIC": 30}


# -- listing reports and the command line --------------------------------------------------------


def test_sync_reports_unmatched_and_missing_listings(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync(listed=("BEANS-12OZ", "MUG-CERAMIC"))
    sync.state.add_listing("L-FOREIGN-1", "FOREIGN-1", 4)
    sync.state.add_listing("L-FOREIGN-2", None, 2)
    missing = sorted(set(SELLABLE) - {"BEANS-12OZ", "MUG-CERAMIC"})

    results = sync.run_once()
    cli = sellable_cli(config_file, plugin_env, "sync", "--once")
    status = sellable_cli(config_file, plugin_env, "status", "--json")

    assert all(r.ok for r in results.values())
    assert results["listings"].reports == {
        "unmatched_listings": ["FOREIGN-1", "L-FOREIGN-2"],
        "missing_listings": missing,
        "duplicate_listings": [],
    }
    assert (cli.returncode, status.returncode) == (0, 0), cli.stderr + status.stderr
    printed = cli.stdout.splitlines()
    assert "    unmatched listings: 2 (FOREIGN-1, L-FOREIGN-2)" in printed
    assert f"    missing listings: 16 ({', '.join(missing)})" in printed
    (report,) = json.loads(status.stdout)
    assert report["unmatched_listings"] == {"count": 2, "skus": ["FOREIGN-1", "L-FOREIGN-2"]}
    assert report["missing_listings"] == {"count": 16, "skus": missing}
    assert report["listings"] == 4
    assert report["pending_pushes"] == 0
    assert sync.quantities() == {
        "L-BEANS-12OZ": 50,
        "L-MUG-CERAMIC": 30,
        "L-FOREIGN-1": 4,  # not ours: never touched
        "L-FOREIGN-2": 2,
    }


@SQLITE_ONLY
def test_sync_once_exits_1_when_a_job_fails(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync(token="wrong-token")

    cli = sellable_cli(config_file, plugin_env, "sync", "--once")

    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert (
        "  listings: FAILED: shop: GET /listings: HTTP 401: credentials refused "
        '({"error": "unauthorized"})' in cli.stdout
    )
    assert "wrong-token" not in cli.stdout + cli.stderr
    assert sync.pushes() == []


# -- the order cursor ----------------------------------------------------------------------------


def test_sync_first_order_pull_looks_back_initial_lookback(open_sync: OpenSync) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    sync = open_sync(options='initial_lookback = "7d"', now=lambda: start)
    sync.place("too-old", [("MUG-CERAMIC", 1)], start - timedelta(days=7, seconds=1))
    sync.place("in-window", [("MUG-CERAMIC", 2)], start - timedelta(days=6))

    result = sync.run("orders")

    assert result.counts["orders"] == 1
    assert [o["order_id"] for o in sync.orders()] == ["in-window"]
    assert sync.cursor() == start - timedelta(days=6)  # the newest update seen
    assert sync.levels("MUG-CERAMIC") == (30, 2)


def test_sync_order_cursor_never_passes_the_runs_start(open_sync: OpenSync) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    clock = [start]
    sync = open_sync(options='order_overlap = "10m"', now=lambda: clock[0])
    sync.place("1", [("MUG-CERAMIC", 1)], start - timedelta(hours=1))
    sync.place("ahead", [("MUG-CERAMIC", 2)], start + timedelta(minutes=30))  # shop clock ahead

    first = sync.run("orders")
    first_cursor = sync.cursor()
    clock[0] = start + timedelta(hours=1)
    second = sync.run("orders")

    assert first.counts["orders"] == 2
    assert first_cursor == start
    # From start - overlap the order dated ahead is read again, and counted once.
    assert second.counts["orders"] == 1
    assert sync.cursor() == start + timedelta(minutes=30)
    assert sync.levels("MUG-CERAMIC") == (30, 3)
    assert sync.allocation_moves() == {"order shop:1": 1, "order shop:ahead": 1}


@SQLITE_ONLY
def test_sync_push_queue_gauge_is_empty_once_every_push_is_confirmed(open_sync: OpenSync) -> None:
    sync = open_sync()

    result = sync.run_once()["reconcile"]

    assert (result.counts["pending"], result.counts["pushed"]) == (len(LISTED), len(LISTED))
    depth = sync.engine.metrics.registry.get_sample_value(
        "sellable_push_queue_depth", {"channel": "shop"}
    )
    assert depth == 0


@SQLITE_ONLY
def test_sync_order_time_without_zone_is_read_as_utc(open_sync: OpenSync) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    sync = open_sync(now=lambda: start)
    sync.place("1", [("MUG-CERAMIC", 2)], start - timedelta(hours=1))
    with sync.state.lock:  # the shop gives its times without an offset
        stamp = sync.state.orders["1"]["updated_at"]
        sync.state.orders["1"]["updated_at"] = stamp.removesuffix("+00:00")

    result = sync.run("orders")

    assert (result.ok, result.error) == (True, None)
    assert sync.levels("MUG-CERAMIC") == (30, 2)
    assert sync.cursor() == start - timedelta(hours=1)


# -- explain --channel: why a channel is offered its number ---------------------------------------


def test_explain_channel_shows_rules_and_matches_the_pushed_quantity(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync(options="safety_stock = 2\nallocation_percent = 50")
    sync.state.place_order("1", [("MUG-CERAMIC", 4)])
    sync.run_once()

    cli = sellable_cli(
        config_file, plugin_env, "explain", "GIFT-SET-COFFEE", "--channel", "shop", "--json"
    )
    text = sellable_cli(config_file, plugin_env, "explain", "GIFT-SET-COFFEE", "--channel", "shop")

    assert (cli.returncode, text.returncode) == (0, 0), cli.stderr + text.stderr
    report = json.loads(cli.stdout)
    (entry,) = report["listings"]
    # 10 assembled + min(50 beans, 26 mugs, 100 scoops) = 36; 50% = 18; less 2 = 16
    assert [(w["warehouse"], w["sellable"]) for w in entry["warehouses"]] == [("main", 36)]
    assert entry["rules"] == [
        {"rule": "sellable over the channel's warehouses", "quantity": 36},
        {"rule": "allocation 50%", "quantity": 18},
        {"rule": "less safety stock 2", "quantity": 16},
    ]
    assert entry["quantity"] == entry["last_pushed"] == 16
    assert entry["in_step"] is True
    assert sync.quantities(listing("GIFT-SET-COFFEE")) == {listing("GIFT-SET-COFFEE"): 16}
    mug = entry["warehouses"][0]["tree"]["children"][1]
    assert (mug["sku"], mug["sellable"], mug["limiting"]) == ("MUG-CERAMIC", 26, True)
    lines = text.stdout.splitlines()
    assert lines[0] == "GIFT-SET-COFFEE on channel shop (testshop)"
    assert f"    {'=> offered to the channel':<44} {16:>8}" in lines
    assert any(line.startswith("    last confirmed by the channel: 16 at ") for line in lines)


def test_explain_channel_for_a_sku_not_listed_says_what_it_would_be_offered(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync(listed=("BEANS-12OZ",))
    sync.run_once()

    cli = sellable_cli(config_file, plugin_env, "explain", "FAQ-ASSEMBLY", "--channel", "shop")
    wrong = sellable_cli(config_file, plugin_env, "explain", "FAQ-ASSEMBLY", "--channel", "nope")
    both = sellable_cli(config_file, plugin_env, "explain", "FAQ-ASSEMBLY")

    assert cli.returncode == 0, cli.stderr
    assert "  not listed on this channel; if it were, it would be offered:" in cli.stdout
    assert f"    {'=> offered to the channel':<44} {25:>8}" in cli.stdout.splitlines()
    assert wrong.returncode == 3  # an unknown channel is bad input, as an unknown SKU
    assert "unknown channel 'nope' (known: shop)" in wrong.stderr
    assert both.returncode == 2
    assert "give exactly one of --warehouse CODE or --channel CODE" in both.stderr


def test_sync_second_listing_of_one_sku_is_reported(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync(listed=("BEANS-12OZ",))
    sync.state.add_listing("L-A-MUG", "MUG-CERAMIC", 0)
    sync.state.add_listing("L-B-MUG", "MUG-CERAMIC", 7)

    results = sync.run_once()
    status = sellable_cli(config_file, plugin_env, "status", "--json")
    text = sellable_cli(config_file, plugin_env, "status")

    assert results["listings"].reports["duplicate_listings"] == [
        "MUG-CERAMIC: L-B-MUG (as L-A-MUG)"
    ]
    assert results["listings"].counts["duplicates"] == 1
    assert results["listings"].reports["unmatched_listings"] == []
    assert sync.quantities("L-A-MUG", "L-B-MUG") == {"L-A-MUG": 30, "L-B-MUG": 30}
    (report,) = json.loads(status.stdout)
    assert report["duplicate_listings"] == {
        "count": 1,
        "listings": ["MUG-CERAMIC: L-A-MUG, L-B-MUG"],
    }
    assert (
        "  duplicate listings (same units offered twice): 1 (MUG-CERAMIC: L-A-MUG, L-B-MUG)"
        in text.stdout.splitlines()
    )
