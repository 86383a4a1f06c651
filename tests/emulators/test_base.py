"""The emulator base: dispatch, control API, faults, buckets and the manual clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sellable.emulators import Bucket, EmulatorServer, HttpError, ManualClock, Request, Response


class EchoEmulator(EmulatorServer):
    name = "echo"
    connector = "echo"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stock: dict[str, int] = {}
        self.orders: list[list[tuple[str, int]]] = []

    def handle(self, request: Request) -> Response:
        if request.path == "/teapot":
            raise HttpError(418, {"error": "teapot"})
        return Response(200, {"path": request.path, "q": request.arg("q"), "body": request.json()})

    def add_listing(self, sku: str, quantity: int = 0, title: str | None = None) -> str:
        self.stock[sku] = quantity
        return f"L-{sku}"

    def place_order(self, lines: list[tuple[str, int]]) -> str:
        self.orders.append(lines)
        for sku, quantity in lines:
            self.stock[sku] -= quantity
        return str(len(self.orders))

    def quantities(self) -> dict[str, int]:
        return dict(self.stock)

    def connector_settings(self) -> dict[str, Any]:
        return {"base_url": self.url}


@pytest.fixture
def echo() -> Iterator[EchoEmulator]:
    with EchoEmulator() as server:
        yield server  # type: ignore[misc]


def test_dispatch_and_errors(echo: EchoEmulator) -> None:
    with httpx.Client(base_url=echo.url) as client:
        answer = client.post("/x?q=1", json={"a": 2})
        assert answer.status_code == 200
        assert answer.json() == {"path": "/x", "q": "1", "body": {"a": 2}}
        assert client.get("/teapot").status_code == 418
        assert client.post("/x", content=b"{nope").status_code == 400
    assert echo.request_count == 3


def test_control_api_drives_listings_orders_and_state(echo: EchoEmulator) -> None:
    with httpx.Client(base_url=echo.url) as client:
        assert client.post("/_emulator/listings", json={"sku": "MUG", "quantity": 5}).json() == {
            "id": "L-MUG"
        }
        assert client.post("/_emulator/orders", json={"lines": [["MUG", 2]]}).status_code == 201
        state = client.get("/_emulator/state").json()
    assert state["quantities"] == {"MUG": 3}
    assert echo.orders == [[("MUG", 2)]]


def test_faults_apply_once_each_in_order(echo: EchoEmulator) -> None:
    echo.inject({"status": 429}, {"status": 503}, {"kind": "malformed"})
    with httpx.Client(base_url=echo.url) as client:
        first = client.get("/a")
        assert first.status_code == 429
        assert first.headers["Retry-After"] == "1"
        assert client.get("/a").status_code == 503
        malformed = client.get("/a")
        assert malformed.status_code == 200
        with pytest.raises(ValueError):
            malformed.json()
        assert client.get("/a").status_code == 200
    assert echo.throttled_count == 1


def test_reset_fault_drops_the_connection_and_path_filter(echo: EchoEmulator) -> None:
    echo.inject({"kind": "reset", "path": "/only"})
    with httpx.Client(base_url=echo.url) as client:
        assert client.get("/other").status_code == 200
        with pytest.raises(httpx.TransportError):
            client.get("/only/here")
        assert client.get("/only/here").status_code == 200


def test_bucket_refills_with_the_manual_clock() -> None:
    clock = ManualClock()
    bucket = Bucket(capacity=10, rate=2, clock=clock)
    assert bucket.take(10)
    assert not bucket.take(1)
    assert bucket.wait_time(3) == pytest.approx(1.5)
    clock.advance(1.5)
    assert bucket.take(3)
    clock.advance(100)
    assert bucket.available() == 10


def test_stop_of_a_server_never_started_returns() -> None:
    server = EchoEmulator()
    server.stop()


def test_emulator_lasting_fault_answers_every_request_until_the_clock_passes_it() -> None:
    clock = ManualClock()
    with EchoEmulator(clock=clock) as server:
        server.inject({"status": 429, "retry_after": "90", "for": 30, "path": "/orders"})
        with httpx.Client(base_url=server.url) as client:
            throttled = [client.get("/orders") for _ in range(2)]
            other = client.get("/products")
            clock.advance(30)
            healed = client.get("/orders")

    assert [(r.status_code, r.headers["Retry-After"]) for r in throttled] == [(429, "90")] * 2
    assert (other.status_code, healed.status_code) == (200, 200)
    assert server.faults == deque()


def test_emulator_offline_refuses_connections_until_online_on_the_same_port() -> None:
    with EchoEmulator() as server:
        port = server.port
        with httpx.Client(base_url=server.url) as client:
            before = client.get("/x")  # a kept-alive connection, dropped when offline
            server.go_offline()
            with pytest.raises(httpx.ConnectError):
                client.get("/x")
            server.go_online()
            after = client.get("/x")

    assert (before.status_code, after.status_code, server.port) == (200, 200, port)
