"""The demo estate's admin token reaches the proxy whatever its first character."""

from __future__ import annotations

import pytest

from pathlib import Path

import httpx

from strangler_cli.demo.estate import DemoEstate
from tests.proxy.upstreams import free_port


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def test_a_token_starting_with_a_dash_starts_the_proxy(tmp_path: Path) -> None:
    estate = DemoEstate(tmp_path, proxy_port=free_port())
    estate.token = "-starts-with-a-dash"  # token_urlsafe makes such a token once in 64 runs
    estate.start()
    try:
        r = httpx.get(f"{estate.admin}/modules", headers={"authorization": f"Bearer {estate.token}"}, timeout=10)
        assert r.status_code == 200
    finally:
        estate.stop()
