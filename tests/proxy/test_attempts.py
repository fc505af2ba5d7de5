"""The attempt loop of ``ProxyApp`` against in-memory upstreams (``strangler_proxy.fake``):
every fallback path, the stale-connection resend and the breaker's feedback, without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from strangler_proxy.dataplane.app import ProxyApp
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.errors import ConnectFailed, UpstreamBroken, UpstreamError, UpstreamTimeout
from strangler_proxy.fake import Answer, FakeTransport, scripted
from strangler_proxy.metrics import Metrics
from strangler_proxy.model import SAFE_METHODS, Breaker, Match, Module, RouteTable, Stage, Upstream

from tests.proxy.test_app_inprocess import call as asgi_call


def table(stage: Stage = "released", failures: int = 5, body_limit: int = 1 << 20) -> RouteTable:
    ups = {"legacy": Upstream("legacy", "http", "127.0.0.1", 1), "svc": Upstream("svc", "http", "127.0.0.1", 2)}
    m = Module("cases", (Match(path_prefix=("/cases",)),), "svc", stage, 100, idempotent=SAFE_METHODS,
               idempotency_key="idempotency-key")
    return RouteTable("r.yaml", ups, (m,), breaker=Breaker(failures=failures, cooldown=60), fallback_body_limit=body_limit)


def stale(name: str) -> UpstreamError:
    exc = UpstreamBroken(name, "connection closed before the response ended")
    exc.stale = True
    return exc


async def call(app: ProxyApp, method: str = "GET", body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> int:
    status, _ = await asgi_call(app, method, "/cases/1", headers, body)
    return status


def run(t: RouteTable, scripts: dict[str, list[Answer | UpstreamError]], *requests: tuple[str, bytes, list[tuple[bytes, bytes]]]
        ) -> tuple[list[int], dict[str, FakeTransport], Metrics, list[dict[str, Any]], Runtime]:
    made, factory = scripted(scripts)
    log: list[dict[str, Any]] = []

    async def main() -> tuple[list[int], Runtime]:
        runtime = Runtime(t, Metrics(), loop=asyncio.get_running_loop(), transport=factory)
        app = ProxyApp(runtime, access_log=log.append)
        return [await call(app, m, b, h) for m, b, h in requests], runtime

    statuses, runtime = asyncio.run(main())
    return statuses, made, runtime.metrics, log, runtime


GET = ("GET", b"", [])
POST = ("POST", b"{}", [])


def count(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.mark.parametrize("failure", [Answer(503), ConnectFailed("svc", "refused"), UpstreamTimeout("svc", "slow"),
                                     UpstreamBroken("svc", "reset")])
def test_a_failed_get_on_the_new_side_falls_back_to_legacy(failure: Answer | UpstreamError) -> None:
    statuses, made, metrics, log, _ = run(table(), {"svc": [failure], "legacy": [Answer(200, b"old")]}, GET)
    assert statuses == [200]
    assert len(made["svc"].sent) == 1 and len(made["legacy"].sent) == 1
    kind = "5xx" if isinstance(failure, Answer) else failure.failure
    assert count(metrics, "strangler_fallbacks_total", module="cases", reason=kind) == 1
    assert log[0]["side"] == "legacy" and "fallback" in log[0]


@pytest.mark.parametrize("failure,expected,resent", [
    (ConnectFailed("svc", "refused"), 200, True),  # never seen: any method goes to legacy
    (UpstreamBroken("svc", "reset"), 502, False),  # may have seen a POST: never sent twice
    (UpstreamTimeout("svc", "slow"), 504, False),
    (Answer(503), 503, False),  # the service's own answer stands
])
def test_a_post_falls_back_only_when_the_service_cannot_have_seen_it(failure: Any, expected: int, resent: bool) -> None:
    statuses, made, metrics, _, _ = run(table(), {"svc": [failure], "legacy": [Answer(200)]}, POST)
    assert statuses == [expected]
    assert len(made["legacy"].sent) == int(resent)
    if not resent:
        assert count(metrics, "strangler_fallbacks_refused_total", module="cases", reason="not idempotent") == 1


def test_an_idempotency_key_makes_a_post_safe_to_resend() -> None:
    statuses, made, _, _, _ = run(table(), {"svc": [UpstreamBroken("svc", "reset")], "legacy": [Answer(201)]},
                                  ("POST", b"{}", [(b"idempotency-key", b"k1")]))
    assert statuses == [201] and made["legacy"].sent[0].body == b"{}"


def test_a_retired_module_never_falls_back() -> None:
    statuses, made, metrics, _, _ = run(table("retired"), {"svc": [Answer(503), ConnectFailed("svc", "refused")]}, GET, GET)
    assert statuses == [503, 502] and not made["legacy"].sent
    assert count(metrics, "strangler_fallbacks_refused_total", module="cases", reason="retired") == 2


def test_a_body_too_large_to_keep_is_not_resent() -> None:
    statuses, made, metrics, _, _ = run(table(body_limit=4), {"svc": [ConnectFailed("svc", "refused")]}, ("POST", b"0123456789", []))
    assert statuses == [502] and not made["legacy"].sent
    assert count(metrics, "strangler_fallbacks_refused_total", module="cases", reason="body too large to replay") == 1


def test_a_stale_keepalive_connection_is_resent_once_on_the_same_side_without_blame() -> None:
    statuses, made, metrics, _, runtime = run(table("legacy"), {"legacy": [stale("legacy"), Answer(200)]}, GET)
    assert statuses == [200] and len(made["legacy"].sent) == 2
    assert count(metrics, "strangler_upstream_errors_total", module="cases", side="legacy", kind="broken") == 0
    statuses, made, _, _, runtime = run(table(), {"svc": [stale("svc"), Answer(200)]}, GET)
    assert statuses == [200] and len(made["svc"].sent) == 2 and not made["legacy"].sent
    assert runtime.snapshot.breakers["cases"].state == "closed"


def test_a_stale_connection_never_resends_a_post() -> None:
    statuses, made, _, _, _ = run(table("legacy"), {"legacy": [stale("legacy")]}, POST)
    assert statuses == [502] and len(made["legacy"].sent) == 1


def test_the_breaker_opens_on_failures_and_sends_the_new_sides_share_to_legacy() -> None:
    statuses, made, _, log, runtime = run(table(failures=2), {"svc": [Answer(500), Answer(500)]}, GET, GET, GET)
    assert statuses == [200, 200, 200]  # legacy answered each: two fallbacks, then planned there
    assert len(made["svc"].sent) == 2 and len(made["legacy"].sent) == 3
    assert runtime.snapshot.breakers["cases"].state == "open"
    assert "breaker" in log[2]["why"]


def test_a_success_closes_the_count_of_failures() -> None:
    _, _, _, _, runtime = run(table(failures=2), {"svc": [Answer(500), Answer(200), Answer(500)]}, GET, GET, GET)
    assert runtime.snapshot.breakers["cases"].state == "closed"


def test_legacy_failures_are_gateway_errors() -> None:
    statuses, _, _, log, _ = run(table("legacy"), {"legacy": [ConnectFailed("legacy", "refused"), UpstreamTimeout("legacy", "t")]},
                                 GET, GET)
    assert statuses == [502, 504] and log[0]["error"] == "legacy: refused"
