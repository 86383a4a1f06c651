"""Fixtures of the ShipBob tests: the emulator on loopback, on a clock the test drives,
checking every request it receives against ShipBob's spec (``spec.check_request``).

``shipbob`` refuses an invalid request with 400 and records it in ``shipbob.violations``;
an end-to-end test ends with ``assert shipbob.violations == []``. ``shipbob_api`` is an
httpx client that sends the account's bearer token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sellable.emulators.base import ManualClock
from sellable.emulators.shipbob import ShipBobEmulator
from tests.connectors.shipbob.spec import check_request


@pytest.fixture
def shipbob_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def shipbob(shipbob_clock: ManualClock) -> Iterator[ShipBobEmulator]:
    emulator = ShipBobEmulator(clock=shipbob_clock, request_validator=check_request)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def shipbob_api(shipbob: ShipBobEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=shipbob.url,
        headers={"Authorization": f"Bearer {shipbob.token}"},
        timeout=10.0,
    ) as client:
        yield client
