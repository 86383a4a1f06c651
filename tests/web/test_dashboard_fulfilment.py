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
