"""What a Shopify line item earned, in the shop currency: its ``originalTotalSet`` less
every ``discountAllocations`` amount (line-level and order-level discounts alike), less
its ``taxLines`` when the order's ``taxesIncluded`` (the prices then hold the tax), all in
``shopMoney`` (https://shopify.dev/docs/api/admin-graphql/latest/objects/LineItem).

``discountedTotalSet`` is not used: it "doesn't include order-level discounts" (and
"code-based discounts aren't included by default"). The shop currency (the order's
``currencyCode``, "the shop currency when the order was placed") is preferred to the
customer's presentment currency, so that one shop's lines add up in one currency.

These amounts include units refunded or removed since (``quantity``); the line's
``currentQuantity`` is what we book, so the total is scaled to it and rounded to the
amount's own decimals. Revenue is advisory: a line whose amounts are missing or unreadable
gets None and its order still imports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sellable.sdk import OrderPayloadError, currency_code, money_amount

log = logging.getLogger("sellable.connectors.shopify")


def line_revenue(
    line: Mapping[str, Any], order: Mapping[str, Any], field: str
) -> tuple[Decimal | None, str | None]:
    """(revenue, shop currency) of one line item (``field`` names it, e.g.
    ``lineItems[0]``); None for the revenue when its amounts do not say."""
    currency = _order_currency(order)
    try:
        return _revenue(line, order, field, currency), currency
    except OrderPayloadError as err:
        log.debug("order %s: no revenue for a line: %s", order.get("id"), err)
        return None, currency


def _order_currency(order: Mapping[str, Any]) -> str | None:
    value = order.get("currencyCode")
    try:
        return None if value is None else currency_code(value, "currencyCode")
    except OrderPayloadError:
        return None


def _revenue(
    line: Mapping[str, Any], order: Mapping[str, Any], field: str, currency: str | None
) -> Decimal | None:
    if line.get("originalTotalSet") is None:
        return None
    total = _shop_money(line.get("originalTotalSet"), f"{field}.originalTotalSet", currency)
    for n, allocation in enumerate(_objects(line, "discountAllocations", field)):
        total -= _shop_money(
            allocation.get("allocatedAmountSet"),
            f"{field}.discountAllocations[{n}].allocatedAmountSet",
            currency,
        )
    taxes_included = order.get("taxesIncluded")
    if not isinstance(taxes_included, bool):
        raise OrderPayloadError("taxesIncluded", f"{taxes_included!r} is not true or false")
    if taxes_included:
        for n, tax in enumerate(_objects(line, "taxLines", field)):
            total -= _shop_money(tax.get("priceSet"), f"{field}.taxLines[{n}].priceSet", currency)
    ordered, current = line.get("quantity"), line.get("currentQuantity")
    if isinstance(ordered, int) and isinstance(current, int) and 0 <= current < ordered:
        # Units removed or refunded: their share goes with them, rounded to the decimals
        # the amounts have.
        total = (total * current / ordered).quantize(total, ROUND_HALF_EVEN)
    return money_amount(total, f"{field} (originalTotalSet less discounts and taxes)")


def _objects(line: Mapping[str, Any], key: str, field: str) -> list[Mapping[str, Any]]:
    value = line.get(key)
    if not isinstance(value, list) or not all(isinstance(x, Mapping) for x in value):
        raise OrderPayloadError(f"{field}.{key}", "is not a list of objects")
    return value


def _shop_money(bag: Any, field: str, currency: str | None) -> Decimal:
    """``bag.shopMoney.amount`` (decimal text) in the shop's ``currency``."""
    money = bag.get("shopMoney") if isinstance(bag, Mapping) else None
    if not isinstance(money, Mapping):
        raise OrderPayloadError(f"{field}.shopMoney", "missing")
    amount = money.get("amount")
    if not isinstance(amount, str):
        raise OrderPayloadError(f"{field}.shopMoney.amount", f"{amount!r} is not decimal text")
    try:
        parsed = Decimal(amount.strip())
    except InvalidOperation:
        raise OrderPayloadError(
            f"{field}.shopMoney.amount", f"{amount[:40]!r} is not an amount"
        ) from None
    if not parsed.is_finite():
        raise OrderPayloadError(f"{field}.shopMoney.amount", f"{amount[:40]!r} is not an amount")
    code = money.get("currencyCode")
    if code is not None and currency is not None and code != currency:
        raise OrderPayloadError(f"{field}.shopMoney.currencyCode", f"{code!r} is not {currency}")
    return parsed
