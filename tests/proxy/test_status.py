"""``strangler status`` against a running proxy with traffic (text and JSON), with two
workers summed, and offline from the state store once the proxy is down."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import jsonschema
import pytest

from tests.cli.helpers import strangler
from tests.proxy.harness import TOKEN, routes_file, wait_until
from tests.proxy.upstreams import Upstream

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')

SCHEMA = json.loads((Path(__file__).parents[2] / "proxy" / "strangler_proxy" / "schemas" / "status.schema.json").read_text())
MODULES = ("  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: canary\n    weight: 50\n"
           "    release: {steps: [10, 50], interval: 3600}\n"
           "  kb:\n    match: {path_prefix: /echo/kb}\n    service: service\n    stage: legacy\n"
           "  broken:\n    match: {path_prefix: /status}\n    service: service\n    stage: released\n")


@pytest.mark.parametrize("workers", [1, 2])
def test_status_shows_every_module_with_its_traffic_summed_over_workers(workers: int, tmp_path: Path, legacy: Upstream,
                                                                         service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "routes.yaml", {"legacy": legacy.url, "service": service.url}, MODULES)
    p = start_proxy(routes, workers=workers)
    assert p.admin_call("PATCH", "/modules/kb", json={"stage": "canary", "weight": 20, "reason": "by hand"}).status_code == 200
    sent = 200
    with httpx.Client() as c:  # a new connection per request spreads them over the workers
        for i in range(sent):
            c.get(f"{p.url}/echo/cases/{i}", headers={"connection": "close"})
        for _ in range(10):
            c.get(f"{p.url}/status/503", headers={"connection": "close"})  # released: the new side's 503s are errors
    env = {**os.environ, "STRANGLER_ADMIN_TOKEN": TOKEN}

    def doc() -> dict:  # type: ignore[type-arg]
        r = strangler("status", "--admin", f"127.0.0.1:{p.admin_port}", "--format", "json", env=env)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    def counted() -> bool:  # every process publishes each module's row on its own beat: wait for all of them
        d = doc()
        traffic = {m["module"]: m["traffic"] for m in d["modules"]}
        cases, broken = traffic["cases"], traffic["broken"]
        return (d["processes"] == workers and cases["legacy"]["minute"]["requests"] + cases["new"]["minute"]["requests"] == sent
                and broken["legacy"]["minute"]["requests"] == 10)

    assert wait_until(counted, timeout=15), doc()
    d = doc()
    jsonschema.validate(d, SCHEMA)
    by = {m["module"]: m for m in d["modules"]}
    assert set(by) == {"cases", "kb", "broken"} and d["source"] == "admin"
    cases = by["cases"]["traffic"]
    assert 50 < cases["new"]["total"]["requests"] < 150 and cases["new"]["minute"]["p99_ms"] is not None
    assert by["cases"]["release"]["status"] == "not started"
    assert by["kb"]["stage"] == "canary" and by["kb"]["new_share"] == 20  # set by PATCH, no release plan: still shown
    assert by["kb"]["last_change"]["actor"] == "admin" and by["kb"]["last_change"]["reason"] == "by hand"
    # released, its service answering 503: each GET falls back to legacy (which answers 503 too here)
    # until the breaker opens (5 failures in one process); then legacy takes them directly
    broken = by["broken"]
    failed = broken["traffic"]["new"]["minute"]["errors"]
    assert failed >= 1 and broken["traffic"]["new"]["minute"]["error_rate"] == 1.0
    assert broken["fallbacks"] == {"minute": failed, "total": failed} and broken["traffic"]["legacy"]["minute"]["requests"] == 10
    if workers == 1:
        assert failed == 5 and broken["breaker"] == {"state": "open", "open_in": 1, "processes": 1}
    text = strangler("status", "--admin", f"127.0.0.1:{p.admin_port}", env=env)
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line for line in text.stdout.splitlines() if line.split() and line.split()[0] in by}
    assert set(rows) == set(by) and "100.0%" in rows["broken"] and "set by admin" in rows["kb"]
    assert f"{workers} serving process" in text.stdout
    if workers == 1:
        assert "broken: circuit breaker open in 1 of 1 processes" in text.stdout

    # the proxy down: the same figures from the state store, said to be as last published
    p.stop()
    offline = strangler("status", "--routes", str(routes), "--state", p.state, "--admin", "127.0.0.1:9", "--format", "json")
    assert offline.returncode == 0, offline.stderr
    od = json.loads(offline.stdout)
    jsonschema.validate(od, SCHEMA)
    assert od["source"] == "store"
    oc = next(m for m in od["modules"] if m["module"] == "cases")["traffic"]
    assert oc["legacy"]["total"]["requests"] + oc["new"]["total"]["requests"] == sent


def test_status_without_a_proxy_or_a_store_says_what_to_do(tmp_path: Path) -> None:
    routes = routes_file(tmp_path / "routes.yaml", {"legacy": "http://127.0.0.1:9"})
    r = strangler("status", "--routes", str(routes), "--admin", "127.0.0.1:9")
    assert r.returncode == 1 and "no state store" in r.stderr and "strangler proxy --routes" in r.stderr
    r = strangler("status", "--admin", "127.0.0.1:9", env={**os.environ, "STRANGLER_ADMIN_TOKEN": "x"})
    assert r.returncode == 1 and "--routes" in r.stderr and "Traceback" not in r.stderr


def test_two_replicas_on_postgresql_are_summed(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy,  # type: ignore[no-untyped-def]
                                               pg_url: str) -> None:
    routes = routes_file(tmp_path / "routes.yaml", {"legacy": legacy.url, "service": service.url}, MODULES)
    a, b = start_proxy(routes, state=pg_url), start_proxy(routes, state=pg_url)
    with httpx.Client() as c:
        for i in range(30):
            c.get(f"{a.url}/echo/kb/{i}")
            c.get(f"{b.url}/echo/kb/{i}")
    env = {**os.environ, "STRANGLER_ADMIN_TOKEN": TOKEN}

    def kb() -> tuple[int, int]:
        r = strangler("status", "--admin", f"127.0.0.1:{a.admin_port}", "--format", "json", env=env)
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        return d["processes"], next(m for m in d["modules"] if m["module"] == "kb")["traffic"]["legacy"]["minute"]["requests"]

    assert wait_until(lambda: kb() == (2, 60), timeout=15), kb()  # either replica's admin shows both replicas' traffic


def test_plan_knows_which_modules_carry_proxy_traffic(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                      start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Issue 25, item 5: the proxy's own traffic per module is an input to the plan."""
    routes = routes_file(tmp_path / "routes.yaml", {"legacy": legacy.url, "service": service.url}, MODULES)
    p = start_proxy(routes)
    with httpx.Client() as c:
        for i in range(40):
            c.get(f"{p.url}/echo/cases/{i}")
    def published() -> bool:  # a poll publishes the traffic to the state store
        t = next(m for m in p.admin_call("GET", "/status").json()["modules"] if m["module"] == "cases")["traffic"]
        return bool(t["legacy"]["total"]["requests"] + t["new"]["total"]["requests"] == 40)

    assert wait_until(published, timeout=10)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("components:\n  db: {tier: database}\n  legacy: {tier: app, depends_on: [db]}\n"
                         "  service: {tier: app, depends_on: [db]}\n")
    r = strangler("plan", str(inventory), "--observed-from-proxy", str(routes), "--proxy-state", p.state, "--format", "json")
    assert r.returncode == 0, r.stderr
    traffic = {m["module"]: m for m in json.loads(r.stdout)["proxy_traffic"]}
    cases = traffic["cases"]
    assert cases["legacy"]["total"] + cases["new"]["total"] == 40
    assert cases["components"] == {"legacy": "legacy", "service": "new"}
    assert traffic["kb"]["legacy"]["total"] == 0
    text = strangler("plan", str(inventory), "--observed-from-proxy", str(routes), "--proxy-state", p.state)
    assert "Traffic through the strangler proxy" in text.stdout and "served by legacy (legacy), service (new)" in text.stdout
    assert "no traffic recorded: kb, broken" in text.stdout
