"""Running it in production: probes on the data port and graceful shutdown, against the
real ``strangler proxy`` process and real upstreams."""

from __future__ import annotations

import pytest

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.proxy.harness import ProxyProcess, routes_file, wait_until
from tests.proxy.upstreams import Upstream


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def test_probes_answer_on_the_data_port_and_are_never_forwarded(tmp_path: Path, legacy: Upstream, start_proxy: Any) -> None:
    proxy = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}))
    before = len(legacy.requests)
    assert httpx.get(f"{proxy.url}/_strangler/healthz").text == "ok\n"
    r = httpx.get(f"{proxy.url}/_strangler/readyz")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert httpx.head(f"{proxy.url}/_strangler/readyz").status_code == 200
    assert httpx.post(f"{proxy.url}/_strangler/readyz").status_code == 405
    assert httpx.get(f"{proxy.url}/_strangler/anything/else").status_code == 404  # the prefix is the proxy's own
    assert len(legacy.requests) == before  # none of them reached legacy
    assert httpx.get(f"{proxy.url}/_strangler-not-the-prefix").status_code == 200  # only the prefix itself is claimed
    assert len(legacy.requests) == before + 1


def test_the_probe_path_is_configurable_and_can_be_off(tmp_path: Path, legacy: Upstream, start_proxy: Any) -> None:
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url})
    custom = start_proxy(routes, args=("--health-path", "/.well-known/proxy"))
    assert httpx.get(f"{custom.url}/.well-known/proxy/readyz").text == "ready\n"
    assert httpx.get(f"{custom.url}/_strangler/readyz").json()["path"] == "/_strangler/readyz"  # forwarded now
    off = start_proxy(routes, args=("--health-path", "off"))
    assert httpx.get(f"{off.url}/_strangler/healthz").json()["path"] == "/_strangler/healthz"


def test_readiness_follows_the_state_store_poll_and_tells_no_secrets(tmp_path: Path) -> None:
    from strangler_proxy.control.background import Background
    from strangler_proxy.control.plane import ControlPlane
    from strangler_proxy.dataplane.health import Health
    from strangler_proxy.dataplane.runtime import Runtime
    from strangler_proxy.metrics import Metrics
    from strangler_proxy.model import RouteTable, Upstream as UpstreamConfig
    from strangler_proxy.state.sqlite import StateStore

    async def main() -> None:
        bg = Background(lambda _: None)
        store = StateStore(tmp_path / "state.sqlite3")
        table = RouteTable("r.yaml", {"legacy": UpstreamConfig("legacy", "http", "127.0.0.1", 1)}, ())
        runtime = Runtime(table, Metrics(), loop=asyncio.get_running_loop())
        plane = ControlPlane(runtime, store, bg, tmp_path / "local.sqlite3", lambda _: None, lead=False)
        health = Health(not_ready=plane.not_ready)
        sent: list[dict[str, Any]] = []

        async def send(m: dict[str, Any]) -> None:
            sent.append(m)

        async def readyz() -> tuple[int, bytes]:
            sent.clear()
            await health.answer({"path": "/_strangler/readyz", "method": "GET"}, send)
            return sent[0]["status"], sent[1]["body"]

        def broken() -> None:
            raise OSError("postgresql://strangler:***@db.internal:5432: connection refused")

        assert (await readyz())[0] == 200
        await bg.step("state store poll", broken)
        status, body = await readyz()
        # the data port is public: the reason, never the store's address or error (those are in the log)
        assert (status, body) == (503, b"not ready: the state store did not answer its last poll\n")
        await bg.step("state store poll", lambda: None)
        assert (await readyz())[0] == 200
        health.draining = True
        assert await readyz() == (503, b"not ready: draining for shutdown\n")
        await plane.close()
        bg.close()
        runtime.close()
        store.close()

    asyncio.run(main())


def _get_all(url: str, paths: list[str], results: list[Any]) -> list[threading.Thread]:
    def one(path: str) -> None:
        try:
            results.append(httpx.get(url + path, timeout=30).status_code)
        except httpx.HTTPError as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    return threads


def test_sigterm_finishes_requests_in_flight_then_exits_0(tmp_path: Path, legacy: Upstream) -> None:
    proxy = ProxyProcess(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}), tmp_path).start()
    try:
        results: list[Any] = []
        threads = _get_all(proxy.url, ["/slow/1.5"] * 8, results)
        assert wait_until(lambda: legacy.in_flight == 8)
        assert proxy.proc is not None
        proxy.proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: "in-flight requests have 30 s to finish" in proxy.log.read_text(), 10)
        time.sleep(0.3)  # uvicorn closes its listener on its next tick (every 0.1 s) after being told
        try:  # no new connections once draining
            httpx.get(f"{proxy.url}/echo/x", timeout=2)
            refused = False
        except httpx.TransportError:  # refused, or reset from the closed listener's backlog
            refused = True
        for t in threads:
            t.join(20)
        assert results == [200] * 8  # every request in flight got its whole response
        assert refused
        assert proxy.proc.wait(15) == 0
        log = proxy.log.read_text()
        assert "in-flight requests have 30 s to finish" in log and "stopped" in log
    finally:
        proxy.stop()


def test_sigterm_lets_a_stream_in_flight_finish(tmp_path: Path, legacy: Upstream) -> None:
    proxy = ProxyProcess(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}), tmp_path).start()
    try:
        got = 0
        with httpx.stream("GET", f"{proxy.url}/bytes/{64 << 20}", timeout=30) as r:
            for i, chunk in enumerate(r.iter_raw(65536)):
                got += len(chunk)
                if i == 10:
                    assert proxy.proc is not None
                    proxy.proc.send_signal(signal.SIGTERM)  # 64 MiB on its way: a slow reader holds it open
                if i % 64 == 0:
                    time.sleep(0.05)
        assert got == 64 << 20  # the whole body, after the proxy was told to stop
        assert proxy.proc is not None and proxy.proc.wait(15) == 0
    finally:
        proxy.stop()


def test_the_drain_timeout_bounds_shutdown(tmp_path: Path, legacy: Upstream) -> None:
    proxy = ProxyProcess(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}), tmp_path,
                         args=("--drain-timeout", "1")).start()
    try:
        results: list[Any] = []
        threads = _get_all(proxy.url, ["/hang"], results)
        assert wait_until(lambda: legacy.in_flight == 1)
        assert proxy.proc is not None
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(15) == 0
        assert time.monotonic() - t0 < 5  # the request would hang for ever
        for t in threads:
            t.join(10)
        assert results == [503]  # told, not cut
        assert wait_until(lambda: legacy.cancelled == 1)  # and the upstream request ended with it
        log = proxy.log.read_text()
        assert "Traceback" not in log and "stopped" in log
    finally:
        proxy.stop()
