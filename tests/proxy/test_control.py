"""The control plane never dies silently and never blocks traffic (real proxy, real files)."""

from __future__ import annotations

import pytest

import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.cli.helpers import strangler
from tests.proxy.harness import ProxyProcess, routes_file, wait_until
from tests.proxy.upstreams import Upstream


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


MODULE = "  cases:\n    match: {path_prefix: /echo/cases}\n    service: legacy\n    stage: released\n"


def test_a_parser_breaking_route_file_and_a_corrupted_store_are_logged_and_survived(
        tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url})
    p: ProxyProcess = start_proxy(routes)
    routes.write_text("[" * 100_000)
    assert wait_until(lambda: "nested too deeply" in p.log.read_text(), 10)
    assert httpx.get(f"{p.url}/echo/a").status_code == 200
    # the state database (and its WAL index) is overwritten with garbage while the proxy runs
    for name in (p.state, p.state + "-wal", p.state + "-shm"):
        if Path(name).exists():
            with open(name, "r+b") as f:
                f.write(b"\xde\xad" * 16384)
    assert wait_until(lambda: "state store poll failed" in p.log.read_text(), 10)
    assert httpx.get(f"{p.url}/echo/a").status_code == 200
    ledger = p.admin_call("GET", "/ledger")  # an answer saying why, as for a PATCH: never a 500 and a traceback
    assert ledger.status_code == 503 and "state store" in ledger.json()["error"], ledger.text
    # the watcher is alive: a good file is still picked up
    routes_file(routes, {"legacy": legacy.url}, MODULE)
    assert wait_until(lambda: "cases" in [m["name"] for m in p.admin_call("GET", "/modules").json()], 10)
    time.sleep(1.5)  # a few more ticks of the same failure
    log = p.log.read_text()
    assert log.count("state store poll failed") == 1, log  # one line, not one a tick
    assert "Traceback" not in log


def test_the_state_store_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It holds response samples and the ledger: 0600 from the first byte, whatever the umask."""
    import os
    import stat

    from strangler_proxy.state.sqlite import StateStore

    old = os.umask(0o022)
    try:
        store = StateStore(tmp_path / "s" / "state.sqlite3")
        store.ledger()
        store.close()
    finally:
        os.umask(old)
    for f in (tmp_path / "s").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))


def test_routes_check_on_hostile_files_is_a_one_line_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 100_000)
    nested = tmp_path / "nested.yaml"
    nested.write_text("upstreams:\n  legacy: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n")
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.truncate(17 << 20)
    for path, expected in ((deep, "nested too deeply"), (nested, "nested too deeply"), (huge, "the limit is 16 MiB")):
        r = strangler("routes", "check", str(path))
        assert r.returncode == 1, (path, r.returncode, r.stderr[-500:])
        assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def _latencies_while(p: ProxyProcess, busy: threading.Event) -> list[float]:
    out = []
    with httpx.Client(timeout=30) as client:
        while not busy.is_set() or not out:
            started = time.perf_counter()
            assert client.get(f"{p.url}/echo/unclaimed").status_code == 200
            out.append(time.perf_counter() - started)
            time.sleep(0.02)
    return out


def test_a_locked_state_store_never_stalls_traffic(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}))
    httpx.get(f"{p.url}/echo/warm")
    done = threading.Event()

    def hold_lock() -> None:
        db = sqlite3.connect(p.state, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for 3 s
        time.sleep(3)
        db.execute("ROLLBACK")
        db.close()
        done.set()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    latencies = _latencies_while(p, done)
    holder.join()
    # a request that waited on the lock would take its 3 s; half of that is room for a loaded machine
    assert len(latencies) > 30 and max(latencies) < 1.5, max(latencies)


def test_reloading_a_10000_module_table_does_not_stall_traffic(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url})
    p: ProxyProcess = start_proxy(routes)
    big = "".join(f"  m{i}:\n    match: {{path_prefix: /m{i}}}\n    service: legacy\n    stage: legacy\n" for i in range(10_000))
    done = threading.Event()

    def reload() -> None:
        routes_file(routes, {"legacy": legacy.url}, big)
        p.hup()
        wait_until(lambda: "10000 modules" in p.log.read_text(), 60)
        done.set()

    t = threading.Thread(target=reload)
    t.start()
    latencies = _latencies_while(p, done)
    t.join()
    assert "10000 modules" in p.log.read_text()
    assert max(latencies) < 1.0, max(latencies)
