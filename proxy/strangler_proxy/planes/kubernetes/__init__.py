"""Kubernetes as the data plane: Gateway API ``HTTPRoute``s or an Istio ``VirtualService``
(``render``), server-side applied, the objects strangler owns and no longer renders pruned,
and each side's traffic read from the mesh's metrics in Prometheus (``api``).

Apply order: every rendered object first, then the deletions, so no request finds a gap
between the old routes and the new. Only objects with this plane's owner labels are ever
deleted (``strangler.io/owner``: ``data_plane.kubernetes.owner``, default ``strangler``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import yaml

from strangler_proxy.external import DataPlane
from strangler_proxy.model import RouteTable
from strangler_proxy.planes.base import Change, Observation
from strangler_proxy.planes.kubernetes.api import KubeApi, KubeApplyFailed, Prometheus
from strangler_proxy.planes.kubernetes.render import MANAGED_BY, OWNER, KubeOptions

__all__ = ["KubeApi", "KubeApplyFailed", "KubeOptions", "KubernetesPlane", "Prometheus"]


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _same(live: dict[str, Any], doc: dict[str, Any]) -> bool:
    labels = live.get("metadata", {}).get("labels") or {}
    return bool(live.get("spec") == doc["spec"] and all(labels.get(k) == v for k, v in doc["metadata"]["labels"].items()))


class KubernetesPlane:
    def __init__(self, spec: DataPlane, log: Callable[[str], None], render: Callable[[RouteTable], str],
                 api: KubeApi | None = None, prometheus: Prometheus | None = None) -> None:
        self.spec = spec
        self.log = log
        self._render = render
        self.api = api if api is not None else KubeApi(spec.kubeconfig)
        self.prometheus = prometheus if prometheus is not None or not spec.prometheus else Prometheus(spec.prometheus, spec.namespace)
        self.applied: str | None = None
        self._last_read: float | None = None

    @property
    def selector(self) -> str:
        return f"{MANAGED_BY}=strangler,{OWNER}={self.spec.owner}"

    def render(self, table: RouteTable) -> str:
        return self._render(replace(table, data_plane=self.spec))

    def _docs(self, table: RouteTable) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.render(table)) if d]

    def plan(self, table: RouteTable) -> Change:
        docs = self._docs(table)
        live = {(o["kind"], o["metadata"]["name"]): o for o in self.api.owned(self.spec.namespace, self.selector)}
        wanted = {_key(d): d for d in docs}
        create = tuple(f"{k} {n}" for (k, n) in wanted if (k, n) not in live)
        update = tuple(f"{k} {n}" for (k, n), d in wanted.items() if (k, n) in live and not _same(live[(k, n)], d))
        delete = tuple(f"{k} {n}" for (k, n) in live if (k, n) not in wanted)
        return Change(create, update, delete)

    def apply(self, table: RouteTable) -> bool:
        text = self.render(table)
        if text == self.applied:
            return False
        docs = [d for d in yaml.safe_load_all(text) if d]
        self.api.apply(docs)
        wanted = {_key(d) for d in docs}
        for obj in self.api.owned(self.spec.namespace, self.selector):
            kind, name = obj["kind"], obj["metadata"]["name"]
            if (kind, name) not in wanted:
                self.api.delete(kind, self.spec.namespace, name)
                self.log(f"data plane kubernetes: {kind} {name} deleted (strangler no longer renders it)")
        self.applied = text
        return True

    def read(self, table: RouteTable) -> list[Observation]:
        now = time.monotonic()
        interval, self._last_read = now - (self._last_read or now), now
        if self.prometheus is None or interval <= 0:
            return []
        return self.prometheus(table, interval)
