"""``[allocation] mode = "shared"`` in the daemon: every channel's listings in one split.

:class:`SharedOffers` keeps a :class:`~sellable.core.share.SharedAllocation` of the matched
listings of every configured channel up to date with the live stock:

* stock: the live stock tells it which (SKU, warehouse) pairs moved each time the core is
  fed (an order, a count, another process's write), and only what depends on them is split
  again;
* weights: each listing's weight is its channel's and its SKU's fixed weights times, with
  ``weights = "velocity"``, ``1 +`` the units of its SKU ordered on its channel over
  ``velocity_window`` (lines allocated, held or shipped; cancelled lines and orders do not
  count). The order book is read for them at most every ``velocity_refresh``;
* expected sales (``headroom = "latency"``): each listing's rate, from the same units
  ordered, ``+ 1``, over the history the order book holds (``velocity_window``, or less when
  the first order is more recent); its demand until its sales are seen (the rate over its
  channel's ``pull_orders_every`` plus ``[daemon] push_debounce``); and its channel's
  ``push_latency``;
* listings: a listing added, removed or moved to other warehouses splits everything again;
  so does a catalog reload. Every channel's listings are read from the store only when
  ``listings_version`` (the sync state's count of listing refreshes) moved, so a round of
  pushes over N channels reads them once, not N times.

Callers hold the live stock's lock and have refreshed it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from sellable.config import Settings
from sellable.core.share import ListingKey, SharedAllocation, ShareListing, SharePolicy
from sellable.store import schema
from sellable.store.live import LiveStock

#: The line statuses that count towards a listing's velocity.
VELOCITY_STATUSES = ("allocated", "held", "shipped")


def listing_warehouses(row: dict[str, Any], default: list[str]) -> list[str]:
    """The warehouses a listing sells from: its own, else its channel's."""
    return row["warehouses"].split(",") if row["warehouses"] else list(default)


class SharedOffers:
    """The shared split of every channel's listings, kept current.

    Usage::

        offers = SharedOffers(db, settings, live, matched_listings, now)
        with live.lock:
            live.refresh()
            allocation = offers.current()
            allocation.share(("shop", "L1"))
    """

    def __init__(
        self,
        db: Engine,
        settings: Settings,
        live: LiveStock,
        matched_listings: Callable[[str], list[dict[str, Any]]],
        now: Callable[[], datetime],
        listings_version: Callable[[], int] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.config = settings.allocation
        self.live = live
        self.matched_listings = matched_listings
        self.now = now
        #: None: read the listings at every call (no one tells us when they change).
        self.listings_version = listings_version
        self._listings_key: tuple[int, object] | None = None
        self._cached: list[ShareListing] = []
        self.allocation: SharedAllocation | None = None
        self._signature: tuple[tuple[ListingKey, str, tuple[str, ...]], ...] = ()
        self._pending: set[tuple[str, str]] = set()
        self._velocity: dict[tuple[str, str], int] = {}
        self._velocity_at: datetime | None = None
        #: The hours of order history the velocities cover (the headroom's rates).
        self._history_hours = self.config.velocity_window / timedelta(hours=1)
        self.policy = SharePolicy(
            min_units=self.config.min_units,
            rebalance_below=self.config.rebalance_below,
            headroom=self.config.headroom == "latency",
            headroom_sigmas=self.config.headroom_sigmas,
        )
        #: Per channel: hours until a sale is seen (pull + debounce), push latency (s).
        self._unseen_hours = {
            channel.code: (channel.pull_orders_every + settings.daemon.push_debounce)
            / timedelta(hours=1)
            for channel in settings.channels
        }
        self._latency = {
            channel.code: self.config.channel_push_latency(channel.code).total_seconds()
            for channel in settings.channels
        }
        live.listeners.append(self._stock_moved)

    def close(self) -> None:
        """Stop listening to the live stock (the allocation stays readable, frozen)."""
        if self._stock_moved in self.live.listeners:
            self.live.listeners.remove(self._stock_moved)

    def _stock_moved(self, pairs: set[Any]) -> None:
        if self.allocation is not None:
            self._pending.update(pairs)

    # -- keeping current ------------------------------------------------------------------------

    def current(self) -> SharedAllocation:
        """The allocation, brought up to date (stock, listings, velocities)."""
        core = self.live.core
        key = None if self.listings_version is None else (self.listings_version(), core)
        last = self._listings_key
        fresh = key is None or last is None or key[0] != last[0] or key[1] is not last[1]
        if fresh:
            listings = self._listings()
            signature = tuple((x.key, x.sku, x.warehouses) for x in listings)
        else:
            listings, signature = self._cached, self._signature
        reweigh = self._refresh_velocity() or fresh
        allocation = self.allocation
        if allocation is None or allocation.core is not core or signature != self._signature:
            # the old split is dropped first: the new one reuses the memory of its arrays
            # (sellable.memory keeps it) instead of faulting in as much again
            self.allocation = allocation = None
            allocation = SharedAllocation(core, self.policy)
            allocation.load([self._weighted(x) for x in listings])
            self.allocation = allocation
            self._signature = signature
            self._pending.clear()
        else:
            if self._pending:
                pairs, self._pending = self._pending, set()
                allocation.stock_changed(pairs)
            if reweigh:
                weighted = [self._weighted(x) for x in listings]
                allocation.set_weights(
                    {x.key: x.weight for x in weighted},
                    {x.key: (x.demand, x.rate, x.latency) for x in weighted}
                    if self.policy.headroom
                    else None,
                )
        self._cached, self._listings_key = listings, key
        return allocation

    def _listings(self) -> list[ShareListing]:
        """Every channel's matched listings, with the channel's reserve (weights later)."""
        config = self.config
        index = self.live.core.catalog.index
        out: list[ShareListing] = []
        for channel in self.settings.channels:
            reserve = config.channel_reserve(channel.code)
            for row in self.matched_listings(channel.code):
                position = index.get(row["sku"])
                if position is None:
                    continue
                warehouses = tuple(listing_warehouses(row, channel.warehouses))
                out.append(
                    ShareListing(
                        (channel.code, row["listing_id"]),
                        row["sku"],
                        warehouses,
                        reserve=reserve,
                        position=position,
                    )
                )
        return out

    def _weighted(self, listing: ShareListing) -> ShareListing:
        config = self.config
        channel, _ = listing.key
        weight = config.channel_weight(channel) * config.sku_weight(listing.sku)
        units = self._velocity.get((channel, listing.sku), 0)
        if config.weights == "velocity":
            weight *= 1 + units
        if not self.policy.headroom:
            return ShareListing(
                listing.key,
                listing.sku,
                listing.warehouses,
                weight,
                listing.reserve,
                position=listing.position,
            )
        # units an hour over the history held (+ 1: a listing that has not sold yet may)
        rate = (1 + units) / self._history_hours
        return ShareListing(
            listing.key,
            listing.sku,
            listing.warehouses,
            weight,
            listing.reserve,
            demand=rate * self._unseen_hours.get(channel, 0.0),
            rate=rate,
            latency=self._latency.get(channel, 0.0),
            position=listing.position,
        )

    def _refresh_velocity(self) -> bool:
        """Re-read the velocities when due; True when they were re-read."""
        if self.config.weights != "velocity" and not self.policy.headroom:
            return False
        now = self.now()
        last = self._velocity_at
        if last is not None and now - last < self.config.velocity_refresh:
            return False
        since = now - self.config.velocity_window
        self._velocity = units_ordered(self.db, since)
        if self.policy.headroom:
            first = first_order_at(self.db)
            start = since if first is None or first < since else first
            # at least an hour: a history of minutes would give absurd rates
            span = max(now - start, timedelta(hours=1))
            self._history_hours = span / timedelta(hours=1)
        self._velocity_at = now
        return True


def first_order_at(db: Engine) -> datetime | None:
    """When the order book's first order was placed (its date on the channel, else its
    import), or None without orders."""
    orders = schema.orders.c
    with db.connect() as connection:
        first = connection.execute(
            select(func.min(func.coalesce(orders.created_at, orders.imported_at)))
        ).scalar()
    if first is None:
        return None
    if isinstance(first, str):  # SQLite may hand back the stored text
        first = datetime.fromisoformat(first)
    return first if first.tzinfo is not None else first.replace(tzinfo=UTC)


def units_ordered(db: Engine, since: datetime) -> dict[tuple[str, str], int]:
    """Units ordered per (channel, SKU) since ``since`` (by the order's date on the channel,
    else its import): lines allocated, held or shipped, of orders not cancelled."""
    orders, lines, skus = schema.orders.c, schema.order_lines.c, schema.skus.c
    when = func.coalesce(orders.created_at, orders.imported_at)
    query = (
        select(orders.channel, skus.sku, func.sum(lines.quantity))
        .select_from(
            schema.order_lines.join(schema.orders, orders.id == lines.order_id).join(
                schema.skus, skus.id == lines.sku_id
            )
        )
        .where(
            lines.status.in_(VELOCITY_STATUSES)
            & (orders.status != "cancelled")
            & (when >= since.astimezone(UTC))
        )
        .group_by(orders.channel, skus.sku)
    )
    with db.connect() as connection:
        return {(channel, sku): int(units) for channel, sku, units in connection.execute(query)}


__all__ = [
    "VELOCITY_STATUSES",
    "SharedOffers",
    "first_order_at",
    "listing_warehouses",
    "units_ordered",
]
