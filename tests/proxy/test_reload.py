"""Hot reload: atomic swaps, in-flight requests finish on their table, bad files are refused."""

from __future__ import annotations

import pytest

import threading
import time
from pathlib import Path

import httpx

from tests.proxy.harness import routes_file
from tests.proxy.upstreams import Upstream


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def stage_of(p, name: str = "cases") -> str:  # type: ignore[no-untyped-def]
    return str(p.admin_call("GET", f"/modules/{name}").json()["stage"])


def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


MODULE = "  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: STAGE\n"


def test_file_change_reloads_and_a_bad_file_keeps_the_old_table(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE.replace("STAGE", "legacy"))
    p = start_proxy(routes)
    assert httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "legacy"
    routes.write_text(routes.read_text().replace("stage: legacy", "stage: released"))
    wait_for(lambda: httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "service")
    good = routes.read_text()
    routes.write_text(good.replace("stage: released", "stage: released\n    weight: 500"))
    wait_for(lambda: "weight: expected a number from 0 to 100" in p.log.read_text())
    assert f"{routes}:" in p.log.read_text()  # names the file and line
    assert httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "service"  # old table still serves
    assert p.metric("strangler_route_reloads_total", result="error") >= 1
    r = p.admin_call("POST", "/reload")
    assert r.status_code == 422 and "weight" in r.json()["error"]
    routes.write_text(good.replace("stage: released", "stage: legacy"))
    p.hup()
    wait_for(lambda: stage_of(p) == "legacy")


def test_in_flight_requests_finish_on_their_table(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url},
                         MODULE.replace("STAGE", "released").replace("/echo/cases", "/slow"))
    p = start_proxy(routes)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=httpx.get(f"{p.url}/slow/1.5", timeout=10)))
    t.start()
    wait_for(lambda: service.in_flight == 1)  # the request is in the service's hands before the table changes
    routes.write_text(routes.read_text().replace("stage: released", "stage: legacy"))
    p.hup()
    wait_for(lambda: stage_of(p) == "legacy")
    t.join()
    assert result["r"].json()["name"] == "service"


def test_reload_storm_during_load_loses_nothing(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE.replace("STAGE", "canary") + "    weight: 50\n")
    p = start_proxy(routes)
    failures: list[str] = []
    done = threading.Event()

    def load() -> None:
        with httpx.Client() as c:
            while not done.is_set():
                try:
                    r = c.get(f"{p.url}/echo/cases/1", headers={"cookie": f"JSESSIONID={time.monotonic_ns()}"})
                    if r.status_code != 200:
                        failures.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    text = routes.read_text()
    for i in range(30):
        routes.write_text(text.replace("weight: 50", f"weight: {i * 3}"))
        p.hup()
        time.sleep(0.03)
    done.set()
    for t in threads:
        t.join()
    assert failures == []
    # signals arriving together coalesce, so fewer reloads than writes is fine: churn, then convergence
    assert p.metric("strangler_route_reloads_total", result="ok") >= 10
    p.hup()
    wait_for(lambda: p.admin_call("GET", "/modules/cases").json()["weight"] == 87)
