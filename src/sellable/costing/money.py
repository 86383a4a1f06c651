"""Money: Decimal only, never float. Values are kept exact to 6 places inside the ledger;
line totals are shown to the cent and unit costs to 4 places."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")
UNIT = Decimal("0.0001")
EXACT = Decimal("0.000001")


def exact(value: Decimal) -> Decimal:
    """``value`` to the ledger's precision (6 places)."""
    return value.quantize(EXACT, ROUND_HALF_UP)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def cents_text(value: Decimal | None) -> str | None:
    """A total as JSON carries it: a decimal string to the cent (``"13.00"``)."""
    return None if value is None else str(cents(Decimal(value)))


def unit_text(value: Decimal | None) -> str | None:
    """A unit cost as JSON carries it: a decimal string to 4 places (``"4.3333"``)."""
    return None if value is None else str(Decimal(value).quantize(UNIT, ROUND_HALF_UP))


def share(value: Decimal, part: int, whole: int) -> Decimal:
    """The value of ``part`` of ``whole`` units worth ``value`` (all of it for the last
    units, so that what is taken out of a layer always adds up to what went in)."""
    if part == whole:
        return value
    return exact(value * part / whole)


def split_cents(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``total`` (rounded to the cent) split in proportion to ``weights``, each part to the
    cent, the parts adding up exactly to the total: the cents left over by rounding down go
    to the largest remainders (ties to the earlier part). Zero weights throughout: split
    equally."""
    total = cents(total)
    if not weights:
        return []
    whole = sum(weights, ZERO)
    if whole <= 0:
        weights = [Decimal(1)] * len(weights)
        whole = Decimal(len(weights))
    units = int(total / CENT)
    raw = [Decimal(units) * w / whole for w in weights]
    floors = [int(r.to_integral_value(ROUND_FLOOR)) for r in raw]
    left = units - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(f) * CENT for f in floors]


__all__ = [
    "CENT",
    "EXACT",
    "UNIT",
    "ZERO",
    "cents",
    "cents_text",
    "exact",
    "share",
    "split_cents",
    "unit_text",
]
