"""Channel rules: from the sum of sellable over a channel's warehouses to what it is offered."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

#: The ``backorders`` channel rule: ``"off"``, ``"continue"`` or a number of units.
Backorders = Literal["off", "continue"] | int
BACKORDERS_OFF: Final = "off"
BACKORDERS_CONTINUE: Final = "continue"


@dataclass(frozen=True, slots=True)
class Offer:
    """What one listing is offered: ``quantity``, and whether the channel is asked to keep
    selling once it reaches 0 (``backorders``, the channel's own flag)."""

    quantity: int
    backorders: bool = False


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """``allocation_percent`` of the total, less ``safety_stock``, capped at ``max_quantity``
    (0: no cap), 0 when below ``zero_below``; never negative. Then, for a SKU that allows
    orders exceeding stock, ``backorders``: ``"off"`` leaves that, ``"continue"`` asks the
    channel to keep selling at 0, a number ``N`` offers at least ``N``.

    Usage::

        rules = ChannelRules(safety_stock=2, backorders=5)
        rules.offer(3, backorderable=True)   # Offer(quantity=5, backorders=False)
    """

    allocation_percent: float = 100.0
    safety_stock: int = 0
    max_quantity: int = 0
    zero_below: int = 0
    backorders: Backorders = BACKORDERS_OFF

    def quantity(self, total_sellable: int) -> int:
        offered = math.floor(max(0, total_sellable) * self.allocation_percent / 100 + 1e-9)
        offered -= self.safety_stock
        if self.max_quantity:
            offered = min(offered, self.max_quantity)
        if offered < self.zero_below:
            return 0
        return max(0, offered)

    def offer(self, total_sellable: int, backorderable: bool) -> Offer:
        """The listing's quantity and flag: :meth:`quantity`, then the ``backorders`` rule
        where ``backorderable`` (the SKU, or what binds it, allows orders exceeding stock).
        Push, reconcile, ``status`` and ``explain --channel`` all decide by this."""
        quantity = self.quantity(total_sellable)
        if not backorderable or self.backorders == BACKORDERS_OFF:
            return Offer(quantity)
        if self.backorders == BACKORDERS_CONTINUE:
            return Offer(quantity, backorders=True)
        return Offer(max(quantity, int(self.backorders)))

    def steps(
        self, total_sellable: int, backorderable: bool = False, flag: str = ""
    ) -> list[tuple[str, int]]:
        """How :meth:`offer` gets from the total to the quantity, one rule at a time, for
        ``sellable explain --channel`` (only the rules that are set appear). ``flag`` names
        the channel's keep-selling flag for the ``"continue"`` step, e.g.
        ``"WooCommerce backorders=notify"``."""
        out = [("sellable over the channel's warehouses", total_sellable)]
        offered = total_sellable
        if offered < 0:
            offered = 0
            out.append(("oversold: never negative", offered))
        if self.allocation_percent != 100:
            offered = math.floor(offered * self.allocation_percent / 100 + 1e-9)
            out.append((f"allocation {self.allocation_percent:g}%", offered))
        if self.safety_stock:
            offered -= self.safety_stock
            out.append((f"less safety stock {self.safety_stock}", offered))
        if self.max_quantity and offered > self.max_quantity:
            offered = self.max_quantity
            out.append((f"capped at max_quantity {self.max_quantity}", offered))
        if self.zero_below and offered < self.zero_below:
            offered = 0
            out.append((f"below zero_below {self.zero_below}: 0", offered))
        if offered < 0:
            offered = 0
            out.append(("never negative", offered))
        out.extend(self._backorders_steps(offered, backorderable, flag))
        return out

    def _backorders_steps(
        self, offered: int, backorderable: bool, flag: str
    ) -> list[tuple[str, int]]:
        rule = self.backorders
        if rule == BACKORDERS_OFF:
            return []
        if not backorderable:
            return [
                (f"backorders {rule}: not applied (no orders exceeding stock allowed)", offered)
            ]
        if rule == BACKORDERS_CONTINUE:
            where = f" ({flag})" if flag else ""
            return [(f"backorders continue: keep selling at 0{where}", offered)]
        return [(f"backorders {rule}: offer at least {rule}", max(offered, int(rule)))]
