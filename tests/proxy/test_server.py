"""Serving: workers share one port evenly; WebSockets are proxied; bad tables refuse to start."""

from __future__ import annotations

import pytest

import asyncio
import collections
import json

import httpx
from pathlib import Path

from websockets.asyncio.client import connect

from tests.cli.helpers import strangler
from tests.proxy.harness import routes_file
from tests.proxy.upstreams import Upstream, free_port


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


async def _hammer(port: int, connections: int, per_connection: int) -> None:
    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(per_connection):
            writer.write(b"GET /echo/x HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))


def test_two_workers_share_the_port_evenly(tmp_path: Path, legacy: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url}), workers=2, access_log=True)
    asyncio.run(_hammer(p.port, 256, 5))  # 256 connections: a 65 % share would be a 4.7-sigma event
    p.stop()
    pids = collections.Counter(json.loads(line)["pid"] for line in p.out.read_text().splitlines() if '"/echo/x"' in line)
    assert len(pids) == 2, pids
    total = sum(pids.values())
    assert total == 256 * 5
    for count in pids.values():
        assert 0.35 <= count / total <= 0.65, pids


def test_websocket_is_proxied_to_the_decided_side(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    modules = "  chat:\n    match: {path: /ws, headers: {x-beta: '1'}}\n    service: service\n    stage: released\n"
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, modules))

    async def talk(headers: dict[str, str]) -> list[str | bytes]:
        async with connect(f"ws://127.0.0.1:{p.port}/ws", additional_headers=headers, subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "chat.v1"
            await ws.send("hello")
            await ws.send(b"\x00\x01")
            return [await ws.recv(), await ws.recv()]

    assert asyncio.run(talk({"x-beta": "1"})) == ["service:hello", b"\x00\x01"]
    assert asyncio.run(talk({})) == ["legacy:hello", b"\x00\x01"]


def test_bad_table_refuses_to_start(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("upstreams:\n  legacy: http://127.0.0.1:1\nmodules:\n  m:\n    match: {path: /x}\n    service: ghost\n    stage: released\n")
    r = strangler("proxy", "--routes", str(bad), "--listen", f"127.0.0.1:{free_port()}", "--admin", "off", timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{bad}:6: modules.m.service: unknown upstream 'ghost'" in r.stderr


def test_routes_check_and_explain(tmp_path: Path) -> None:
    root = Path(__file__).parent.parent.parent / "routes" / "example.yaml"
    r = strangler("routes", "check", str(root))
    assert r.returncode == 0 and "1 module (1 canary)" in r.stdout
    signed = tmp_path / "signed.yaml"
    signed.write_text(root.read_text() + "pin: {secret_env: TEST_PIN_SECRET}\n")
    env = {"TEST_PIN_SECRET": "a-long-shared-secret-for-testers"}
    r = strangler("routes", "pin", str(signed), "cases=new", env=env)
    assert r.returncode == 0, r.stderr
    value = r.stdout.strip()
    r = strangler("routes", "explain", str(signed), "GET", "/api/cases/7", "-H", f"X-Strangler-Side: {value}", "--format", "json", env=env)
    doc = json.loads(r.stdout)
    assert doc["module"] == "cases" and doc["side"] == "new" and doc["url"] == "http://127.0.0.1:9001"
    assert "pinned" in doc["why"]
    r = strangler("routes", "explain", str(root), "GET", "/api/cases/7", "-H", "X-Strangler-Side: new", "--format", "json")
    assert "pinned" not in json.loads(r.stdout)["why"]  # no pin section: pins are off
    r = strangler("routes", "pin", str(root), "new")
    assert r.returncode == 1 and "pins are off" in r.stderr
    r = strangler("routes", "explain", str(root), "GET", "http://portal.corp/kb")
    assert "legacy receives it" in r.stdout
    # the path is read as the proxy reads it: percent-decoded before matching (issue 21, item 6)
    r = strangler("routes", "explain", str(root), "GET", "/api/%63ases/7", "--format", "json")
    assert json.loads(r.stdout)["module"] == "cases", r.stdout + r.stderr
    r = strangler("routes", "explain", str(root), "GET", "/api/cases%2e/7")
    assert r.returncode == 1 and "refused" in r.stderr and "Traceback" not in r.stderr
    # what the proxy would refuse, explain refuses too (issue 26, item 8)
    r = strangler("routes", "explain", str(root), "get", "/api/cases/7")
    assert r.returncode == 1 and "did you mean GET?" in r.stderr
    r = strangler("routes", "explain", str(root), "BREW", "/api/cases/7")
    assert r.returncode == 1 and "not a method the proxy reads" in r.stderr
    r = strangler("routes", "explain", str(root), "GET", "api/cases/7")
    assert r.returncode == 1 and "expected a path" in r.stderr


def test_routes_explain_reads_the_live_state(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """After a PATCH to canary 100, explain says what the proxy does, and what decided it;
    --offline says what the file alone would do (issue 26, item 8)."""
    module = "  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: legacy\n"
    routes = routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, module)
    p = start_proxy(routes)
    assert p.admin_call("PATCH", "/modules/cases", json={"stage": "canary", "weight": 100}).status_code == 200
    assert httpx.get(f"{p.url}/echo/cases/1").json()["name"] == "service"
    r = strangler("routes", "explain", str(routes), "GET", "/echo/cases/1", "--admin", f"127.0.0.1:{p.admin_port}",
                  "--token", "test-token", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["side"] == "new" and doc["weight"] == 100 and doc["breaker"] == "closed", r.stdout + r.stderr
    p.stop()
    r = strangler("routes", "explain", str(routes), "GET", "/echo/cases/1", "--state", p.state)
    assert "side:     new" in r.stdout and "setting:  canary 100 %, from 'set' by admin at " in r.stdout, r.stdout
    r = strangler("routes", "explain", str(routes), "GET", "/echo/cases/1", "--offline")
    assert "side:     legacy" in r.stdout and "from the route file" in r.stdout
