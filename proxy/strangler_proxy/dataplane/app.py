"""The data plane: a pure ASGI app (no middleware stack) that routes each request.

Per request: take the current snapshot, read the head once into a ``Flight`` (with its
first plan from ``dispatch.plan``), send it through the planned upstream's ``Transport``
streaming both ways, and after each attempt ask ``dispatch.next_attempt`` what follows (a
response, a resend on a fresh connection, a fallback to legacy, a gateway error): one loop
over attempts, for HTTP; WebSocket upgrades share the flight, the decision and the record.
The app holds only I/O; every rule lives in ``dispatch`` and ``decision``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping
from typing import Any, Callable, Protocol

from strangler_proxy.dataplane.asgi import Message, Receive, Scope, Send
from strangler_proxy.dataplane.body import Body, ClientGone
from strangler_proxy.dataplane.flight import Flight, Watch
from strangler_proxy.dataplane.forwarding import CHUNKED, forwarded_headers, framing, request_head, response_headers
from strangler_proxy.dataplane.health import Health
from strangler_proxy.dataplane.listener import CORK, WATCH, Cork
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.dataplane.websocket import proxy_websocket
from strangler_proxy.dispatch import Next, Outcome, next_attempt
from strangler_proxy.errors import UpstreamError, UpstreamTimeout
from strangler_proxy.model import Module, Upstream
from strangler_proxy.routing import canonical_path
from strangler_proxy.samples import Response, endpoint_template, mirror_head
from strangler_proxy.upstream import Reply


BAD_GATEWAY = "strangler: bad gateway: the upstream could not be reached or failed\n"
GATEWAY_TIMEOUT = "strangler: gateway timeout: the upstream did not answer in time\n"
SHUTTING_DOWN = "strangler: the proxy is shutting down; retry\n"
BAD_PATH = "strangler: this path is refused (a control character, a backslash, a segment ending in '.' or ' ', or '::$')\n"


class Mirror(Protocol):
    """Where shadow comparisons go (the helper process's client)."""

    def skip(self, module: str, endpoint: str, reason: str) -> None: ...

    def job(self, module: Module, upstreams: Mapping[str, Upstream], endpoint: str, method: str, path: str,
            head: bytes, body: bytes, legacy: Response) -> None: ...


class Windows(Protocol):
    """The release controller's evidence: each request of a module under release."""

    def observe(self, module: str, side: str, elapsed: float, failed: bool) -> None: ...


class TrafficCounts(Protocol):
    """Every module's traffic per side, for status and the dashboard (control/traffic.py)."""

    def observe(self, module: str, side: str, seconds: float, error: bool) -> None: ...

    def fallback(self, module: str) -> None: ...


class Activity(Protocol):
    """What legacy still serves (for retiring modules and finding unclaimed endpoints)."""

    def unclaimed_hit(self, endpoint: str) -> None: ...

    def legacy_served(self, module: str) -> None: ...


def _plain(status: int, text: str) -> tuple[Message, Message]:
    body = text.encode()
    return (
        {"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]},
        {"type": "http.response.body", "body": body},
    )


class _Capture:
    """Legacy's response, kept while it streams to the client, for the shadow comparison."""

    __slots__ = ("cap", "headers", "chunks", "size", "overflow")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflow = False

    def add(self, chunk: bytes) -> None:
        if not self.overflow:
            self.size += len(chunk)
            if self.size > self.cap:
                self.overflow = True
                self.chunks = []
            else:
                self.chunks.append(chunk)


class ProxyApp:
    """The ASGI app. Its collaborators come in through the constructor: the runtime (the
    current snapshot and its pools), and optionally the shadow mirror, the release windows,
    the legacy-activity recorder and an access-log writer."""

    def __init__(self, runtime: Runtime, *, mirror: Mirror | None = None, windows: Windows | None = None,
                 activity: Activity | None = None, access_log: Callable[[dict[str, Any]], None] | None = None,
                 draw: Callable[[], float] = random.random, clock: Callable[[], float] = time.time,
                 health: Health | None = None, traffic: TrafficCounts | None = None) -> None:
        self.runtime = runtime
        self.outages = runtime.outages  # an upstream's outage and each breaker, logged at start and end
        self.health = health
        self.metrics = runtime.metrics
        self.mirror = mirror
        self.windows = windows
        self.activity = activity
        self.traffic = traffic
        self.access_log = access_log
        self.draw = draw
        self.clock = clock
        self.pid = os.getpid()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            health = self.health
            if health is not None and health.prefix in scope["path"] and health.claims(canonical_path(scope["path"]) or ""):
                await health.answer(scope, send)  # the prefix is the proxy's own in every spelling: never forwarded
                return
            await self.http(scope, receive, send)
        elif kind == "websocket":
            if self.health is not None and self.health.claims(canonical_path(scope["path"]) or ""):
                await send({"type": "websocket.close", "code": 1008})  # the probe prefix is never forwarded
                return
            await proxy_websocket(Flight.begin(self.runtime.snapshot, scope, self.draw, self.clock), receive, send, self._apply,
                                  self.record)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.runtime.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # -- HTTP ------------------------------------------------------------------------------
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        f = Flight.begin(self.runtime.snapshot, scope, self.draw, self.clock)
        scope[WATCH] = f.watch
        if f.plan.refused:
            self.metrics.client_closed.labels("bad_path").inc()
            await self._reply(send, 400, BAD_PATH)
            return
        try:
            await self._forward(f, receive, send)
        except UpstreamError as exc:
            f.watch.stop()
            f.status = 504 if isinstance(exc, UpstreamTimeout) else 502
            f.error = str(exc)  # for the access log; the client is not told upstream addresses
            await self._reply(send, f.status, GATEWAY_TIMEOUT if f.status == 504 else BAD_GATEWAY)
        except ClientGone:
            f.status = 499
        except asyncio.CancelledError:
            # the listener cancels what is still running when the drain timeout ends at
            # shutdown: answer 503 if nothing was sent yet, and record it like any request
            # (the connection closes with the process; no traceback in the log)
            f.error = "cancelled: the drain timeout ended at shutdown"
            if not f.answering:
                f.status = 503
                try:
                    await self._reply(send, 503, SHUTTING_DOWN)
                except Exception:  # noqa: S110  # the client may be gone already: nothing more to tell it
                    pass
        finally:
            f.watch.stop()
        self.record(f)

    async def _forward(self, f: Flight, receive: Receive, send: Send) -> None:
        """The attempts, then the response."""
        snap = f.snap
        table = snap.table
        p = f.plan
        capture: _Capture | None = None
        if p.capture:
            capture = _Capture(p.module.shadow.max_response)  # type: ignore[union-attr]
        elif p.skip is not None and self.mirror is not None:
            self.mirror.skip(f.label, endpoint_template(f.method, f.scope["path"]), p.skip)
        length = f.length
        chunked = f.chunked
        body = Body(receive, table.fallback_body_limit, chunked or (length is not None and length != b"0"))
        if not body.complete:  # a small body is read whole first: a slow client holds no upstream connection
            await body.fill(table.limits.request_buffer)
            if chunked and body.complete:
                chunked = False  # all in hand: sent with its exact length
                length = b"%d" % body.size
        size = None if chunked or length is None else int(length)
        # the framing of what is sent is the proxy's own: the parsed length (llhttp checked
        # it), or chunked for a chunked body; never the client's header line as sent
        frame = CHUNKED if chunked else (framing(size) if size is not None else None)
        headers = f.headers
        if not f.host:  # an HTTP/1.0 client without Host: HTTP/1.1 upstream needs one (nginx: $proxy_host)
            headers = headers + [(b"host", table.upstreams[p.upstream].authority.encode())]
        forwarded = forwarded_headers(headers, f.peer, f.scheme)
        head = request_head(f.method, f.target, forwarded, frame)
        while True:  # attempts: a resend on a fresh connection, a fallback to legacy
            reply: Reply | None = None
            try:
                reply = await snap.pools[p.upstream].send(head, body, chunked, size, p.timeout, f.watch)
            except UpstreamError as exc:
                if f.watch.gone:
                    raise ClientGone() from None
                outcome = Outcome(0, exc.failure, exc.may_have_seen, exc.stale)
                nxt = self._apply(f, next_attempt(snap.routes, p, f.head, outcome, body.replayable), outcome)
                if not exc.stale:
                    self.metrics.errors.labels(f.label, p.side, exc.failure).inc()
                    if self.outages is not None:
                        self.outages.failure(p.upstream, f.label, exc.failure, nxt.action == "fallback")
                if nxt.action == "fail":
                    raise
            else:
                outages = self.outages
                if p.side != "service":
                    if outages is not None and outages.failing:
                        outages.success(p.upstream)
                    break  # legacy's answer stands: nothing to decide
                outcome = Outcome(reply.status)
                nxt = self._apply(f, next_attempt(snap.routes, p, f.head, outcome, body.replayable), outcome)
                if reply.status >= 500:
                    self.metrics.errors.labels(f.label, "service", "5xx").inc()
                    if outages is not None:
                        outages.failure(p.upstream, f.label, "5xx", nxt.action == "fallback")
                elif outages is not None and outages.failing:
                    outages.success(p.upstream)
                if nxt.action == "respond":
                    break
                reply.discard()
            body.rewind()
            p = f.plan = nxt.plan
        f.status = reply.status
        f.answering = True  # the response starts: no other reply can be sent
        if not await self.respond(reply, snap.origins[p.upstream], (f.scheme, f.host, table.server_names), f.method, send,
                                  f.watch, capture, f.cohort_cookie(), f.scope.get(CORK)):
            self.metrics.errors.labels(f.label, p.side, "truncated").inc()
        elif capture is not None and p.side == "legacy" and self.mirror is not None:
            self._offer_mirror(self.mirror, f, forwarded, head, chunked, body, capture)

    def _apply(self, f: Flight, nxt: Next, outcome: Outcome) -> Next:
        """Apply an attempt's decision where it touches the world: the breaker and the counts."""
        if nxt.breaker is not None:
            breaker = f.snap.breakers[f.label]
            breaker.success() if nxt.breaker == "success" else breaker.failure()
        if nxt.refusal is not None:
            self.metrics.fallback_refused.labels(f.label, nxt.refusal).inc()
        elif nxt.action == "fallback":
            self.metrics.fallbacks.labels(f.label, outcome.failure or "5xx").inc()
            if self.traffic is not None:
                self.traffic.fallback(f.label)
            if self.windows is not None and f.module is not None and f.module.release is not None:
                self.windows.observe(f.label, "service", 0.0, True)  # legacy saved the user; the new side still failed
        return nxt

    def record(self, f: Flight) -> None:
        """What every request leaves behind, HTTP or WebSocket: metrics, the release window,
        legacy's activity (for retiring and unclaimed endpoints), the access log."""
        elapsed = time.perf_counter() - f.started
        side = f.plan.side
        self.metrics.observe(f.label, side, f.status, elapsed)
        if self.traffic is not None:
            self.traffic.observe(f.label, "legacy" if side == "legacy" else "new", elapsed, f.status >= 500)
        module = f.module
        if self.windows is not None and module is not None and module.release is not None:
            self.windows.observe(f.label, side, elapsed, f.status >= 500)
        if self.activity is not None and side == "legacy":
            if module is None:
                self.activity.unclaimed_hit(endpoint_template(f.method, f.scope["path"]))
            else:
                self.activity.legacy_served(f.label)
        if self.access_log is not None:
            self.access_log(f.log_entry(self.pid, elapsed))

    @staticmethod
    def _offer_mirror(mirror: Mirror, f: Flight, forwarded: list[tuple[bytes, bytes]], head: bytes, chunked: bool, body: Body,
                      capture: _Capture) -> None:
        module = f.module
        assert module is not None and module.shadow is not None
        endpoint = endpoint_template(f.method, f.scope["path"])
        if capture.overflow or body.size > module.shadow.max_body or not body.rewind():
            mirror.skip(module.name, endpoint, "too_large")
            return
        data = b"".join(body.kept)
        if chunked:
            head = request_head(f.method, f.target, forwarded, framing(len(data)))
        legacy = Response(f.status, tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in capture.headers),
                          b"".join(capture.chunks), True)
        mirror.job(module, f.snap.table.upstreams, endpoint, f.method, f.scope["path"], mirror_head(head), data, legacy)

    async def respond(self, reply: Reply, origins: tuple[bytes, ...], public: tuple[str, bytes, tuple[str, ...]],
                      method: str, send: Send, watch: Watch, capture: _Capture | None = None,
                      cookie: bytes | None = None, cork: Cork | None = None) -> bool:
        """Stream the response to the client; False if the upstream cut it short (or the
        client left), in which case the client's connection is closed mid-body too.
        ``cookie``: the proxy's own cohort cookie to set (after the upstream's headers)."""
        headers = response_headers(reply.headers, origins, public)
        if reply.status == 204:  # no body, so no length (RFC 9110 8.6), whatever the upstream said
            headers = [h for h in headers if h[0] != b"content-length"]
        if cookie is not None:
            headers.append((b"set-cookie", cookie))
        if reply.done and cork is not None and method != "HEAD":  # the whole answer is in hand: one write, head and body
            cork.hold()
            try:
                await send({"type": "http.response.start", "status": reply.status, "headers": headers})
                if capture is not None:
                    capture.headers = headers
                data = reply.take_body()
                if capture is not None:
                    capture.add(data)
                watch.stop()
                await send({"type": "http.response.body", "body": data})
            finally:
                cork.flush()
            reply.release()
            return True
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if capture is not None:
            capture.headers = headers
        if method == "HEAD" or reply.status in (204, 304):
            watch.stop()
            await send({"type": "http.response.body", "body": b""})
            if method == "HEAD":
                reply.discard()  # llhttp cannot be told the body is absent: do not reuse
            else:
                reply.release()
            return True
        if reply.done:
            data = reply.take_body()
            if capture is not None:
                capture.add(data)
            watch.stop()
            await send({"type": "http.response.body", "body": data})
            reply.release()
            return True
        try:
            while True:
                chunk = await reply.next_chunk()
                if chunk is None:
                    break
                if capture is not None:
                    capture.add(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError:
            # the response has started: all we can do is cut it short, as the upstream did
            # (returning without the last body message makes the server close the connection)
            watch.stop()
            reply.discard()
            return False
        watch.stop()
        await send({"type": "http.response.body", "body": b""})
        reply.release()
        return True

    @staticmethod
    async def _reply(send: Send, status: int, text: str) -> None:
        start, body = _plain(status, text)
        await send(start)
        await send(body)

