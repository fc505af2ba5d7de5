"""An in-memory ``Transport``: scripted answers, no socket (as httpx's ``MockTransport``).

The data plane's attempt loop runs against it in fast tests: each ``send`` takes the next
entry of the upstream's script, an answer (``Answer``) or an ``UpstreamError`` to raise,
and records what was sent, so a test asserts every fallback path without a server.

>>> import asyncio
>>> from strangler_proxy.model import Upstream
>>> t = FakeTransport(Upstream("svc", "http", "127.0.0.1", 9000), [Answer(503, b"down")])
>>> class NoBody:
...     kept, held, complete = [], [], True
...     async def next(self): return None
>>> reply = asyncio.run(t.send(b"GET / HTTP/1.1\\r\\n\\r\\n", NoBody(), False, None, 1.0))
>>> reply.status, reply.take_body(), t.sent[0].head[:5]
(503, b'down', b'GET /')
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from strangler_proxy.errors import UpstreamError
from strangler_proxy.model import Upstream
from strangler_proxy.upstream import Source, Watch

__all__ = ["Answer", "FakeTransport", "Sent", "scripted"]


@dataclass(frozen=True)
class Answer:
    """A response to give: status, body (whole), headers."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass
class Sent:
    """One request as the fake upstream received it."""

    head: bytes
    body: bytes


@dataclass
class FakeReply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    transport: FakeTransport
    done: bool = True
    released: bool = field(default=False)

    def take_body(self) -> bytes:
        body, self.body = self.body, b""
        return body

    async def next_chunk(self) -> bytes | None:
        return self.take_body() or None

    def release(self) -> None:
        self.released = True
        self.transport.released += 1

    def discard(self) -> None:
        self.transport.discarded += 1

    def abort(self) -> None:
        self.transport.discarded += 1


class FakeTransport:
    """One upstream's script; ``sent``, ``released`` and ``discarded`` say what happened."""

    def __init__(self, upstream: Upstream, script: Sequence[Answer | UpstreamError] = ()) -> None:
        self.upstream = upstream
        self.max_head = 64 * 1024
        self.script = list(script)
        self.sent: list[Sent] = []
        self.released = 0
        self.discarded = 0

    async def send(self, head: bytes, body: Source, chunked: bool, length: int | None, timeout: float,
                   on_connection: Watch | None = None) -> FakeReply:
        data = b""
        if body.kept or body.held or not body.complete:
            while (chunk := await body.next()) is not None:
                data += chunk
        self.sent.append(Sent(head, data))
        step = self.script.pop(0) if self.script else Answer()
        await asyncio.sleep(0)
        if isinstance(step, UpstreamError):
            raise step
        reply = FakeReply(step.status, list(step.headers) + [(b"content-length", b"%d" % len(step.body))], step.body, self)
        if on_connection is not None:
            on_connection.conn = reply
        return reply

    def close(self) -> None:
        pass


def scripted(scripts: dict[str, Sequence[Answer | UpstreamError]]) -> tuple[dict[str, FakeTransport],
                                                                          Callable[[Upstream, object], FakeTransport]]:
    """Fake transports by upstream name, and the factory a ``Runtime`` takes to use them."""
    made: dict[str, FakeTransport] = {}

    def factory(upstream: Upstream, loop: object) -> FakeTransport:
        made[upstream.name] = FakeTransport(upstream, scripts.get(upstream.name, ()))
        return made[upstream.name]

    return made, factory
