"""External data planes: strangler stays the control plane, nginx, HAProxy, a Gateway API
implementation or Istio carries the traffic.

One module per provider holds everything about it, its renderer, its apply and its
evidence: ``nginx``, ``haproxy``, ``kubernetes`` (a folder: renderer and API client); what
they share is in ``table`` (the routes in strangler's order, regex helpers), ``files``
(write, check, reload, restore) and ``export`` (the entry point of ``routes export``).
"""

from __future__ import annotations

from collections.abc import Callable

from strangler_proxy.external import DataPlane
from strangler_proxy.planes.base import ApplyFailed, Change, Observation, Plane
from strangler_proxy.planes.export import ExportError, Exported, Target, export
from strangler_proxy.planes.haproxy import HaproxyPlane
from strangler_proxy.planes.kubernetes import KubeOptions, KubernetesPlane
from strangler_proxy.planes.nginx import NginxPlane
from strangler_proxy.model import RouteTable

__all__ = ["ApplyFailed", "Change", "ExportError", "Exported", "KubeOptions", "Observation", "Plane", "Target", "export",
           "open_plane"]


def open_plane(spec: DataPlane, log: Callable[[str], None]) -> Plane:
    """The plane a route file's ``data_plane:`` block names (not ``strangler`` itself)."""
    if spec.kind == "kubernetes":
        kube = KubeOptions(namespace=spec.namespace, gateway=spec.gateway, owner=spec.owner)

        def render_kube(table: RouteTable) -> str:
            return export(table, spec.target, kube=kube).text

        return KubernetesPlane(spec, log, render_kube)
    target: Target = "nginx" if spec.kind == "nginx" else "haproxy"

    def render(table: RouteTable) -> str:
        return export(table, target).text

    return NginxPlane(spec, log, render) if spec.kind == "nginx" else HaproxyPlane(spec, log, render)
