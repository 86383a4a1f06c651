"""The stock job: a warehouse connector's counts arrive (the "stock count arrived" use case)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sellable.orders.counts import CountIn, receive_stock_counts
from sellable.sync.jobs.base import Channel, JobResult

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine


def pull_stock(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    code = channel.code
    warehouse = channel.settings.warehouses[0]
    counts = [
        CountIn(count.sku, warehouse, count.on_hand, reserved=count.reserved)
        for count in channel.connector.pull_stock()
    ]
    outcome = receive_stock_counts(engine.book, counts, f"stock pull {code}")
    retried = outcome.retried
    unknown = set(outcome.unknown_skus)
    result.counts.update(
        skus=sum(1 for c in counts if c.sku not in unknown),
        changed=outcome.created + outcome.updated,
        movements=outcome.movements,
        unknown=len(outcome.unknown_skus),
        held_lines_allocated=retried.lines_allocated,
    )
    result.reports["unknown_skus"] = outcome.unknown_skus
    engine.notify(outcome.changed | retried.changed_pairs)


__all__ = ["pull_stock"]
