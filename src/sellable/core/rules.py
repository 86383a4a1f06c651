"""Channel rules: from the sum of sellable over a channel's warehouses to what it is offered."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """``allocation_percent`` of the total, less ``safety_stock``, capped at ``max_quantity``
    (0: no cap), 0 when below ``zero_below``; never negative."""

    allocation_percent: float = 100.0
    safety_stock: int = 0
    max_quantity: int = 0
    zero_below: int = 0

    def quantity(self, total_sellable: int) -> int:
        offered = math.floor(max(0, total_sellable) * self.allocation_percent / 100 + 1e-9)
        offered -= self.safety_stock
        if self.max_quantity:
            offered = min(offered, self.max_quantity)
        if offered < self.zero_below:
            return 0
        return max(0, offered)

    def steps(self, total_sellable: int) -> list[tuple[str, int]]:
        """How :meth:`quantity` gets from the total to the result, one rule at a time, for
        ``sellable explain --channel`` (only the rules that are set appear)."""
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
        return out
