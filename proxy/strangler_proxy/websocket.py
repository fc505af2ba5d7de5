"""WebSocket upgrades, proxied message by message to the side the route decides.

The upstream side uses the ``websockets`` client (installed with uvicorn[standard]); no
User-Agent or other header the client did not send is added.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from strangler_proxy.config import Upstream
from strangler_proxy.decision import REFUSED_PATH
from strangler_proxy.forwarding import HOP_BY_HOP

if TYPE_CHECKING:
    from strangler_proxy.app import ProxyApp, Receive, Scope, Send

HANDSHAKE = HOP_BY_HOP | {b"host", b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
                          b"sec-websocket-protocol", b"content-length"}


def upstream_url(up: Upstream, target: str) -> str | None:
    """``ws://`` URL for a configured upstream and a request target, or ``None`` when the
    target is not a plain path (the listener refuses those; this is the second lock)."""
    if not target.startswith("/") or target.startswith("//") or any(c in target for c in "#\\ \t\r\n"):
        return None
    host = f"[{up.host}]" if ":" in up.host else up.host
    path, _, query = target.partition("?")
    url = urlunsplit(("ws", f"{host}:{up.port}", path, query, ""))
    parts = urlsplit(url)
    if parts.hostname != up.host.lower() or parts.port != up.port or parts.username is not None:
        return None
    return url


async def proxy_websocket(app: ProxyApp, scope: Scope, receive: Receive, send: Send) -> None:
    snap = app.runtime.snapshot
    scope = {**scope, "method": "GET"}
    module, decision, _ = app.choose(snap, scope)
    if decision is REFUSED_PATH:
        await send({"type": "websocket.close", "code": 1008})
        return
    if module is None:
        upstream = "legacy"
    else:
        upstream = module.service if decision.side == "service" else module.legacy
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"] if n not in HANDSHAKE]
    client = scope.get("client")
    if client:
        headers.append(("x-forwarded-for", client[0]))
    qs = scope.get("query_string") or b""
    path = scope["raw_path"].decode("latin-1") + ("?" + qs.decode("latin-1") if qs else "")
    candidates = [upstream]
    if module is not None and upstream == module.service and module.stage != "retired":
        candidates.append(module.legacy)  # a refused connection never saw the upgrade
    ws = None
    for name in candidates:
        up = snap.table.upstreams[name]
        url = upstream_url(up, path)
        if url is None:
            break
        try:
            ws = await connect(
                url, additional_headers=headers, user_agent_header=None,
                subprotocols=scope.get("subprotocols") or None, compression=None, max_size=None,
                open_timeout=up.connect_timeout, origin=None,
            )
            break
        except InvalidStatus:
            break
        except (OSError, asyncio.TimeoutError):
            continue
    if ws is None:
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept", "subprotocol": ws.subprotocol})

    async def client_to_upstream() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "websocket.receive":
                data: Any = msg.get("bytes") if msg.get("bytes") is not None else msg.get("text")
                await ws.send(data)
            else:
                await ws.close(msg.get("code", 1000))
                return

    async def upstream_to_client() -> None:
        try:
            async for data in ws:
                key = "bytes" if isinstance(data, bytes) else "text"
                await send({"type": "websocket.send", key: data})
        except ConnectionClosed:
            pass
        code = ws.close_code or 1000
        await send({"type": "websocket.close", "code": code})

    tasks = [asyncio.ensure_future(client_to_upstream()), asyncio.ensure_future(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
