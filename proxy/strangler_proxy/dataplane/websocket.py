"""WebSocket upgrades, proxied message by message to the side the route decides.

An upgrade is a request like any other: the same ``Flight`` (cohort id included, so a
user's socket goes where its pages go), the same forwarded headers, the same attempt
decision and breaker feedback, the same record (metrics, release window, legacy activity).
The upstream side uses the ``websockets`` client (installed with uvicorn[standard]); no
User-Agent or other header the client did not send is added.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from strangler_proxy.dataplane.asgi import Receive, Send
from strangler_proxy.dataplane.flight import Flight
from strangler_proxy.dataplane.forwarding import HOP_BY_HOP_REQUEST, forwarded_headers
from strangler_proxy.dispatch import Next, Outcome, next_attempt
from strangler_proxy.model import Upstream

# what the WebSocket client library writes itself (Host: the upstream's authority, with the
# client's in X-Forwarded-Host), and hop-by-hop headers as for plain HTTP
HANDSHAKE = HOP_BY_HOP_REQUEST | {b"host", b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
                                  b"sec-websocket-protocol"}


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


async def proxy_websocket(f: Flight, receive: Receive, send: Send, apply: Callable[[Flight, Next, Outcome], Next],
                          record: Callable[[Flight], None]) -> None:
    """Open the upgrade on the flight's planned side (legacy when the new service refuses
    the connection or answers 5xx, as for HTTP: ``next_attempt`` decides, ``apply`` feeds
    the breaker), ``record`` the handshake like a request (``f.status``: 101, or the gateway
    error the client's close stands for; its time is the handshake's, not the socket's life),
    then relay messages both ways until one closes."""
    snap, p = f.snap, f.plan
    if p.refused:
        f.status = 400
        await send({"type": "websocket.close", "code": 1008})
        record(f)
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        f.status = 499
        record(f)
        return
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in forwarded_headers(f.headers, f.peer, f.scheme, HANDSHAKE)]
    path = f.target.decode("latin-1")
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
                subprotocols=f.scope.get("subprotocols") or None, compression=None, max_size=None,
                open_timeout=up.connect_timeout, origin=None, **tls,
            )
            outcome = Outcome(101)
        except InvalidStatus as exc:  # the upstream answered, but not with an upgrade
            outcome = Outcome(exc.response.status_code)
        except (OSError, asyncio.TimeoutError) as exc:  # never upgraded: legacy may take it
            outcome = Outcome(0, "tls" if isinstance(exc, ssl.SSLError) else "refused", False)
        nxt = apply(f, next_attempt(snap.routes, p, f.head, outcome, True), outcome) if p.side == "service" else None
        if nxt is None or nxt.action in ("respond", "fail"):
            f.status = outcome.status if outcome.status >= 400 else (101 if ws is not None else 502)
            break
        p = f.plan = nxt.plan
    if ws is None:
        f.status = f.status if f.status >= 400 else 502
        await send({"type": "websocket.close", "code": 1011})
        record(f)
        return
    cookie = f.cohort_cookie()
    await send({"type": "websocket.accept", "subprotocol": ws.subprotocol,
                "headers": [(b"set-cookie", cookie)] if cookie is not None else []})
    f.status = 101
    f.watch.stop()
    record(f)
    await relay(ws, receive, send)


async def relay(ws: Any, receive: Receive, send: Send) -> None:
    """Messages both ways until one side closes."""

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
