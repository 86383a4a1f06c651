"""The Amazon connector end to end: the daemon's own SyncEngine jobs against the emulator
over loopback HTTP, on the example catalog with warehouses ``main`` (own) and ``fba-us``
(FBA), on SQLite and PostgreSQL.

One ManualClock drives the emulator (token expiry, patch delay, feed processing, buckets)
and the framework's HTTP client (its rate limiter "sleeps" by advancing the clock), so
nothing waits for real and every quantity is exact.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sellable_amazon.connector import AmazonConnector

from sellable.emulators.amazon import AmazonEmulator
from sellable.emulators.base import ManualClock
from sellable.imports import import_stock
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.status import channel_status
from tests.connectors.cogs import BOTH_DATABASES, KIT, assert_kit_earned, cogs_line
from tests.imports import Store, open_store
from tests.sync.test_sync_engine import SELLABLE, SQLITE_ONLY, channel_toml

FBA = "fba-us"
MFN_SKUS = (
    "ALPHABET-BUNDLE",
    "GIFT-KIT-COFFEE",
    "GIFT-SET-COFFEE",
    "BEANS-12OZ",
    "MUG-CERAMIC",
    "CAMERA-STARTER-KIT",
)


def amazon_toml(emulator: AmazonEmulator) -> str:
    settings = "\n".join(f'{k} = "{v}"' for k, v in emulator.connector_settings().items())
    return (
        f'\n[[channels]]\ncode = "amazon"\nconnector = "amazon"\n'
        f'warehouses = ["{FBA}", "main"]\n[channels.settings]\n{settings}\n'
    )


@dataclass
class Amazon:
    store: Store
    emulator: AmazonEmulator
    clock: ManualClock
    engine: SyncEngine

    @property
    def connector(self) -> AmazonConnector:
        connector = self.engine.channels["amazon"].connector
        assert isinstance(connector, AmazonConnector)
        return connector

    def run(self, job: str, channel: str = "amazon") -> JobResult:
        result = self.engine.run_job(channel, job)
        assert result.ok, result.error
        return result

    def sellable(self, sku: str, warehouse: str) -> int:
        self.engine.book.refresh()
        return self.engine.book.live.core.sellable(sku, warehouse)

    def settle(self, seconds: float = 6.0) -> JobResult:
        """Let Amazon apply what it accepted, then push again to confirm it."""
        self.clock.advance(seconds)
        return self.run("push")

    def statuses(self) -> list[int]:
        return [status for _method, _path, status in self.emulator.request_log]

    def calls(self, method: str, prefix: str) -> list[str]:
        return [p for m, p, _s in self.emulator.request_log if m == method and p.startswith(prefix)]


OpenAmazon = Callable[..., Amazon]


@pytest.fixture
def open_amazon(config_file: Path) -> Iterator[OpenAmazon]:
    """``open_amazon(mfn=..., fba=..., shop=None, **emulator_options)``: the example catalog,
    the emulator with MFN offers ``mfn`` (all at 0) and FBA stock ``fba``, and a SyncEngine."""
    made: list[tuple[AmazonEmulator, SyncEngine, Store]] = []

    def open_(
        *,
        mfn: tuple[str, ...] = MFN_SKUS,
        fba: dict[str, int] | None = None,
        shop: Any = None,
        **options: Any,
    ) -> Amazon:
        clock = ManualClock(datetime.now(UTC))
        emulator = AmazonEmulator(clock=clock, **options)
        emulator.start()
        for sku in mfn:
            emulator.add_listing(sku, 0)
        for sku, units in (fba if fba is not None else {"ALPHABET-BUNDLE": 8}).items():
            emulator.add_fba_listing(sku, units)
        with config_file.open("a") as handle:
            handle.write(amazon_toml(emulator) + f'fba_warehouse = "{FBA}"\n')
            if shop is not None:
                handle.write(channel_toml(shop.url))
        store = open_store(config_file)
        store.load_examples()
        engine = SyncEngine(
            store.engine,
            store.settings,
            http_options={"clock": clock.monotonic, "sleep": clock.advance, "backoff_base": 0.0},
        )
        made.append((emulator, engine, store))
        return Amazon(store, emulator, clock, engine)

    yield open_
    for emulator, engine, store in made:
        engine.close()
        emulator.stop()
        store.engine.dispose()


# -- FBA and MFN side by side --------------------------------------------------------------------


def test_mfn_sells_components_while_fba_shows_only_prepacked_units(
    open_amazon: OpenAmazon,
) -> None:
    # seed-003: ALPHABET-BUNDLE = 50 buildable from ABC/DEF/GHI in main, 8 pre-packed at FBA.
    # GIFT-KIT-COFFEE: 0 pre-packed at FBA although its three components are there.
    amazon = open_amazon(
        fba={
            "ALPHABET-BUNDLE": 8,
            "GIFT-KIT-COFFEE": 0,
            "BEANS-12OZ": 40,
            "MUG-CERAMIC": 40,
            "SCOOP-WOOD": 40,
        }
    )

    results = {r.job: r for r in amazon.engine.run_once()}
    assert all(r.ok for r in results.values()), results
    assert results["reconcile"].counts["retry"] == len(MFN_SKUS)  # ACCEPTED is not applied
    assert amazon.emulator.quantities()["ALPHABET-BUNDLE"] == 0
    confirmed = amazon.settle()

    assert (confirmed.counts["pushed"], confirmed.counts["retry"]) == (len(MFN_SKUS), 0)
    shown = amazon.emulator.quantities()
    assert {sku: shown[sku] for sku in MFN_SKUS} == {sku: SELLABLE[sku] for sku in MFN_SKUS}
    assert shown["ALPHABET-BUNDLE"] == 50  # MFN: from components in main only
    assert shown["GIFT-KIT-COFFEE"] == 30
    assert amazon.sellable("ALPHABET-BUNDLE", FBA) == 8  # FBA: pre-packed only
    assert amazon.sellable("GIFT-KIT-COFFEE", FBA) == 0  # FBA cannot assemble
    assert amazon.sellable("BEANS-12OZ", FBA) == 40
    # Amazon owns the FBA offers' quantities: nothing was ever sent for them.
    assert amazon.calls("PATCH", "/listings/")
    assert not [p for p in amazon.calls("PATCH", "/listings/") if p.endswith("SCOOP-WOOD")]
    assert amazon.run("push").counts["pending"] == 0


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_orders_lower_the_warehouse_that_fulfils_them_and_fba_counts_are_not_doubled(
    open_amazon: OpenAmazon, testshop: Any
) -> None:
    testshop.state.add_listing("L-DEF", "DEF")
    amazon = open_amazon(shop=testshop)
    amazon.engine.run_once()
    amazon.settle()
    assert amazon.emulator.quantities()["ALPHABET-BUNDLE"] == 50

    # One order on the other channel: 3 x DEF (the bundle's bottleneck) from main.
    testshop.state.place_order("W-1", [("DEF", 3)])
    amazon.run("orders", "shop")
    amazon.run("push")
    amazon.settle()
    assert amazon.emulator.quantities()["ALPHABET-BUNDLE"] == 47
    assert amazon.sellable("ALPHABET-BUNDLE", FBA) == 8

    # An FBA order of 3 bundles: Amazon moves 3 from fulfillable to reserved.
    order = amazon.emulator.place_order([("ALPHABET-BUNDLE", 3)], fulfilled_by="AMAZON")
    amazon.run("orders")
    assert amazon.sellable("ALPHABET-BUNDLE", FBA) == 5
    assert amazon.sellable("ALPHABET-BUNDLE", "main") == 47  # MFN untouched
    assert amazon.run("push").counts["pending"] == 0
    # The next FBA stock pull reports fulfillable 5 + 3 reserved for that order: once.
    stock = amazon.run("stock")
    assert stock.counts["skus"] == 1
    assert amazon.sellable("ALPHABET-BUNDLE", FBA) == 5
    amazon.run("stock")
    assert amazon.sellable("ALPHABET-BUNDLE", FBA) == 5

    # Shipped: reserved units leave Amazon's counts and our allocation alike.
    amazon.emulator.ship_order(order)
    amazon.clock.advance(1)
    amazon.run("orders")
    amazon.run("stock")
    assert amazon.sellable("ALPHABET-BUNDLE", FBA) == 5

    # A merchant-fulfilled Amazon order is booked against main.
    amazon.emulator.place_order([("MUG-CERAMIC", 2)])
    amazon.run("orders")
    assert amazon.sellable("MUG-CERAMIC", "main") == 28
    amazon.run("push")
    amazon.settle()
    shown = amazon.emulator.quantities()
    assert (shown["MUG-CERAMIC"], shown["GIFT-KIT-COFFEE"], shown["ALPHABET-BUNDLE"]) == (
        28,
        28,
        47,
    )


# -- limits, throttling, tokens ------------------------------------------------------------------


@SQLITE_ONLY
def test_published_limits_are_obeyed_with_zero_429s_at_steady_state(
    open_amazon: OpenAmazon,
) -> None:
    amazon = open_amazon()
    amazon.engine.run_once()
    amazon.settle()
    started = amazon.clock.monotonic()

    for _ in range(25):  # searchOrders: 0.0056/s, burst 20
        amazon.run("orders")

    assert amazon.emulator.calls["searchOrders"] == 26
    assert 429 not in amazon.statuses()
    assert amazon.engine.channels["amazon"].http.throttled == 0
    # 26 calls with the published burst of 20, one token kept in hand (19): the last 7
    # waited one period each (1/0.0056 s).
    waited = amazon.clock.monotonic() - started
    assert 6 / 0.0056 <= waited <= 7 / 0.0056 + 1


@SQLITE_ONLY
def test_recovers_from_injected_429s_and_from_an_expired_token(
    open_amazon: OpenAmazon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    amazon = open_amazon()
    amazon.emulator.place_order([("MUG-CERAMIC", 1)])
    amazon.emulator.inject({"status": 429, "path": "/orders/"}, {"status": 429, "path": "/orders/"})

    orders = amazon.run("orders")

    assert orders.counts["orders"] == 1
    assert amazon.engine.channels["amazon"].http.throttled == 2
    assert amazon.statuses().count(429) == 2

    amazon.emulator.expire_tokens()  # revoked behind our back: 403, one refresh, retried
    assert amazon.run("listings").counts["listings"] == len(MFN_SKUS)
    assert amazon.statuses().count(403) == 1
    assert amazon.connector.client.token_refreshes == 2

    amazon.clock.advance(3600)  # expiry known in advance: refreshed before, no 403
    amazon.run("stock")
    assert amazon.statuses().count(403) == 1
    assert amazon.connector.client.token_refreshes == 3
    # No secret in any log line, retries and refusals included.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "attempt 1 failed" in logged
    for secret in ("sellable-emulator-client-secret", "Atzr|", "Atza|"):
        assert secret not in logged


# -- feeds ---------------------------------------------------------------------------------------

ALL_SKUS = tuple(SELLABLE)


@SQLITE_ONLY
def test_a_feed_with_invalid_messages_retries_only_those(open_amazon: OpenAmazon) -> None:
    amazon = open_amazon(mfn=ALL_SKUS, fba={})
    amazon.connector.patch_limit = 2  # more than 2 changes go through a feed
    amazon.emulator.refuse("MUG-CERAMIC")
    amazon.emulator.refuse("SCOOP-WOOD", "The field 'quantity' is not allowed for this offer.")

    first = amazon.engine.run_once()[-1]
    assert first.counts["retry"] == len(ALL_SKUS)
    assert len(amazon.calls("POST", "/feeds/2021-06-30/feeds")) == 1
    report = amazon.settle()

    assert (report.counts["pushed"], report.counts["failed"]) == (len(ALL_SKUS) - 2, 2)
    (status,) = channel_status(amazon.engine)
    assert sorted(status["failing_listings"], key=lambda x: x["listing_id"]) == [
        {"listing_id": "MUG-CERAMIC", "error": "90220: 'size' is required but not supplied."},
        {
            "listing_id": "SCOOP-WOOD",
            "error": "90220: The field 'quantity' is not allowed for this offer.",
        },
    ]

    amazon.emulator.accept("MUG-CERAMIC")
    amazon.emulator.accept("SCOOP-WOOD")
    before = len(amazon.emulator.request_log)
    again = amazon.run("push")
    sent = [p for m, p, _s in list(amazon.emulator.request_log)[before:] if m == "PATCH"]
    assert again.counts["pending"] == 2
    assert sorted(p.rsplit("/", 1)[1] for p in sent) == ["MUG-CERAMIC", "SCOOP-WOOD"]
    amazon.settle()

    assert amazon.emulator.quantities() == dict(SELLABLE)
    assert amazon.run("push").counts["pending"] == 0
    assert len(amazon.calls("POST", "/feeds/2021-06-30/feeds")) == 1


@SQLITE_ONLY
def test_a_feed_stuck_in_progress_is_escalated_without_blocking_other_pushes(
    open_amazon: OpenAmazon, caplog: pytest.LogCaptureFixture
) -> None:
    amazon = open_amazon(mfn=ALL_SKUS, fba={}, feed_stuck=True)
    amazon.connector.patch_limit = 2
    amazon.connector.stuck_after = 600.0
    amazon.engine.run_once()
    (feed_id,) = amazon.emulator.feeds
    amazon.clock.advance(300)
    assert amazon.run("push").counts["retry"] == len(ALL_SKUS)  # in progress: wait

    amazon.clock.advance(301)
    with caplog.at_level(logging.WARNING, logger="sellable.amazon"):
        escalated = amazon.run("push")

    assert (escalated.counts["failed"], escalated.counts["retry"]) == (len(ALL_SKUS), 0)
    # WARNING and above only: an earlier test of this worker may have left the "sellable"
    # loggers at INFO, so that the INFO lines of the steps before are captured too.
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "sellable.amazon" and r.levelno >= logging.WARNING
    ]
    assert warnings == [
        f"channel=amazon: feed {feed_id} still IN_PROGRESS after 10 min; its "
        f"{len(ALL_SKUS)} listing(s) are reported failed and sent again"
    ]
    (status,) = channel_status(amazon.engine)
    assert len(status["failing_listings"]) == len(ALL_SKUS)
    assert status["failing_listings"][0]["error"] == f"feed {feed_id} stuck IN_PROGRESS for 10 min"
    failed = amazon.engine.metrics.registry.get_sample_value(
        "sellable_pushed_listings_total", {"channel": "amazon", "outcome": "failed"}
    )
    assert failed == len(ALL_SKUS)

    # Amazon recovers; the next push sends a fresh feed, which completes, while the stuck one
    # is no longer waited for.
    amazon.emulator.feed_stuck = False
    amazon.run("push")
    assert len(amazon.emulator.feeds) == 2
    done = amazon.settle(10)
    assert done.counts["pushed"] == len(ALL_SKUS)
    assert amazon.emulator.quantities() == dict(SELLABLE)
    assert amazon.emulator.feeds[feed_id].status == "IN_PROGRESS"


# -- what a kit earned ---------------------------------------------------------------------------


@BOTH_DATABASES
def test_amazon_cogs_shows_the_proceeds_a_kit_earned(open_amazon: OpenAmazon) -> None:
    amazon = open_amazon(mfn=(), fba={}, tax_rate="0.20")
    amazon.emulator.add_listing(KIT, 30, price="27.00")
    # 3 x 27.00 = 81.00 (ITEM), a 10 % promotion (DISCOUNT -8.10), 14.58 TAX (not revenue)
    order_id = amazon.emulator.place_order([(KIT, 3)], promotion_percent="10")
    amazon.emulator.ship_order(order_id)

    amazon.run("orders")

    assert_kit_earned(cogs_line(amazon.store.config, "amazon", order_id), "72.90", "USD", 3)


# -- product types across restarts ---------------------------------------------------------------


@SQLITE_ONLY
def test_product_types_learned_before_a_restart_are_not_read_again(
    open_amazon: OpenAmazon,
) -> None:
    amazon = open_amazon(mfn=ALL_SKUS, fba={})
    amazon.engine.run_once()  # its push reads every productType (getListingsItem)
    amazon.settle()
    assert amazon.emulator.quantities() == dict(SELLABLE)

    # The daemon stops before any later listing refresh. Meanwhile every offer is set to 0
    # on Amazon (so each one is pushed again), and MUG-CERAMIC becomes another product.
    amazon.engine.close()
    with amazon.emulator.lock:
        for sku in ALL_SKUS:
            amazon.emulator.listings[sku].quantity = 0
        mug = amazon.emulator.listings["MUG-CERAMIC"]
        mug.asin, mug.product_type = "B0MUG00002", "KITCHEN"
    clock = amazon.clock
    engine = SyncEngine(
        amazon.store.engine,
        amazon.store.settings,
        http_options={"clock": clock.monotonic, "sleep": clock.advance, "backoff_base": 0.0},
    )

    def stored(sku: str) -> Any:
        rows = engine.state.matched_listings("amazon")
        return next(json.loads(r["extra"]) for r in rows if r["listing_id"] == sku)

    def type_reads(since: int) -> list[str]:
        return [
            path.rsplit("/", 1)[1]
            for method, path, _status in list(amazon.emulator.request_log)[since:]
            if method == "GET" and path.startswith("/listings/2021-08-01/items/")
        ]

    try:
        before = len(amazon.emulator.request_log)
        assert engine.run_job("amazon", "listings").ok  # a new connector: nothing in memory
        assert stored("BEANS-12OZ") == stored("MUG-CERAMIC") == {"productType": "HOME"}

        connector = engine.channels["amazon"].connector
        assert isinstance(connector, AmazonConnector)
        connector.patch_limit = 2  # more than 2 changes go through a feed
        first = engine.run_job("amazon", "push")
        assert first.counts["retry"] == len(ALL_SKUS)
        clock.advance(30.0)
        confirmed = engine.run_job("amazon", "push")
        assert type_reads(before) == []  # every product type came from the store
        # MUG-CERAMIC's stored type is now wrong: refused, and no longer trusted.
        assert (confirmed.counts["pushed"], confirmed.counts["failed"]) == (len(ALL_SKUS) - 1, 1)
        assert stored("MUG-CERAMIC") == {"productType": ""}

        before = len(amazon.emulator.request_log)
        again = engine.run_job("amazon", "push")  # one change: patchListingsItem
        assert (again.counts["pending"], again.counts["retry"]) == (1, 1)
        assert type_reads(before) == ["MUG-CERAMIC"]  # getListingsItem, summaries
        assert stored("MUG-CERAMIC") == {"productType": "KITCHEN"}
        clock.advance(6.0)
        assert engine.run_job("amazon", "push").counts["pushed"] == 1
        assert amazon.emulator.quantities() == dict(SELLABLE)
    finally:
        engine.close()


@SQLITE_ONLY
def test_a_reconcile_right_after_the_listing_refresh_takes_the_reports_quantities(
    open_amazon: OpenAmazon,
) -> None:
    amazon = open_amazon(mfn=ALL_SKUS, fba={})
    amazon.engine.run_once()
    amazon.settle()
    with amazon.emulator.lock:  # set by hand in Seller Central
        amazon.emulator.listings["BEANS-12OZ"].quantity = 3
    amazon.run("listings")

    searched = amazon.emulator.calls.get("searchListingsItems", 0)
    reconciled = amazon.run("reconcile")
    assert amazon.emulator.calls.get("searchListingsItems", 0) == searched  # nothing read again
    assert (reconciled.counts["drifted"], reconciled.counts["pending"]) == (1, 1)
    amazon.settle()
    assert amazon.emulator.quantities() == dict(SELLABLE)

    # Ten minutes on, the report is too old: the read-back asks Amazon (20 SKUs a call).
    amazon.clock.advance(AmazonConnector.report_read_back_age + 1)
    assert amazon.run("reconcile").counts["drifted"] == 0
    assert amazon.emulator.calls.get("searchListingsItems", 0) == searched + -(-len(ALL_SKUS) // 20)


@SQLITE_ONLY
def test_a_feed_applied_after_the_stock_went_back_is_recorded_and_corrected(
    open_amazon: OpenAmazon,
) -> None:
    """A feed carries new quantities; before it is done the stock goes back, so the
    listings want what was last confirmed. Amazon still applies the feed: its quantities are
    recorded as what the offers show, and the wanted ones are pushed again at once."""
    amazon = open_amazon(mfn=ALL_SKUS, fba={})
    amazon.connector.patch_limit = 2  # more than 2 changes go through a feed
    amazon.engine.run_once()
    amazon.settle()
    assert amazon.emulator.quantities() == dict(SELLABLE)

    changed = ("BEANS-12OZ", "MUG-CERAMIC", "SCOOP-WOOD")
    counted = {sku: amazon.store.stock_row(sku, "main") for sku in changed}
    count = "sku,warehouse,on_hand\n"
    more = count + "".join(f"{sku},main,{row[0] + 7}\n" for sku, row in counted.items() if row)
    back = count + "".join(f"{sku},main,{row[0]}\n" for sku, row in counted.items() if row)
    import_stock(amazon.store.engine, amazon.store.settings, amazon.store.csv("more.csv", more))
    sent = amazon.run("push")
    assert sent.counts["retry"] >= 3 and len(amazon.emulator.feeds) == 2
    import_stock(amazon.store.engine, amazon.store.settings, amazon.store.csv("back.csv", back))
    assert amazon.run("push").counts["pending"] == 0  # in step again, the feed still queued

    corrected = amazon.settle(30)  # the feed is done: its quantities are now on Amazon
    assert corrected.counts["pushed"] == sent.counts["retry"]
    assert corrected.counts["pending"] == 0 and corrected.counts["retry"] >= 3  # sent again
    amazon.settle()
    assert amazon.emulator.quantities() == dict(SELLABLE)
    assert amazon.run("push").counts["pending"] == 0


@SQLITE_ONLY
def test_a_push_run_while_a_feed_is_queued_polls_it_and_hands_nothing_over(
    open_amazon: OpenAmazon,
) -> None:
    amazon = open_amazon(mfn=ALL_SKUS, fba={})
    amazon.connector.patch_limit = 2  # more than 2 changes go through a feed
    registry = amazon.engine.metrics.registry

    def batches() -> float | None:
        return registry.get_sample_value("sellable_push_batch_seconds_count", {"channel": "amazon"})

    amazon.engine.run_once()  # the feed is submitted: one push batch
    assert batches() == 1
    before = len(amazon.emulator.request_log)

    queued = amazon.run("push")
    amazon.clock.advance(30.0)
    done = amazon.run("push")

    assert (queued.counts["retry"], queued.counts["pushed"]) == (len(ALL_SKUS), 0)
    assert (done.counts["retry"], done.counts["pushed"]) == (0, len(ALL_SKUS))
    assert batches() == 1  # neither run handed a listing to push_quantities
    assert [
        path.rsplit("/", 1)[0] for _m, path, _s in list(amazon.emulator.request_log)[before:]
    ] == [
        "/feeds/2021-06-30/feeds",  # getFeed: IN_PROGRESS
        "/feeds/2021-06-30/feeds",  # getFeed: DONE
        "/feeds/2021-06-30/documents",  # getFeedDocument: the processing report
        "/s3/reports",
    ]
    assert amazon.emulator.quantities() == dict(SELLABLE)


@SQLITE_ONLY
def test_a_push_submits_its_feeds_with_collection_paused_and_leaves_it_on(
    open_amazon: OpenAmazon,
) -> None:
    """Amazon confirms later: its push only submits, so the push job keeps the collection
    it paused to build the items paused through the submission (sellable.sync.bulk) --
    but not while the connector reads the product types it lacks, a long run of requests
    (searchListingsItems, 20 SKUs at 5/s: 1,000 s for 100,000), whose cycles would wait."""
    amazon = open_amazon(mfn=ALL_SKUS, fba={})
    amazon.connector.patch_limit = 2  # more than 2 changes go through a feed
    collecting: list[bool] = []
    searching: list[bool] = []
    create_feed = amazon.emulator._op_createFeed
    search = amazon.emulator._op_searchListingsItems

    def observed(params: dict[str, Any], body: Any) -> Any:
        collecting.append(gc.isenabled())
        return create_feed(params, body)

    def observed_search(params: dict[str, Any], body: Any) -> Any:
        searching.append(gc.isenabled())
        return search(params, body)

    amazon.emulator._op_createFeed = observed  # type: ignore[method-assign]
    amazon.emulator._op_searchListingsItems = observed_search  # type: ignore[method-assign]
    gc.enable()
    amazon.run("listings")  # the report: no product types

    first = amazon.run("push")
    confirmed = amazon.settle()

    assert collecting == [False]
    assert searching == [True]  # the product types of the feed's 5 SKUs, collection on
    assert gc.isenabled()
    assert first.counts["retry"] == len(ALL_SKUS)
    assert confirmed.counts["pushed"] == len(ALL_SKUS)
    assert amazon.emulator.quantities() == dict(SELLABLE)


PUSH_MODULE = os.path.join("sellable", "sync", "jobs", "push.py")


@SQLITE_ONLY
def test_no_collection_runs_inside_a_push_job_of_a_channel_that_confirms_later(
    open_amazon: OpenAmazon,
) -> None:
    """The whole push job of a channel that confirms later runs with collection paused,
    not only its bulk steps: resumed between them, collection traversed the 100,000 rows
    the job still held (0.2-0.3 s each time). Collection is made to run at every
    allocation here, and each one is traced back to the code that triggered it. (The
    product types are known, as after the first push: reading them resumes collection.)"""
    amazon = open_amazon(mfn=ALL_SKUS, fba={})
    amazon.connector.patch_limit = 2  # more than 2 changes go through a feed
    amazon.engine.run_once()
    amazon.settle()
    changed = ("BEANS-12OZ", "MUG-CERAMIC", "SCOOP-WOOD")
    counted = {sku: amazon.store.stock_row(sku, "main") for sku in changed}
    more = "sku,warehouse,on_hand\n" + "".join(
        f"{sku},main,{row[0] + 7}\n" for sku, row in counted.items() if row
    )
    import_stock(amazon.store.engine, amazon.store.settings, amazon.store.csv("more.csv", more))
    inside: list[str] = []

    def traced(phase: str, _info: dict[str, int]) -> None:
        if phase != "start":
            return
        frame = sys._getframe(1)
        while frame is not None:  # inside the job's body (push._push), from any depth?
            code = frame.f_code
            if code.co_name == "_push" and code.co_filename.endswith(PUSH_MODULE):
                inside.append(sys._getframe(1).f_code.co_name)
                return
            frame = frame.f_back

    thresholds = gc.get_threshold()
    gc.enable()
    gc.callbacks.append(traced)
    gc.set_threshold(1, 1, 1)
    try:
        first = amazon.run("push")
        confirmed = amazon.settle()
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(traced)

    assert inside == []
    assert gc.isenabled()
    assert (first.counts["retry"], len(amazon.emulator.feeds)) == (5, 2)  # with 2 kits
    assert confirmed.counts["pushed"] == 5
