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
