"""A stateful JSON shop on loopback, with fault injection, for the daemon's tests.

API (``Authorization: Bearer TOKEN``):
  GET  /listings?page=&per_page=        {"listings": [{id, sku, quantity}], "next_page"}
  GET  /orders?updated_after=&page=     {"orders": [...], "next_page"} (oldest update first)
  POST /quantities {"items": [{id, quantity}]}  at most 50 items, else 413;
       per-item errors inside HTTP 200: {"results": [{id, ok, error?}]}
  GET  /quantities?ids=a,b              {"quantities": {id: quantity}}
Test control (no auth): POST /_faults [{"status": 429, "retry_after": "0"}, {"kind": "reset"},
  {"kind": "malformed"}, {"kind": "timeout"}] queued, one per request;
  POST /_refuse {"ids": [...]} makes pushes of those listings fail.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MAX_BATCH = 50


@dataclass
class ShopState:
    token: str = "secret-token"
    listings: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: deque[dict[str, Any]] = field(default_factory=deque)
    refuse: set[str] = field(default_factory=set)
    pushes: list[dict[str, int]] = field(default_factory=list)  # every accepted batch
    requests: int = 0
    clock: int = 0
    epoch: int = field(default_factory=lambda: int(time.time()))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> str:
        """A strictly increasing update time: one second per change from the shop's start."""
        self.clock += 1
        return datetime.fromtimestamp(self.epoch + self.clock, UTC).isoformat()

    def add_listing(self, listing_id: str, sku: str | None, quantity: int = 0) -> None:
        with self.lock:
            self.listings[listing_id] = {"id": listing_id, "sku": sku, "quantity": quantity}

    def place_order(
        self, order_id: str, lines: list[tuple[str, int]], status: str = "processing"
    ) -> None:
        with self.lock:
            self.orders[order_id] = {
                "id": order_id,
                "status": status,
                "updated_at": self.tick(),
                "lines": [
                    {"id": f"{order_id}-{i}", "sku": sku, "quantity": qty}
                    for i, (sku, qty) in enumerate(lines, 1)
                ],
            }

    def set_order_status(self, order_id: str, status: str) -> None:
        with self.lock:
            self.orders[order_id]["status"] = status
            self.orders[order_id]["updated_at"] = self.tick()


class TestShopServer:
    """Usage: ``with TestShopServer() as shop: shop.url ...``."""

    def __init__(self, state: ShopState | None = None) -> None:
        self.state = state or ShopState()
        state_ref = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self,
                status: int,
                payload: Any,
                raw: bytes | None = None,
                headers: dict[str, str] | None = None,
            ) -> None:
                body = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _read_body(self) -> None:
                """Read this request's body (the handler serves a whole keep-alive connection)."""
                length = int(self.headers.get("Content-Length") or 0)
                self._raw_body = self.rfile.read(length)

            def _body(self) -> Any:
                return json.loads(self._raw_body or b"null")

            def _fault(self) -> bool:
                with state_ref.lock:
                    fault = state_ref.faults.popleft() if state_ref.faults else None
                if fault is None:
                    return False
                kind = fault.get("kind")
                if kind == "reset":
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.connection.close()
                    self.close_connection = True
                    return True
                if kind == "malformed":
                    self._send(200, None, raw=b'{"listings": [')
                    return True
                if kind == "timeout":
                    threading.Event().wait(fault.get("seconds", 2.0))
                    self.close_connection = True
                    return True
                headers = {"Retry-After": fault["retry_after"]} if "retry_after" in fault else {}
                self._send(int(fault.get("status", 500)), {"error": "injected"}, headers=headers)
                return True

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {state_ref.token}":
                    self._send(401, {"error": "unauthorized"})
                    return False
                return True

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/_state":
                    with state_ref.lock:
                        self._send(
                            200,
                            {
                                "listings": state_ref.listings,
                                "orders": state_ref.orders,
                                "requests": state_ref.requests,
                            },
                        )
                    return
                with state_ref.lock:
                    state_ref.requests += 1
                if self._fault() or not self._authorised():
                    return
                page = int(query.get("page", "1"))
                per_page = int(query.get("per_page", "50"))
                with state_ref.lock:
                    if url.path == "/listings":
                        items = sorted(state_ref.listings.values(), key=lambda x: x["id"])
                        key = "listings"
                    elif url.path == "/orders":
                        after = query.get("updated_after", "")
                        items = sorted(
                            (o for o in state_ref.orders.values() if o["updated_at"] >= after),
                            key=lambda o: (o["updated_at"], o["id"]),
                        )
                        key = "orders"
                    elif url.path == "/quantities":
                        ids = [i for i in query.get("ids", "").split(",") if i]
                        self._send(
                            200,
                            {
                                "quantities": {
                                    i: state_ref.listings[i]["quantity"]
                                    for i in ids
                                    if i in state_ref.listings
                                }
                            },
                        )
                        return
                    else:
                        self._send(404, {"error": "not found"})
                        return
                    chunk = json.loads(json.dumps(items[(page - 1) * per_page : page * per_page]))
                    more = page * per_page < len(items)
                self._send(200, {key: chunk, "next_page": page + 1 if more else None})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                self._read_body()
                if url.path == "/_faults":
                    with state_ref.lock:
                        state_ref.faults.extend(self._body())
                    self._send(200, {"ok": True})
                    return
                if url.path == "/_refuse":
                    with state_ref.lock:
                        state_ref.refuse = set(self._body()["ids"])
                    self._send(200, {"ok": True})
                    return
                with state_ref.lock:
                    state_ref.requests += 1
                if self._fault() or not self._authorised():
                    return
                if url.path != "/quantities":
                    self._send(404, {"error": "not found"})
                    return
                items = self._body()["items"]
                if len(items) > MAX_BATCH:
                    self._send(413, {"error": f"at most {MAX_BATCH} items per request"})
                    return
                results = []
                with state_ref.lock:
                    accepted = {}
                    for item in items:
                        lid = str(item["id"])
                        if lid not in state_ref.listings:
                            results.append({"id": lid, "ok": False, "error": "no such listing"})
                        elif lid in state_ref.refuse:
                            results.append({"id": lid, "ok": False, "error": "refused"})
                        else:
                            state_ref.listings[lid]["quantity"] = int(item["quantity"])
                            accepted[lid] = int(item["quantity"])
                            results.append({"id": lid, "ok": True})
                    state_ref.pushes.append(accepted)
                self._send(200, {"results": results})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> TestShopServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TestShopServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
