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
        "build_graph", "example_path", "load_estate", "load_inputs",
        # the facade's lazily loaded names (the CLI's)
        "EXPORTERS", "FORMATS", "Limits", "Observer", "Run", "StartFailed", "StartPlan", "Status", "analysis_json", "estate_from_json", "impact_json", "next_steps",
        "ordering_graph", "parse_target", "render", "render_impact", "render_plan", "render_start_plan", "render_timeline",
        "render_what_ifs", "start_plan", "stop_recorded", "timeline", "validate", "wait_for", "what_ifs",
    ])
    assert "ConfigError" in strangler_common.__all__
    import strangler_proxy

    assert sorted(strangler_proxy.__all__) == sorted([
        "ConnectFailed", "Decision", "Module", "Plan", "ProxyError", "RequestHead", "RouteConfigError", "RouteTable",
        "Router", "Routes", "StateStoreError", "Upstream", "UpstreamBroken", "UpstreamError", "UpstreamTimeout",
        "after_failure", "bucket", "decide", "load_routes", "may_fall_back", "on_new_side", "plan",
        # the facade's lazily loaded names (the CLI's)
        "KubeOptions", "Override", "RELEASE_ACTIONS", "Refusal", "ReleaseState", "Response", "ServeOptions", "ShadowStore",
        "Thresholds", "check_not_self", "cohort_id", "collect_status", "compare", "default_path", "describe", "export", "is_loopback",
        "leftovers", "module_report", "open_plane", "open_store", "release_status", "render_status", "report_html", "report_json",
        "report_text", "run_proxy", "serving", "sign_pin", "token_path", "transition", "with_overrides",
        # the data listener, for a server of the benchmark's own (loadtests/asgi_floor.py)
        "Guard", "Limits", "protocol_classes",
    ])
    for mod in (strangler_analyzer, strangler_common, strangler_proxy):
        for name in mod.__all__:
            assert hasattr(mod, name)


def test_no_facade_name_is_also_a_module_of_its_package() -> None:
    """``import strangler_proxy.serve`` sets the package's ``serve`` attribute to the module:
    a facade name equal to a submodule's would then be the module, not the function."""
    import pkgutil

    import strangler_analyzer
    import strangler_proxy

    for pkg in (strangler_proxy, strangler_analyzer):
        assert not {m.name for m in pkgutil.iter_modules(pkg.__path__)} & set(pkg.__all__), pkg.__name__


def test_the_cli_and_loadtests_use_one_facade_per_package() -> None:
    """The CLI and the load tests import the analyzer and the proxy through their packages'
    facades (``from strangler_proxy import ...``), never a module inside: internals move
    freely, and what the CLI uses is the pinned public surface."""
    for folder in (ROOT / "cli", ROOT / "loadtests"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                for name in names:
                    if name.split(".")[0] in ("strangler_proxy", "strangler_analyzer"):
                        assert "." not in name, f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}"


def test_the_cli_and_loadtests_import_only_public_names() -> None:
    """Every name the CLI and the load tests take from the analyzer or the proxy is in its
    module's ``__all__``: moving an internal never breaks them unseen, and the public
    surface is what they really use."""
    import importlib

    for folder in (ROOT / "cli", ROOT / "loadtests"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                    continue
                if node.module.split(".")[0] not in ("strangler_proxy", "strangler_analyzer"):
                    continue
                module = importlib.import_module(node.module)
                public = getattr(module, "__all__", None)
                assert public is not None, f"{path.relative_to(ROOT)}:{node.lineno}: {node.module} declares no __all__"
                for alias in node.names:
                    assert alias.name in public, f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name} is not public"


def test_the_proxy_folders_keep_their_planes_apart() -> None:
    """The data plane never imports the control plane, the stores never import the data
    plane, and the pure core (model, config, routing, decision, dispatch) imports neither."""
    pkg = PACKAGES["strangler_proxy"]
    rules = {
        # the data plane and the shadow mirror share only core definitions (samples, upstream)
        "dataplane": ("strangler_proxy.control", "strangler_proxy.state", "strangler_proxy.serve", "strangler_proxy.shadow"),
        "state": ("strangler_proxy.dataplane", "strangler_proxy.control", "strangler_proxy.serve"),
        "shadow": ("strangler_proxy.control", "strangler_proxy.serve", "strangler_proxy.dataplane"),
        # the other data planes: renderers and their drivers, never the proxy's own I/O
        "planes": ("strangler_proxy.dataplane", "strangler_proxy.control", "strangler_proxy.state", "strangler_proxy.serve"),
    }
    core = ("model.py", "config.py", "routing.py", "decision.py", "dispatch.py", "cohort.py", "pins.py", "limits.py",
            "clientip.py", "external.py", "samples.py", "upstream.py", "fake.py", "grammar.py")
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg)
        banned = rules.get(rel.parts[0], ()) if len(rel.parts) > 1 else (
            ("strangler_proxy.dataplane", "strangler_proxy.control", "strangler_proxy.state", "strangler_proxy.serve")
            if rel.name in core else ())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(banned), f"{rel} imports {node.module}"
