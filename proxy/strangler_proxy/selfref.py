"""The proxy never sends traffic to itself: no upstream may be its own listener or admin API.

An upstream pointing at the admin listener would let any client reach the admin API
through the data port (with the token check as the only wall), and one pointing at the
proxy's own listener loops every request until the connection cap is hit.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from strangler_common import Location

from strangler_proxy.model import RouteTable
from strangler_proxy.errors import RouteConfigError

__all__ = ["check_not_self", "is_loopback"]  # public (the CLI's and loadtests' imports are checked against it)


def address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a connection to ``host`` reaches when the host is numeric in any form the
    C library accepts (``127.1``, ``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``),
    IPv4-mapped IPv6 as IPv4; ``None`` for a name.

    >>> [str(address(h)) for h in ("127.1", "2130706433", "0177.0.0.1", "[::ffff:127.0.0.1]", "[::1]")]
    ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1', '::1']
    """
    bare = host.strip("[]")
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        try:  # inet_aton: the legacy IPv4 spellings getaddrinfo accepts too
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")  # RFC 6761: always loopback


def is_loopback(host: str) -> bool:
    """``localhost`` (``localhost.`` too) or a loopback address in any spelling.

    >>> is_loopback("localhost."), is_loopback("127.1"), is_loopback("[::ffff:127.0.0.1]"), is_loopback("10.0.0.1")
    (True, True, True, False)
    """
    if _local_name(host):
        return True
    ip = address(host)
    return ip is not None and ip.is_loopback


def _wildcard(host: str) -> bool:
    if host.strip("[]") == "":
        return True
    ip = address(host)
    return ip is not None and ip.is_unspecified


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
    if _wildcard(lh) or _wildcard(uh) or uh.lower().rstrip(".") == lh.lower().rstrip("."):
        return True  # a connection to 0.0.0.0 (or ::) reaches this host
    ua, la = address(uh), address(lh)
    if ua is not None and ua == la:
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
