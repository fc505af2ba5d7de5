"""WebSocket upgrades, proxied message by message to the side the route decides.

The upstream side uses the ``websockets`` client (installed with uvicorn[standard]); no
User-Agent or other header the client did not send is added.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from strangler_proxy.clientip import real_client
from strangler_proxy.dataplane.asgi import Receive, Scope, Send
from strangler_proxy.model import Upstream
from strangler_proxy.dispatch import RequestHead, after_failure, plan
from strangler_proxy.dataplane.forwarding import HOP_BY_HOP

if TYPE_CHECKING:
    from strangler_proxy.dataplane.runtime import Snapshot

HANDSHAKE = HOP_BY_HOP | {b"host", b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
                          b"sec-websocket-protocol", b"content-length"}


def upstream_url(up: Upstream, target: str) -> str | None:
    """``ws://`` (``wss://`` for https) URL for a configured upstream and a request target, or ``None`` when the
    target is not a plain path (the listener refuses those; this is the second lock)."""
    if not target.startswith("/") or target.startswith("//") or any(c in target for c in "#\\ \t\r\n"):
        return None
    host = f"[{up.host}]" if ":" in up.host else up.host
    path, _, query = target.partition("?")
    url = urlunsplit(("wss" if up.tls is not None else "ws", f"{host}:{up.port}", path, query, ""))
    parts = urlsplit(url)
    if parts.hostname != up.host.lower() or parts.port != up.port or parts.username is not None:
        return None
    return url


async def proxy_websocket(snap: Snapshot, draw: Callable[[], float], scope: Scope, receive: Receive, send: Send) -> None:
    """Open the upgrade on the planned side (legacy when the new service refuses the
    connection: it never saw the upgrade) and relay messages both ways until one closes."""
    headers_in = scope["headers"]
    host = next((v.decode("latin-1") for n, v in headers_in if n == b"host"), "")
    cookies = "; ".join(v.decode("latin-1") for n, v in headers_in if n == b"cookie") or None
    client = scope.get("client")
    peer = client[0] if client else None
    rh = RequestHead("GET", scope["path"], host, headers_in, cookies, real_client(peer, headers_in, snap.table.trusted_proxies))
    p = plan(snap.routes, rh, draw, snap.breakers)
    if p.refused:
        await send({"type": "websocket.close", "code": 1008})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers_in if n not in HANDSHAKE]
    if client:
        headers.append(("x-forwarded-for", client[0]))
    qs = scope.get("query_string") or b""
    path = scope["raw_path"].decode("latin-1") + ("?" + qs.decode("latin-1") if qs else "")
    ws = None
    while True:
        up = snap.table.upstreams[p.upstream]
        url = upstream_url(up, path)
        if url is None:
            break
        try:
            tls: dict[str, Any] = {} if up.tls is None else {"ssl": up.tls.context, "server_hostname": up.server_hostname}
            ws = await connect(
                url, additional_headers=headers, user_agent_header=None,
                subprotocols=scope.get("subprotocols") or None, compression=None, max_size=None,
                open_timeout=up.connect_timeout, origin=None, **tls,
            )
            break
        except InvalidStatus:
            break
        except (OSError, asyncio.TimeoutError) as exc:  # never upgraded: legacy may take it
            nxt = after_failure(snap.routes, p, rh, "tls" if isinstance(exc, ssl.SSLError) else "refused", True)
            if isinstance(nxt, str):
                break
            p = nxt
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
