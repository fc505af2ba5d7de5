"""Kubernetes as the data plane: server-side apply of the exported objects, and the mesh's
request counts from Prometheus.

- **Apply**: each object is sent with ``PATCH ...?fieldManager=strangler&force=true`` and
  ``Content-Type: application/apply-patch+yaml`` (server-side apply: strangler owns the
  fields it writes, the API server merges, the same request creates or updates). The API
  server and credentials come from ``kubeconfig`` (its current context: server, CA, token or
  client certificate) or, without one, from the pod's service account.
- **Metrics**: ``istio_requests_total`` (Istio's standard metric, also reported for its
  Gateway API implementation), increased over the read interval and summed by destination
  service and response code. A mesh does not label requests by route, so a module's sides
  are its service's and its legacy's traffic: exact when each module has its own service,
  shared otherwise (the README says so).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from strangler_proxy.control.driver import Observation
from strangler_proxy.errors import ProxyError
from strangler_proxy.export.kube import service_ref
from strangler_proxy.external import DataPlane
from strangler_proxy.model import RouteTable

__all__ = ["KubeApply", "Prometheus", "kubernetes_clients"]

PLURALS = {"HTTPRoute": "httproutes", "VirtualService": "virtualservices", "DestinationRule": "destinationrules"}
SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeApplyFailed(ProxyError):
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


class KubeApply:
    def __init__(self, kubeconfig: str | None) -> None:
        self.kubeconfig = kubeconfig

    def __call__(self, text: str) -> None:
        server, settings = _cluster(self.kubeconfig)
        with httpx.Client(timeout=30, **settings) as client:
            for doc in yaml.safe_load_all(text):
                if not doc:
                    continue
                group, version = doc["apiVersion"].split("/")
                meta = doc["metadata"]
                url = (f"{server}/apis/{group}/{version}/namespaces/{meta['namespace']}/{PLURALS[doc['kind']]}/"
                       f"{meta['name']}")
                try:
                    r = client.patch(url, params={"fieldManager": "strangler", "force": "true"},
                                     content=yaml.safe_dump(doc).encode(),
                                     headers={"Content-Type": "application/apply-patch+yaml"})
                except httpx.HTTPError as exc:
                    raise KubeApplyFailed(f"{doc['kind']} {meta['name']}: {type(exc).__name__}: {exc}") from None
                if r.status_code >= 300:
                    try:
                        message = r.json().get("message", r.text)
                    except ValueError:
                        message = r.text[:300]
                    raise KubeApplyFailed(f"{doc['kind']} {meta['name']}: the API server answered {r.status_code}: {message}")


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


def kubernetes_clients(spec: DataPlane) -> tuple[Callable[[str], None] | None, Callable[[RouteTable, float], list[Observation]] | None]:
    """The apply and metrics functions for a Kubernetes data plane (none for the others)."""
    if spec.kind != "kubernetes":
        return None, None
    return KubeApply(spec.kubeconfig), (Prometheus(spec.prometheus, spec.namespace) if spec.prometheus else None)
