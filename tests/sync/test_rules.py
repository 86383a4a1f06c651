"""Channel rules: allocation percentage, then safety stock, then the cap, then zero_below."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sellable.core.rules import ChannelRules

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(
    ("rules", "total", "expected"),
    [
        pytest.param(ChannelRules(), 10, 10, id="defaults-offer-everything"),
        pytest.param(ChannelRules(), 0, 0, id="nothing-sellable"),
        pytest.param(ChannelRules(), -5, 0, id="negative-total-offers-zero"),
        pytest.param(ChannelRules(allocation_percent=50), 10, 5, id="half"),
        pytest.param(ChannelRules(allocation_percent=50), 7, 3, id="percentage-rounds-down"),
        pytest.param(ChannelRules(allocation_percent=0), 1000, 0, id="zero-percent"),
        # 100 * 29 / 100 is 28.999999999999996 in floats: a whole share must stay whole.
        pytest.param(ChannelRules(allocation_percent=29), 100, 29, id="float-noise-29pct"),
        pytest.param(ChannelRules(allocation_percent=57), 100, 57, id="float-noise-57pct"),
        pytest.param(ChannelRules(allocation_percent=33.3), 10, 3, id="fractional-percent"),
        pytest.param(ChannelRules(safety_stock=3), 10, 7, id="safety-stock"),
        pytest.param(ChannelRules(safety_stock=10), 10, 0, id="safety-stock-equals-total"),
        pytest.param(ChannelRules(safety_stock=15), 10, 0, id="safety-stock-never-negative"),
        pytest.param(ChannelRules(safety_stock=2), -4, 0, id="negative-total-with-safety"),
        # 10 * 50% = 5, less 2 = 3 (safety first would give (10 - 2) * 50% = 4).
        pytest.param(
            ChannelRules(allocation_percent=50, safety_stock=2), 10, 3, id="percent-before-safety"
        ),
        pytest.param(ChannelRules(max_quantity=5), 10, 5, id="cap"),
        pytest.param(ChannelRules(max_quantity=5), 4, 4, id="under-the-cap"),
        pytest.param(ChannelRules(max_quantity=0), 10**9, 10**9, id="zero-means-no-cap"),
        # min(10 - 2, 5) = 5 (the cap first would give 5 - 2 = 3).
        pytest.param(ChannelRules(safety_stock=2, max_quantity=5), 10, 5, id="safety-before-cap"),
        pytest.param(ChannelRules(zero_below=4), 3, 0, id="below-threshold-is-zero"),
        pytest.param(ChannelRules(zero_below=4), 4, 4, id="at-threshold-is-kept"),
        # 5 - 2 = 3 < 4: the threshold applies to what is left after safety stock.
        pytest.param(ChannelRules(safety_stock=2, zero_below=4), 5, 0, id="threshold-after-safety"),
        # The cap brings 10 down to 3, which is below 4.
        pytest.param(ChannelRules(max_quantity=3, zero_below=4), 10, 0, id="threshold-after-cap"),
        pytest.param(
            ChannelRules(allocation_percent=80, safety_stock=5, max_quantity=50, zero_below=10),
            100,
            50,
            id="all-rules-capped",
        ),
        pytest.param(
            ChannelRules(allocation_percent=80, safety_stock=5, max_quantity=50, zero_below=10),
            20,
            11,
            id="all-rules-uncapped",
        ),
        pytest.param(
            ChannelRules(allocation_percent=80, safety_stock=5, max_quantity=50, zero_below=10),
            18,
            0,
            id="all-rules-below-threshold",
        ),
    ],
)
def test_rules_quantity(rules: ChannelRules, total: int, expected: int) -> None:
    assert rules.quantity(total) == expected


def test_rules_are_frozen() -> None:
    rules = ChannelRules(safety_stock=1)
    with pytest.raises(AttributeError):
        rules.safety_stock = 2  # type: ignore[misc]


rules_strategy = st.builds(
    ChannelRules,
    allocation_percent=st.floats(min_value=0, max_value=100, allow_nan=False),
    safety_stock=st.integers(min_value=0, max_value=1_000),
    max_quantity=st.integers(min_value=0, max_value=1_000),
    zero_below=st.integers(min_value=0, max_value=1_000),
)
totals = st.integers(min_value=0, max_value=10**7)


@PROPERTY_SETTINGS
@given(rules=rules_strategy, total=totals)
def test_rules_quantity_between_zero_and_total(rules: ChannelRules, total: int) -> None:
    offered = rules.quantity(total)
    assert 0 <= offered <= total
    if rules.max_quantity:
        assert offered <= rules.max_quantity
    assert offered == 0 or offered >= rules.zero_below


@PROPERTY_SETTINGS
@given(rules=rules_strategy, total=totals, more=st.integers(min_value=0, max_value=10**6))
def test_rules_quantity_monotone_in_total(rules: ChannelRules, total: int, more: int) -> None:
    assert rules.quantity(total) <= rules.quantity(total + more)


@PROPERTY_SETTINGS
@given(rules=rules_strategy, total=st.integers(min_value=-(10**7), max_value=0))
def test_rules_quantity_never_negative_for_oversold_totals(rules: ChannelRules, total: int) -> None:
    assert rules.quantity(total) == 0


@PROPERTY_SETTINGS
@given(rules=rules_strategy, total=st.integers(min_value=-(10**6), max_value=10**7))
def test_rules_steps_end_at_the_quantity(rules: ChannelRules, total: int) -> None:
    steps = rules.steps(total)
    assert steps[0] == ("sellable over the channel's warehouses", total)
    assert steps[-1][1] == rules.quantity(total)


def test_rules_steps_name_each_rule_that_applies() -> None:
    rules = ChannelRules(allocation_percent=50, safety_stock=3, max_quantity=10, zero_below=2)
    assert rules.steps(41) == [
        ("sellable over the channel's warehouses", 41),
        ("allocation 50%", 20),
        ("less safety stock 3", 17),
        ("capped at max_quantity 10", 10),
    ]
    assert rules.steps(5)[-2:] == [("less safety stock 3", -1), ("below zero_below 2: 0", 0)]
    assert ChannelRules().steps(-4) == [
        ("sellable over the channel's warehouses", -4),
        ("oversold: never negative", 0),
    ]
