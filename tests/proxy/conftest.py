from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proxy.harness import ProxyProcess
from tests.proxy.rawpeers import RecordingUpstream
from tests.proxy.upstreams import Upstream
from tests.servers import Server


@pytest.fixture
def recorder() -> Iterator[RecordingUpstream]:
    """An upstream that keeps every byte it receives (the hostile-input tests' witness)."""
    up = RecordingUpstream().start()
    yield up
    up.stop()


@pytest.fixture
def legacy() -> Iterator[Upstream]:
    up = Upstream("legacy").start()
    yield up
    up.stop()


@pytest.fixture
def service() -> Iterator[Upstream]:
    up = Upstream("service").start()
    yield up
    up.stop()


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[list[ProxyProcess]]:
    started: list[ProxyProcess] = []
    yield started
    for p in started:
        p.stop()


@pytest.fixture
def start_proxy(proxies: list[ProxyProcess], tmp_path: Path):  # type: ignore[no-untyped-def]
    def _start(routes: Path, **kw) -> ProxyProcess:  # type: ignore[no-untyped-def]
        p = ProxyProcess(routes, tmp_path, **kw)
        proxies.append(p)
        return p.start()

    return _start


@pytest.fixture
def pg_url(postgres_server: Server) -> Iterator[str]:
    """A fresh database on the test PostgreSQL server, as a state store URL."""
    import uuid

    import psycopg

    name = f"strangler_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{name}"
