from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# Properties assert behaviour, not speed: no per-example deadline on a busy 2-core CI box.
settings.register_profile("strangler", deadline=None)
settings.load_profile("strangler")

FIXTURES = Path(__file__).parent / "analyzer" / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


from tests.servers import postgres_server, redis_server  # noqa: E402,F401  (session fixtures)

# Tests that start servers or processes are marked ``slow``: ``pytest -m "not slow"`` is the
# fast loop over the pure tests (under 30 s); the default run (and CI) runs everything.
SERVER_FIXTURES = {"legacy", "service", "start_proxy", "proxies", "redis_server", "postgres_server"}
SLOW_MODULES = {
    "test_typing.py",  # runs mypy and ruff over the tree
    "test_server.py", "test_hostile.py", "test_control.py", "test_fuzz.py", "test_streaming.py", "test_replicas.py",
    "test_release.py", "test_reload.py", "test_admin.py", "test_shadow.py", "test_app.py",
    "test_startup.py", "test_checks.py", "test_scenarios.py", "test_bench_slowclients.py",
    "test_analyze_cli.py", "test_demo.py", "test_demo_token.py", "test_production.py", "test_tls.py", "test_wheel.py", "test_deploy.py", "test_operators.py",
    "test_export_planes.py", "test_routes_export.py", "test_export_kube.py", "test_external_release.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
