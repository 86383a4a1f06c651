"""docs/architecture.md stays true: every module it names exists, and the import rules it
states hold (the core imports nothing of Sellable but its errors; the SDK and the emulators
import no layer above them)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "sellable"
DOC = ROOT / "docs" / "architecture.md"


def _sellable_imports(path: Path) -> set[str]:
    """Every ``sellable.*`` module a file imports, at any depth (TYPE_CHECKING included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == "sellable" or n.startswith("sellable."))
    return found


def test_architecture_every_module_the_page_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py)`", text))
    assert len(named) >= 20  # the page walks one order through the code
    missing = []
    for relative in sorted(named):
        candidates = [PACKAGE / relative, ROOT / relative, ROOT / "tests" / relative]
        if not any(c.exists() for c in candidates):
            missing.append(relative)
    assert missing == []


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("core", {"sellable.core", "sellable.errors"}),
        ("sdk", {"sellable", "sellable.sdk", "sellable.errors", "sellable.orders.model"}),
        ("emulators", {"sellable.emulators", "sellable.errors"}),
    ],
    ids=["core", "sdk", "emulators"],
)
def test_architecture_a_layer_imports_only_what_the_page_allows(
    layer: str, allowed: set[str]
) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in (PACKAGE / layer).rglob("*.py")
        for module in _sellable_imports(path)
        if not any(module == a or module.startswith(a + ".") for a in allowed - {"sellable"})
        and module not in allowed
    }
    assert sorted(wrong) == []
