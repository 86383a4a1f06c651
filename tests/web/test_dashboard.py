"""The dashboard over HTTP (FastAPI's TestClient): every page, the API against the CLI's
``--json``, days of cover by hand, and what the pages refuse. One store per backend is
shared by the module: the tests here only read (the writing ones are in
``test_dashboard_actions.py``) and check that nothing moved."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr

from sellable.cli import cli
from sellable.config import Settings
from sellable.imports import import_products
from sellable.orders import OrderBook, read_orders_csv
from sellable.web import Dashboard, create_app
from tests.imports import BACKENDS, Store, open_store, shared_database

CHANNELS = """
[[channels]]
code = "shop"
connector = "manual"
warehouses = ["main"]
"""

#: Reorder points: COMP-B (30 on hand) is watched at 40, GIFT-SET-COFFEE (10 assembled) at 12.
REORDER_PRODUCTS = """sku,name,kind,reorder_point,reorder_quantity
COMP-B,FAQ component B,simple,40,100
GIFT-SET-COFFEE,Coffee Lover's Gift Set (assembled),assembly,12,
BEANS-12OZ,Premium Coffee Beans (12oz),simple,5,
"""


def orders_csv(now: datetime) -> str:
    """Within 30 days: 6 FAQ-KIT (6 COMP-B inside) and 3 COMP-B; 40 days ago: 2 COMP-B
    (allocated, not counted in the pace); and 10 of a lens with 4 on hand: held."""
    recent = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (now - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        "channel,order_id,sku,quantity,warehouse,line_id,status,created_at\n"
        f"shop,1001,FAQ-KIT,6,main,1,open,{recent}\n"
        f"shop,1002,COMP-B,3,main,1,open,{recent}\n"
        f"shop,0900,COMP-B,2,main,1,open,{old}\n"
        f"shop,1003,LENS-18-55,10,main,1,open,{recent}\n"
    )


class Board:
    def __init__(self, store: Store, client: TestClient, board: Dashboard) -> None:
        self.store, self.client, self.board = store, client, board

    def cli_json(self, *args: str) -> Any:
        result = CliRunner().invoke(cli, ["--config", str(self.store.config), *args])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        if isinstance(data, dict):
            data.pop("meta", None)
        return data


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Board]:
    work = tmp_path_factory.mktemp("dashboard")
    with shared_database(request, work) as config:
        with config.open("a") as handle:
            handle.write(CHANNELS)
        store = open_store(config)
        try:
            store.load_examples()
            import_products(store.engine, store.csv("reorder.csv", REORDER_PRODUCTS))
            book = OrderBook(store.engine, store.settings)
            path = store.csv("orders.csv", orders_csv(datetime.now(UTC)))
            book.apply(read_orders_csv(path, store.settings, book.live.catalog, store.engine))
            board = Dashboard(store.engine, store.settings)
            with TestClient(create_app(board)) as client:
                yield Board(store, client, board)
            board.close()
            assert store.ledger_mismatches() == []
        finally:
            store.engine.dispose()


@pytest.fixture
def unchanged(shared: Board) -> Iterator[Board]:
    """The shared store, checked unwritten after the test."""
    before = shared.store.counts()
    yield shared
    assert shared.store.counts() == before


def cells(html: str, sku: str, warehouse: str) -> dict[str, str]:
    """The ``data-col`` cells of one stock-table row."""
    row = re.search(
        rf'<tr data-sku="{re.escape(sku)}" data-warehouse="{re.escape(warehouse)}">(.*?)</tr>',
        html,
        re.S,
    )
    assert row is not None, f"no row {sku} {warehouse}"
    found = {}
    for col, text in re.findall(r'<td data-col="(\w+)"[^>]*>(.*?)</td>', row.group(1), re.S):
        found[col] = re.sub(r"<[^>]+>", "", text).strip()
    return found


# -- pages ----------------------------------------------------------------------------------------


def test_dashboard_stock_page_shows_assembled_assemblable_sellable_and_bottleneck(
    unchanged: Board,
) -> None:
    answer = unchanged.client.get("/?page_size=100")
    assert answer.status_code == 200
    gift = cells(answer.text, "GIFT-SET-COFFEE", "main")
    assert (gift["on_hand"], gift["assemblable"], gift["sellable"], gift["bottleneck"]) == (
        "10",
        "30",
        "40",
        "MUG-CERAMIC",
    )
    assert cells(answer.text, "ALPHABET-BUNDLE", "main")["sellable"] == "50"
    assert cells(answer.text, "ALPHABET-BUNDLE", "fba-us")["sellable"] == "8"
    assert '<a href="/skus/GIFT-SET-COFFEE">' in answer.text
    assert 'id="stock-totals"' in answer.text and 'form id="stock-filter"' in answer.text
    for label in ("Stock", "Channels", "Orders", "Reorder", "Money"):
        assert f">{label}</a>" in answer.text


def test_dashboard_stock_filter_sort_and_page_agree_with_the_cli(unchanged: Board) -> None:
    everything = sorted(
        unchanged.cli_json("stock", "--json"), key=lambda p: (p["sku"], p["warehouse"])
    )
    api = unchanged.client.get("/api/stock", params={"page_size": 1000}).json()
    assert api["items"] == everything  # sorted by SKU, then warehouse
    assert api["total"] == len(everything) and api["pages"] == 1
    assert api["totals"]["sellable"] == sum(p["sellable"] for p in everything)

    main_kits = unchanged.client.get(
        "/api/stock", params={"warehouse": "main", "kind": "kit", "q": "coffee"}
    ).json()
    assert [(i["sku"], i["warehouse"]) for i in main_kits["items"]] == [("GIFT-KIT-COFFEE", "main")]
    assert (
        main_kits["items"][0]
        == unchanged.cli_json("stock", "GIFT-KIT-COFFEE", "--warehouse", "main", "--json")[0]
    )

    by_sellable = unchanged.client.get(
        "/api/stock", params={"sort": "sellable", "order": "desc", "page_size": 3, "page": 2}
    ).json()
    ranked = sorted(everything, key=lambda p: (-p["sellable"], p["sku"], p["warehouse"]))
    # descending sellable; ties in reverse (SKU, warehouse) order
    expected = sorted(everything, key=lambda p: (p["sellable"], p["sku"], p["warehouse"]))[::-1]
    assert [p["sellable"] for p in by_sellable["items"]] == [p["sellable"] for p in ranked[3:6]]
    assert by_sellable["items"] == expected[3:6]
    assert by_sellable["page"] == 2 and by_sellable["pages"] == -(-len(everything) // 3)


def test_dashboard_sku_page_and_api_agree_with_explain_ledger_and_layers(unchanged: Board) -> None:
    api = unchanged.client.get("/api/skus/GIFT-SET-COFFEE").json()
    assert api["explain"]["main"] == unchanged.cli_json(
        "explain", "GIFT-SET-COFFEE", "--warehouse", "main", "--json"
    )
    assert api["channels"] == [
        unchanged.cli_json("explain", "GIFT-SET-COFFEE", "--channel", "shop", "--json")
    ]
    ledger = unchanged.cli_json("ledger", "GIFT-SET-COFFEE", "--json")
    assert api["ledger"]["items"] == ledger[::-1] and api["ledger"]["total"] == len(ledger)
    assert api["layers"] == unchanged.cli_json("layers", "GIFT-SET-COFFEE", "--json")
    assert api["positions"] == unchanged.cli_json("stock", "GIFT-SET-COFFEE", "--json")

    page = unchanged.client.get("/skus/GIFT-SET-COFFEE")
    assert page.status_code == 200
    for section in ("bom", "channels", "ledger", "layers", "chart"):
        assert f'<section id="{section}"' in page.text
    assert '<tr data-sku="MUG-CERAMIC" class="bottleneck">' in page.text
    assert "<svg" in page.text


def test_dashboard_orders_page_lists_held_lines_with_reason(unchanged: Board) -> None:
    held = unchanged.cli_json("orders", "--held", "--json")
    assert unchanged.client.get("/api/orders", params={"held": 1}).json() == held
    assert unchanged.client.get("/api/orders").json() == unchanged.cli_json("orders", "--json")
    reason = held[0]["lines"][0]["hold_reason"]
    assert [(o["order_id"], o["lines"][0]["sku"]) for o in held] == [("1003", "LENS-18-55")]
    page = unchanged.client.get("/orders")
    assert '<tr data-order="shop:1003" data-line="1">' in page.text
    assert f'<td data-col="reason">{reason}</td>'.replace("'", "&#39;") in page.text
    assert "Retry held lines</button>" in page.text
    searched = unchanged.client.get("/orders", params={"q": "1002"}).text
    assert 'data-order="shop:1002"' in searched and 'data-order="shop:1001"' not in searched


def test_dashboard_reorder_days_of_cover_by_hand(unchanged: Board) -> None:
    report = unchanged.client.get("/api/reorder").json()
    assert report == unchanged.cli_json("reorder", "--json")
    items = {(i["sku"], i["warehouse"]): i for i in report["items"]}
    # COMP-B: 30 on hand - 6 (kit) - 3 - 2 (the 40-day-old order) = 19 available; used in
    # 30 days: 6 inside FAQ-KIT + 3 = 9; 19 / (9 / 30) = 63.33...
    comp_b = items[("COMP-B", "main")]
    assert (comp_b["available"], comp_b["consumed_30_days"], comp_b["days_of_cover"]) == (
        19,
        9,
        "63.3",
    )
    # GIFT-SET-COFFEE: 10 available <= 12, nothing sold: no pace, no cover figure
    assert items[("GIFT-SET-COFFEE", "main")]["days_of_cover"] is None
    assert ("BEANS-12OZ", "main") not in items  # 50 > 5
    builds = {(b["sku"], b["warehouse"]): b for b in report["to_build"]}
    gift = builds[("GIFT-SET-COFFEE", "main")]
    assert (gift["buildable"], gift["to_reorder_point"]) == (30, 2)
    page = unchanged.client.get("/reorder").text
    assert '<td data-col="days_of_cover" class="num">63.3</td>' in page
    assert '<td data-col="to_reorder_point" class="num">2</td>' in page
    assert ">Build</button>" in page and 'name="quantity"' in page


def test_dashboard_channels_and_money_pages(unchanged: Board) -> None:
    assert unchanged.client.get("/api/channels").json() == unchanged.cli_json("status", "--json")
    assert unchanged.client.get("/channels").status_code == 200
    money = unchanged.client.get("/api/money").json()
    valuation = unchanged.cli_json("valuation", "--json")
    assert money["valuation"]["totals"] == valuation["totals"]
    assert sum(w["quantity"] for w in money["valuation"]["by_warehouse"]) == sum(
        r["quantity"] for r in valuation["rows"]
    )
    assert unchanged.client.get("/money").status_code == 200


# -- refusals and headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/skus/NO-SUCH-SKU", 404, "unknown SKU &#39;NO-SUCH-SKU&#39;"),
        ("/?page_size=100000", 400, "page_size must be between 1 and 1000, got 100000"),
        ("/?page=abc", 400, "page must be a whole number, got &#39;abc&#39;"),
        ("/?warehouse=mars", 400, "unknown warehouse &#39;mars&#39; (known: main, fba-us)"),
        ("/?sort=colour", 400, "cannot sort by &#39;colour&#39;"),
        ("/nowhere", 404, "no page at /nowhere"),
    ],
    ids=["unknown-sku", "page-size", "page-text", "warehouse", "sort", "no-page"],
)
def test_dashboard_bad_input_gets_a_message_and_status(
    unchanged: Board, url: str, status: int, message: str
) -> None:
    answer = unchanged.client.get(url)
    assert answer.status_code == status
    assert re.search(r'<p role="alert"[^>]*>[^<]*' + re.escape(message), answer.text)
    assert "Traceback" not in answer.text


def test_dashboard_api_bad_input_is_json(unchanged: Board) -> None:
    assert unchanged.client.get("/api/skus/NOPE").json() == {"error": "unknown SKU 'NOPE'"}
    assert unchanged.client.get("/api/stock?page_size=5000").status_code == 422
    assert unchanged.client.get("/api/stock?kind=widget").json() == {
        "error": "unknown kind 'widget' (known: simple, kit, assembly, package, bundle)"
    }


@pytest.mark.parametrize("url", ["/", "/skus/MUG-CERAMIC", "/orders", "/api/stock", "/healthz-no"])
def test_dashboard_security_headers_on_every_response(unchanged: Board, url: str) -> None:
    headers = unchanged.client.get(url).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "unsafe" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_dashboard_pages_have_no_inline_script_or_style(unchanged: Board) -> None:
    for url in ("/", "/skus/GIFT-SET-COFFEE", "/orders", "/reorder", "/money", "/channels"):
        text = unchanged.client.get(url).text
        assert re.findall(r"<script(?![^>]*\bsrc=)", text) == []
        assert " style=" not in text and "<style" not in text
        assert "https://" not in text and "http://" not in text.replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )


@pytest.mark.parametrize(
    "path", ["/actions/build", "/actions/retry-held", "/actions/sync/shop"], ids=str
)
def test_dashboard_action_without_csrf_token_is_refused(unchanged: Board, path: str) -> None:
    answer = unchanged.client.post(
        path, data={"sku": "GIFT-SET-COFFEE", "warehouse": "main", "quantity": "1"}
    )
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert unchanged.client.get(path).status_code == 405


def _settings_with(settings: Settings, **daemon: Any) -> Settings:
    return settings.model_copy(update={"daemon": settings.daemon.model_copy(update=daemon)})


def test_dashboard_read_only_hides_and_refuses_actions(unchanged: Board) -> None:
    settings = _settings_with(unchanged.store.settings, dashboard_read_only=True)
    board = Dashboard(unchanged.store.engine, settings, sync=unchanged.board.sync)
    with TestClient(create_app(board)) as client:
        page = client.get("/reorder").text
        assert ">Build</button>" not in page
        assert "Retry held lines</button>" not in client.get("/orders").text
        token = re.search(r'name="csrf-token" content="(\w+)"', page)
        assert token is not None
        answer = client.post(
            "/actions/build",
            data={
                "csrf_token": token.group(1),
                "sku": "GIFT-SET-COFFEE",
                "warehouse": "main",
                "quantity": "1",
            },
        )
        assert answer.status_code == 403 and "read-only" in answer.text


def test_dashboard_token_bearer_cookie_and_401(unchanged: Board) -> None:
    settings = _settings_with(
        unchanged.store.settings, dashboard_token=SecretStr("correct horse battery")
    )
    board = Dashboard(unchanged.store.engine, settings, sync=unchanged.board.sync)
    with TestClient(create_app(board)) as client:
        refused = client.get("/")
        assert refused.status_code == 401 and 'name="token"' in refused.text
        assert client.get("/api/stock").status_code == 401
        wrong = client.get("/api/stock", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json() == {"error": "wrong token"}
        right = client.get("/api/stock", headers={"Authorization": "Bearer correct horse battery"})
        assert right.status_code == 200
        assert client.post("/login", data={"token": "nope"}).status_code == 401
        login = client.post(
            "/login", data={"token": "correct horse battery"}, follow_redirects=False
        )
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "correct horse battery" not in cookie
        assert client.get("/").status_code == 200  # the cookie now
        assert "correct horse battery" not in client.get("/channels").text


def test_dashboard_live_token_answers_204_until_something_changes(unchanged: Board) -> None:
    token = unchanged.client.get("/api/token").json()["token"]
    assert unchanged.client.get("/live", params={"seen": token}).status_code == 204
    changed = unchanged.client.get("/live", params={"seen": "old"})
    assert changed.status_code == 200 and changed.headers["HX-Trigger"] == "stock-changed"
    assert f"seen={token}" in changed.text


def test_dashboard_openapi_describes_the_api(unchanged: Board) -> None:
    paths = unchanged.client.get("/openapi.json").json()["paths"]
    for path in ("/api/stock", "/api/skus/{sku}", "/api/channels", "/api/orders", "/api/reorder"):
        assert "get" in paths[path]
    names = {p["name"] for p in paths["/api/stock"]["get"]["parameters"]}
    assert names >= {"page", "page_size", "warehouse", "kind", "q", "sort", "order"}


def test_dashboard_static_files_ship_in_the_package() -> None:
    import sellable.web

    folder = Path(sellable.web.__file__).parent / "static"
    assert (folder / "htmx.min.js").stat().st_size > 10_000
    assert (folder / "htmx-LICENSE.txt").exists()
