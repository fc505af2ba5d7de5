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
# fast loop over the pure tests; the default run (and CI) runs everything. A module whose
# tests all spawn says so itself (``pytestmark = pytest.mark.slow``); a test that takes one
# of these fixtures is marked here, wherever it lives.
SERVER_FIXTURES = {"legacy", "service", "start_proxy", "proxies", "redis_server", "postgres_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.slow)
