"""The proxy never sends traffic to itself: no upstream may be its own listener or admin API.

An upstream pointing at the admin listener would let any client reach the admin API
through the data port (with the token check as the only wall), and one pointing at the
proxy's own listener loops every request until the connection cap is hit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from strangler_common import Location

from strangler_proxy.model import RouteTable
from strangler_proxy.errors import RouteConfigError

__all__ = ["check_not_self", "is_loopback"]  # public (the CLI's and loadtests' imports are checked against it)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (IPv6 in brackets too)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def same_endpoint(upstream: tuple[str, int], listener: tuple[str, int]) -> bool:
    """Whether a connection to ``upstream`` would reach a socket bound to ``listener``.

    >>> same_endpoint(("localhost", 9901), ("127.0.0.1", 9901)), same_endpoint(("10.1.1.1", 80), ("0.0.0.0", 80))
    (True, True)
    >>> same_endpoint(("127.0.0.1", 9902), ("127.0.0.1", 9901))
    False
    """
    (uh, up), (lh, lp) = upstream, listener
    if up != lp:
        return False
    if _wildcard(lh) or uh.lower() == lh.lower():
        return True
    return is_loopback(uh) and is_loopback(lh)


def check_not_self(table: RouteTable, listeners: Iterable[tuple[str, tuple[str, int]]]) -> None:
    """Raise ``RouteConfigError`` naming the upstream that points at one of ``listeners``
    (``(what, (host, port))``, e.g. ``("the admin API", ("127.0.0.1", 9901))``)."""
    for name, up in table.upstreams.items():
        for what, address in listeners:
            if same_endpoint((up.host, up.port), address):
                raise RouteConfigError(Location(table.source, up.line, f"upstreams.{name}"),
                                       f"{up.authority} is this proxy's own {what} ({address[0]}:{address[1]}): "
                                       "an upstream must be another server")
