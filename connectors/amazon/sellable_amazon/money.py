"""What an Amazon order item earned, from Orders API 2026-01-01 ``proceeds``
(``includedData=PROCEEDS``; orders_2026-01-01.json, definitions ``ItemProceeds``,
``ItemProceedsBreakdown``, ``ItemProceedsDetailedBreakdown``, ``Money``).

``proceeds.breakdowns`` splits ``proceedsTotal`` by type: ``ITEM`` (the item's price times
the quantity), ``SHIPPING``, ``GIFT_WRAP``, ``COD_FEE``, ``OTHER``, ``TAX`` and
``DISCOUNT``. The model's examples make ``proceedsTotal`` the sum of its breakdowns (an
``ITEM`` of 99.98 and a ``TAX`` of 0.02 give 100.00; 89.97 + 10.00 shipping + 4.00 tax give
103.97), so ``ITEM`` excludes tax in every marketplace, unlike v0's ``ItemPrice``, and a
``DISCOUNT`` lowers the total: the revenue is ``ITEM`` less the ``DISCOUNT`` breakdown's
``ITEM`` detail (the whole ``DISCOUNT`` when it has no details). The discount's size is
taken whatever its sign, as the model leaves the sign unsaid.

Revenue is advisory: an item whose proceeds are missing or unreadable gets None and its
order still imports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sellable.sdk import OrderPayloadError, currency_code, money_amount

log = logging.getLogger("sellable.amazon")


def item_revenue(item: Mapping[str, Any], field: str) -> tuple[Decimal | None, str | None]:
    """(revenue, currency) of one order item (``field`` names it, e.g.
    ``orderItems[0]``); (None, None) when its proceeds do not say."""
    try:
        return _revenue(item.get("proceeds"), f"{field}.proceeds")
    except OrderPayloadError as err:
        log.debug("no revenue for an order item: %s", err)
        return None, None


def _revenue(proceeds: Any, field: str) -> tuple[Decimal | None, str | None]:
    if proceeds is None:
        return None, None
    if not isinstance(proceeds, Mapping):
        raise OrderPayloadError(field, "is not an object")
    breakdowns = proceeds.get("breakdowns")
    if not isinstance(breakdowns, list):
        return None, None
    by_type = {
        entry.get("type"): (position, entry)
        for position, entry in reversed(list(enumerate(breakdowns)))
        if isinstance(entry, Mapping)
    }
    if "ITEM" not in by_type:
        return None, None
    position, entry = by_type["ITEM"]
    item, currency = _money(entry.get("subtotal"), f"{field}.breakdowns[{position}].subtotal")
    discount = Decimal(0)
    if "DISCOUNT" in by_type:
        position, entry = by_type["DISCOUNT"]
        where = f"{field}.breakdowns[{position}]"
        details = entry.get("detailedBreakdowns")
        parts: list[tuple[Any, str]] = (
            [
                (detail.get("value"), f"{where}.detailedBreakdowns[{n}].value")
                for n, detail in enumerate(details)
                if isinstance(detail, Mapping) and detail.get("subtype") == "ITEM"
            ]
            if isinstance(details, list) and details
            else [(entry.get("subtotal"), f"{where}.subtotal")]
        )
        for value, part_field in parts:
            amount, part_currency = _money(value, part_field)
            if part_currency != currency:
                raise OrderPayloadError(
                    f"{part_field}.currencyCode", f"{part_currency} is not {currency}"
                )
            discount += abs(amount)
    return money_amount(item - discount, f"{field} (ITEM less DISCOUNT)"), currency


def _money(value: Any, field: str) -> tuple[Decimal, str]:
    """A Money object (``amount`` decimal text, signed; ``currencyCode``)."""
    if not isinstance(value, Mapping):
        raise OrderPayloadError(field, "missing" if value is None else "is not a Money object")
    amount = value.get("amount")
    if not isinstance(amount, str):
        raise OrderPayloadError(f"{field}.amount", f"{amount!r} is not decimal text")
    try:
        parsed = Decimal(amount.strip())
    except InvalidOperation:
        raise OrderPayloadError(f"{field}.amount", f"{amount[:40]!r} is not an amount") from None
    if not parsed.is_finite():
        raise OrderPayloadError(f"{field}.amount", f"{amount[:40]!r} is not an amount")
    return parsed, currency_code(value.get("currencyCode"), f"{field}.currencyCode")
