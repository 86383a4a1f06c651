"""The reconcile job: reload the stock from the store, read the channel's quantities back
where it can, forget the confirmed pushes that drifted, and push."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sellable.core.rules import Offer
from sellable.sdk import Capability
from sellable.sync.jobs.base import Channel, JobResult
from sellable.sync.jobs.push import listing_of, push_pending

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

READ_BACK_BATCH = 250


def reconcile(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    with engine.live.lock:
        engine.live.reload()
    rows, desired = engine.listings_and_offers(channel)
    result.counts["drifted"] = read_back(engine, channel, rows, desired)
    push_pending(engine, channel, result, rows, desired)


def read_back(
    engine: SyncEngine, channel: Channel, rows: list[dict[str, Any]], desired: dict[str, Offer]
) -> int:
    """Forget the last confirmed value of listings whose channel quantity drifted (or of
    all, when the connector cannot read quantities back), so they are pushed again."""
    if Capability.READ_QUANTITIES not in channel.connector.capabilities:
        for row in rows:
            row["last_pushed"] = None
        return len(rows)
    current: dict[str, int] = {}
    size = channel.connector.max_read_batch or READ_BACK_BATCH
    for start in range(0, len(rows), size):
        part = [listing_of(row) for row in rows[start : start + size]]
        current.update(channel.connector.read_quantities(part))
    drifted = [
        row["listing_id"]
        for row in rows
        if row["listing_id"] in current
        and current[row["listing_id"]] != desired[row["listing_id"]].quantity
    ]
    engine.state.record_read_back(channel.code, current, drifted)
    drifted_ids = set(drifted)
    for row in rows:
        if row["listing_id"] in drifted_ids:
            row["last_pushed"] = None
            row["channel_quantity"] = current[row["listing_id"]]
    return len(drifted)


__all__ = ["read_back", "reconcile"]
