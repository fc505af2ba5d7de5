"""The data plane end to end: the real ``strangler proxy`` process, real upstreams."""

from __future__ import annotations

import pytest

import gzip
import json
import time
from pathlib import Path

import httpx

from tests.proxy.harness import routes_file
from tests.proxy.upstreams import Upstream, free_port


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def module(stage: str, weight: int | None = None, extra: str = "", service: str = "service") -> str:
    text = f"  cases:\n    match: {{path_prefix: [/cases, /echo/cases]}}\n    service: {service}\n    stage: {stage}\n"
    if weight is not None:
        text += f"    weight: {weight}\n"
    return text + extra


def served_by(r: httpx.Response) -> str:
    return str(r.json()["name"])


def test_unclaimed_goes_to_legacy_and_claimed_follow_the_stage(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module("released")))
    assert served_by(httpx.get(f"{p.url}/echo/kb/1")) == "legacy"
    assert served_by(httpx.get(f"{p.url}/echo/cases/1")) == "service"


def test_canary_cohorts_are_sticky_and_module_wide(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url},
                         module("canary", 30).replace("[/cases, /echo/cases]", "[/echo/cases, /echo/assets]"))
    p = start_proxy(routes)
    sides = {}
    for i in range(120):
        cookies = {"JSESSIONID": f"user{i}"}
        first = served_by(httpx.get(f"{p.url}/echo/cases/page", cookies=cookies))
        for path in ("/echo/cases/api/1", "/echo/assets/app.js", "/echo/cases/page"):
            assert served_by(httpx.get(f"{p.url}{path}", cookies=cookies)) == first
        sides[i] = first
    share = sum(s == "service" for s in sides.values()) / len(sides)
    assert 0.15 < share < 0.45
    # a restart keeps every user on its side
    p.stop()
    p2 = start_proxy(routes)
    for i in range(0, 120, 7):
        assert served_by(httpx.get(f"{p2.url}/echo/cases/page", cookies={"JSESSIONID": f"user{i}"})) == sides[i]


def test_pins_are_off_by_default_and_signed_when_on(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    from strangler_proxy.pins import sign_pin

    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module("canary", 0)))
    assert served_by(httpx.get(f"{p.url}/echo/cases/1", headers={"x-strangler-side": "new"})) == "legacy"  # off
    p.stop()
    secret = "a-long-shared-secret-for-testers"
    p = start_proxy(routes_file(tmp_path / "r2.yaml", {"legacy": legacy.url, "service": service.url}, module("canary", 0),
                                extra=f"pin: {{secret: {secret}}}\n"))
    good = sign_pin("new", secret.encode(), int(time.time()) + 600)
    assert served_by(httpx.get(f"{p.url}/echo/cases/1", headers={"x-strangler-side": good})) == "service"
    cookie = sign_pin("cases=new", secret.encode(), int(time.time()) + 600)
    assert served_by(httpx.get(f"{p.url}/echo/cases/1", cookies={"strangler_side": cookie})) == "service"
    expired = sign_pin("new", secret.encode(), int(time.time()) - 1)
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    for value in ("new", "cases=new", expired, forged, sign_pin("new", b"another-secret-entirely", int(time.time()) + 600)):
        assert served_by(httpx.get(f"{p.url}/echo/cases/1", headers={"x-strangler-side": value})) == "legacy", value


def test_refused_connection_falls_back_for_any_method(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": dead}, module("released")))
    r = httpx.post(f"{p.url}/echo/cases/new", content=b"x" * 5000)
    assert r.status_code == 200 and served_by(r) == "legacy" and r.json()["body_length"] == 5000
    assert p.metric("strangler_fallbacks_total", module="cases", reason="refused") == 1


def test_5xx_falls_back_only_when_safe(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    extra = "    idempotency_key: Idempotency-Key\n"
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url},
                                module("released", extra=extra).replace("[/cases, /echo/cases]", "[/status]")))
    assert httpx.get(f"{p.url}/status/503").json()["name"] == "legacy"
    r = httpx.post(f"{p.url}/status/503", content=b"{}")
    assert r.status_code == 503 and r.json()["name"] == "service"  # a POST is not resent
    r = httpx.post(f"{p.url}/status/503", content=b"{}", headers={"Idempotency-Key": "k1"})
    assert r.json()["name"] == "legacy"
    assert [x["method"] for x in legacy.requests if x["path"].startswith("/status")] == ["GET", "POST"]
    assert p.metric("strangler_fallbacks_refused_total", module="cases", reason="not idempotent") == 1


def test_timeout_falls_back_and_retired_never_does(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url},
                         module("released", extra="    timeout: 0.3\n    retire_window: 0\n").replace("[/cases, /echo/cases]", "[/slow]"))
    p = start_proxy(routes)
    r = httpx.get(f"{p.url}/slow/2", timeout=10)
    assert r.json()["name"] == "legacy"
    routes.write_text(routes.read_text().replace("stage: released", "stage: retired"))
    p.hup()
    for _ in range(50):
        if p.admin_call("GET", "/modules/cases").json()["stage"] == "retired":
            break
        time.sleep(0.1)
    assert p.admin_call("GET", "/modules/cases").json()["stage"] == "retired"
    r = httpx.get(f"{p.url}/slow/2", timeout=10)
    assert r.status_code == 504


def test_breaker_opens_and_is_counted(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": dead}, module("released"),
                                extra="breaker: {failures: 3, cooldown: 60}\n"))
    for _ in range(6):
        assert httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "legacy"
    assert p.metric("strangler_breaker_state", module="cases") == 2
    assert p.metric("strangler_fallbacks_total", module="cases") == 3  # then the breaker kept them away
    assert p.metric("strangler_breaker_transitions_total", module="cases", state="open") == 1
    assert p.admin_call("GET", "/modules/cases").json()["breaker"] == "open"


def test_faithful_forwarding(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module("released"),
                                extra="server_names: [portal.corp]\n"))
    r = httpx.get(f"{p.url}/echo/cases/1?q=2", headers={
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "connection": "keep-alive, x-hop", "x-hop": "secret", "host": "portal.corp"})
    seen = dict((k, v) for k, v in r.json()["headers"])
    assert seen["traceparent"].startswith("00-0af7")
    assert "x-hop" not in seen
    assert seen["host"] == "portal.corp" and seen["x-forwarded-host"] == "portal.corp"
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-forwarded-proto"] == "http" and seen["via"] == "1.1 strangler"
    sent = {k.lower() for k in r.request.headers}
    assert set(seen) - sent <= {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via"}
    assert r.json()["query"] == "q=2"
    # redirects that point at an upstream come back pointing at the proxy
    r = httpx.get(f"{p.url}/redirect", headers={"host": "portal.corp"})  # portal.corp is in server_names
    assert r.headers["location"] == "http://portal.corp/target?x=1"
    r = httpx.get(f"{p.url}/redirect", headers={"host": "evil.example"})  # not served here: relative
    assert r.headers["location"] == "/target?x=1"
    # compressed bodies pass untouched
    with httpx.stream("GET", f"{p.url}/gzip", headers={"accept-encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw)) == {"name": "legacy"}


def test_no_cookie_jar_shared_between_users(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module("released")))
    httpx.get(f"{p.url}/echo/cases/1", headers={"cookie": "session=alice"})
    r = httpx.get(f"{p.url}/echo/cases/1")
    assert "cookie" not in dict((k, v) for k, v in r.json()["headers"])
