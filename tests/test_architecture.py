"""The architecture, kept by a test: imports point one way, public APIs are pinned."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = {
    "strangler_common": ROOT / "common" / "strangler_common",
    "strangler_analyzer": ROOT / "analyzer" / "strangler_analyzer",
    "strangler_proxy": ROOT / "proxy" / "strangler_proxy",
    "strangler_cli": ROOT / "cli" / "strangler_cli",
}
ALLOWED = {
    "strangler_common": set(),
    "strangler_analyzer": {"strangler_common"},
    "strangler_proxy": {"strangler_common"},
    "strangler_cli": {"strangler_common", "strangler_analyzer", "strangler_proxy"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imports_point_one_way() -> None:
    for pkg, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            ours = imported_packages(path) & set(PACKAGES)
            bad = ours - ALLOWED[pkg] - {pkg}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_modules_stay_small() -> None:
    for folder in PACKAGES.values():
        for path in folder.rglob("*.py"):
            assert len(path.read_text().splitlines()) <= 550, f"{path.relative_to(ROOT)} is too long"


def test_public_api_is_pinned() -> None:
    import strangler_analyzer
    import strangler_common

    assert sorted(strangler_analyzer.__all__) == sorted([
        "AnalyzerError", "Analysis", "Check", "Component", "Edge", "Estate", "Evidence",
        "InputError", "UnknownComponentError", "UnknownInputError", "analyze", "blast_radius",
        "build_graph", "example_path", "load_estate",
    ])
    assert "ConfigError" in strangler_common.__all__
    import strangler_proxy

    assert sorted(strangler_proxy.__all__) == sorted([
        "ConnectFailed", "Decision", "Module", "ProxyError", "RouteConfigError", "RouteTable", "Router",
        "StateStoreError", "Upstream", "UpstreamBroken", "UpstreamError", "UpstreamTimeout", "bucket", "decide",
        "load_routes", "may_fall_back", "on_new_side",
    ])
    for mod in (strangler_analyzer, strangler_common, strangler_proxy):
        for name in mod.__all__:
            assert hasattr(mod, name)
