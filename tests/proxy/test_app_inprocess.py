"""``ProxyApp`` called in-process (no listener), against real upstream servers: the
attempt loop, fallback, breaker and the evidence each decision leaves behind."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from strangler_proxy.dataplane.app import ProxyApp
from strangler_proxy.model import SAFE_METHODS, Breaker, Match, Module, ReleasePlan, RouteTable, Stage, Upstream as UpstreamConfig
from strangler_proxy.control.controller import Windows
from strangler_proxy.metrics import Metrics
from strangler_proxy.dataplane.runtime import Runtime

from tests.proxy.upstreams import Upstream, free_port


def table(legacy: int, service: int, stage: Stage, failures: int = 5) -> RouteTable:
    ups = {"legacy": UpstreamConfig("legacy", "http", "127.0.0.1", legacy, connect_timeout=1),
           "svc": UpstreamConfig("svc", "http", "127.0.0.1", service, connect_timeout=1)}
    m = Module("cases", (Match(path_prefix=("/echo/cases",)),), "svc", stage, 100, idempotent=SAFE_METHODS,
               idempotency_key="idempotency-key")
    return RouteTable("r.yaml", ups, (m,), breaker=Breaker(failures=failures, cooldown=60))


async def call(app: ProxyApp, method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None,
               body: bytes = b"", peer: str = "10.0.0.9") -> tuple[int, bytes]:
    scope: dict[str, Any] = {
        "type": "http", "http_version": "1.1", "method": method, "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": b"", "client": (peer, 40000),
        "headers": [(b"host", b"portal")] + ([(b"content-length", str(len(body)).encode())] if body else []) + (headers or []),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def run(t: RouteTable, scenario: Any) -> Any:
    async def main() -> Any:
        runtime = Runtime(t, Metrics(), loop=asyncio.get_running_loop())
        windows = Windows()
        log: list[dict[str, Any]] = []
        app = ProxyApp(runtime, windows=windows, access_log=log.append)
        try:
            return await scenario(app, windows, log)
        finally:
            runtime.close()

    return asyncio.run(main())


def metric(app: ProxyApp, name: str, **labels: str) -> float:
    return app.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_refused_service_falls_back_to_legacy_for_any_method(legacy: Upstream) -> None:
    async def scenario(app: ProxyApp, windows: Windows, log: list[dict[str, Any]]) -> None:
        status, body = await call(app, "POST", "/echo/cases/1", body=b"x" * 1000)
        assert status == 200 and json.loads(body)["body_length"] == 1000
        assert legacy.requests[-1]["method"] == "POST"
        assert metric(app, "strangler_fallbacks_total", module="cases", reason="refused") == 1
        assert metric(app, "strangler_upstream_errors_total", module="cases", side="service", kind="refused") == 1
        assert log[-1]["side"] == "legacy" and log[-1]["why"] == "stage released" and "fallback" in log[-1]

    run(table(legacy.port, free_port(), "released"), scenario)


def test_a_5xx_falls_back_for_get_and_is_passed_on_for_post(legacy: Upstream, service: Upstream) -> None:
    service.fail = True

    async def scenario(app: ProxyApp, windows: Windows, log: list[dict[str, Any]]) -> None:
        status, body = await call(app, "GET", "/echo/cases/1")
        assert status == 200 and json.loads(body)["name"] == "legacy"
        status, _ = await call(app, "POST", "/echo/cases/2", body=b"{}")
        assert status == 500  # the service may have acted on it: not resent
        assert [r["method"] for r in legacy.requests] == ["GET"]
        assert metric(app, "strangler_fallbacks_refused_total", module="cases", reason="not idempotent") == 1
        status, body = await call(app, "POST", "/echo/cases/3", [(b"idempotency-key", b"k1")], b"{}")
        assert status == 200 and json.loads(body)["name"] == "legacy"

    run(table(legacy.port, service.port, "released"), scenario)


def test_the_breaker_opens_and_legacy_serves_without_asking_the_service(legacy: Upstream, service: Upstream) -> None:
    service.fail = True

    async def scenario(app: ProxyApp, windows: Windows, log: list[dict[str, Any]]) -> None:
        for _ in range(3):
            await call(app, "GET", "/echo/cases/1")
        asked = len(service.requests)
        assert asked == 3
        for _ in range(5):
            status, body = await call(app, "GET", "/echo/cases/1")
            assert status == 200 and json.loads(body)["name"] == "legacy"
        assert len(service.requests) == asked
        assert log[-1]["why"] == "circuit breaker open"

    run(table(legacy.port, service.port, "released", failures=3), scenario)


def test_a_retired_module_never_reaches_legacy(legacy: Upstream) -> None:
    async def scenario(app: ProxyApp, windows: Windows, log: list[dict[str, Any]]) -> None:
        status, body = await call(app, "GET", "/echo/cases/1")
        assert status == 502 and b"127.0.0.1" not in body
        assert legacy.requests == []
        assert metric(app, "strangler_fallbacks_refused_total", module="cases", reason="retired") == 1

    run(table(legacy.port, free_port(), "retired"), scenario)


def test_release_windows_see_the_failure_legacy_hid(legacy: Upstream, service: Upstream) -> None:
    service.fail = True

    async def scenario(app: ProxyApp, windows: Windows, log: list[dict[str, Any]]) -> None:
        await call(app, "GET", "/echo/cases/1")
        new, old = windows.take("cases")
        assert (new.requests, new.errors) == (1, 1)  # the user was served; the new side still failed
        assert old.requests == 1 and old.errors == 0

    t = table(legacy.port, service.port, "released")
    t = replace(t, modules=(replace(t.modules[0], release=ReleasePlan(steps=(50.0,))),))
    run(t, scenario)


def test_a_refused_path_is_400_and_reaches_no_one(legacy: Upstream) -> None:
    async def scenario(app: ProxyApp, windows: Windows, log: list[dict[str, Any]]) -> None:
        status, _ = await call(app, "GET", "/echo/cases./1")
        assert status == 400 and legacy.requests == []

    run(table(legacy.port, free_port(), "released"), scenario)


def test_trusted_proxies_name_the_client_for_cohorts_and_untrusted_peers_cannot_spoof(legacy: Upstream, service: Upstream) -> None:
    from strangler_proxy.clientip import parse_networks
    from strangler_proxy.cohort import bucket, on_new_side
    from strangler_proxy.model import Cohort

    t = replace(table(legacy.port, service.port, "canary"), cohort=Cohort((("client_ip", ""),)),
                trusted_proxies=parse_networks(["10.0.0.0/8"]))
    t = replace(t, modules=(replace(t.modules[0], weight=50),))
    addrs = [f"203.0.113.{i}" for i in range(1, 60)]
    new = next(a for a in addrs if on_new_side(bucket("cases", f"client_ip:{a}", 10_000), 50, 10_000))
    old = next(a for a in addrs if not on_new_side(bucket("cases", f"client_ip:{a}", 10_000), 50, 10_000))
    balancer = "10.0.0.9"
    untrusted = next(a for a in (f"198.51.100.{i}" for i in range(1, 60)) if not on_new_side(bucket("cases", f"client_ip:{a}", 10_000), 50, 10_000))

    async def scenario(app: ProxyApp, windows: Windows, log: list[dict[str, Any]]) -> None:
        for _ in range(5):  # the same client through the balancer: always the same side
            await call(app, "GET", "/echo/cases/1", [(b"x-forwarded-for", new.encode())], peer=balancer)
            assert log[-1]["side"] == "service"
            # a client's own entry on the left does not count: the balancer's (rightmost) does
            await call(app, "GET", "/echo/cases/1", [(b"x-forwarded-for", f"{new}, {old}".encode())], peer=balancer)
            assert log[-1]["side"] == "legacy"
        # a chain of trusted hops is skipped: the first untrusted address from the right is the client
        await call(app, "GET", "/echo/cases/1", [(b"x-forwarded-for", f"{old}, {new}, 10.9.9.9".encode())], peer=balancer)
        assert log[-1]["side"] == "service"
        # an untrusted peer's X-Forwarded-For is never read: its own address is its cohort key
        for _ in range(5):
            await call(app, "GET", "/echo/cases/1", [(b"x-forwarded-for", new.encode())], peer=untrusted)
            assert log[-1]["side"] == "legacy"
        # what the upstream receives: the chain as sent, then the peer that connected to us
        seen = {k.lower(): v for k, v in legacy.requests[-1]["headers"]}
        assert seen["x-forwarded-for"] == f"{new}, {untrusted}"

    run(t, scenario)
