"""Shadow mode end to end: real legacy and candidate servers behind the real proxy."""

from __future__ import annotations

import pytest

import json
import time
from pathlib import Path

import httpx

from tests.cli.helpers import strangler
from tests.proxy.harness import ProxyProcess, routes_file, wait_until
from tests.proxy.upstreams import Upstream


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def shadow_module(extra: str = "") -> str:
    return ("  cases:\n    match: {path_prefix: [/shadow, /echo/cases]}\n    service: service\n    stage: shadow\n"
            "    shadow:\n      min_samples: 20\n" + extra)


def report(p: ProxyProcess, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """The shadow report once the evidence settled: the proxy's mirror helper runs at idle
    priority and flushes every second, so on a loaded machine a fixed wait reads too early;
    two equal reports a flush apart, with a module in them, are what it had to say."""
    deadline, last = time.monotonic() + 20, None
    while True:
        time.sleep(1.3)
        r = strangler("shadow", "report", "--routes", str(p.routes), "--state", str(p.workdir / "state.sqlite3"),
                      "--format", "json", *args)
        assert r.returncode in (0, 4), r.stderr  # 4: the gate did not pass
        doc = json.loads(r.stdout)
        if (doc["modules"] and doc == last) or time.monotonic() > deadline:
            return r.returncode, doc
        last = doc


def hit(p: ProxyProcess, path: str, n: int) -> None:
    with httpx.Client() as c:
        for _ in range(n):
            r = c.get(f"{p.url}{path}")
            assert r.status_code == 200 and r.headers.get("x-upstream", "legacy") == "legacy"


def test_identical_service_matches_and_passes_the_gate(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, shadow_module()))
    hit(p, "/shadow/same", 60)
    code, doc = report(p, "cases", "--gate", "0.9")
    (m,) = doc["modules"]
    assert (m["compared"], m["matched"], m["mismatched"]) == (60, 60, 0) and code == 0
    assert m["interval"]["low"] > 0.9 and m["gate"]["passed"]
    mirrored = [r for r in service.requests if r["path"] == "/shadow/same"]
    assert len(mirrored) == 60 and all(["x-strangler-shadow", "1"] in r["headers"] for r in mirrored)
    assert p.metric("strangler_shadow_matched_total", module="cases") == 60


def test_deterministic_change_is_flagged_on_its_field(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url},
                                shadow_module("      noise: twice\n      redact: [title]\n")))
    hit(p, "/shadow/changed", 40)
    code, doc = report(p, "--gate", "0.5")
    (m,) = doc["modules"]
    assert m["mismatched"] == 40 and code == 4
    assert m["fields"] == [{"path": "/price", "mismatches": 40}]
    sample = m["samples"][0]
    assert sample["legacy"]["body"]["price"] == 10 and sample["candidate"]["body"]["price"] == 12
    assert sample["legacy"]["body"]["title"] == "[redacted]"


def test_random_id_is_noise_with_calibration(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, shadow_module("      noise: twice\n")))
    hit(p, "/shadow/random", 40)
    code, doc = report(p, "--gate", "0.9")
    (m,) = doc["modules"]
    assert (m["compared"], m["matched"]) == (40, 40) and m["fields"] == [] and code == 0
    endpoint = m["endpoints"][0]["fields"][0]
    assert endpoint["path"] == "/request_id" and not endpoint["real"] and endpoint["noise"] == 40


def test_hanging_service_leaves_client_latency_alone(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    hanging = Upstream("service", hang=True).start()
    try:
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": hanging.url},
                                    shadow_module("      timeout: 0.5\n      queue: 5\n      concurrency: 2\n")))
        start = time.perf_counter()
        hit(p, "/shadow/same", 30)
        elapsed = time.perf_counter() - start
        assert elapsed < 3.0, f"30 requests took {elapsed:.2f} s with the new service hanging"
        deadline = time.monotonic() + 10
        while True:  # mirrors already queued time out one after another
            _, doc = report(p)
            (m,) = doc["modules"]
            if m["total"] == 30 or time.monotonic() > deadline:
                break
        assert m["skipped"]["timeout"] >= 1 and m["skipped"]["queue_full"] >= 1
        assert m["skipped"]["timeout"] + m["skipped"]["queue_full"] == 30
        assert m["compared"] == 0 and m["total"] == 30
    finally:
        hanging.stop()


def test_unsafe_methods_are_not_mirrored_by_default(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, shadow_module()))
    with httpx.Client() as c:
        for _ in range(5):
            assert c.post(f"{p.url}/echo/cases/new", content=b"{}").json()["name"] == "legacy"
    _, doc = report(p)
    (m,) = doc["modules"]
    assert m["skipped"]["unsafe"] == 5 and m["compared"] == 0
    assert not [r for r in service.requests if r["method"] == "POST"]


def test_large_bodies_reach_legacy_and_are_recorded_as_skipped(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url},
                                shadow_module("      writes: true\n      max_body: 1000\n")))
    r = httpx.post(f"{p.url}/echo/cases/upload", content=b"x" * 5000)
    assert r.json()["body_length"] == 5000 and r.json()["name"] == "legacy"
    httpx.post(f"{p.url}/echo/cases/small", content=b"x" * 10)
    _, doc = report(p)
    (m,) = doc["modules"]
    assert m["skipped"]["too_large"] == 1 and m["compared"] == 1


def test_report_without_traffic_and_bad_arguments(tmp_path: Path) -> None:
    r = strangler("shadow", "report", "--state", str(tmp_path / "none.sqlite3"))
    assert r.returncode == 1 and "no state store there" in r.stderr
    r = strangler("shadow", "report", "--state", str(tmp_path / "x"), "--gate", "5")
    assert r.returncode == 2 and "--gate: expected a rate from 0 to 1" in r.stderr


def test_a_service_closing_mid_body_is_a_truncated_mismatch(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    service.cut = True  # the candidate promises a body, sends a little, and drops the connection
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, shadow_module()))
    with httpx.Client() as c:
        for _ in range(4):
            r = c.get(f"{p.url}/shadow/same")
            assert r.status_code == 200 and r.json()["id"] == 7  # the client's answer is legacy's, whole
    _, doc = report(p)
    (m,) = doc["modules"]
    assert (m["compared"], m["mismatched"]) == (4, 4)
    assert m["fields"] == [{"path": "response", "mismatches": 4}]
    assert m["samples"][0]["differences"] == [{"path": "response", "kind": "truncated"}]


def test_shadow_set_at_runtime_on_a_module_without_shadow_settings_mirrors_with_the_defaults(
        tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Issue 26, item 3: PATCH stage shadow on a module whose file has no shadow block mirrors
    (the documented defaults: 100 %, safe methods), as 'stage: shadow' in the file would."""
    module = "  cases:\n    match: {path_prefix: [/shadow]}\n    service: service\n    stage: legacy\n"
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module))
    assert p.admin_call("PATCH", "/modules/cases", json={"stage": "shadow"}).status_code == 200
    hit(p, "/shadow/same", 30)
    with httpx.Client() as c:
        assert c.post(f"{p.url}/shadow/same").status_code == 200  # a write: not mirrored
    assert wait_until(lambda: p.metric("strangler_shadow_matched_total", module="cases") == 30, 20)
    assert [r["method"] for r in service.requests] == ["GET"] * 30
