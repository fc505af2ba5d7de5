"""The real client address behind trusted proxies (nginx's ``real_ip_recursive``, Envoy's
trusted hops).

A load balancer in front of the proxy makes every peer address its own. When the peer is
in ``trusted_proxies``, ``X-Forwarded-For`` is read from the right: each address a trusted
hop added is skipped, and the first untrusted one is the client. A client cannot choose its
address (and so its cohort) by sending the header itself: the entries it writes are to the
left of those the trusted hops append, and an untrusted peer's header is never read.

>>> nets = parse_networks(["10.0.0.0/8"])
>>> real_client("10.0.0.5", [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7, 10.1.2.3")], nets)
'203.0.113.7'
>>> real_client("198.51.100.1", [(b"x-forwarded-for", b"6.6.6.6")], nets)  # untrusted peer: its own address
'198.51.100.1'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network

__all__ = ["Network", "parse_networks", "real_client"]


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ``ValueError`` names a bad one."""
    return tuple(ip_network(c.strip(), strict=False) for c in cidrs)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port, as some balancers write it
        text = text[1:text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def _trusted(addr: IPv4Address | IPv6Address, nets: Sequence[Network]) -> bool:
    return any(addr in net for net in nets)


def real_client(peer: str | None, headers: Iterable[tuple[bytes, bytes]], trusted: Sequence[Network]) -> str | None:
    """The client's address: ``peer`` unless it is a trusted proxy; then the rightmost
    ``X-Forwarded-For`` entry no trusted proxy wrote. An entry that is not an address ends
    the walk at the last trusted hop (nothing to its left can be believed)."""
    if not trusted or peer is None:
        return peer
    addr = _address(peer)
    if addr is None or not _trusted(addr, trusted):
        return peer
    hops: list[str] = []
    for name, value in headers:
        if name == b"x-forwarded-for":
            hops += value.decode("latin-1").split(",")
    client = str(addr)
    for hop in reversed(hops):
        found = _address(hop)
        if found is None:
            break
        client = str(found)
        if not _trusted(found, trusted):
            break
    return client
