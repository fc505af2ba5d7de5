from __future__ import annotations

import pytest

from strangler_proxy.clientip import parse_networks, real_client

NETS = parse_networks(["10.0.0.0/8", "fd00::/8", "127.0.0.1"])


def xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", v.encode()) for v in values]


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    ("10.0.0.1", xff("203.0.113.7"), "203.0.113.7"),
    ("10.0.0.1", xff("1.1.1.1, 203.0.113.7, 10.2.2.2"), "203.0.113.7"),  # trusted hops skipped from the right
    ("10.0.0.1", xff("1.1.1.1", "203.0.113.7"), "203.0.113.7"),  # several header lines are one list
    ("10.0.0.1", xff("10.3.3.3, 10.2.2.2"), "10.3.3.3"),  # all trusted: the leftmost
    ("10.0.0.1", xff("1.1.1.1, garbage, 10.2.2.2"), "10.2.2.2"),  # not an address: stop at the last trusted hop
    ("10.0.0.1", xff("203.0.113.7:5123"), "203.0.113.7"),  # v4 with a port
    ("fd00::1", xff("[2001:db8::7]:443"), "2001:db8::7"),  # v6 with a port
    ("10.0.0.1", [], "10.0.0.1"),  # no header: the peer itself
    ("198.51.100.1", xff("203.0.113.7"), "198.51.100.1"),  # untrusted peer: its header is not read
    (None, xff("203.0.113.7"), None),
])
def test_real_client(peer: str | None, headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    assert real_client(peer, headers, NETS) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert real_client("10.0.0.1", xff("203.0.113.7"), ()) == "10.0.0.1"
