"""The reconcile job: reload the stock from the store (unless this engine loaded it within
the last minute), read the channel's quantities back where it can, forget the confirmed
pushes that drifted, and push."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sellable.core.rules import Offer
from sellable.sdk import Capability, Listing
from sellable.sync.bulk import collection_paused
from sellable.sync.jobs.base import Channel, JobResult
from sellable.sync.jobs.push import listing_of, push_pending

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

READ_BACK_BATCH = 250
#: A core this engine loaded more recently is not loaded again (see SyncEngine.reload_live):
#: the scheduler runs the reconcile right after a daemon start's listing refresh.
FRESH_LOAD = timedelta(minutes=1)


def reconcile(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    with engine.live.lock, collection_paused():
        engine.reload_live(unless_within=FRESH_LOAD)
    rows, desired = engine.listings_and_offers(channel)
    listings: dict[str, Listing] = {}
    result.counts["drifted"] = read_back(engine, channel, rows, desired, listings)
    push_pending(engine, channel, result, rows, desired, listings)


def read_back(
    engine: SyncEngine,
    channel: Channel,
    rows: list[dict[str, Any]],
    desired: dict[str, Offer],
    listings: dict[str, Listing] | None = None,
) -> int:
    """Forget the last confirmed value of listings whose channel quantity drifted (or of
    all, when the connector cannot read quantities back), so they are pushed again.

    Only what changed is written: a quantity read that the store already holds, and a
    last confirmed value the channel still shows (the listing is pushed anyway, since it
    differs from the offer, and with the same previous quantity), are left as they are. A
    daemon start after every offer moved would otherwise rewrite 100,000 rows twice
    before its first push.

    ``listings`` receives the SDK listings handed to the connector, by listing id, for
    the push that follows to reuse (see :func:`~sellable.sync.jobs.push.push_pending`)."""
    if Capability.READ_QUANTITIES not in channel.connector.capabilities:
        for row in rows:
            row["last_pushed"] = None
        return len(rows)
    current: dict[str, int] = {}
    size = channel.connector.max_read_batch or READ_BACK_BATCH
    with collection_paused():  # not while the connector reads (see sellable.sync.bulk)
        built = [listing_of(row) for row in rows]
    for start in range(0, len(built), size):
        current.update(channel.connector.read_quantities(built[start : start + size]))
    if listings is not None:
        listings.update((listing.listing_id, listing) for listing in built)
    with collection_paused():
        changed: dict[str, int] = {}  # listing id -> a quantity read that the store lacks
        forget: list[str] = []  # drifted from the last confirmed value too
        drifted = 0
        for row in rows:
            lid = row["listing_id"]
            shown = current.get(lid)
            if shown is None:
                continue
            if shown != row["channel_quantity"]:
                changed[lid] = shown
            if shown != desired[lid].quantity:
                drifted += 1
                if row["last_pushed"] is not None and row["last_pushed"] != shown:
                    forget.append(lid)
                row["last_pushed"] = None
                row["channel_quantity"] = shown
        engine.state.record_read_back(channel.code, changed, forget)
    return drifted


__all__ = ["read_back", "reconcile"]
