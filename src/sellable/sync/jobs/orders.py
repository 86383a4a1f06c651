"""The order job: pull the orders updated since the cursor (less the overlap) and apply them.

Where the pull starts and where the cursor moves is :mod:`sellable.sync.cursor`'s call.

One order the connector could not read (``OrderPage.rejected``) is that order's problem
alone: the rest of the page is imported, and the order is refused by id and field, kept in
``refused_orders`` (shown by ``sellable status``) and logged once, when it is first refused
or its fault changes, and once more when a pull reads it whole and imports it. While it is
refused, for at most :data:`REFUSED_HOLD` since it was first refused, it holds the cursor
at its modification time (or where the cursor stood, when that time cannot be read): every
pull reads it again, so a fix on the channel is imported even if it does not touch the
order's modification time. After that the cursor moves on, so that an order refused for
good cannot make every pull read an ever longer window; the refusal stays listed, and
any later change of the order on the channel brings it into the window again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sellable.config import ChannelSettings
from sellable.errors import ChannelError
from sellable.orders import OrderIn, OrderLineIn
from sellable.sdk import ChannelOrder, RejectedOrder
from sellable.store.sql import iso_utc
from sellable.sync.cursor import Bookmark, OrderWindow, as_utc
from sellable.sync.jobs.base import Channel, JobResult, next_token

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")

#: How long a refused order holds the order cursor, from its first refusal.
REFUSED_HOLD = timedelta(days=1)


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
    known_refused = engine.state.refused_orders(code)
    refused: dict[str, RejectedOrder] = {}
    for _page in range(engine.max_pages):
        page = channel.connector.pull_orders(window.since, token)
        orders = []
        for order in page.orders:
            refused.pop(order.order_id, None)
            order_in = order_in_for(settings, order)
            if seen.get(order.order_id) != order_in:
                seen[order.order_id] = order_in
                orders.append(order_in)
            bookmark.see(order.updated_at)
            unknown.update(line.sku for line in order.lines if not live.knows(line.sku))
        for rejection in page.rejected:
            seen.pop(rejection.order_id, None)
            refused[rejection.order_id] = rejection
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
    now = engine.now()
    for rejection in refused.values():
        before = known_refused.get(rejection.order_id)
        first = before["first_refused_at"] if before is not None else now
        if now - as_utc(first) <= REFUSED_HOLD:
            bookmark.hold(rejection.updated_at)
    _account_refusals(engine, code, result.job, known_refused, refused, set(seen))
    # What the pull applied is kept either way; the cursor moves only after the last page.
    moved = bookmark.advance(complete=complete)
    if moved is not None:
        engine.state.set_cursor(code, "orders", moved)
    pulled = len(seen)
    result.counts.update(orders=pulled, held_lines=held, changed=len(changed), refused=len(refused))
    result.reports["unknown_skus"] = sorted(unknown)
    result.reports["rejected_orders"] = rejected + [r.describe() for r in refused.values()]
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


def _account_refusals(
    engine: SyncEngine,
    code: str,
    job: str,
    known: dict[str, dict[str, Any]],
    refused: dict[str, RejectedOrder],
    imported: set[str],
) -> None:
    """Store this pull's refusals and forget the refused orders it imported; log each
    refusal once (new, or its fault changed) and each recovery once."""
    engine.state.record_refused(code, list(refused.values()))
    for rejection in refused.values():
        before = known.get(rejection.order_id)
        if before is not None and (before["field"], before["reason"]) == (
            rejection.field[:255],
            rejection.reason[:500],
        ):
            continue
        log.warning(
            "channel=%s order=%s refused: field %s: %s; the channel's other orders are "
            "imported, this one when it reads whole (fix it on the channel)",
            code,
            rejection.order_id,
            rejection.field,
            rejection.reason,
            extra={"channel": code, "job": job, "order": rejection.order_id},
        )
    recovered = sorted(set(known) & imported)
    if recovered:
        engine.state.forget_refused(code, recovered)
    for order_id in recovered:
        log.warning(
            "channel=%s order=%s imported: it reads whole again (refused since %s, field %s)",
            code,
            order_id,
            iso_utc(known[order_id]["first_refused_at"]),
            known[order_id]["field"],
            extra={"channel": code, "job": job, "order": order_id},
        )


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
            OrderLineIn(
                x.line_id,
                x.sku,
                x.quantity,
                x.status,
                options=x.options,
                revenue=x.revenue,
                currency=x.currency,
            )
            for x in order.lines
        ),
        created_at=order.created_at,
        route=route,
        shipping_address=order.shipping_address,
    )


__all__ = ["order_in_for", "pull_orders"]
