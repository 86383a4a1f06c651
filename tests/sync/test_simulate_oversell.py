"""The oversell simulator (benchmarks/simulate_oversell.py) on a day small enough to check by hand.

One SKU ``A`` (3 units, list price 10.00) on two channels, ``c1`` and ``c2``, both pulled
every 6 hours (c1 first), each push reaching its channel 30 minutes after we decide it;
5 units arrive at 12:00. Mode "full": both channels show all of A.

=====  =====================  ============================================================
time   customer               what happens
=====  =====================  ============================================================
01:00  c1 orders 2            c1 shows 3: accepted, c1 shows 1
02:00  c2 orders 3            c2 still shows 3 (stale): accepted, c2 shows 0
03:00  c2 orders 1            c2 shows 0: refused; nothing left anywhere: a stock-out
04:00  c1 orders 1            c1 shows 1: accepted, c1 shows 0
06:00  pulls                  c1's 2 + 1 allocated; c2's 3 held: **3 units oversold**;
                              the push of 0 reaches both at 06:30
12:00  5 units arrive         the held 3 are served first; 2 left; push of 2 at 12:30
12:10  c1 orders 1            c1 shows 0 while 2 sit unpromised: **1 unit lost**
13:00  c1 orders 2            c1 shows 2: accepted, c1 shows 0
14:00  c2 orders 1            c2 shows 2 (stale): accepted
18:00  pulls                  c1's 2 allocated; c2's 1 held: **1 more unit oversold**,
                              still held at the end of the day
=====  =====================  ============================================================

Demand 11 units in 7 orders; accepted 9 units in 5 orders; oversold 4 units in 2 held
orders, 1 still held at the end; lost 1 unit; refused for want of stock 1 unit; revenue:
the 8 units allocated at the end (2 + 1 + 3 + 2) at 10.00.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from simulate_oversell import (  # noqa: E402
    Arrival,
    ChannelSpec,
    Figures,
    Restock,
    Scenario,
    load_mode_settings,
    poisson_arrivals,
    simulate,
    verdict,
    write_config,
)


def tiny_scenario() -> Scenario:
    h = timedelta(hours=1)
    return Scenario(
        name="tiny",
        title="one SKU, two channels, one day",
        products=[{"sku": "A", "name": "A", "kind": "simple", "price": "10.00"}],
        components=[],
        stock=[{"sku": "A", "warehouse": "main", "on_hand": "3", "locked": "0"}],
        listed=["A"],
        rates={},
        restocks=[Restock(12 * h, {"A": 5})],
        channels=[
            ChannelSpec("c1", 6 * h, timedelta(minutes=30), 0.5),
            ChannelSpec("c2", 6 * h, timedelta(minutes=30), 0.5),
        ],
        days=1,
        arrivals=[
            Arrival(1 * h, "c1", "A", 2),
            Arrival(2 * h, "c2", "A", 3),
            Arrival(3 * h, "c2", "A", 1),
            Arrival(4 * h, "c1", "A", 1),
            Arrival(12 * h + timedelta(minutes=10), "c1", "A", 1),
            Arrival(13 * h, "c1", "A", 2),
            Arrival(14 * h, "c2", "A", 1),
        ],
        reconcile_every=timedelta(hours=1),
    )


def test_simulate_oversell_full_mode_counts_a_stale_channel_exactly(tmp_path: Path) -> None:
    figures = simulate(tiny_scenario(), "full", seed=1, folder=tmp_path)

    assert figures.unavailable is None
    assert (figures.demand_orders, figures.demand_units) == (7, 11)
    assert (figures.accepted_orders, figures.accepted_units) == (5, 9)
    assert (figures.oversold_units, figures.held_orders, figures.held_at_end) == (4, 2, 1)
    assert (figures.lost_orders, figures.lost_units) == (1, 1)
    assert figures.refused_no_stock_units == 1
    assert figures.revenue == Decimal("80.00")
    assert figures.lost_share == pytest.approx(1 / 11)


def test_simulate_oversell_counts_only_the_customers_after_the_warm_up(tmp_path: Path) -> None:
    scenario = tiny_scenario()
    scenario.warmup_days = 0.5  # counted from 12:00: the orders of 12:10, 13:00 and 14:00

    figures = simulate(scenario, "full", seed=1, folder=tmp_path)

    assert (figures.demand_orders, figures.demand_units) == (3, 4)
    assert (figures.accepted_orders, figures.accepted_units) == (2, 3)
    assert (figures.oversold_units, figures.held_orders, figures.held_at_end) == (1, 1, 1)
    assert (figures.lost_orders, figures.lost_units, figures.refused_no_stock_units) == (1, 1, 0)
    assert figures.revenue == Decimal("20.00")


def test_simulate_oversell_demand_is_the_same_for_every_mode_and_follows_the_seed() -> None:
    scenario = tiny_scenario()
    scenario.arrivals = None
    scenario.rates = {"A": 24.0}

    first = poisson_arrivals(scenario, 7)

    assert first == poisson_arrivals(scenario, 7)
    assert first != poisson_arrivals(scenario, 8)
    assert {a.channel for a in first} == {"c1", "c2"}
    assert all(a.quantity in (1, 2, 3) for a in first)
    assert all(timedelta(0) < a.at < timedelta(days=1) for a in first)


def test_simulate_oversell_latency_run_sets_the_headroom_and_each_channels_push_latency(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, tiny_scenario(), "latency", "w", "sim.db", {"min_units": "1"})

    allocation = load_mode_settings(path, "latency").allocation

    assert (allocation.mode, allocation.headroom, allocation.min_units) == ("shared", "latency", 1)
    assert allocation.channel_push_latency("c1") == timedelta(minutes=30)
    assert allocation.channel_push_latency("c2") == timedelta(minutes=30)
    full = load_mode_settings(write_config(tmp_path, tiny_scenario(), "full", "w", "f.db"), "full")
    assert (full.allocation.mode, full.allocation.headroom) == ("full", "none")


@pytest.mark.parametrize(
    ("oversold", "lost", "expected"),
    [
        (1, 50, "tiny (latency): PASS: oversold cut 90.0% (goal >= 90%); latency lost 5.0%"),
        (2, 50, "tiny (latency): MISS: oversold cut 80.0% (goal >= 90%); latency lost 5.0%"),
        (0, 51, "tiny (latency): MISS: oversold cut 100.0% (goal >= 90%); latency lost 5.1%"),
    ],
    ids=["at-both-goals", "oversold-short", "lost-over"],
)
def test_simulate_oversell_verdict_names_the_shared_run_and_both_goals(
    oversold: int, lost: int, expected: str
) -> None:
    full = Figures("tiny", "full", demand_units=1000, oversold_units=10)
    latency = Figures(
        "tiny", "latency", demand_units=1000, oversold_units=oversold, lost_units=lost
    )

    assert verdict(full, latency).startswith(expected)
