"""Real upstream servers on 127.0.0.1 for the proxy's tests, some of them misbehaving.

Each ``Upstream`` runs uvicorn in a thread with an ASGI app whose paths behave:

    /echo/...            JSON: name, method, path, query, headers, body length and sha256
    /status/NNN          answers NNN
    /slow/SECONDS        answers after a delay
    /hang                never answers
    /close-mid-body      promises 100,000 bytes, sends 10, drops the connection
    /bytes/N             streams N bytes in 64 KiB chunks
    /redirect            302 to its own origin
    /gzip                a gzip body with Content-Encoding: gzip
    /shadow/same         the same JSON on every upstream
    /shadow/changed      "price" is 10 on "legacy", 12 elsewhere (a deterministic change)
    /shadow/random       a fresh "request_id" on every answer (noise)
    /ws                  WebSocket echo (prefixes each message with the upstream's name)
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import threading
import time
import uuid
from typing import Any

import uvicorn

from tests.servers import free_port

CHUNK = b"x" * 65536


class Upstream:
    def __init__(self, name: str, hang: bool = False, tls: dict[str, Any] | None = None) -> None:
        self.name = name
        self.tls = tls or {}  # uvicorn's ssl_* settings: an https (and wss) upstream
        self.hang = hang
        self.fail = False  # when set, /echo answers 500: a service going bad mid-release
        self.cut = False  # when set, /shadow/* promise a body and drop the connection mid-way
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        self.websocket_headers: list[dict[str, str]] = []  # each upgrade's headers, as the upstream got them
        self.in_flight = 0
        self.cancelled = 0
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self.server.server_state.connections) if self.server else 0

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                await send({"type": m["type"] + ".complete"})
                if m["type"] == "lifespan.shutdown":
                    return
        if scope["type"] == "websocket":
            self.websocket_headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
            await receive()
            await send({"type": "websocket.accept", "subprotocol": (scope.get("subprotocols") or [None])[0]})
            while True:
                m = await receive()
                if m["type"] == "websocket.disconnect":
                    return
                if m.get("text") is not None:
                    await send({"type": "websocket.send", "text": f"{self.name}:{m['text']}"})
                else:
                    await send({"type": "websocket.send", "bytes": m["bytes"]})
        path = scope["path"]
        digest = hashlib.sha256()
        size = 0
        self.in_flight += 1
        try:
            if path != "/hang":
                while True:
                    m = await receive()
                    if m["type"] == "http.disconnect":
                        return
                    chunk = m.get("body", b"")
                    size += len(chunk)
                    digest.update(chunk)
                    if not m.get("more_body"):
                        break
            record = {
                "name": self.name, "method": scope["method"], "path": path,
                "query": scope["query_string"].decode(), "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                "body_length": size, "body_sha256": digest.hexdigest(),
            }
            self.requests.append(record)
            await self.respond(path, record, receive, send)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    async def respond(self, path: str, record: dict[str, Any], receive: Any, send: Any) -> None:
        async def reply(status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + (headers or [])})
            await send({"type": "http.response.body", "body": body})

        if self.hang and path.startswith("/shadow"):
            while (await receive())["type"] != "http.disconnect":
                pass
            self.cancelled += 1
            return
        if self.cut and path.startswith("/shadow/"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b'{"id": 7', "more_body": True})
            raise RuntimeError("dropping the connection mid-body on purpose")
        if path == "/shadow/same":
            await reply(200, json.dumps({"id": 7, "items": [1, 2, 3], "title": "case"}).encode())
        elif path == "/shadow/changed":
            await reply(200, json.dumps({"id": 7, "price": 10 if self.name == "legacy" else 12, "title": "case"}).encode())
        elif path == "/shadow/random":
            await reply(200, json.dumps({"id": 7, "request_id": uuid.uuid4().hex, "title": "case"}).encode())
        elif path.startswith("/status/"):
            await reply(int(path.split("/")[2]), json.dumps({"name": self.name, "status": path}).encode())
        elif path.startswith("/slow/"):
            await asyncio.sleep(float(path.split("/")[2]))
            await reply(200, json.dumps({"name": self.name}).encode())
        elif path == "/hang":
            while True:
                m = await receive()
                if m["type"] == "http.disconnect":
                    self.cancelled += 1
                    return
        elif path == "/close-mid-body":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]})
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
            raise RuntimeError("dropping the connection mid-body on purpose")
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(n).encode())]})
            while n > 0:
                piece = CHUNK if n >= len(CHUNK) else CHUNK[:n]
                n -= len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": n > 0})
        elif path == "/redirect":
            await reply(302, b"", [(b"location", f"{self.url}/target?x=1".encode())])
        elif path == "/gzip":
            body = gzip.compress(json.dumps({"name": self.name}).encode())
            await reply(200, body, [(b"content-encoding", b"gzip")])
        elif self.fail:
            await reply(500, json.dumps({"name": self.name, "error": "failing on purpose"}).encode())
        else:
            await reply(200, json.dumps(record).encode(), [(b"x-upstream", self.name.encode())])

    def start(self) -> Upstream:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="critical",
                                lifespan="on", ws="websockets-sansio", access_log=False,
                                interface="asgi3", proxy_headers=False, **self.tls)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"upstream {self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
