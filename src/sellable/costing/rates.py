"""Exchange rates: how many base-currency units one unit of a currency buys, from a date on.

A receipt converts at the rate valid on its ``received_at`` date (the newest rate whose
``valid_from`` is on or before it); a line's revenue at the rate valid on its shipping date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, select

from sellable.store import schema


@dataclass
class Rates:
    """Rate lookups within one transaction (cached)."""

    connection: Connection
    base: str
    _cache: dict[tuple[str, date], Decimal | None] = field(default_factory=dict)

    def on(self, currency: str, day: date) -> Decimal | None:
        """The rate of ``currency`` valid on ``day``; 1 for the base; None when none is."""
        if currency == self.base:
            return Decimal(1)
        key = (currency, day)
        if key not in self._cache:
            er = schema.exchange_rates.c
            rate = self.connection.execute(
                select(er.rate)
                .where((er.currency == currency) & (er.valid_from <= day))
                .order_by(er.valid_from.desc())
                .limit(1)
            ).scalar()
            self._cache[key] = None if rate is None else Decimal(rate).normalize()
        return self._cache[key]


__all__ = ["Rates"]
