"""``data_plane:``: parsed with precise errors; the Kubernetes plane's requests (server-side
apply, listing by label, pruning, Prometheus queries) as an API server and a Prometheus on
127.0.0.1 receive them.

No Kubernetes cluster runs here: the stand-in below keeps objects and answers as the API
server documents (``PATCH`` with ``application/apply-patch+yaml`` creates or updates, a
``labelSelector`` list, ``DELETE``, 404 for a kind whose CRD is not installed, a ``Status``
body on refusal) and as Prometheus's ``/api/v1/query`` does; what is checked is what
strangler sends and how it takes the answers."""

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
from strangler_proxy.errors import ProxyError, RouteConfigError
from strangler_proxy.planes import open_plane
from strangler_proxy.planes.kubernetes import KubernetesPlane, Prometheus

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
    objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, namespace, name) -> object
    installed = {"httproutes", "virtualservices", "destinationrules"}

    def log_message(self, *a: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _where(self) -> tuple[str, str, str | None]:
        # /apis/GROUP/VERSION/namespaces/NS/PLURAL[/NAME]
        parts = urlsplit(self.path).path.split("/")
        return parts[6], parts[5], (parts[7] if len(parts) > 7 else None)

    def do_PATCH(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        url = urlsplit(self.path)
        doc = yaml.safe_load(body)
        self.seen.append({"method": "PATCH", "path": url.path, "query": parse_qs(url.query),
                          "type": self.headers["content-type"], "auth": self.headers.get("authorization"), "doc": doc})
        plural, ns, name = self._where()
        if name in self.refuse:
            self._reply(422, {"kind": "Status", "message": f"HTTPRoute.gateway.networking.k8s.io \"{name}\" is invalid"})
            return
        self.objects[(plural, ns, str(name))] = doc
        self._reply(200, doc)

    def do_DELETE(self) -> None:  # noqa: N802
        plural, ns, name = self._where()
        self.seen.append({"method": "DELETE", "path": urlsplit(self.path).path})
        if self.objects.pop((plural, ns, str(name)), None) is None:
            self._reply(404, {"kind": "Status", "message": "not found"})
        else:
            self._reply(200, {"kind": "Status", "status": "Success"})

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path.startswith("/apis/"):
            plural, ns, _ = self._where()
            if plural not in self.installed:
                self._reply(404, {"kind": "Status", "message": "the server could not find the requested resource"})
                return
            wanted = dict(kv.split("=", 1) for kv in parse_qs(url.query)["labelSelector"][0].split(","))
            items = [o for (p, n, _), o in self.objects.items() if p == plural and n == ns
                     and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
            self._reply(200, {"kind": "List", "items": items})
            return
        query = parse_qs(url.query)["query"][0]
        if "duration" in query:
            result = [{"metric": {"destination_service_name": "cases"}, "value": [0, "400"]}]
        else:
            result = [{"metric": {"destination_service_name": "cases", "response_code": "200"}, "value": [0, "18.0"]},
                      {"metric": {"destination_service_name": "cases", "response_code": "503"}, "value": [0, "2.0"]},
                      {"metric": {"destination_service_name": "portal", "response_code": "200"}, "value": [0, "80"]}]
        self._reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.fixture
def api() -> Iterator[str]:
    _Api.seen, _Api.refuse, _Api.objects = [], set(), {}
    _Api.installed = {"httproutes", "virtualservices", "destinationrules"}
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
    plane = open_plane(table.data_plane, print)
    assert isinstance(plane, KubernetesPlane)
    assert plane.apply(table) is True
    assert plane.apply(table) is False  # unchanged: not sent again
    docs = [s for s in _Api.seen if s["method"] == "PATCH"]
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


MORE = """  kb:
    match: {path_prefix: /kb}
    service: kb-svc
    stage: canary
    weight: 10
"""


def _plane(tmp_path: Path, api: str, routes: str, owner: str = "") -> tuple[KubernetesPlane, Any]:
    path = tmp_path / "routes.yaml"
    extra = f", owner: {owner}" if owner else ""
    path.write_text(f"data_plane: {{kubernetes: {{namespace: shop, kubeconfig: {_kubeconfig(tmp_path, api)}{extra}}}}}\n"
                    + routes)
    table = load_routes(path)
    plane = open_plane(table.data_plane, lambda line: None)
    assert isinstance(plane, KubernetesPlane)
    return plane, table


def test_objects_keep_their_names_when_a_module_is_added_and_removed_ones_are_pruned(tmp_path: Path, api: str) -> None:
    two = BASE.replace("  cases-svc:", "  kb-svc: http://kb.shop:8000\n  cases-svc:") + MORE
    plane, one_table = _plane(tmp_path, api, BASE)
    plane.apply(one_table)
    before = {k[2] for k in _Api.objects}
    # somebody else's object, and another strangler's, in the same namespace: never touched
    _Api.objects[("httproutes", "shop", "team-b-route")] = {"metadata": {"name": "team-b-route", "labels": {}}}
    _Api.objects[("httproutes", "shop", "other-cases-1")] = {"metadata": {"name": "other-cases-1", "labels": {
        "app.kubernetes.io/managed-by": "strangler", "strangler.io/owner": "other"}}}
    plane, two_table = _plane(tmp_path, api, two)
    change = plane.plan(two_table)  # the dry run: says what would change, changes nothing
    assert change.create == ("HTTPRoute strangler-kb-1",) and not change.delete
    assert {k[2] for k in _Api.objects} == before | {"team-b-route", "other-cases-1"}
    plane.apply(two_table)
    assert {k[2] for k in _Api.objects} == before | {"strangler-kb-1", "team-b-route", "other-cases-1"}  # none renamed
    plane, one_table = _plane(tmp_path, api, BASE)
    change = plane.plan(one_table)
    assert change.delete == ("HTTPRoute strangler-kb-1",) and not change.create and not change.update
    plane.apply(one_table)
    assert {k[2] for k in _Api.objects} == before | {"team-b-route", "other-cases-1"}
    assert plane.plan(one_table).empty


def test_switching_to_istio_prunes_the_httproutes_and_a_missing_crd_lists_as_nothing(tmp_path: Path, api: str) -> None:
    plane, table = _plane(tmp_path, api, BASE)
    plane.apply(table)
    assert {k[0] for k in _Api.objects} == {"httproutes"}
    _Api.installed = {"httproutes", "virtualservices", "destinationrules"}
    path = tmp_path / "routes.yaml"
    path.write_text(f"data_plane: {{kubernetes: {{target: istio, namespace: shop, kubeconfig: "
                    f"{_kubeconfig(tmp_path, api)}}}}}\n" + BASE)
    istio = load_routes(path)
    plane2 = open_plane(istio.data_plane, lambda line: None)
    plane2.apply(istio)
    assert {k[0] for k in _Api.objects} == {"virtualservices", "destinationrules"}
    _Api.installed = {"virtualservices", "destinationrules"}  # no Gateway API CRDs in this cluster
    assert plane2.plan(istio).empty


@pytest.mark.parametrize("key, value, message", [
    ("namespace", "../../api/v1/secrets", "data_plane.kubernetes.namespace: expected a namespace name"),
    ("namespace", "Shop", "data_plane.kubernetes.namespace: expected a namespace name"),
    ("owner", "team_a", "data_plane.kubernetes.owner: expected an owner name"),
    ("gateway", "edge gw", "data_plane.kubernetes.gateway: expected a Gateway name"),
])
def test_kubernetes_names_are_checked_where_they_are_read(tmp_path: Path, key: str, value: str, message: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(f"data_plane:\n  kubernetes:\n    {key}: {json.dumps(value)}\n" + BASE)
    with pytest.raises(RouteConfigError, match=f"routes.yaml:3: {message}"):
        load_routes(path)


def test_prometheus_counts_become_each_side_s_traffic(tmp_path: Path, api: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(BASE)
    seen = Prometheus(api, "shop")(load_routes(path), 30)
    got = {(o.side, o.error): o.count for o in seen}
    assert got == {("service", False): 18, ("service", True): 2, ("legacy", False): 80}
    assert all(o.module == "cases" for o in seen)
    assert abs(next(o.seconds for o in seen if o.side == "service") - 0.02) < 1e-9  # 400 ms over 20 requests
