"""``[allocation]`` in the configuration: defaults, durations, bounds, cross-references."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.test_config_channels import channel, clean_environment, load, problems

__all__ = ["clean_environment"]  # the autouse fixture, imported to apply here


def test_allocation_defaults_to_full_mode(tmp_path: Path) -> None:
    allocation = load(tmp_path, "").allocation
    assert allocation.mode == "full"
    assert allocation.weights == "velocity"
    assert allocation.velocity_window == timedelta(days=14)
    assert (allocation.min_units, allocation.rebalance_below) == (0, 0)
    assert (allocation.headroom, allocation.headroom_sigmas) == ("none", 3.0)
    assert allocation.channel_push_latency("shop") == timedelta(0)


def test_allocation_reads_every_key(tmp_path: Path) -> None:
    body = channel("shop") + (
        '\n[allocation]\nmode = "shared"\nweights = "fixed"\nvelocity_window = "7d"\n'
        'velocity_refresh = "0s"\nmin_units = 1\nrebalance_below = 2\nheadroom = "latency"\n'
        "headroom_sigmas = 2.5\n"
        '[allocation.channels.shop]\nweight = 2.5\nreserve = 3\npush_latency = "30m"\n'
        '[allocation.skus."GIFT-SET"]\nweight = 0.5\n'
    )
    allocation = load(tmp_path, body).allocation
    assert allocation.mode == "shared"
    assert allocation.velocity_window == timedelta(days=7)
    assert allocation.velocity_refresh == timedelta(0)
    assert (allocation.channel_weight("shop"), allocation.channel_reserve("shop")) == (2.5, 3)
    assert (allocation.channel_weight("other"), allocation.sku_weight("GIFT-SET")) == (1.0, 0.5)
    assert (allocation.headroom, allocation.headroom_sigmas) == ("latency", 2.5)
    assert allocation.channel_push_latency("shop") == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('mode = "half"', "allocation.mode"),
        ('velocity_window = "0s"', "allocation.velocity_window"),
        ("min_units = -1", "allocation.min_units"),
        ("[allocation.channels.ebay]\nweight = 1", "unknown channel 'ebay'"),
        ("[allocation.channels.shop]\nweight = -2", "allocation.channels.shop.weight"),
        ('headroom = "always"', "allocation.headroom"),
        ("headroom_sigmas = -1", "allocation.headroom_sigmas"),
        ("headroom_sigmas = nan", "allocation.headroom_sigmas"),
        (
            '[allocation.channels.shop]\npush_latency = "-5m"',
            "allocation.channels.shop.push_latency",
        ),
    ],
    ids=[
        "mode",
        "window",
        "min-units",
        "unknown-channel",
        "negative-weight",
        "headroom",
        "negative-sigmas",
        "nan-sigmas",
        "negative-latency",
    ],
)
def test_allocation_refuses_bad_values_naming_the_key(
    tmp_path: Path, body: str, fragment: str
) -> None:
    found = problems(tmp_path, channel("shop") + "\n[allocation]\n" + body + "\n")
    assert any(fragment in line for line in found), found
