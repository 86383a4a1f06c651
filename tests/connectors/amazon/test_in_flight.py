"""What the connector keeps in flight between push calls, against the emulator on loopback
(no database): one path per SKU at a time, stuck patches, and a restart forgetting it all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sellable_amazon.connector import AmazonConnector, AmazonSettings

from sellable.emulators.amazon import AmazonEmulator
from sellable.emulators.base import ManualClock
from sellable.sdk import ChannelHttp, ConnectorContext, Listing, PushItem, PushResult, PushStatus

SKUS = [f"S-{n:02d}" for n in range(25)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 1, tzinfo=UTC))


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[AmazonEmulator]:
    emulator = AmazonEmulator(clock=clock, patch_delay=5.0)
    for sku in SKUS:
        emulator.add_listing(sku, 0)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


Connect = Callable[[], AmazonConnector]


@pytest.fixture
def connect(emulator: AmazonEmulator, clock: ManualClock) -> Iterator[Connect]:
    """A new connector instance (a daemon start) each call, on the emulator's clock."""
    made: list[ChannelHttp] = []

    def make() -> AmazonConnector:
        http = ChannelHttp("amazon", clock=clock.monotonic, sleep=clock.advance)
        made.append(http)
        connector = AmazonConnector(
            AmazonSettings(**emulator.connector_settings()),
            ConnectorContext("amazon", ("main",), http),
        )
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        return connector

    yield make
    for http in made:
        http.close()


def items(quantity: int, skus: list[str] = SKUS) -> list[PushItem]:
    return [PushItem(Listing(sku, sku, extra={"productType": "HOME"}), quantity) for sku in skus]


def by_id(results: list[PushResult]) -> dict[str, PushResult]:
    return {r.listing_id: r for r in results}


def test_a_new_quantity_waits_for_the_feed_that_carries_the_old_one(
    emulator: AmazonEmulator, clock: ManualClock, connect: Connect
) -> None:
    connector = connect()
    (feed_id,) = {r.message for r in connector.push_quantities(items(5))}
    assert feed_id is not None and feed_id.startswith("in feed ")

    waiting = connector.push_quantities(items(7, ["S-00"]))
    clock.advance(6)  # the feed is done: S-00 = 5 applied, then 7 is sent by patch
    after = connector.push_quantities(items(7, ["S-00"]))
    clock.advance(5)
    confirmed = connector.push_quantities(items(7, ["S-00"]))
    others = by_id(connector.push_quantities(items(5, SKUS[1:])))

    assert waiting[0].status is PushStatus.RETRY
    assert str(waiting[0].message).startswith("waiting for feed ")
    assert after[0].status is PushStatus.RETRY and "accepted" in str(after[0].message)
    assert confirmed == [PushResult.ok("S-00")]
    assert {r.status for r in others.values()} == {PushStatus.OK}
    assert emulator.quantities() == {"S-00": 7, **dict.fromkeys(SKUS[1:], 5)}


def test_a_patch_never_applied_is_reported_failed_after_the_threshold(
    clock: ManualClock, connect: Connect, emulator: AmazonEmulator
) -> None:
    emulator.patch_delay = 10 * 3600
    connector = connect()
    connector.stuck_after = 3600

    connector.push_quantities(items(3, ["S-01"]))
    clock.advance(3599)
    still = connector.push_quantities(items(3, ["S-01"]))
    clock.advance(2)
    stuck = connector.push_quantities(items(3, ["S-01"]))
    resent = connector.push_quantities(items(3, ["S-01"]))

    assert still[0].status is PushStatus.RETRY
    assert stuck[0].status is PushStatus.FAILED
    assert str(stuck[0].message).endswith("accepted but not applied after 60 min")
    assert resent[0].status is PushStatus.RETRY  # sent again
    assert emulator.calls["patchListingsItem"] == 2


def test_after_a_restart_unconfirmed_items_are_simply_sent_again(
    clock: ManualClock, connect: Connect, emulator: AmazonEmulator
) -> None:
    connect().push_quantities(items(4))  # a feed; then the daemon restarts

    restarted = connect()
    again = restarted.push_quantities(items(4))
    clock.advance(6)
    done = restarted.push_quantities(items(4))

    assert {r.status for r in again} == {PushStatus.RETRY}
    assert len(emulator.feeds) == 2
    assert {r.status for r in done} == {PushStatus.OK}
    assert emulator.quantities() == dict.fromkeys(SKUS, 4)


def test_pushes_in_flight_polls_each_feed_once_and_settles_it_once_with_its_quantities(
    clock: ManualClock, connect: Connect, emulator: AmazonEmulator
) -> None:
    connector = connect()
    emulator.refuse("S-03")
    connector.push_quantities(items(4))  # one feed of 25 changes
    before = emulator.calls.get("getFeed", 0)

    queued = connector.pushes_in_flight()
    clock.advance(6)
    done = connector.pushes_in_flight()
    after = connector.pushes_in_flight()

    assert (list(queued.settled), dict(queued.waiting)) == ([], dict.fromkeys(SKUS, 4))
    assert emulator.calls["getFeed"] - before == 2  # once per call while it was queued
    outcomes = {result.listing_id: (result.status, quantity) for result, quantity in done.settled}
    assert outcomes == {
        **{sku: (PushStatus.OK, 4) for sku in SKUS if sku != "S-03"},
        "S-03": (PushStatus.FAILED, 4),
    }
    assert dict(done.waiting) == {}
    assert (list(after.settled), dict(after.waiting)) == ([], {})  # told once, then forgotten
    assert emulator.calls["getFeed"] - before == 2
    # settled here, so push_quantities no longer holds them: a push sends anew
    emulator.accept("S-03")
    resent = connector.push_quantities(items(4, ["S-03"]))
    assert resent[0].status is PushStatus.RETRY and emulator.calls["patchListingsItem"] == 1


def test_feeds_behind_one_still_processed_are_polled_only_every_later_feed_poll(
    clock: ManualClock, connect: Connect, emulator: AmazonEmulator
) -> None:
    more = [f"T-{n:02d}" for n in range(25)]
    for sku in more:
        emulator.add_listing(sku, 0)
    emulator.feed_queue_seconds = 20.0  # each feed done 23.025 s after it was created
    connector = connect()
    assert connector.later_feed_poll == 10.0
    connector.push_quantities(items(4))  # feed A
    clock.advance(1)
    connector.push_quantities(items(6, more))  # feed B, done 1 s after A
    polls: list[int] = []
    settled: list[dict[str, int]] = []

    def in_flight() -> None:
        before = emulator.calls.get("getFeed", 0)
        found = connector.pushes_in_flight()
        polls.append(emulator.calls.get("getFeed", 0) - before)
        assert {r.status for r, _ in found.settled} <= {PushStatus.OK}
        settled.append({r.listing_id: q for r, q in found.settled})

    in_flight()  # A queued; B never asked yet
    clock.advance(connector.feed_poll)
    in_flight()  # A still queued: B not asked again
    clock.advance(10 - connector.feed_poll)
    in_flight()  # B asked 10 s ago: due again
    clock.advance(12.1)
    in_flight()  # A done: B asked in the same call (not done yet)
    clock.advance(1)
    in_flight()  # B done

    assert polls == [2, 1, 2, 2, 1]
    assert settled == [{}, {}, {}, dict.fromkeys(SKUS, 4), dict.fromkeys(more, 6)]
    assert emulator.quantities() == {**dict.fromkeys(SKUS, 4), **dict.fromkeys(more, 6)}


def test_back_to_back_runs_keep_get_feeds_burst_for_feeds_finishing_together(
    clock: ManualClock, connect: Connect, emulator: AmazonEmulator
) -> None:
    """Push runs every 0.25 s while 4 feeds are processed (as a daemon's runs come back to
    back): each feed is polled at most every feed_poll (getFeed's 2/s), so the burst is
    still there when the feeds finish moments apart and one run confirms all 4 without
    waiting for a getFeed request."""
    groups = [[f"{name}-{n:02d}" for n in range(25)] for name in "ABCD"]
    for sku in (sku for group in groups for sku in group):
        emulator.add_listing(sku, 0)
    emulator.feed_queue_seconds = 25.0  # each feed done 28.025 s after it was created
    connector = connect()
    assert connector.feed_poll == 0.5
    for quantity, group in enumerate(groups, start=1):
        connector.push_quantities(items(quantity, group))  # one feed each, 0.05 s apart
        clock.advance(0.05)
    get_feed = connector.client.http.limiters["getFeed"]
    settled_in: list[int] = []  # the run that settled each listing
    shown: dict[str, int] = {}
    runs = 0
    while len(shown) < 100 and runs < 200:
        clock.advance(0.25)
        runs += 1
        found = connector.pushes_in_flight()
        for result, quantity in found.settled:
            assert result.status is PushStatus.OK
            shown[result.listing_id] = quantity
            settled_in.append(runs)

    assert get_feed.waited == 0.0
    assert settled_in == [113] * 100  # at 28.45 s (A polled every 0.5 s); all done by 28.175 s
    expected = {sku: q for q, group in enumerate(groups, start=1) for sku in group}
    assert shown == expected
    assert emulator.quantities() == {**dict.fromkeys(SKUS, 0), **expected}
