"""The simulated storefront of the oversell simulator, and its connector plugin.

A :class:`SimChannel` is what a real storefront keeps: the quantity each listing shows
(the last one we pushed, less what it sold since, as a shop decrements its own stock) and
the orders customers placed. :class:`SimConnector` reads it through the ordinary connector
contract, so that the simulator drives the real order pull and listing jobs of
:class:`sellable.sync.engine.SyncEngine`. It is registered under the entry-point group
``sellable.connectors`` as ``oversell-sim`` by :func:`register_plugin`, which writes a
``*.dist-info`` folder (the very form ``pip install`` leaves) into a temporary folder on
``sys.path``: plugin discovery is the real one.

This module is separate from ``simulate_oversell.py`` so that the entry point and the
simulator share one :data:`CHANNELS` registry (a script run as ``__main__`` would be
imported a second time by the entry point).
"""

from __future__ import annotations

import bisect
import sys
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sellable.sdk import (
    Capability,
    ChannelOrder,
    ChannelOrderLine,
    Connector,
    ConnectorSettings,
    Listing,
    ListingPage,
    OrderPage,
    OrderStatus,
)
from sellable.sync.plugins import load_connector

CONNECTOR = "oversell-sim"
HERE = Path(__file__).resolve().parent


@dataclass(slots=True)
class SimOrder:
    order_id: str
    sku: str
    quantity: int
    placed_at: datetime
    revenue: Decimal


@dataclass
class SimChannel:
    """One storefront: what each listing shows, and the orders it accepted, in time order."""

    code: str
    shown: dict[str, int] = field(default_factory=dict)
    orders: list[SimOrder] = field(default_factory=list)
    _times: list[datetime] = field(default_factory=list)

    def place(self, sku: str, quantity: int, at: datetime, unit_price: Decimal) -> SimOrder | None:
        """A customer orders ``quantity`` of ``sku``: accepted (and the shown quantity
        decremented, as a shop does) when the listing shows at least that many, else None."""
        if self.shown.get(sku, 0) < quantity:
            return None
        self.shown[sku] -= quantity
        order = SimOrder(
            f"{self.code}-{len(self.orders) + 1}", sku, quantity, at, unit_price * quantity
        )
        self.orders.append(order)
        self._times.append(at)
        return order

    def since(self, moment: datetime) -> list[SimOrder]:
        """The orders placed (= last updated) at or after ``moment``."""
        return self.orders[bisect.bisect_left(self._times, moment) :]

    def placed_after(self, moment: datetime | None) -> bool:
        """Whether any order was placed after ``moment`` (None: ever)."""
        return bool(self._times) and (moment is None or self._times[-1] > moment)


#: (world, channel code) -> the channel; a world is one simulation run.
CHANNELS: dict[tuple[str, str], SimChannel] = {}


class SimSettings(ConnectorSettings):
    world: str


class SimConnector(Connector):
    """Reads a :class:`SimChannel`: its listings (one per SKU, id = SKU) and its orders."""

    name = CONNECTOR
    capabilities = frozenset({Capability.PULL_ORDERS, Capability.LIST_LISTINGS})
    Settings = SimSettings

    settings: SimSettings

    @property
    def channel(self) -> SimChannel:
        return CHANNELS[(self.settings.world, self.context.channel)]

    def base_url(self) -> str:
        return "http://oversell-sim.invalid"  # never requested: the channel is in memory

    def list_listings(self, cursor: str | None) -> ListingPage:
        shown = self.channel.shown
        return ListingPage([Listing(sku, sku, quantity=shown[sku]) for sku in sorted(shown)])

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        return OrderPage([_channel_order(order) for order in self.channel.since(since)])


def _channel_order(order: SimOrder) -> ChannelOrder:
    return ChannelOrder(
        order_id=order.order_id,
        status=OrderStatus.OPEN,
        updated_at=order.placed_at,
        created_at=order.placed_at,
        lines=(
            ChannelOrderLine("1", order.sku, order.quantity, revenue=order.revenue, currency="USD"),
        ),
    )


def register_plugin(folder: Path) -> None:
    """Make ``oversell-sim`` an installed connector of this process: a dist-info folder in
    ``folder`` (put on ``sys.path``) whose entry point names :class:`SimConnector`."""
    info = folder / "sellable_oversell_sim-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sellable-oversell-sim\nVersion: 0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[sellable.connectors]\n{CONNECTOR} = oversell_channel:SimConnector\n", encoding="utf-8"
    )
    for path in (str(HERE), str(folder)):
        if path not in sys.path:
            sys.path.insert(0, path)
    load_connector.cache_clear()


def unregister_plugin(folder: Path) -> None:
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    load_connector.cache_clear()


__all__ = [
    "CHANNELS",
    "CONNECTOR",
    "SimChannel",
    "SimConnector",
    "SimOrder",
    "register_plugin",
    "unregister_plugin",
]
