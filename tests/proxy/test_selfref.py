"""The proxy never sends traffic to itself, whatever the spelling of its address."""

from __future__ import annotations

import pytest

from strangler_proxy.selfref import is_loopback, same_endpoint


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]",
                                  "::1", "[::1]", "localhost", "localhost.", "LOCALHOST", "app.localhost", "0.0.0.0", "[::]"])
def test_every_spelling_of_this_host_is_caught(host: str) -> None:
    assert same_endpoint((host, 9901), ("127.0.0.1", 9901)), host


@pytest.mark.parametrize("host", ["10.0.0.1", "legacy.corp", "127.0.0.1.nip.example", "[2001:db8::1]"])
def test_other_hosts_are_other_servers(host: str) -> None:
    assert not same_endpoint((host, 9901), ("127.0.0.1", 9901))
    assert not same_endpoint(("127.0.0.1", 9902), ("127.0.0.1", 9901))


def test_loopback() -> None:
    assert is_loopback("127.1") and is_loopback("localhost.") and not is_loopback("192.168.1.1")
