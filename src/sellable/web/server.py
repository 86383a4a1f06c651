"""An ASGI application served by uvicorn in a thread, on a socket bound at construction
(so a port in use fails at once, and port 0's choice is known before serving)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import uvicorn

from sellable.sdk import is_loopback_host

from .security import Guard, split_listen


class WebServer:
    """Usage: ``server = WebServer("127.0.0.1:0", app); server.start(); ...; server.stop()``.

    Raises :class:`OSError` when the address cannot be bound."""

    def __init__(self, listen: str, app: Any) -> None:
        host, port = split_listen(listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self.socket = sock
        self.host = host
        self.port: int = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.address = f"{shown}:{self.port}"
        self.url = f"http://{self.address}/"
        # The dashboard needs no login on loopback only: tell its guard where it is bound.
        guard = getattr(getattr(app, "state", None), "guard", None)
        if isinstance(guard, Guard):
            guard.loopback = is_loopback_host(host)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self.socket]))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.socket.close()
