"""The layout holds: outside a wing, code imports the wing's package, never its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WINGS = {
    "actors": ("market", "pair", "risk", "execution", "state", "exchange"),
    "supervision": ("tree", "runtime", "monitoring", "config", "app", "api", "notify", "research",
                    "cluster"),
}
CODE = ("actors", "supervision", "strategies", "bench", "examples")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def reaches_into(importer: Path, module: str) -> bool:
    """``module`` is a wing's private module and ``importer`` is outside that wing."""
    parts = module.split(".")
    if len(parts) < 3 or parts[0] not in WINGS or parts[1] not in WINGS[parts[0]]:
        return False
    own = importer.relative_to(REPO).parts[:2]
    return own != tuple(parts[:2])


@pytest.mark.parametrize("package", CODE)
def test_no_code_outside_a_wing_imports_the_wings_modules(package):
    """Each wing's __init__ names what the others may use; the rest is the wing's own."""
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    offenders = [f"{path.relative_to(REPO)}: {module}" for path in files
                 for module in imported_modules(path) if reaches_into(path, module)]

    assert offenders == []


def test_every_wing_lists_what_it_exports():
    """A wing without ``__all__`` would leave its surface to whoever imports it."""
    for top, wings in WINGS.items():
        for wing in wings:
            init = REPO / top / wing / "__init__.py"
            tree = ast.parse(init.read_text(encoding="utf-8"))
            names = [t.id for node in tree.body if isinstance(node, ast.Assign)
                     for t in node.targets if isinstance(t, ast.Name)]
            assert "__all__" in names, init
