"""What the browser tests and ``scripts/screenshots`` share: a shop (a configuration and an
SQLite file with the bundled example catalog, driven through the real ``sellable`` command
line), a running ``sellable dashboard`` subprocess, and Debian's Chromium.

Usage::

    shop = Shop.create(folder)
    shop.import_csv("orders", ORDERS_HEADER + "shop,1,MUG-CERAMIC,2,main,1,,\\n")
    with Dashboard(shop) as dashboard:
        page.goto(dashboard.url + "/reorder")
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

#: Debian's Chromium, launched by path: Playwright's own browser download does not work on
#: our machines, and ``scripts/test`` installs the ``chromium`` package instead.
CHROMIUM = os.environ.get("SELLABLE_TEST_CHROMIUM", "/usr/bin/chromium")
#: Headless, and nothing that reaches beyond loopback (the machines have no outside network,
#: and a browser that phones home makes the tests slow and flaky). Playwright gives every
#: launch a fresh, empty user-data directory of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: How long the dashboard may take to print its URL, and to stop.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

#: Warehouses of the bundled example (``sellable example``) and one channel that takes its
#: orders by CSV only, so that ``import orders`` has somewhere to book them.
CONFIG = """\
[database]
url = "sqlite:///sellable.db"

[[warehouses]]
code = "main"
kind = "own"
assembly_on_demand = true

[[warehouses]]
code = "fba-us"
kind = "fba"

[[channels]]
code = "shop"
connector = "manual"
warehouses = ["main"]
"""

ORDERS_HEADER = "channel,order_id,sku,quantity,warehouse,line_id,status,created_at\n"

URL = re.compile(r"https?://[^\s/]+:(\d+)")


class ChromiumMissing(RuntimeError):
    """Debian's Chromium is not where the tests launch it from."""


def chromium_path() -> str:
    """The Chromium executable, or :class:`ChromiumMissing` saying how to get it."""
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        raise ChromiumMissing(
            f"the browser tests need Debian's Chromium at {CHROMIUM}, which is missing: "
            "run ./scripts/test (it installs it), or 'apt-get install chromium' as root, "
            "or point $SELLABLE_TEST_CHROMIUM at a Chromium executable"
        )
    return CHROMIUM


class CommandFailed(AssertionError):
    """A ``sellable`` command exited with an unexpected code."""


def sellable(
    config: Path, *args: str, expect: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sellable --config CONFIG ARGS`` as a subprocess of this Python."""
    result = subprocess.run(
        [sys.executable, "-m", "sellable", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if result.returncode != expect:
        raise CommandFailed(
            f"sellable {' '.join(args)} exited {result.returncode}, expected {expect}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


class Shop:
    """A configuration and an SQLite file in ``folder`` with the bundled example catalog."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "sellable.toml"
        self._files = 0

    @classmethod
    def create(cls, folder: Path, extra_config: str = "", examples: Path | None = None) -> Shop:
        """Write the configuration and run ``sellable example`` on it (``examples``: a
        folder of products.csv, components.csv and stock.csv instead of the bundled one)."""
        folder.mkdir(parents=True, exist_ok=True)
        shop = cls(folder)
        shop.config.write_text(CONFIG + extra_config)
        shop.run("example", *(["--examples", str(examples)] if examples else []))
        return shop

    def run(self, *args: str, expect: int = 0) -> str:
        """Run a ``sellable`` command on this shop; its stdout."""
        return sellable(self.config, *args, expect=expect).stdout

    def json(self, *args: str) -> Any:
        """Run a ``sellable`` command with ``--json``; its parsed output."""
        return json.loads(self.run(*args, "--json"))

    def import_csv(self, kind: str, text: str) -> Any:
        """``sellable import KIND`` of a CSV file with ``text``; the import's JSON summary."""
        self._files += 1
        path = self.folder / f"{kind}-{self._files}.csv"
        path.write_text(text)
        return self.json("import", kind, str(path))

    def position(self, sku: str, warehouse: str) -> dict[str, Any]:
        """``sellable stock SKU --warehouse W --json``: the CLI's figures, the reference."""
        rows: list[dict[str, Any]] = self.json("stock", sku, "--warehouse", warehouse)
        assert len(rows) == 1, rows
        return rows[0]


class Dashboard:
    """``sellable dashboard --listen ADDR`` on a shop, as a real subprocess.

    ``url`` is its base URL on loopback (``http://127.0.0.1:PORT``), read from the line it
    prints. Its output is drained in a thread and kept (the last lines) for error messages.
    """

    def __init__(self, shop: Shop, listen: str = "127.0.0.1:0") -> None:
        self.shop = shop
        self.listen = listen
        self.url = ""
        self.output: deque[str] = deque(maxlen=200)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sellable",
                "--config",
                str(self.shop.config),
                "dashboard",
                "--listen",
                self.listen,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        try:
            port = self._wait_for_port()
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"

    def _drain(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.output.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_port(self) -> int:
        while True:
            try:
                line = self._lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                raise AssertionError(
                    f"sellable dashboard printed no URL within {START_TIMEOUT:.0f} s:\n"
                    + "\n".join(self.output)
                ) from None
            if line is None:
                code = self._process.wait() if self._process else None
                raise AssertionError(
                    f"sellable dashboard exited ({code}) before printing its URL:\n"
                    + "\n".join(self.output)
                )
            found = URL.search(line)
            if found and int(found.group(1)) != 0:
                return int(found.group(1))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()

    def logs(self) -> str:
        """The dashboard's last lines of output."""
        return "\n".join(self.output)
