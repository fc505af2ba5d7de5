"""A minimal HTTP/1.1 relay for the benchmark only: the floor of what a Python proxy on
asyncio + httptools can do on this machine, to measure strangler's own overhead against.

Parse the head, pick an upstream by the longest path prefix of the route file's modules
(canary and released modules go to their service; a canary splits by a random draw),
forward on a pooled keep-alive connection, relay the response. Nothing else: no limits,
no timeouts, no hop-by-hop handling, no fallback, no chunked bodies. Never deploy it.

    python loadtests/relay.py ROUTES PORT       (a command for ../shared/bench/peers.sh -p)
"""

from __future__ import annotations

import asyncio
import random
import socket
import sys
from urllib.parse import urlsplit

import httptools
import uvloop
import yaml


class Upstream(asyncio.Protocol):
    """One pooled connection; ``request`` writes and waits for the whole response."""

    def __init__(self, pool: list[Upstream]) -> None:
        self.pool, self.transport, self.parser = pool, None, httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[bytes] | None = None
        self.out: list[bytes] = []

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.out.append(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        data, self.out = b"".join(self.out), []
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)  # nginx closes a keep-alive connection after keepalive_requests
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("upstream closed"))

    async def request(self, data: bytes) -> bytes:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)  # type: ignore[union-attr]
        return await self.waiter


class Client(asyncio.Protocol):
    """One client connection: requests answered in order."""

    def __init__(self, relay: Relay) -> None:
        self.relay, self.parser = relay, httptools.HttpRequestParser(self)
        self.head: list[bytes] = []
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head += [name, b": ", value, b"\r\n"]

    def on_body(self, body: bytes) -> None:
        self.head.append(body)  # benchmark requests carry no body; kept whole if one does

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        request = b"".join([method, b" ", self.url, b" HTTP/1.1\r\n", *self.head, b"\r\n"])
        self.head = []
        self.queue.put_nowait((httptools.parse_url(self.url).path.decode(), request))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    async def serve(self) -> None:
        while True:
            path, request = await self.queue.get()
            self.transport.write(await self.relay.forward(path, request))


class Relay:
    def __init__(self, routes: dict) -> None:  # type: ignore[type-arg]
        self.addresses = {name: urlsplit(url if isinstance(url, str) else url["url"]) for name, url in routes["upstreams"].items()}
        self.prefixes: list[tuple[str, str, float]] = []  # (prefix, service, weight): longest first
        for m in (routes.get("modules") or {}).values():
            weight = {"canary": float(m.get("weight", 0)), "released": 100.0}.get(m.get("stage", "legacy"), 0.0)
            prefixes = (m.get("match") or {}).get("path_prefix", [])
            for p in [prefixes] if isinstance(prefixes, str) else prefixes:
                self.prefixes.append((p.rstrip("/"), m["service"], weight))
        self.prefixes.sort(key=lambda t: -len(t[0]))
        self.pools: dict[str, list[Upstream]] = {name: [] for name in self.addresses}

    def pick(self, path: str) -> str:
        for prefix, service, weight in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return service if random.random() * 100 < weight else "legacy"
        return "legacy"

    async def forward(self, path: str, request: bytes) -> bytes:
        name = self.pick(path)
        pool = self.pools[name]
        conn = pool.pop() if pool else None
        if conn is None:
            address = self.addresses[name]
            _, conn = await asyncio.get_running_loop().create_connection(lambda: Upstream(pool), address.hostname, address.port)
        try:
            response = await conn.request(request)
        except ConnectionError:
            return b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n"
        pool.append(conn)
        return response


async def main(routes_path: str, port: int) -> None:
    with open(routes_path) as f:
        relay = Relay(yaml.safe_load(f))
    server = await asyncio.get_running_loop().create_server(lambda: Client(relay), "127.0.0.1", port, backlog=2048)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
