"""The Kubernetes API and Prometheus, as the Kubernetes plane uses them: server-side apply,
listing and deleting the objects strangler owns, and the mesh's request counts.

- **Apply**: each object is sent with ``PATCH ...?fieldManager=strangler&force=true`` and
  ``Content-Type: application/apply-patch+yaml`` (server-side apply: strangler owns the
  fields it writes, the API server merges, the same request creates or updates). The API
  server and credentials come from ``kubeconfig`` (its current context: server, CA, token or
  client certificate) or, without one, from the pod's service account.
- **Prune**: the objects of the kinds strangler writes carrying its owner's labels
  (``app.kubernetes.io/managed-by=strangler,strangler.io/owner=OWNER``), listed by label
  selector in the namespace, and deleted by name (a kind whose CRD is not installed lists
  as empty).
- **Metrics**: ``istio_requests_total`` (Istio's standard metric, also reported for its
  Gateway API implementation), increased over the read interval and summed by destination
  service and response code. A mesh does not label requests by route, so a module's sides
  are its service's and its legacy's traffic: exact when each module has its own service,
  shared otherwise (the README says so).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from strangler_proxy.errors import ProxyError
from strangler_proxy.model import RouteTable
from strangler_proxy.planes.base import ApplyFailed, Observation
from strangler_proxy.planes.kubernetes.render import service_ref

__all__ = ["KINDS", "KubeApi", "KubeApplyFailed", "Prometheus"]

PLURALS = {"HTTPRoute": "httproutes", "VirtualService": "virtualservices", "DestinationRule": "destinationrules"}
KINDS = {"HTTPRoute": "gateway.networking.k8s.io/v1", "VirtualService": "networking.istio.io/v1",
         "DestinationRule": "networking.istio.io/v1"}
SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeApplyFailed(ApplyFailed):
    """The API server refused an object: the data plane keeps what it had."""


def _cluster(kubeconfig: str | None) -> tuple[str, dict[str, Any]]:
    """(API server URL, httpx client settings) from a kubeconfig or the pod's service account."""
    if kubeconfig is None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host or not (SA / "token").exists():
            raise ProxyError("data_plane.kubernetes: no kubeconfig given and not running in a pod (no service account)")
        return f"https://{host}:{port}", {"verify": str(SA / "ca.crt"),
                                          "headers": {"Authorization": f"Bearer {(SA / 'token').read_text().strip()}"}}
    path = Path(kubeconfig).expanduser()
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProxyError(f"data_plane.kubernetes.kubeconfig {path}: cannot read it: {exc}") from None
    try:
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == cfg["current-context"])
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    except (KeyError, StopIteration, TypeError):
        raise ProxyError(f"data_plane.kubernetes.kubeconfig {path}: no usable current-context") from None
    settings: dict[str, Any] = {"headers": {}}
    if cluster.get("insecure-skip-tls-verify"):
        settings["verify"] = False
    elif "certificate-authority" in cluster:
        settings["verify"] = cluster["certificate-authority"]
    elif "certificate-authority-data" in cluster:
        settings["verify"] = _data_file(cluster["certificate-authority-data"])
    if "token" in user:
        settings["headers"]["Authorization"] = f"Bearer {user['token']}"
    if "client-certificate" in user or "client-certificate-data" in user:
        cert = user.get("client-certificate") or _data_file(user["client-certificate-data"])
        key = user.get("client-key") or _data_file(user["client-key-data"])
        settings["cert"] = (cert, key)
    return str(cluster["server"]).rstrip("/"), settings


def _data_file(b64: str) -> str:
    import base64

    fd, name = tempfile.mkstemp(prefix="strangler-kube-")
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64decode(b64))
    return name


class KubeApi:
    """The few calls the plane makes, each on a fresh client (the control thread is not hot)."""

    def __init__(self, kubeconfig: str | None) -> None:
        self.kubeconfig = kubeconfig

    def _url(self, server: str, kind: str, namespace: str, name: str | None = None) -> str:
        group_version = KINDS[kind]
        return f"{server}/apis/{group_version}/namespaces/{namespace}/{PLURALS[kind]}" + (f"/{name}" if name else "")

    def apply(self, docs: list[dict[str, Any]]) -> None:
        server, settings = _cluster(self.kubeconfig)
        with httpx.Client(timeout=30, **settings) as client:
            for doc in docs:
                meta = doc["metadata"]
                url = self._url(server, doc["kind"], meta["namespace"], meta["name"])
                r = self._call(client, "PATCH", url, f"{doc['kind']} {meta['name']}",
                               params={"fieldManager": "strangler", "force": "true"}, content=yaml.safe_dump(doc).encode(),
                               headers={"Content-Type": "application/apply-patch+yaml"})
                _check(r, f"{doc['kind']} {meta['name']}")

    def owned(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Every object of the kinds strangler writes that carries ``selector``'s labels."""
        server, settings = _cluster(self.kubeconfig)
        out: list[dict[str, Any]] = []
        with httpx.Client(timeout=30, **settings) as client:
            for kind in KINDS:
                r = self._call(client, "GET", self._url(server, kind, namespace), f"listing {kind}s",
                               params={"labelSelector": selector})
                if r.status_code == 404:
                    continue  # the kind's CRD is not installed: nothing of it to own
                _check(r, f"listing {kind}s")
                out += [{**item, "kind": kind} for item in r.json().get("items") or ()]
        return out

    def delete(self, kind: str, namespace: str, name: str) -> None:
        server, settings = _cluster(self.kubeconfig)
        with httpx.Client(timeout=30, **settings) as client:
            r = self._call(client, "DELETE", self._url(server, kind, namespace, name), f"{kind} {name}")
            if r.status_code != 404:  # already gone: what we wanted
                _check(r, f"{kind} {name}")

    @staticmethod
    def _call(client: httpx.Client, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        try:
            return client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise KubeApplyFailed(f"{what}: {type(exc).__name__}: {exc}") from None


def _check(r: httpx.Response, what: str) -> None:
    if r.status_code >= 300:
        try:
            message = r.json().get("message", r.text)
        except ValueError:
            message = r.text[:300]
        raise KubeApplyFailed(f"{what}: the API server answered {r.status_code}: {message}")


class Prometheus:
    def __init__(self, url: str, namespace: str) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace

    def __call__(self, table: RouteTable, interval: float) -> list[Observation]:
        seconds = max(1, round(interval))
        query = ("sum by (destination_service_name, response_code) (increase(istio_requests_total{reporter=\"source\"}"
                 f"[{seconds}s]))")
        latency = ("sum by (destination_service_name) (increase(istio_request_duration_milliseconds_sum{reporter=\"source\"}"
                   f"[{seconds}s]))")
        counts: dict[tuple[str, bool], float] = {}
        millis: dict[str, float] = {}
        with httpx.Client(timeout=10) as client:
            for row in self._query(client, query):
                svc, code = row["metric"].get("destination_service_name", ""), row["metric"].get("response_code", "")
                key = (svc, code.startswith("5") or code == "0")
                counts[key] = counts.get(key, 0.0) + float(row["value"][1])
            for row in self._query(client, latency):
                millis[row["metric"].get("destination_service_name", "")] = float(row["value"][1])
        out = []
        for m in table.modules:
            if m.release is None:
                continue
            for side, upstream in (("service", m.service), ("legacy", m.legacy)):
                svc = service_ref(upstream, table.upstreams[upstream], self.namespace)[0]
                ok, bad = round(counts.get((svc, False), 0.0)), round(counts.get((svc, True), 0.0))
                mean = millis.get(svc, 0.0) / max(1, ok + bad) / 1000
                if ok:
                    out.append(Observation(m.name, side, mean, False, ok))
                if bad:
                    out.append(Observation(m.name, side, mean, True, bad))
        return out

    def _query(self, client: httpx.Client, query: str) -> list[dict[str, Any]]:
        try:
            r = client.get(f"{self.url}/api/v1/query", params={"query": query})
            data = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProxyError(f"data_plane.kubernetes.prometheus {self.url}: {exc}") from None
        if data.get("status") != "success":
            raise ProxyError(f"data_plane.kubernetes.prometheus {self.url}: {data.get('error', 'query failed')}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result
