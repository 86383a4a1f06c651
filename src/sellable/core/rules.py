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
