"""The release controller driving a real nginx (``data_plane: nginx``): each step is written,
checked with ``nginx -t`` and reloaded, and judged from nginx's own JSON access log; a
failing service is rolled back; a step nginx refuses is a failed step, rolled back, and
nginx keeps serving its last good configuration."""

from __future__ import annotations

import pytest

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from strangler_proxy.config import load_routes
from strangler_proxy.planes import export
from tests.proxy.test_release import Traffic as ReleaseTraffic
from tests.proxy.upstreams import Upstream
from tests.servers import Nginx, free_port, nginx_binary

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


ROUTES = """upstreams:
  legacy: {legacy}
  service: {service}
cohort: {{cookie: true}}
breaker: {{failures: 100000}}
data_plane:
  nginx:
    config: {dir}/strangler.conf
    test: {nginx} -p {dir} -c {dir}/nginx.conf -t
    reload: {nginx} -p {dir} -c {dir}/nginx.conf -s reload
    listen: 127.0.0.1:{port}
    access_log: {dir}/access.json
modules:
  cases:
    match: {{path_prefix: /cases}}
    service: service
    stage: legacy
    release:
      steps: [10, 50]
      interval: 0.8
      failure_limit: 2
      analysis: {{min_requests: 8, error_rate_margin: 0.05, p99_floor_ms: 250}}
"""


class Traffic(ReleaseTraffic):
    """Users through the data plane, each keeping the cohort cookie it gives them."""

    def __init__(self, url: str) -> None:
        self.url, self.stop, self.failed, self.sides = url, threading.Event(), 0, {"legacy": 0, "service": 0}
        self.resent = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        jars: dict[int, str] = {}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                user = i % 300
                client.cookies.clear()
                headers = {"cookie": jars[user]} if user in jars else {}
                try:
                    r = client.get(f"/cases/{i}", headers=headers)
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    # a kept-alive connection the plane closed (or reset) at a reload as the request went
                    # out: browsers resend a GET then, and so does this user (counted, so it shows)
                    self.resent += 1
                    r = client.get(f"/cases/{i}", headers=headers)
                cookie = r.headers.get("set-cookie")
                if cookie:
                    jars[user] = cookie.split(";", 1)[0]
                self.failed += r.status_code != 200
                if r.status_code == 200:
                    self.sides["service" if r.json()["name"] == "service" else "legacy"] += 1
                i += 1
                time.sleep(0.002)


def setup(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy: Any, test: str | None = None) -> tuple[Any, Nginx, Path]:
    folder = tmp_path / "nginx"
    folder.mkdir()
    port = free_port()
    routes = tmp_path / "routes.yaml"
    text = ROUTES.format(legacy=legacy.url, service=service.url, dir=folder, nginx=nginx_binary(), port=port)
    if test is not None:
        text = text.replace(f"    test: {nginx_binary()} -p {folder} -c {folder}/nginx.conf -t", f"    test: {test}")
    routes.write_text(text)
    # nginx starts on the export of the file as it is; the controller takes it from there
    nginx = Nginx(str(folder), export(load_routes(routes), "nginx").text, port).start()
    proxy = start_proxy(routes)
    return proxy, nginx, folder


def status(p: Any) -> dict[str, Any]:
    (s,) = p.admin_call("GET", "/releases").json()
    return s  # type: ignore[no-any-return]


def wait_for(predicate: Any, timeout: float, p: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met in time: {status(p) if p else ''}"
        time.sleep(0.1)


def only_the_service_serves(t: Any, timeout: float = 15) -> bool:
    """Once a reload is live (the old workers gone, later on a loaded machine), a whole second
    of traffic reaches the service and none reaches legacy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = dict(t.sides)
        time.sleep(1.0)
        if t.sides["service"] > before["service"] and t.sides["legacy"] == before["legacy"]:
            return True
    return False


def test_a_release_walks_nginx_from_legacy_to_released(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                       start_proxy) -> None:  # type: ignore[no-untyped-def]
    p, nginx, folder = setup(tmp_path, legacy, service, start_proxy)
    try:
        with Traffic(f"http://127.0.0.1:{nginx.port}") as t:
            time.sleep(0.5)
            assert t.sides["service"] == 0  # stage legacy: nginx sends nothing to the service
            assert p.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
            wait_for(lambda: status(p)["status"] == "released", 40, p)
            assert only_the_service_serves(t)  # the released configuration is live in nginx
        assert t.failed == 0
        ledger = [e["action"] for e in p.admin_call("GET", "/ledger?module=cases").json()]
        assert ledger == ["release.step", "release.step", "release.start"]  # 10 %, 50 %, then released
        # nginx's own access log carried the evidence: the proxy's listener saw no request
        lines = (folder / "access.json").read_text().splitlines()
        assert any(json.loads(x)["target"] == "strangler_cases__new" for x in lines)
    finally:
        nginx.stop()


def test_a_failing_service_behind_nginx_is_rolled_back(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                      start_proxy) -> None:  # type: ignore[no-untyped-def]
    service.fail = True
    p, nginx, folder = setup(tmp_path, legacy, service, start_proxy)
    try:
        with Traffic(f"http://127.0.0.1:{nginx.port}") as t:
            assert p.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
            wait_for(lambda: status(p)["status"] == "rolled_back", 40, p)
            time.sleep(1.5)
        assert t.failed == 0  # nginx's fallback to legacy answered what the service could not
        assert status(p)["reason"].startswith("rolled back: ")
        conf = (folder / "strangler.conf").read_text()
        assert "strangler_cases__new;" not in conf.split("$strangler_target {", 1)[1].split("}", 1)[0]
    finally:
        nginx.stop()


def test_a_step_nginx_refuses_is_rolled_back_and_nginx_keeps_serving(tmp_path: Path, legacy: Upstream,
                                                                      service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p, nginx, folder = setup(tmp_path, legacy, service, start_proxy, test="sh -c 'exit 1'")
    good = (folder / "strangler.conf").read_text()
    try:
        with Traffic(f"http://127.0.0.1:{nginx.port}") as t:
            assert p.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
            wait_for(lambda: status(p)["status"] == "rolled_back", 20)
            time.sleep(0.5)
        s = status(p)
        assert "the data plane refused the step" in s["reason"] and "exited 1" in s["reason"]
        assert s["stage"] == "legacy"
        assert (folder / "strangler.conf").read_text() == good  # the last good configuration, still served
        assert t.failed == 0 and t.sides["service"] == 0
    finally:
        nginx.stop()


HAPROXY = """  haproxy:
    config: {dir}/haproxy.cfg
    reload: sh -c 'kill -USR2 $(cat {dir}/haproxy.pid)'
    listen: 127.0.0.1:{port}
    stats_socket: {dir}/stats.sock
"""


def test_a_release_walks_haproxy_and_is_judged_on_its_stats_socket(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                                   start_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.servers import HAProxy

    folder = tmp_path / "haproxy"
    folder.mkdir()
    port = free_port()
    text = ROUTES.format(legacy=legacy.url, service=service.url, dir=folder, nginx="nginx", port=port)
    start, end = text.index("  nginx:"), text.index("modules:")
    routes = tmp_path / "routes.yaml"
    routes.write_text(text[:start] + HAPROXY.format(dir=folder, port=port) + text[end:])
    haproxy = HAProxy(str(folder), export(load_routes(routes), "haproxy").text, port).start()
    p = start_proxy(routes)
    try:
        with Traffic(f"http://127.0.0.1:{port}") as t:
            assert p.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
            wait_for(lambda: status(p)["status"] == "released", 40, p)
            assert only_the_service_serves(t)
        assert t.failed == 0
        service.fail = True  # and a failing service, on the next release, is rolled back
        assert p.admin_call("POST", "/releases/cases", json={"action": "abort"}).status_code == 200
        with Traffic(f"http://127.0.0.1:{port}") as t:
            assert p.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
            wait_for(lambda: status(p)["status"] == "rolled_back", 40, p)
        assert t.failed == 0
    finally:
        haproxy.stop()
