"""Failures are visible by default (issue 26, item 6): an upstream's outage and each breaker
change are one log line at start and one at end, with counts; never one per request."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from strangler_proxy.dataplane.outages import START_AFTER, Outages
from tests.proxy.harness import routes_file, wait_until
from tests.proxy.upstreams import Upstream, free_port


def test_an_outage_is_two_lines_with_counts_and_breakers_say_open_and_closed() -> None:
    lines: list[str] = []
    now = [0.0]
    o = Outages(lines.append, clock=lambda: now[0])
    for i in range(1000):
        o.failure("svc", "cases", "refused" if i % 10 else "timeout", fell_back=True)
    now[0] = 12.5
    o.success("svc")
    assert len(lines) == 2
    assert lines[0].startswith(f"upstream svc: outage: {START_AFTER} failures in a row") and "module cases" in lines[0]
    assert lines[1] == "upstream svc: answering again after 12.5 s: 1000 failures (refused 900, timeout 100), 1000 " \
                       "answered by legacy instead"
    o.failure("svc", "cases", "refused", fell_back=True)
    o.success("svc")  # one failure is no outage: nothing said
    assert len(lines) == 2
    o.breaker("cases", "closed", "open", 30)
    for _ in range(50):  # trials failing: said once a minute at most
        now[0] += 1
        o.breaker("cases", "open", "half_open", 30)
        o.breaker("cases", "half_open", "open", 30)
    o.breaker("cases", "half_open", "closed", 30)
    said = [x for x in lines[2:]]
    assert said[0].startswith("breaker cases: open: its new service keeps failing") and said[-1].startswith(
        "breaker cases: closed: the new service answered its trial request after 50.0 s open")
    assert len(said) == 3 and "still open: 1 trial request failed" in said[1]


def test_a_dead_service_is_logged_by_the_real_proxy_without_any_flag(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    module = "  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: released\n"
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": f"http://127.0.0.1:{port}"}, module,
                         extra="breaker: {failures: 3, cooldown: 0.3}\n")
    p = start_proxy(routes)
    with httpx.Client(base_url=p.url) as c:
        for _ in range(50):
            assert c.get("/echo/cases/1").json()["name"] == "legacy"  # the fallback works
    assert wait_until(lambda: "breaker cases: open" in p.log.read_text(), 5)
    log = p.log.read_text()
    assert log.count("upstream service: outage") == 1 and len(log.splitlines()) < 10, log
    service = Upstream("service")
    service.port = port
    service.start()
    try:
        time.sleep(0.4)  # the cool-down: the next request is the trial
        with httpx.Client(base_url=p.url) as c:
            assert wait_until(lambda: c.get("/echo/cases/1").json()["name"] == "service", 5)
        log = p.log.read_text()
        assert "upstream service: answering again after" in log and "breaker cases: closed" in log, log
    finally:
        service.stop()
