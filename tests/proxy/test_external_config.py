"""``data_plane:``: parsed with precise errors; the Kubernetes driver's requests (server-side
apply, Prometheus queries) as an API server and a Prometheus on 127.0.0.1 receive them.

No Kubernetes cluster runs here: the stand-in below answers as the API server documents
(``PATCH`` with ``application/apply-patch+yaml``, a ``Status`` body on refusal) and as
Prometheus's ``/api/v1/query`` does; what is checked is what strangler sends and how it
takes the answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from strangler_proxy.config import load_routes
from strangler_proxy.control.driver import ExternalPlane
from strangler_proxy.control.kubeclient import KubeApply, Prometheus
from strangler_proxy.errors import ProxyError, RouteConfigError

BASE = """upstreams:
  legacy: http://portal.shop:8080
  cases-svc: http://cases.shop:8000
modules:
  cases:
    match: {path_prefix: /cases}
    service: cases-svc
    stage: canary
    weight: 20
    release: {steps: [20, 50]}
"""


@pytest.mark.parametrize("block, message", [
    ("data_plane: {nginx: {reload: nginx -s reload}}\n", ":1: data_plane.nginx: expected 'config'"),
    ("data_plane: {haproxy: {config: /x.cfg}}\n", ":1: data_plane.haproxy: expected 'reload'"),
    ("data_plane: {nginx: {config: /x, test: \"nginx -t 'oops\"}}\n", "data_plane.nginx.test: expected a command line"),
    ("data_plane: {nginx: {config: /x}, haproxy: {config: /y, reload: r}}\n", "expected exactly one of nginx, haproxy"),
    ("data_plane: {kubernetes: {target: linkerd}}\n", "data_plane.kubernetes.target"),
    ("data_plane: envoy\n", "data_plane"),
])
def test_bad_data_plane_blocks_name_their_line_and_key(tmp_path: Path, block: str, message: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(block + BASE)
    with pytest.raises(RouteConfigError) as err:
        load_routes(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_defaults(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("data_plane: {haproxy: {config: /etc/h.cfg, reload: 'systemctl reload haproxy'}}\n" + BASE)
    dp = load_routes(path).data_plane
    assert (dp.kind, dp.test, dp.reload) == ("haproxy", ("haproxy", "-c", "-f", "/etc/h.cfg"), ("systemctl", "reload", "haproxy"))


class _Api(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    refuse: set[str] = set()

    def log_message(self, *a: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PATCH(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        url = urlsplit(self.path)
        self.seen.append({"path": url.path, "query": parse_qs(url.query), "type": self.headers["content-type"],
                          "auth": self.headers.get("authorization"), "doc": yaml.safe_load(body)})
        name = url.path.rsplit("/", 1)[1]
        if name in self.refuse:
            self._reply(422, {"kind": "Status", "message": f"HTTPRoute.gateway.networking.k8s.io \"{name}\" is invalid"})
        else:
            self._reply(200, {"kind": "HTTPRoute"})

    def do_GET(self) -> None:  # noqa: N802
        query = parse_qs(urlsplit(self.path).query)["query"][0]
        if "duration" in query:
            result = [{"metric": {"destination_service_name": "cases"}, "value": [0, "400"]}]
        else:
            result = [{"metric": {"destination_service_name": "cases", "response_code": "200"}, "value": [0, "18.0"]},
                      {"metric": {"destination_service_name": "cases", "response_code": "503"}, "value": [0, "2.0"]},
                      {"metric": {"destination_service_name": "portal", "response_code": "200"}, "value": [0, "80"]}]
        self._reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.fixture
def api() -> Iterator[str]:
    _Api.seen, _Api.refuse = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "current-context": "ci", "contexts": [{"name": "ci", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": server}}], "users": [{"name": "u", "user": {"token": "t0k"}}]}))
    return str(path)


def test_server_side_apply_of_every_object_and_a_refusal_keeps_the_last_applied(tmp_path: Path, api: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(f"data_plane: {{kubernetes: {{namespace: shop, kubeconfig: {_kubeconfig(tmp_path, api)}}}}}\n" + BASE)
    table = load_routes(path)
    plane = ExternalPlane(table.data_plane, print, KubeApply(table.data_plane.kubeconfig))
    assert plane.apply(table) is True
    assert plane.apply(table) is False  # unchanged: not sent again
    docs = [s for s in _Api.seen]
    assert docs and all(s["type"] == "application/apply-patch+yaml" and s["auth"] == "Bearer t0k" for s in docs)
    assert all(s["query"] == {"fieldManager": ["strangler"], "force": ["true"]} for s in docs)
    assert docs[0]["path"].startswith("/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/strangler-")
    first = plane.applied
    _Api.refuse = {docs[0]["path"].rsplit("/", 1)[1]}
    from dataclasses import replace

    changed = replace(table, modules=tuple(replace(m, weight=50) for m in table.modules))
    with pytest.raises(ProxyError, match="answered 422: .* is invalid"):
        plane.apply(changed)
    assert plane.applied == first


def test_prometheus_counts_become_each_side_s_traffic(tmp_path: Path, api: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(BASE)
    seen = Prometheus(api, "shop")(load_routes(path), 30)
    got = {(o.side, o.error): o.count for o in seen}
    assert got == {("service", False): 18, ("service", True): 2, ("legacy", False): 80}
    assert all(o.module == "cases" for o in seen)
    assert abs(next(o.seconds for o in seen if o.side == "service") - 0.02) < 1e-9  # 400 ms over 20 requests
