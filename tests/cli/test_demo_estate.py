"""The demo estate (``strangler demo`` and ``strangler loadtest`` start it): its ports and its token."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from strangler_cli.demo.estate import ROLES, DemoEstate, free_ports
from strangler_proxy import ProxyError
from tests.proxy.upstreams import free_port


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def test_free_ports_are_distinct_and_avoid_the_taken_ones() -> None:
    first = free_ports(50)
    again = free_ports(200, taken=first)
    assert len(set(first)) == 50 and len(set(again)) == 200
    assert not set(first) & set(again)


def test_each_process_of_the_estate_has_its_own_port_and_the_services_inherit_theirs(tmp_path: Path) -> None:
    # a CI run failed when the proxy was handed the port a service had been handed too (the
    # kernel gives a port bound and closed a moment ago out again): the services now serve a
    # socket the estate bound for them, and the proxy's two ports are picked apart from them
    estate = DemoEstate(tmp_path).start()
    try:
        ports = [estate.proxy_port, estate.admin_port, *(estate.ports[role] for role in ROLES)]
        assert len(set(ports)) == 5, ports
        for role in ROLES:
            argv = Path(f"/proc/{estate.procs[role].pid}/cmdline").read_bytes().split(b"\0")
            assert argv[-2].startswith(b"fd:"), argv
            assert f"127.0.0.1:{estate.ports[role]}" in estate.routes.read_text()
        r = httpx.get(f"{estate.url}/kb/1", timeout=10)
        assert r.status_code == 200 and r.headers["x-served-by"] == "legacy"
    finally:
        estate.stop()


def test_a_port_asked_for_that_is_taken_is_refused_not_replaced(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ProxyError, match=f"port {port} is in use"):
            DemoEstate(tmp_path, proxy_port=port).start()
        with pytest.raises(ProxyError, match=f"127.0.0.1:{port}: Address already in use"):
            DemoEstate(tmp_path, admin_port=port).start()  # a port given is never swapped for another


def test_a_token_starting_with_a_dash_starts_the_proxy(tmp_path: Path) -> None:
    estate = DemoEstate(tmp_path, proxy_port=free_port())
    estate.token = "-starts-with-a-dash"  # token_urlsafe makes such a token once in 64 runs
    estate.start()
    try:
        r = httpx.get(f"{estate.admin}/modules", headers={"authorization": f"Bearer {estate.token}"}, timeout=10)
        assert r.status_code == 200
    finally:
        estate.stop()
