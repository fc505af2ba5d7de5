"""The admin API: token required, changes validated, persisted, and in the ledger."""

from __future__ import annotations

import pytest

from pathlib import Path

import httpx

from tests.proxy.harness import routes_file
from tests.proxy.upstreams import Upstream

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


MODULE = "  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: canary\n    weight: 0\n"


def test_token_is_required_except_for_health(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE))
    assert httpx.get(f"{p.admin}/healthz").status_code == 200
    for method, path in [("GET", "/modules"), ("GET", "/metrics"), ("PATCH", "/modules/cases"), ("GET", "/ledger"), ("POST", "/reload")]:
        assert httpx.request(method, f"{p.admin}{path}", json={"weight": 100}).status_code == 401
        assert httpx.request(method, f"{p.admin}{path}", json={"weight": 100}, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "legacy"  # nothing changed


def test_change_applies_persists_across_restart_and_is_in_the_ledger(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE)
    p = start_proxy(routes)
    r = p.admin_call("PATCH", "/modules/cases", json={"weight": 100, "reason": "ramp"})
    assert r.status_code == 200 and r.json()["weight"] == 100 and r.json()["override"]
    assert httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "service"
    p.stop()
    p2 = start_proxy(routes)
    assert httpx.get(f"{p2.url}/echo/cases/1").json()["name"] == "service"
    ledger = p2.admin_call("GET", "/ledger").json()
    assert ledger[0]["module"] == "cases" and ledger[0]["detail"] == {"weight": 100} and ledger[0]["reason"] == "ramp"
    r = p2.admin_call("DELETE", "/modules/cases/override")
    assert r.json()["weight"] == 0 and not r.json()["override"]
    assert httpx.get(f"{p2.url}/echo/cases/1").json()["name"] == "legacy"
    assert [e["action"] for e in p2.admin_call("GET", "/ledger").json()] == ["clear", "set"]


def test_bad_changes_are_refused_and_change_nothing(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE))
    assert p.admin_call("PATCH", "/modules/nope", json={"weight": 1}).status_code == 404
    r = p.admin_call("PATCH", "/modules/cases", json={"weight": 101})
    assert r.status_code == 400 and "0 to 100" in r.json()["error"]
    assert p.admin_call("PATCH", "/modules/cases", json={"stage": "half"}).status_code == 400
    assert p.admin_call("PATCH", "/modules/cases", content=b"not json").status_code == 400
    assert p.admin_call("GET", "/ledger").json() == []
    routes = p.admin_call("GET", "/routes").json()
    assert routes["modules"][0]["weight"] == 0 and routes["upstreams"]["service"] == service.url


def test_metrics_count_requests_by_module_and_side(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE.replace("weight: 0", "weight: 100")))
    for _ in range(3):
        httpx.get(f"{p.url}/echo/cases/1")
    httpx.get(f"{p.url}/echo/kb/1")
    assert p.metric("strangler_requests_total", module="cases", side="service", code="2xx") == 3
    assert p.metric("strangler_requests_total", module="_unclaimed", side="legacy", code="2xx") >= 1
    assert p.metric("strangler_request_duration_seconds_count", module="cases", side="service") == 3


def test_sigkill_during_a_stream_of_transitions_loses_nothing_committed(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    import signal
    import threading
    import time

    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE)
    p = start_proxy(routes)
    acked: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(headers={"authorization": "Bearer test-token"}) as c:
            i = 1
            while not stop.is_set():
                try:
                    r = c.patch(f"{p.admin}/modules/cases", json={"weight": i % 101, "reason": f"t{i}"}, timeout=5)
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.append(i)
                i += 1

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(1.0)
    assert p.proc is not None
    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait()
    stop.set()
    t.join()
    assert len(acked) > 10
    p2 = start_proxy(routes)
    ledger = list(reversed(p2.admin_call("GET", "/ledger", params={"limit": "100000"}).json()))
    reasons = [e["reason"] for e in ledger]
    # every acknowledged transition is there, in order, and nothing was rewritten
    assert reasons[: len(acked)] == [f"t{i}" for i in acked]
    assert len(reasons) - len(acked) <= 1  # at most the one in flight when the kill came, committed unacknowledged
    weight = p2.admin_call("GET", "/modules/cases").json()["weight"]
    assert weight == ledger[-1]["detail"]["weight"]


def test_a_weight_on_a_module_outside_canary_is_refused_with_what_to_send(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Issue 26, item 4: 'release set --weight 20' on a legacy module stored a weight nothing used."""
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url},
                         MODULE.replace("stage: canary", "stage: legacy"))
    p = start_proxy(routes)
    r = p.admin_call("PATCH", "/modules/cases", json={"weight": 20})
    assert r.status_code == 409 and 'send {"stage": "canary", "weight": 20}' in r.json()["error"]
    assert p.admin_call("GET", "/ledger").json() == []  # nothing recorded
    assert p.admin_call("PATCH", "/modules/cases", json={"stage": "canary", "weight": 20}).json()["weight"] == 20
