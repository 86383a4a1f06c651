"""What a Vendure order line earned: ``proratedLinePrice`` (after line and order-level
discounts, excluding tax), an Int of minor units turned into an exact Decimal at the
server's ``moneyStrategyPrecision``, in the order's ``currencyCode``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.connectors.vendure.payloads import Script, connector, order

SINCE = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def priced(
    lines: list[dict[str, Any]], currency: Any = "GBP", precision: Any = 2
) -> dict[str, Any]:
    """An orders page with Vendure 3.7.3's money fields: each line dict adds
    ``proratedLinePrice`` (and the others Vendure has, which must not be read)."""
    item = order("1", "PaymentSettled", [(str(n), f"SKU-{n}", 3) for n in range(len(lines))])
    for line, money in zip(item["lines"], lines, strict=True):
        line.update(money)
    item["currencyCode"] = currency
    settings = {"serverConfig": {"moneyStrategyPrecision": precision}}
    if precision is None:
        settings = {}
    return {
        "data": {
            "orders": {"totalItems": 1, "items": [item]},
            "globalSettings": settings,
        }
    }


# 3 x 12.34 = 37.02 (linePrice); a 1.00 line promotion gives 36.02 (discountedLinePrice);
# a 10 % order promotion prorated on top gives 32.42 (proratedLinePrice); 20 % tax on it
# 38.90 (proratedLinePriceWithTax). Each candidate differs.
DISCOUNTED_TAXED = {
    "linePrice": 3702,
    "linePriceWithTax": 4442,
    "discountedLinePrice": 3602,
    "discountedLinePriceWithTax": 4322,
    "proratedLinePrice": 3242,
    "proratedLinePriceWithTax": 3890,
}


def pull(page: dict[str, Any]) -> Any:
    script = Script().login().then("SellableOrders", page)
    with connector(script, recheck_days=0) as vendure:
        pulled = vendure.pull_orders(SINCE, None)
    sent = script.sent[1].body["query"]
    assert "proratedLinePrice" in sent and "moneyStrategyPrecision" in sent
    return pulled


def test_vendure_line_revenue_is_the_prorated_line_price_in_major_units() -> None:
    pulled = pull(priced([DISCOUNTED_TAXED]))

    (line,) = pulled.orders[0].lines
    assert line.revenue == Decimal("32.42")
    assert str(line.revenue) == "32.42"
    assert line.currency == "GBP"


@pytest.mark.parametrize(
    ("minor", "precision", "expected"),
    [
        (3242, 2, Decimal("32.42")),
        (3242, 0, Decimal("3242")),  # a server configured for whole units (e.g. JPY)
        (32425, 3, Decimal("32.425")),
        (3242, None, Decimal("32.42")),  # no serverConfig in the answer: Vendure's default 2
        (0, 2, Decimal("0.00")),  # a free line earned nothing, which is not unknown
    ],
    ids=["cents", "precision-0", "precision-3", "default-precision", "free"],
)
def test_vendure_minor_units_convert_exactly_at_the_server_precision(
    minor: int, precision: int | None, expected: Decimal
) -> None:
    pulled = pull(priced([{"proratedLinePrice": minor}], precision=precision))

    (line,) = pulled.orders[0].lines
    assert line.revenue == expected
    assert line.revenue is not None and line.revenue.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize(
    ("money", "currency", "expected"),
    [
        ({}, "GBP", (None, "GBP")),
        ({"proratedLinePrice": None}, "GBP", (None, "GBP")),
        ({"proratedLinePrice": 32.42}, "GBP", (None, "GBP")),
        ({"proratedLinePrice": "3242"}, "GBP", (None, "GBP")),
        ({"proratedLinePrice": -5}, "GBP", (None, "GBP")),
        ({"proratedLinePrice": True}, "GBP", (None, "GBP")),
        ({"proratedLinePrice": 3242}, None, (Decimal("32.42"), None)),
        ({"proratedLinePrice": 3242}, "pounds", (Decimal("32.42"), None)),
    ],
    ids=["absent", "null", "float", "text", "negative", "bool", "no-currency", "bad-currency"],
)
def test_vendure_a_line_without_a_readable_price_has_no_revenue_and_still_imports(
    money: dict[str, Any], currency: Any, expected: tuple[Decimal | None, str | None]
) -> None:
    pulled = pull(priced([money, DISCOUNTED_TAXED], currency=currency))

    assert not pulled.rejected
    first, second = pulled.orders[0].lines
    assert (first.revenue, first.currency) == expected
    assert first.quantity == 3
    assert second.revenue == Decimal("32.42")
