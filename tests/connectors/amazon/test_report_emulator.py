"""The listing refresh through the Reports API against the emulator on loopback, on the
emulator's clock (the limiter's waits advance it: no sleeps): the same listings as the
Listings Items API shows, a cancelled and a fatal report, and a push after a refresh."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sellable_amazon.connector import AmazonConnector, AmazonSettings

from sellable.emulators.amazon import AmazonEmulator
from sellable.emulators.base import ManualClock
from sellable.errors import ChannelError
from sellable.sdk import ChannelHttp, ConnectorContext, Listing, PushItem, PushStatus
from tests.connectors.amazon.test_reports import refresh


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[AmazonEmulator]:
    emulator = AmazonEmulator(clock=clock, report_queue_seconds=30.0, report_base_seconds=60.0)
    for n in range(45):
        emulator.add_listing(f"MFN-{n:03d}", n % 7, f"Mug {n}")
    for n in range(5):
        emulator.add_fba_listing(f"FBA-{n:03d}", 10 + n)  # fulfilled by Amazon: not ours
    emulator.add_fba_listing("MFN-001", 9)  # FBA stock beside a merchant-fulfilled offer
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def connector(emulator: AmazonEmulator, clock: ManualClock) -> Iterator[AmazonConnector]:
    http = ChannelHttp("amazon", clock=clock.monotonic, sleep=clock.advance)
    connector = AmazonConnector(
        AmazonSettings(**emulator.connector_settings()),
        ConnectorContext("amazon", ("main",), http),
    )
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate
    yield connector
    http.close()


def paged_listings(connector: AmazonConnector) -> list[Listing]:
    """The listings as searchListingsItems pages show them (the refresh before reports)."""
    found: list[Listing] = []
    token: str | None = None
    while True:
        data = connector.client.search_listings(token)
        found.extend(x for x in map(connector._listing, data["items"]) if x is not None)
        token = (data.get("pagination") or {}).get("nextToken")
        if token is None:
            return found


def test_refresh_by_report_gives_the_listings_the_paged_api_gives(
    connector: AmazonConnector, emulator: AmazonEmulator, clock: ManualClock
) -> None:
    started = clock.monotonic()

    listings, _calls = refresh(connector)

    expected = [
        Listing(f"MFN-{n:03d}", f"MFN-{n:03d}", warehouses=("main",), quantity=n % 7)
        for n in range(45)
    ]
    assert listings == expected
    without_extra = [
        Listing(x.listing_id, x.sku, x.parent_id, x.warehouses, x.quantity)
        for x in paged_listings(connector)
    ]
    assert without_extra == expected
    # 30 s queued + 60 s + 0.1 ms x 51 listings, polled by getReport at 2/s (burst 14)
    waited = clock.monotonic() - started
    assert 90.0 <= waited <= 90.6
    assert emulator.calls["createReport"] == 1 and emulator.calls["getReportDocument"] == 1
    assert emulator.throttled_count == 0
    assert [status for status, _range in emulator.report_downloads] == [206]


def test_a_cancelled_report_gives_no_listings_and_a_fatal_one_fails(
    connector: AmazonConnector, emulator: AmazonEmulator
) -> None:
    emulator.cancel_next_report()
    assert refresh(connector)[0] == []

    emulator.fail_next_report()
    with pytest.raises(ChannelError, match="ended FATAL"):
        refresh(connector)

    assert len(refresh(connector)[0]) == 45  # the next one reads again


def test_a_push_after_a_report_refresh_reads_product_types_and_is_applied(
    connector: AmazonConnector, emulator: AmazonEmulator, clock: ManualClock
) -> None:
    listings, _calls = refresh(connector)
    items = [PushItem(x, 50 + i) for i, x in enumerate(listings)]  # 45 > 20: one feed

    results = connector.push_quantities(items)
    clock.advance(120)
    results = connector.push_quantities(items)

    assert {r.status for r in results} == {PushStatus.OK}
    assert emulator.calls["searchListingsItems"] == 3  # 45 SKUs, 20 per product-type lookup
    shown = emulator.quantities()
    assert [shown[x.listing_id] for x in listings] == [50 + i for i in range(45)]
