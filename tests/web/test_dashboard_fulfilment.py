"""The dashboard's orders page and ``/api/orders`` with a fulfilment channel (a 3PL):
what was sent where, and what waits on someone (an exception, a refusal, an order with no
shipping address), the same as ``sellable orders [--held] --json``.

The store is tests/sync/test_fulfilment.py's: the real engine, order book and store, and
a fulfilment provider kept in memory (tests/sync/fake_fulfilment.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from sellable.cli import cli
from sellable.config import load_settings
from sellable.orders import OrderLineIn
from sellable.sdk import ShipmentStatus
from sellable.web import Dashboard, create_app
from tests.sync import fake_fulfilment
from tests.sync.test_fulfilment import World


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[World]:
    for _ in fake_fulfilment.register(tmp_path_factory.mktemp("fakefulfil")):
        opened = World(tmp_path, f"sqlite:///{tmp_path / 'sellable.db'}")
        try:
            yield opened
        finally:
            opened.close()
            fake_fulfilment.PROVIDERS.clear()


def rows(html: str, table: str) -> list[dict[str, str]]:
    """The ``data-col`` cells of each row of the table with id ``table``."""
    body = re.search(rf'<table id="{table}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert body is not None, f"no table {table}"
    found = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S):
        cells = {
            col: re.sub(r"<[^>]+>", "", text).strip()
            for col, text in re.findall(r'<td data-col="(\w+)"[^>]*>(.*?)</td>', row, re.S)
        }
        if cells:
            found.append(cells)
    return found


def test_the_orders_page_and_api_show_fulfilments_and_what_waits_on_someone(
    world: World,
) -> None:
    # shop:1001 goes out and the provider flags it; shop:1002 has no address (not sent);
    # shop:1003 goes out and stays in hand.
    world.place("1001")
    world.place("1002", lines=(OrderLineIn("l1", "A", 1),), address=None)
    world.place("1003", lines=(OrderLineIn("l1", "B", 2),))
    assert world.run("fulfil").counts["sent"] == 2
    world.provider.set_shipment("shop:1001", ShipmentStatus.EXCEPTION, "Address unverifiable")
    assert world.run("shipments").counts["flagged"] == 1

    board = Dashboard(world.db, load_settings(world.config), sync=world.engine)
    with TestClient(create_app(board)) as client:
        every = client.get("/api/orders").json()
        held = client.get("/api/orders", params={"held": 1}).json()
        html = client.get("/orders").text

    cli_held = CliRunner().invoke(
        cli, ["--config", str(world.config), "orders", "--held", "--json"]
    )
    assert cli_held.exit_code == 0, cli_held.output
    assert held == json.loads(cli_held.stdout)
    by_id = {o["order_id"]: o["fulfilments"] for o in every}
    assert [(f["channel"], f["status"], f["remote_id"]) for f in by_id["1001"]] == [
        ("sb", "exception", "501")
    ]
    assert by_id["1002"] == [
        {
            "channel": "sb",
            "remote_id": None,
            "reference": None,
            "status": "no_address",
            "tracking": [],
            "reason": "no shipping address: cannot be sent to sb",
        }
    ]
    assert [(f["status"], f["remote_id"]) for f in by_id["1003"]] == [("sent", "502")]
    assert [o["order_id"] for o in held] == ["1001", "1002"]

    created = {o["order_id"]: (o["created_at"] or "")[:19].replace("T", " ") for o in every}
    assert rows(html, "fulfilment-attention") == [
        {
            "order": "shop:1001",
            "created_at": created["1001"],
            "warehouse": "sb",
            "channel": "sb",
            "status": "exception",
            "remote_id": "501",
            "reason": "Address unverifiable",
        },
        {
            "order": "shop:1002",
            "created_at": created["1002"],
            "warehouse": "sb",
            "channel": "sb",
            "status": "no address",
            "remote_id": "",
            "reason": "no shipping address: cannot be sent to sb",
        },
    ]
    # Neither is a held line: the held-lines table stays empty.
    assert rows(html, "held") == []
    shown = {r["fulfilment"] for r in rows(html, "open-orders") if r.get("fulfilment")}
    assert shown == {"sb exception 501", "sb no_address", "sb sent 502"}


def test_send_again_on_the_orders_page_withdraws_a_refused_request_as_sellable_resend_does(
    world: World,
) -> None:
    world.place("1001")
    world.place("1002", lines=(OrderLineIn("l1", "B", 1),))
    world.provider.refuse["shop:1001"] = "address not deliverable"
    world.run("fulfil")
    world.provider.set_shipment("shop:1002", ShipmentStatus.EXCEPTION, "Address unverifiable")
    world.run("shipments")
    world.provider.refuse.clear()

    board = Dashboard(world.db, load_settings(world.config), sync=world.engine)
    with TestClient(create_app(board)) as client:
        html = client.get("/orders").text
        token = csrf(client)
        sent = client.post("/actions/resend", data={"csrf_token": token, "order": "shop:1001"})
        again = client.post("/actions/resend", data={"csrf_token": token, "order": "shop:1001"})
        flagged = client.post("/actions/resend", data={"csrf_token": token, "order": "shop:1002"})
        forged = client.post("/actions/resend", data={"order": "shop:1001"})
        after = client.get("/orders").text
    resent = world.run("fulfil")

    # Only the refused request has the button; the exception waits on the provider.
    assert buttons(html) == ["shop:1001"]
    assert sent.status_code == 200
    assert (
        "shop:1001: request shop:1001 to sb withdrawn (it was refused: address not "
        "deliverable); sb gets a new one within 1m, with the order&#39;s address as it is "
        "then"
    ) in sent.text
    assert again.status_code == 409 and "nothing refused to send again for shop:1001" in again.text
    assert flagged.status_code == 409
    assert forged.status_code == 403
    assert buttons(after) == []
    assert resent.counts["sent"] == 1
    assert world.provider.received[-1] == "shop:1001:2"


def test_a_read_only_dashboard_shows_no_send_again_and_refuses_it(world: World) -> None:
    world.place("1001")
    world.provider.refuse["shop:1001"] = "address not deliverable"
    world.run("fulfil")
    settings = load_settings(world.config)
    settings = settings.model_copy(
        update={"daemon": settings.daemon.model_copy(update={"dashboard_read_only": True})}
    )

    board = Dashboard(world.db, settings, sync=world.engine)
    with TestClient(create_app(board)) as client:
        html = client.get("/orders").text
        token = csrf(client)
        refused = client.post("/actions/resend", data={"csrf_token": token, "order": "shop:1001"})

    assert 'data-order="shop:1001"' in html and buttons(html) == []
    assert refused.status_code == 403
    assert [status for _, status, _, _ in world.fulfilments()] == ["refused"]


def buttons(html: str) -> list[str]:
    """The orders whose "Send again" button the page shows."""
    return re.findall(r'aria-label="Send again: ([^"]+)"', html)


def csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf-token" content="(\w+)"', client.get("/orders").text)
    assert found is not None
    return found.group(1)
