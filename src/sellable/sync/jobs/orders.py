"""The order job: pull the orders updated since the cursor (less the overlap) and apply them.

Where the pull starts and where the cursor moves is :mod:`sellable.sync.cursor`'s call.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sellable.config import ChannelSettings
from sellable.errors import ChannelError
from sellable.orders import OrderIn, OrderLineIn
from sellable.sdk import ChannelOrder
from sellable.sync.cursor import Bookmark, OrderWindow
from sellable.sync.jobs.base import Channel, JobResult, next_token

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")


def pull_orders(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    settings = channel.settings
    code = settings.code
    window = OrderWindow.open(
        engine.state.cursor(code, "orders"),
        engine.now(),
        settings.initial_lookback,
        settings.order_overlap,
    )
    bookmark = Bookmark(window)
    token: str | None = None
    tokens: set[str] = set()
    held = 0
    changed: set[tuple[str, str]] = set()
    unknown: set[str] = set()
    rejected: list[str] = []
    complete = False
    live = engine.live
    # An order a pull reads twice (on two pages, or in two passes of a connector) is
    # applied and counted once, unless it changed in between.
    seen: dict[str, OrderIn] = {}
    for _page in range(engine.max_pages):
        page = channel.connector.pull_orders(window.since, token)
        orders = []
        for order in page.orders:
            order_in = order_in_for(settings, order)
            if seen.get(order.order_id) != order_in:
                seen[order.order_id] = order_in
                orders.append(order_in)
            bookmark.see(order.updated_at)
            unknown.update(line.sku for line in order.lines if not live.knows(line.sku))
        if orders:
            with live.lock:
                live.refresh()
                applied = engine.book.apply(orders)
            changed |= applied.changed_pairs
            held += applied.lines_held
            rejected.extend(f"{ref}: {why}" for ref, why in applied.rejected)
        token = next_token(page.next_cursor, tokens, code)
        if token is None:
            complete = True
            break
        if engine.stopping.is_set():
            raise ChannelError("order pull abandoned at shutdown (cursor kept)", channel=code)
    if not complete:
        result.counts["page_limit"] = engine.max_pages
        log.warning(
            "channel=%s: order pull stopped at the page limit (%d pages); the cursor stays, "
            "the next pull reads the window again",
            code,
            engine.max_pages,
            extra={"channel": code, "job": result.job, "counts": {"pages": engine.max_pages}},
        )
    # What the pull applied is kept either way; the cursor moves only after the last page.
    moved = bookmark.advance(complete=complete)
    if moved is not None:
        engine.state.set_cursor(code, "orders", moved)
    pulled = len(seen)
    result.counts.update(orders=pulled, held_lines=held, changed=len(changed))
    result.reports["unknown_skus"] = sorted(unknown)
    result.reports["rejected_orders"] = rejected
    if rejected:
        log.warning(
            "channel=%s: %d order(s) refused: %s",
            code,
            len(rejected),
            "; ".join(rejected[:10]),
            extra={"channel": code, "job": result.job, "counts": {"rejected": len(rejected)}},
        )
    engine.metrics.orders_pulled(code, pulled)
    engine.notify(changed)


def order_in_for(settings: ChannelSettings, order: ChannelOrder) -> OrderIn:
    """The order book's view of a channel's order.

    A warehouse the channel itself chose (Amazon AFN, the location Shopify assigned) wins:
    the lines are booked there only. Otherwise each line is routed across the channel's
    warehouses in their listed order. An unknown warehouse is refused by the order book and
    reported, not fatal."""
    route: tuple[str, ...] = ()
    if order.warehouse is not None:
        warehouse = order.warehouse
    else:
        route = tuple(settings.warehouses)
        warehouse = route[0]
    return OrderIn(
        channel=settings.code,
        order_id=order.order_id,
        warehouse=warehouse,
        status=order.status,
        lines=tuple(
            OrderLineIn(x.line_id, x.sku, x.quantity, x.status, options=x.options)
            for x in order.lines
        ),
        created_at=order.created_at,
        route=route,
    )


__all__ = ["order_in_for", "pull_orders"]
