"""The ``backorders`` channel rule: what a listing is offered, and its keep-selling flag."""

from __future__ import annotations

import itertools

import pytest

from sellable.core.rules import ChannelRules, Offer


@pytest.mark.parametrize(
    ("rules", "total", "backorderable", "offer"),
    [
        pytest.param(ChannelRules(), 0, True, Offer(0), id="off-backorderable"),
        pytest.param(ChannelRules(), 7, True, Offer(7), id="off-in-stock"),
        pytest.param(ChannelRules(backorders="continue"), 0, True, Offer(0, True), id="continue"),
        pytest.param(
            ChannelRules(backorders="continue"), 7, True, Offer(7, True), id="continue-in-stock"
        ),
        pytest.param(
            ChannelRules(backorders="continue"), -3, True, Offer(0, True), id="continue-oversold"
        ),
        pytest.param(
            ChannelRules(backorders="continue"), 0, False, Offer(0), id="continue-not-backorderable"
        ),
        pytest.param(ChannelRules(backorders=5), 0, True, Offer(5), id="at-least-5"),
        pytest.param(ChannelRules(backorders=5), 8, True, Offer(8), id="at-least-5-more-there"),
        pytest.param(ChannelRules(backorders=5), 0, False, Offer(0), id="5-not-backorderable"),
        pytest.param(ChannelRules(backorders=0), 0, True, Offer(0), id="at-least-0"),
        pytest.param(
            ChannelRules(safety_stock=2, max_quantity=10, backorders=4),
            20,
            True,
            Offer(10),
            id="after-the-other-rules",
        ),
        pytest.param(
            ChannelRules(safety_stock=2, backorders=4), 3, True, Offer(4), id="below-after-safety"
        ),
    ],
)
def test_rules_offer_applies_backorders_to_backorderable_skus_only(
    rules: ChannelRules, total: int, backorderable: bool, offer: Offer
) -> None:
    assert rules.offer(total, backorderable) == offer


@pytest.mark.parametrize(
    ("rules", "backorderable", "last"),
    [
        pytest.param(
            ChannelRules(backorders="continue"),
            True,
            ("backorders continue: keep selling at 0 (WooCommerce backorders=notify)", 3),
            id="continue",
        ),
        pytest.param(
            ChannelRules(backorders=5), True, ("backorders 5: offer at least 5", 5), id="number"
        ),
        pytest.param(
            ChannelRules(backorders=5),
            False,
            ("backorders 5: not applied (no orders exceeding stock allowed)", 3),
            id="not-backorderable",
        ),
    ],
)
def test_rules_steps_name_the_backorders_rule_applied(
    rules: ChannelRules, backorderable: bool, last: tuple[str, int]
) -> None:
    steps = rules.steps(3, backorderable, "WooCommerce backorders=notify")
    assert steps[0] == ("sellable over the channel's warehouses", 3)
    assert steps[-1] == last


def test_rules_steps_leave_out_backorders_when_off() -> None:
    assert ChannelRules().steps(0, True) == [("sellable over the channel's warehouses", 0)]


def test_rules_steps_end_where_offer_does() -> None:
    """``explain --channel`` and the push agree on every combination."""
    combinations = itertools.product(
        (100.0, 50.0),
        (0, 2),
        (0, 6),
        (0, 3),
        ("off", "continue", 0, 4, 9),
        range(-3, 12),
        (False, True),
    )
    for percent, safety, cap, below, backorders, total, backorderable in combinations:
        rules = ChannelRules(percent, safety, cap, below, backorders)
        offer = rules.offer(total, backorderable)
        assert rules.steps(total, backorderable)[-1][1] == offer.quantity, rules
