"""``sellable demo`` in a real process: emulators, the example catalog, customers, passes."""

from __future__ import annotations

import os
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
    # Amazon's column is its merchant-fulfilled offer (from main); FBA holds only the
    # bundle's 8 pre-packed units and never counts components
    assert (
        "  bundle                    woo  shopify   amazon   at FBA   bottleneck in main" in first
    )
    assert (
        "  GIFT-SET-COFFEE            40       40       40        0   10 assembled on the "
        "shelf + 30 from components; limited by MUG-CERAMIC (30 left, 1 per unit)" in first
    )
    assert (
        "  GIFT-KIT-COFFEE            30       30       30        0   30 from components; "
        "limited by MUG-CERAMIC (30 left, 1 per unit)" in first
    )
    assert (
        "  ALPHABET-BUNDLE            50       50       50        8   50 from components; "
        "limited by DEF (50 left, 1 per unit)" in first
    )
    later = lines[passes[1] :]
    placed = [line for line in later if line.startswith("  customers ordered: ")]
    assert len(placed) == 3 and all("×" in line for line in placed)
    assert sum(line.count("×") for line in placed) >= 3
    # every pass ends with both channels showing exactly what Sellable computed
    assert lines.count("  every channel shows what Sellable computed") == 4
    assert (tmp_path / "demo" / "sellable.toml").exists()
    assert (tmp_path / "demo" / "sellable-demo.db").exists()


def test_demo_without_any_emulated_channel_says_how_to_install_one(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--passes", "1", "--channels", "nowhere")

    assert done.returncode == 2
    assert "no channel to demonstrate" in done.stderr
