"""``data_plane:`` in the route file: where the traffic really flows, when not through strangler.

::

    data_plane:
      nginx:
        config: /etc/nginx/conf.d/strangler.conf   # the include strangler writes (in http {})
        test: nginx -t                             # default
        reload: nginx -s reload                    # default
        listen: "8000"                             # the exported server's listen
        access_log: /var/log/nginx/strangler.json  # JSON lines the config writes and strangler reads
    # or
      haproxy:
        config: /etc/haproxy/haproxy.cfg
        test: haproxy -c -f /etc/haproxy/haproxy.cfg   # default: haproxy -c -f CONFIG
        reload: systemctl reload haproxy               # required
        listen: "*:8000"
        stats_socket: /run/haproxy/strangler.sock       # the per-backend counters strangler reads
    # or
      kubernetes:
        target: gateway-api            # or istio
        namespace: shop
        kubeconfig: ~/.kube/config     # default: in-cluster service account
        gateway: edge                  # Gateway API parent (default: the legacy Service, a mesh route)
        prometheus: http://prometheus.monitoring:9090   # where the mesh's request metrics are
        owner: shop-portal             # objects are named OWNER-... and labelled strangler.io/owner: OWNER;
                                       # those no longer rendered are deleted (default: strangler)

Parsed once into ``DataPlane`` (pure, like the rest of the table); ``planes`` applies it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from strangler_common.reader import Node

from strangler_proxy.grammar import is_dns_label, is_dns_subdomain, is_file_path, is_host

__all__ = ["DataPlane", "parse_data_plane"]

Kind = Literal["strangler", "nginx", "haproxy", "kubernetes"]


@dataclass(frozen=True, slots=True)
class DataPlane:
    kind: Kind = "strangler"
    config: str | None = None
    test: tuple[str, ...] = ()
    reload: tuple[str, ...] = ()
    listen: str = "8000"
    access_log: str | None = None  # nginx
    stats_socket: str | None = None  # haproxy
    target: Literal["gateway-api", "istio"] = "gateway-api"  # kubernetes
    namespace: str = "default"
    kubeconfig: str | None = None
    gateway: str | None = None
    prometheus: str | None = None
    owner: str = "strangler"
    line: int | None = None


def _file(node: Node, what: str) -> str:
    """A path written into the plane's configuration: refused if it could be syntax there."""
    text = node.string(what)
    if not is_file_path(text):
        node.fail(f"expected {what} without quotes, ;{{}}#$\\ or control characters, found {text!r}")
    return text


def _dns(node: Node, what: str, label: bool) -> str:
    """A Kubernetes name (it goes into API paths and object names): RFC 1123."""
    text = node.string(what)
    if not (is_dns_label(text) if label else is_dns_subdomain(text)):
        node.fail(f"expected {what}: lowercase letters, digits and '-'{'' if label else ' and .'}, starting and ending "
                  f"with a letter or digit, at most {63 if label else 253} characters; found {text!r}")
    return text


def _listen(node: Node) -> str:
    """``PORT`` or ``HOST:PORT`` (``[IPv6]:PORT``), as the plane's listen directive takes it."""
    text = node.scalar_text()
    host, _, port = text.rpartition(":")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536 and (not host or is_host(host))):
        node.fail(f"expected PORT or HOST:PORT, found {text!r}")
    return text


def _command(node: Node) -> tuple[str, ...]:
    text = node.string("a command line")
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        node.fail(f"expected a command line: {exc}")
    if not argv:
        node.expected("a command line")
    return argv


def parse_data_plane(node: Node) -> DataPlane:
    if isinstance(node.value, str) and node.value == "strangler":
        return DataPlane(line=node.line)
    top = node.mapping({"nginx", "haproxy", "kubernetes"}, "'strangler' or a mapping with one of nginx, haproxy, kubernetes")
    if len(top) != 1:
        node.fail("expected exactly one of nginx, haproxy, kubernetes")
    ((kind, spec),) = top.items()
    if kind == "kubernetes":
        f = spec.mapping({"target", "namespace", "kubeconfig", "gateway", "prometheus", "owner"})
        return DataPlane(
            "kubernetes",
            target=f["target"].choice(("gateway-api", "istio")) if "target" in f else "gateway-api",  # type: ignore[arg-type]
            namespace=_dns(f["namespace"], "a namespace name", True) if "namespace" in f else "default",
            kubeconfig=f["kubeconfig"].string() if "kubeconfig" in f else None,
            gateway=_dns(f["gateway"], "a Gateway name", False) if "gateway" in f else None,
            owner=_dns(f["owner"], "an owner name (a DNS label)", True) if "owner" in f else "strangler",
            prometheus=f["prometheus"].string("an http(s) URL") if "prometheus" in f else None,
            line=spec.line,
        )
    extra = "access_log" if kind == "nginx" else "stats_socket"
    f = spec.mapping({"config", "test", "reload", "listen", extra})
    if "config" not in f:
        spec.fail("expected 'config': the file strangler writes the exported configuration to")
    config = _file(f["config"], "a file path")
    if kind == "haproxy" and "reload" not in f:
        spec.fail("expected 'reload': the command that makes HAProxy read its configuration again "
                  "(e.g. 'systemctl reload haproxy')")
    default_test = ("nginx", "-t") if kind == "nginx" else ("haproxy", "-c", "-f", config)
    return DataPlane(
        kind,  # type: ignore[arg-type]
        config=config,
        test=_command(f["test"]) if "test" in f else default_test,
        reload=_command(f["reload"]) if "reload" in f else ("nginx", "-s", "reload"),
        listen=_listen(f["listen"]) if "listen" in f else "8000",
        access_log=_file(f["access_log"], "a file path") if "access_log" in f else None,
        stats_socket=_file(f["stats_socket"], "a socket path") if "stats_socket" in f else None,
        line=spec.line,
    )
