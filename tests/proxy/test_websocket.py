"""WebSocket upgrades are requests like any other: the same side as the user's pages, the
same forwarded headers, the same record (metrics, legacy activity for retiring)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.proxy.harness import ProxyProcess, routes_file
from tests.proxy.upstreams import Upstream

MODULE = ("  cases:\n    match: {path_prefix: [/echo/cases, /ws]}\n    service: service\n    stage: canary\n    weight: 50\n"
          "    retire_window: 3600\n")
COHORT = "cohort: {key: [cookie:JSESSIONID], cookie: {name: strangler_cohort}}\n"


def test_each_users_upgrade_goes_to_the_side_of_its_pages(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                          start_proxy: Any) -> None:
    p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, MODULE, COHORT))

    async def user(i: int) -> tuple[str, str]:
        async with httpx.AsyncClient(timeout=10) as client:  # one browser per user: its own cookie jar
            return await visit(client, i)

    async def visit(client: httpx.AsyncClient, i: int) -> tuple[str, str]:
        first = await client.get(f"{p.url}/echo/cases/{i}")  # the first visit: the proxy's cohort cookie is set
        cookie = first.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        page = await client.get(f"{p.url}/echo/cases/{i}")  # the cookie comes back from the jar
        async with connect(f"ws://127.0.0.1:{p.port}/ws/{i}", additional_headers={"cookie": f"strangler_cohort={cookie}"}) as ws:
            await ws.send("hi")
            socket_side = str(await ws.recv()).split(":")[0]
        return page.json()["name"], socket_side

    async def everyone() -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for batch in range(0, 200, 20):
            out += await asyncio.gather(*(user(i) for i in range(batch, batch + 20)))
        return out

    sides = asyncio.run(everyone())
    assert all(page == sock for page, sock in sides), [s for s in sides if s[0] != s[1]][:5]
    assert 60 < sum(page == "service" for page, _ in sides) < 140  # both sides in use at 50 %
    # the upgrade is recorded like a request: per side, with its status
    assert p.metric("strangler_requests_total", module="cases", side="legacy", code="1xx") > 0
    assert p.metric("strangler_requests_total", module="cases", side="service", code="1xx") > 0


def test_websocket_traffic_on_legacy_stops_a_retire(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                   start_proxy: Any) -> None:
    module = MODULE.replace("stage: canary\n    weight: 50", "stage: legacy")
    p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module))

    async def talk() -> str:
        async with connect(f"ws://127.0.0.1:{p.port}/ws/1") as ws:
            await ws.send("hi")
            return str(await ws.recv())

    assert asyncio.run(talk()) == "legacy:hi"
    seen = [r for r in legacy.requests if r["path"] == "/ws/1"] if legacy.requests else []
    assert not seen  # the upgrade is no HTTP request on the upstream's side
    import time

    time.sleep(1.5)  # the activity is flushed by the control loop
    r = p.admin_call("PATCH", "/modules/cases", json={"stage": "retired"})
    assert r.status_code == 409 and "legacy served module 'cases'" in json.loads(r.text)["error"], r.text


def test_the_upgrade_carries_the_forwarded_headers_and_never_the_clients_own(tmp_path: Path, legacy: Upstream,
                                                                            start_proxy: Any) -> None:
    p: ProxyProcess = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}))

    async def talk() -> None:
        async with connect(f"ws://127.0.0.1:{p.port}/ws/h", additional_headers={
                "x-forwarded-host": "evil", "x-forwarded-proto": "https", "via": "1.0 edge", "x-strangler-shadow": "1",
                "connection": "Upgrade, X-Drop", "x-drop": "gone"}) as ws:
            await ws.send("hi")
            await ws.recv()

    asyncio.run(talk())
    headers = legacy.websocket_headers[-1]
    assert headers.get("x-forwarded-host") == f"127.0.0.1:{p.port}" and headers.get("x-forwarded-proto") == "http"
    assert headers.get("via") == "1.0 edge, 1.1 strangler" and headers.get("x-forwarded-for") == "127.0.0.1"
    assert "x-strangler-shadow" not in headers and "x-drop" not in headers
