"""The web dashboard: server-rendered pages and their JSON API (see docs/dashboard.md)."""

from __future__ import annotations

from .app import create_app
from .server import WebServer
from .state import Dashboard

__all__ = ["Dashboard", "WebServer", "create_app"]
