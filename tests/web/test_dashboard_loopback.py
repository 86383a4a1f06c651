"""Bound to loopback, the dashboard needs no login even with ``[daemon] dashboard_token``
set (a bearer token is still accepted, a wrong one refused; actions still need the CSRF
token); bound anywhere else, every page and API call needs the token. Served for real
(:class:`WebServer` on a socket), since what counts is the address it is bound to."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from sellable.config import Settings
from sellable.web import Dashboard, WebServer, create_app
from tests.imports import Store, open_store

TOKEN = "loopback-test-token"


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    opened = open_store(config_file)
    opened.load_examples()
    yield opened
    opened.engine.dispose()


def with_token(settings: Settings) -> Settings:
    daemon = settings.daemon.model_copy(update={"dashboard_token": SecretStr(TOKEN)})
    return settings.model_copy(update={"daemon": daemon})


def serve(store: Store, listen: str) -> Iterator[tuple[httpx.Client, WebServer]]:
    board = Dashboard(store.engine, with_token(store.settings))
    server = WebServer(listen, create_app(board))
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            yield client, server
    finally:
        server.stop()
        board.close()


@pytest.fixture
def loopback(store: Store) -> Iterator[tuple[httpx.Client, WebServer]]:
    yield from serve(store, "127.0.0.1:0")


@pytest.fixture
def everywhere(store: Store) -> Iterator[tuple[httpx.Client, WebServer]]:
    yield from serve(store, "0.0.0.0:0")


def test_loopback_bind_needs_no_login_even_with_a_token(
    loopback: tuple[httpx.Client, WebServer],
) -> None:
    client, _server = loopback
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-sku="GIFT-SET-COFFEE"' in page.text
    assert client.get("/api/stock").status_code == 200
    bearer = client.get("/api/stock", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200
    wrong = client.get("/api/stock", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "wrong token"}
    # /login has nothing to do there: it sends the browser on.
    login = client.post("/login", data={"token": "", "next": "/orders"}, follow_redirects=False)
    assert (login.status_code, login.headers["location"]) == (303, "/orders")


def test_loopback_actions_still_need_the_csrf_token(
    loopback: tuple[httpx.Client, WebServer],
) -> None:
    client, _server = loopback
    refused = client.post("/actions/retry-held", headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    found = re.search(r'name="csrf-token" content="(\w+)"', client.get("/orders").text)
    assert found is not None
    done = client.post(
        "/actions/retry-held", data={"csrf_token": found.group(1)}, headers={"HX-Request": "true"}
    )
    assert done.status_code == 200
    assert "held lines retried: 0 now allocated, 0 still held" in done.text


def test_non_loopback_bind_needs_the_token(everywhere: tuple[httpx.Client, WebServer]) -> None:
    client, _server = everywhere
    page = client.get("/")
    assert page.status_code == 401
    assert 'data-sku="GIFT-SET-COFFEE"' not in page.text
    assert client.get("/api/stock").status_code == 401
    bearer = client.get("/api/stock", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200
    login = client.post("/login", data={"token": TOKEN, "next": "/orders"}, follow_redirects=False)
    assert (login.status_code, login.headers["location"]) == (303, "/orders")
    assert client.get("/orders").status_code == 200  # the session cookie lets it in
