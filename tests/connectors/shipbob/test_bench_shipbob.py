"""benchmarks/bench_shipbob.py on a tiny input: the real connector against the emulator
over loopback, on a ManualClock that the HTTP client's waits advance (no sleeping), every
request checked against ShipBob's spec."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sellable.emulators.base import ManualClock
from tests.connectors.shipbob.spec import check_request

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from bench_shipbob import measure, report  # noqa: E402


def test_the_benchmark_pulls_every_count_and_creates_each_order_exactly_once() -> None:
    lines: list[str] = []
    # 501 items: pages of 250, 250 and 1
    result = measure(501, 5, clock=ManualClock(), validator=check_request, say=lines.append)

    assert result.violations == []
    assert result.stock.requests == 3
    assert result.counts == 501 * 3
    assert result.count_errors == []
    # GET /channel once (no channel_id configured), then one POST /order each
    assert result.fulfil.requests == 6
    assert result.outcomes == {"created": 5}
    assert result.emulator_orders == 5
    assert result.order_errors == []
    assert result.throttled == 0
    assert result.client_throttled == 0
    # The client's bucket (2.45/s, burst 2) is empty after the pull: the 6 requests of the
    # orders are 5 intervals of 1 / 2.45 s apart on the manual clock.
    assert result.fulfil.span == pytest.approx(5 / 2.45, abs=1e-6)

    report(result, say=lines.append)
    text = "\n".join(lines)
    assert "[PASS target 0]" in text  # no 429
    assert "5 of 5 created, 5 orders in ShipBob, 0 problems [PASS" in text
