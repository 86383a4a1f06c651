"""``sellable demo`` in a real process: emulators, the example catalog, customers, passes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLABLE_")}
    return subprocess.run(
        [sys.executable, "-m", "sellable", "demo", "--dir", str(tmp_path / "demo"), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_shows_orders_pushes_and_bottlenecks_and_every_channel_catches_up(
    tmp_path: Path,
) -> None:
    done = run_demo(tmp_path, "--passes", "4", "--interval", "0", "--orders", "3")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    passes = [i for i, line in enumerate(lines) if line.startswith("── pass ")]
    assert len(passes) == 4
    first = lines[passes[0] : passes[1]]
    assert "  customers ordered: nothing" in first
    assert "  woo      new orders  0 (orders read  0)   listings pushed 14" in first
    assert "  shopify  new orders  0 (orders read  0)   listings pushed 14" in first
    assert (
        "  amazon   new orders  0 (orders read  0)   listings pushed  0 "
        "(14 accepted, awaiting the channel's confirmation)" in first
    )
    assert "  shipbob  orders sent  0   order lines shipped  0" in first
    # Amazon's column is its merchant-fulfilled offer (from main); FBA holds only the
    # bundle's 8 pre-packed units and never counts components. ShipBob's centre holds
    # components only: 12 coffee kits (12 mugs), no assembled set; WooCommerce sells from
    # it and from main (12 + 30 kits)
    assert (
        "  bundle                    woo  shopify   amazon   at FBA at ShipBob   "
        "bottleneck in main" in first
    )
    assert (
        "  GIFT-SET-COFFEE            40       40       40        0          0   10 assembled "
        "on the shelf + 30 from components; limited by MUG-CERAMIC (30 left, 1 per unit)" in first
    )
    assert (
        "  GIFT-KIT-COFFEE            42       30       30        0         12   30 from "
        "components; limited by MUG-CERAMIC (30 left, 1 per unit)" in first
    )
    assert (
        "  ALPHABET-BUNDLE            50       50       50        8          0   50 from "
        "components; limited by DEF (50 left, 1 per unit)" in first
    )
    later = lines[passes[1] :]
    placed = [line for line in later if line.startswith("  customers ordered: ")]
    assert len(placed) == 3 and all("×" in line for line in placed)
    assert sum(line.count("×") for line in placed) >= 3
    # every pass ends with both channels showing exactly what Sellable computed
    assert lines.count("  every channel shows what Sellable computed") == 4
    # orders by the number the shop shows: "#1001" on Shopify, not its GID
    assert any(re.search(r"\bshopify #10\d\d \d×", line) for line in placed)
    assert "gid://" not in done.stdout
    # the orders of a pass ship on the next one
    shipped = [line for line in later if line.startswith("  shipped: ")]
    assert len(shipped) == 2 and all("#" in line for line in shipped)
    # WooCommerce's coffee kits go to ShipBob first: sent, shipped the pass after, booked
    sent = [
        re.search(r"  shipbob  orders sent +(\d+)   order lines shipped +(\d+)$", x) for x in later
    ]
    figures = [(int(m[1]), int(m[2])) for m in sent if m]
    assert len(figures) == 3
    assert sum(n for n, _ in figures) >= 1 and sum(n for _, n in figures) >= 1
    assert any(line.startswith("  ShipBob shipped: woo #") for line in later)
    assert (tmp_path / "demo" / "sellable.toml").exists()
    assert (tmp_path / "demo" / "sellable-demo.db").exists()


def test_demo_without_any_emulated_channel_says_how_to_install_one(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--passes", "1", "--channels", "nowhere")

    assert done.returncode == 2
    assert "no channel to demonstrate" in done.stderr


def _figure(lines: list[str], sku: str) -> int:
    """The first channel's figure of ``sku`` in the lines of one pass."""
    (row,) = [line for line in lines if line.startswith(f"  {sku} ")]
    return int(row.split()[1])


def _passes(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("── pass ")]
    return [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]


def test_demo_starts_afresh_unless_resumed(tmp_path: Path) -> None:
    woo = ("--channels", "woocommerce", "--interval", "0")
    first = run_demo(tmp_path, "--passes", "4", "--orders", "3", *woo)
    assert first.returncode == 0, first.stdout + first.stderr
    left = _figure(_passes(first.stdout)[-1], "GIFT-KIT-COFFEE")
    assert left < 30  # the customers bought some

    resumed = run_demo(tmp_path, "--passes", "1", "--resume", *woo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming the previous run's database: {tmp_path / 'demo' / 'sellable-demo.db'}" in (
        resumed.stdout
    )
    assert "stock.csv" not in resumed.stdout  # the stock left is kept, not counted again
    assert _figure(_passes(resumed.stdout)[0], "GIFT-KIT-COFFEE") <= left

    again = run_demo(tmp_path, "--passes", "1", *woo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(
        f"starting afresh: removed the previous run's {tmp_path / 'demo' / 'sellable-demo.db'} "
        "(--resume keeps it)\n"
    )
    (only,) = _passes(again.stdout)
    assert (_figure(only, "GIFT-SET-COFFEE"), _figure(only, "GIFT-KIT-COFFEE")) == (40, 30)


def test_demo_figures_come_back_with_a_delivery_as_orders_ship(tmp_path: Path) -> None:
    """Orders ship on the pass after they are placed, so the delivery of pass 15 (main
    counted back to the example stock) brings the figures back, pass after pass."""
    done = run_demo(
        tmp_path, "--passes", "16", "--interval", "0", "--orders", "3", "--channels", "woocommerce"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    passes = _passes(done.stdout)
    delivery = passes[14]
    assert delivery[1].startswith("  delivery received: main counted back to the example stock")
    # 30 mugs counted; only the orders placed this very pass (at most 3 × 2) are not shipped
    assert _figure(delivery, "GIFT-KIT-COFFEE") >= 24
    assert _figure(passes[13], "GIFT-KIT-COFFEE") < _figure(delivery, "GIFT-KIT-COFFEE")
    assert "for order order" not in done.stdout
    shipped = [line for p in passes for line in p if line.startswith("  shipped: ")]
    assert len(shipped) >= 10
