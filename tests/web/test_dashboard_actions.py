"""The dashboard's actions write what the CLI would (a build is ``OrderBook.build``, all or
nothing, in the ledger), and ``sellable dashboard`` as a process: the URL for port 0, a
clean stop on SIGTERM, and the refusal to listen beyond loopback without a token."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sellable.orders import OrderBook
from sellable.sync.engine import SyncEngine
from sellable.sync.metrics import Metrics
from sellable.sync.service import HealthServer
from sellable.web import Dashboard, create_app
from sellable.web.state import StockQuery
from tests.imports import Store, open_store

GIFT_ROW = re.compile(
    r'<tr data-sku="GIFT-SET-COFFEE" data-warehouse="main">.*?'
    r'<td data-col="on_hand" class="num">(\d+)</td>.*?'
    r'<td data-col="assemblable" class="num">(\d+)</td>.*?'
    r'<td data-col="sellable" class="num strong">(\d+)</td>',
    re.S,
)


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    opened = open_store(config_file)
    opened.load_examples()
    yield opened
    assert opened.ledger_mismatches() == []
    opened.engine.dispose()


def csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf-token" content="(\w+)"', client.get("/reorder").text)
    assert found is not None
    return found.group(1)


def test_dashboard_build_action_is_the_order_books_build_and_writes_the_ledger(
    store: Store,
) -> None:
    board = Dashboard(store.engine, store.settings)
    with TestClient(create_app(board)) as client:
        token = client.get("/api/token").json()["token"]
        assert GIFT_ROW.search(client.get("/").text).groups() == ("10", "30", "40")  # type: ignore[union-attr]
        too_many = client.post(
            "/actions/build",
            data={
                "csrf_token": csrf(client),
                "sku": "GIFT-SET-COFFEE",
                "warehouse": "main",
                "quantity": "31",
            },
            headers={"HX-Request": "true"},
        )
        assert too_many.status_code == 409
        assert too_many.text.startswith('<p role="alert"')
        assert "cannot build 31 × GIFT-SET-COFFEE" in too_many.text
        assert client.get("/api/token").json()["token"] == token  # all or nothing

        built = client.post(
            "/actions/build",
            data={
                "csrf_token": csrf(client),
                "sku": "GIFT-SET-COFFEE",
                "warehouse": "main",
                "quantity": "4",
            },
            headers={"HX-Request": "true"},
        )
        assert built.status_code == 200, built.text
        assert built.headers["HX-Trigger"] == "stock-changed"
        assert "built 4 × GIFT-SET-COFFEE in main" in built.text
        # The poller sees the change; the figures are the new ones.
        assert client.get("/live", params={"seen": token}).status_code == 200
        assert GIFT_ROW.search(client.get("/").text).groups() == ("14", "26", "40")  # type: ignore[union-attr]
        ledger = client.get("/api/skus/GIFT-SET-COFFEE").json()["ledger"]["items"]
        assert (ledger[0]["type"], ledger[0]["quantity"], ledger[0]["balance"]) == (
            "AssemblyBuild",
            4,
            14,
        )
        mug = client.get("/api/skus/MUG-CERAMIC").json()["ledger"]["items"][0]
        assert (mug["type"], mug["quantity"], mug["balance"]) == ("AssemblyBuild", -4, 26)
        assert '<tr data-movement="' in client.get("/skus/GIFT-SET-COFFEE").text
        # The stock page's 30-day line of a row, from the ledger: 0, the count, the build.
        mugs = board.stock_page(StockQuery(warehouse="main", q="MUG-CERAMIC")).rows
        assert board.trends(mugs) == {("MUG-CERAMIC", "main"): [0, 30, 26]}
        assert re.search(r'<td data-col="trend"><svg [^>]*role="img"', client.get("/").text)

        zero = client.post(
            "/actions/build",
            data={
                "csrf_token": csrf(client),
                "sku": "GIFT-SET-COFFEE",
                "warehouse": "main",
                "quantity": "0",
            },
        )
        assert zero.status_code == 400
        assert "quantity must be a positive integer, got 0" in zero.text
    board.close()


def test_dashboard_retry_held_lines_allocates_after_stock_arrives(store: Store) -> None:
    book = OrderBook(store.engine, store.settings)
    from sellable.orders.model import OrderIn, OrderLineIn, OrderStatus

    book.apply(
        [
            OrderIn(
                channel="web",
                order_id="7",
                warehouse="main",
                status=OrderStatus.OPEN,
                lines=(OrderLineIn("1", "LENS-18-55", 6),),
            )
        ]
    )
    board = Dashboard(store.engine, store.settings)
    with TestClient(create_app(board)) as client:
        page = client.get("/orders").text
        assert '<tr data-order="web:7" data-line="1">' in page
        store.csv("count.csv", "sku,warehouse,on_hand\nLENS-18-55,main,10\n")
        from sellable.imports import import_stock

        import_stock(store.engine, store.settings, store.dir / "count.csv")  # no retry itself
        assert '<tr data-order="web:7" data-line="1">' in client.get("/orders").text
        retried = client.post("/actions/retry-held", data={"csrf_token": csrf(client)})
        assert retried.status_code == 200
        assert "held lines retried: 1 now allocated, 0 still held" in retried.text
        assert 'data-order="web:7"' not in client.get("/orders").text.split('id="open-orders"')[0]
    board.close()


def test_daemon_health_server_serves_the_dashboard_beside_healthz(store: Store) -> None:
    engine = SyncEngine(store.engine, store.settings)
    board = Dashboard(store.engine, store.settings, sync=engine)
    server = HealthServer("127.0.0.1:0", engine, Metrics(), dashboard=board)
    server.start()
    try:
        import httpx

        base = f"http://{server.address}"
        assert httpx.get(f"{base}/healthz", timeout=10).json()["status"] == "ok"
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 200
        page = httpx.get(f"{base}/channels", timeout=10)
        assert page.status_code == 200 and page.headers["X-Frame-Options"] == "DENY"
        assert GIFT_ROW.search(httpx.get(f"{base}/", timeout=10).text) is not None
    finally:
        server.stop()
        engine.close()


def _sellable(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLABLE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "sellable", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dashboard_command_prints_its_url_and_stops_on_sigterm(store: Store) -> None:
    process = _sellable(store.config, "dashboard", "--listen", "127.0.0.1:0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.match(r"dashboard on (http://127\.0\.0\.1:(\d+)/)", line)
        assert found is not None, line
        import httpx

        answer = httpx.get(found.group(1), timeout=10)
        assert answer.status_code == 200 and 'id="stock"' in answer.text
        process.send_signal(signal.SIGTERM)
        rest, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
        assert rest == "dashboard stopped\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_dashboard_command_refuses_a_public_address_without_a_token(
    store: Store, listen: str
) -> None:
    process = _sellable(store.config, "dashboard", "--listen", listen)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert f"refusing to serve the dashboard on {listen}" in err
    assert "dashboard_token" in err and out == ""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dashboard_channels_page_names_settings_never_their_values(
    config_file: Path, testshop: object
) -> None:
    secret = "tok-3f9a-very-secret"
    with config_file.open("a") as handle:
        handle.write(
            '\n[[channels]]\ncode = "shop"\nconnector = "testshop"\nwarehouses = ["main"]\n'
            f'[channels.settings]\nbase_url = "{testshop.url}"\ntoken = "{secret}"\n'  # type: ignore[attr-defined]
        )
    store = open_store(config_file)
    store.load_examples()
    from sellable.config import load_settings

    settings = load_settings(config_file)
    board = Dashboard(store.engine, settings)
    ran: list[str] = []
    try:
        with TestClient(create_app(board)) as client:
            page = client.get("/channels").text
            assert '<tr data-channel="shop">' in page
            assert '<tr data-channel="shop" data-job="push">' in page
            assert "token = <span" in page and secret not in page
            assert "Sync now</button>" not in page  # no daemon: not offered, and why
            assert "Sync now needs the daemon" in page
            refused = client.post("/actions/sync/shop", data={"csrf_token": csrf(client)})
            assert refused.status_code == 403 and "sellable run" in refused.text
            assert client.get("/api/channels").json()[0]["channel"] == "shop"
            board.sync_now = ran.append  # as the daemon's scheduler would be
            assert "Sync now</button>" in client.get("/channels").text
            done = client.post("/actions/sync/shop", data={"csrf_token": csrf(client)})
            assert done.status_code == 200 and ran == ["shop"]
    finally:
        board.close()
        store.engine.dispose()
