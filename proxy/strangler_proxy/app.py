"""The data plane: a pure ASGI app (no middleware stack) that routes each request.

Per request: take the current snapshot, route to a module, decide the side (stage, pin,
sticky cohort, breaker), forward with streaming both ways, and fall back to legacy when the
new service failed and the rules allow it. Everything precomputable lives in the snapshot.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Awaitable, Callable

from strangler_proxy.activity import Activity
from strangler_proxy.body import Body, ClientGone
from strangler_proxy.controller import Windows
from strangler_proxy.cohort import bucket, cookie_value, on_new_side
from strangler_proxy.config import Module
from strangler_proxy.decision import BREAKER_OPEN, REFUSED_PATH, UNCLAIMED_DECISION, Decision, Failure, decide, may_fall_back, parse_pin
from strangler_proxy.errors import ConnectFailed, UpstreamError, UpstreamTimeout
from strangler_proxy.listener import WATCH
from strangler_proxy.forwarding import CHUNKED, framing, request_head, response_headers
from strangler_proxy.metrics import UNCLAIMED
from strangler_proxy.pins import verify_pin
from strangler_proxy.routing import Route, canonical_path
from strangler_proxy.shadow.compare import Response
from strangler_proxy.shadow.evidence import endpoint_template
from strangler_proxy.shadow.helper import HelperClient
from strangler_proxy.shadow.mirror import mirror_head
from strangler_proxy.runtime import Runtime, Snapshot
from strangler_proxy.upstream import Exchange, Pool

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BAD_GATEWAY = "strangler: bad gateway: the upstream could not be reached or failed\n"
GATEWAY_TIMEOUT = "strangler: gateway timeout: the upstream did not answer in time\n"
CHUNK_END = b"0\r\n\r\n"


def _plain(status: int, text: str) -> tuple[Message, Message]:
    body = text.encode()
    return (
        {"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]},
        {"type": "http.response.body", "body": body},
    )


def explain(route: Route | None, module: Module | None, decision: Decision) -> str:
    """Why a request goes where ``ProxyApp.choose`` sent it, in words (for ``routes explain``)."""
    if decision is REFUSED_PATH:
        return decision.why
    if route is None or module is None:
        return "no module claims it: legacy"
    weight = f" at {module.weight:g}%" if module.stage == "canary" else ""
    return f"{route.why} -> module {module.name} ({module.stage}{weight}): {decision.why}"


class _Watch:
    """Aborts the upstream exchange in progress if the client goes away.

    The listener (``strangler_proxy.listener``) calls ``client_gone`` from its
    ``connection_lost`` while the response is unfinished: no timer and no task per request.
    """

    __slots__ = ("conn", "finished", "gone")

    def __init__(self) -> None:
        self.conn: Exchange | None = None
        self.finished = False
        self.gone = False

    def client_gone(self) -> None:
        if not self.finished:
            self.gone = True
            if self.conn is not None:
                self.conn.abort()

    def stop(self) -> None:
        self.finished = True


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
    def __init__(self, runtime: Runtime, access_log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.runtime = runtime
        self.metrics = runtime.metrics
        self.mirror: HelperClient | None = None  # set by the server: mirrors run in a helper process
        self.windows: Windows | None = None  # set by the server: traffic of modules under release
        self.activity: Activity | None = None  # set by the server: what legacy still serves
        self.access_log = access_log
        self.random = random.random
        self.pid = os.getpid()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            from strangler_proxy.websocket import proxy_websocket

            await proxy_websocket(self, scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.runtime.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # -- routing -------------------------------------------------------------------------
    def choose(self, snap: Snapshot, scope: Scope, host: str | None = None,
               cookies: str | None | bool = False) -> tuple[Module | None, Decision, Route | None]:
        """The module, the side and the route that matched, for a request scope (shared with
        ``routes explain``, which formats them with ``explain``).

        ``host`` and ``cookies`` may be passed when the caller has already read them
        (``cookies=False`` means not looked up yet).
        """
        headers = scope["headers"]

        def header(name: str) -> str | None:
            b = name.encode("latin-1")
            for n, v in headers:
                if n == b:
                    text: str = v.decode("latin-1")
                    return text
            return None

        if host is None:
            host = header("host") or ""
        path = canonical_path(scope["path"])
        if path is None:
            return None, REFUSED_PATH, None
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        route = snap.router.route(scope["method"], path, hostname.lower(), header)
        if route is None:
            return None, UNCLAIMED_DECISION, None
        module = route.module
        stage = module.stage
        pin = None
        new_side: bool | None = None
        if stage in ("canary", "released"):
            table = snap.table
            if cookies is False:
                cookies = header("cookie")
            pins = table.pin
            pin_value = header(pins.header) if pins.header else None
            if pin_value is None and pins.cookie and cookies:
                pin_value = cookie_value(cookies, pins.cookie)  # type: ignore[arg-type]
            if pin_value and pins.secret is not None:
                pin_value = verify_pin(pin_value, pins.secret, time.time())  # unsigned or forged: no pin
            pin = parse_pin(pin_value, module.name) if pin_value else None
            if stage == "canary" and pin is None:
                key = self.cohort_key(snap, scope, header, cookies)  # type: ignore[arg-type]
                if key is None:
                    new_side = self.random() * 100 < module.weight
                else:
                    new_side = on_new_side(bucket(module.name, key, table.cohort.buckets), module.weight, table.cohort.buckets)
        decision = decide(stage, module.weight, pin, new_side, False)
        if decision.side == "service" and stage != "retired" and pin is None and not snap.breakers[module.name].allow():
            decision = BREAKER_OPEN
        return module, decision, route

    @staticmethod
    def cohort_key(snap: Snapshot, scope: Scope, header: Callable[[str], str | None], cookies: str | None) -> str | None:
        for kind, name in snap.table.cohort.sources:
            if kind == "cookie":
                value = cookie_value(cookies, name) if cookies else None
            elif kind == "header":
                value = header(name)
            else:
                client = scope.get("client")
                value = client[0] if client else None
            if value:
                return f"{kind}:{value}"
        return None

    # -- HTTP ------------------------------------------------------------------------------
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        snap = self.runtime.snapshot
        started = time.perf_counter()
        headers = scope["headers"]
        length: bytes | None = None
        chunked = False
        host = b""
        cookies: str | None = None
        for n, v in headers:  # the listener has checked their size and that Host is there once
            if n == b"host":
                host = v
            elif n == b"cookie":
                cookies = v.decode("latin-1") if cookies is None else cookies + "; " + v.decode("latin-1")
            elif n == b"content-length":
                length = v
            elif n == b"transfer-encoding":
                chunked = True
        module, decision, _ = self.choose(snap, scope, host.decode("latin-1"), cookies)
        if decision is REFUSED_PATH:
            self.metrics.client_closed.labels("bad_path").inc()
            await self._reply(send, 400, "strangler: this path is refused (NUL, backslash, or a segment ending in '.')\n")
            return
        label = module.name if module is not None else UNCLAIMED
        method = scope["method"]
        query = scope.get("query_string")
        target = scope["raw_path"] + (b"?" + query if query else b"")
        present = chunked or (length is not None and length != b"0")
        body = Body(receive, snap.table.fallback_body_limit, present)
        client = scope.get("client")
        public = (scope.get("scheme", "http"), host, snap.table.server_names)
        side = decision.side
        upstream = module.service if module is not None and side == "service" else (module.legacy if module is not None else "legacy")
        ups = snap.table.upstreams
        timeout = (module.timeout or ups[upstream].timeout) if module is not None and side == "service" else ups[upstream].timeout
        watch = scope[WATCH] = _Watch()
        status = 502
        error: str | None = None
        capture: _Capture | None = None
        shadow = module.shadow if module is not None else None
        if shadow is not None and module is not None and side == "legacy" and decision is not BREAKER_OPEN and (
                module.stage == "shadow" or (module.stage == "canary" and shadow.in_canary)) and (
                shadow.percent >= 100 or self.random() * 100 < shadow.percent):
            if method in shadow.methods:
                capture = _Capture(shadow.max_response)
            elif self.mirror is not None:
                self.mirror.skip(label, endpoint_template(method, scope["path"]), "unsafe")
        try:
            if present:  # a small body is read whole first: a slow client holds no upstream connection
                await body.fill(snap.table.limits.request_buffer)
                if chunked and body.complete:
                    chunked = False  # all in hand: sent with its exact length
                    length = b"%d" % body.size
            # the framing of what is sent is the proxy's own: the parsed length (llhttp checked
            # it), or chunked for a chunked body; never the client's header line as sent
            frame = CHUNKED if chunked else (framing(int(length)) if length is not None else None)
            if not host:  # an HTTP/1.0 client without Host: HTTP/1.1 upstream needs one (nginx: $proxy_host)
                headers = headers + [(b"host", ups[upstream].authority.encode())]
            head, _ = request_head(method, target, headers, client[0] if client else None, scope.get("scheme", "http"), frame)
            try:
                conn = await self.exchange(snap.pools[upstream], head, body, chunked, timeout, watch, receive, method)
                if side == "service" and module is not None:
                    breaker = snap.breakers[module.name]
                    if conn.status >= 500:
                        breaker.failure()
                        self.metrics.errors.labels(label, side, "5xx").inc()
                        if self._may_fall_back(module, method, headers, "5xx", body, label):
                            snap.pools[upstream].discard(conn)
                            raise _FallBack()
                    else:
                        breaker.success()
            except _FallBack:
                side, upstream = "legacy", module.legacy  # type: ignore[union-attr]
                timeout = ups[upstream].timeout
                conn = await self.exchange(snap.pools[upstream], head, body, chunked, timeout, watch, receive, method)
            except UpstreamError as exc:
                failure: Failure = "refused" if isinstance(exc, ConnectFailed) else ("timeout" if isinstance(exc, UpstreamTimeout) else "broken")
                self.metrics.errors.labels(label, side, failure).inc()
                if side == "service" and module is not None:
                    snap.breakers[module.name].failure()
                    if self._may_fall_back(module, method, headers, failure, body, label):
                        side, upstream = "legacy", module.legacy
                        timeout = ups[upstream].timeout
                        conn = await self.exchange(snap.pools[upstream], head, body, chunked, timeout, watch, receive, method)
                    else:
                        raise
                else:
                    raise
            status = conn.status
            if not await self.respond(snap.pools[upstream], conn, snap.origins[upstream], public, method, send, watch, capture):
                self.metrics.errors.labels(label, side, "truncated").inc()
            elif capture is not None and side == "legacy" and self.mirror is not None:
                self._offer_mirror(self.mirror, snap, module, scope, method, target, headers, head,  # type: ignore[arg-type]
                                   chunked, body, capture, status)
        except UpstreamError as exc:
            watch.stop()
            status = 504 if isinstance(exc, UpstreamTimeout) else 502
            error = str(exc)  # for the access log; the client is not told upstream addresses
            await self._reply(send, status, GATEWAY_TIMEOUT if status == 504 else BAD_GATEWAY)
        except ClientGone:
            watch.stop()
            status = 499
        finally:
            watch.stop()
        elapsed = time.perf_counter() - started
        self.metrics.observe(label, side, status, elapsed)
        if self.windows is not None and module is not None and module.release is not None:
            self.windows.observe(label, side, elapsed, status >= 500)
        if self.activity is not None and side == "legacy":
            if module is None:
                self.activity.unclaimed_hit(endpoint_template(method, scope["path"]))
            else:
                self.activity.legacy_served(label)
        if self.access_log is not None:
            self.access_log({
                "ts": time.time(), "pid": self.pid, "method": method, "path": scope["path"], "module": label, "side": side,
                "upstream": upstream, "status": status, "ms": round(elapsed * 1000, 3), "why": decision.why,
                **({"error": error} if error else {}),
            })

    @staticmethod
    def _offer_mirror(mirror: HelperClient, snap: Snapshot, module: Module, scope: Scope, method: str, target: bytes,
                      headers: list[tuple[bytes, bytes]], head: bytes, chunked: bool, body: Body, capture: _Capture,
                      status: int) -> None:
        shadow = module.shadow
        assert shadow is not None
        endpoint = endpoint_template(method, scope["path"])
        if capture.overflow or body.size > shadow.max_body or not body.rewind():
            mirror.skip(module.name, endpoint, "too_large")
            return
        data = b"".join(body.kept)
        if chunked:
            client = scope.get("client")
            head = request_head(method, target, headers, client[0] if client else None, scope.get("scheme", "http"),
                                framing(len(data)))[0]
        legacy = Response(status, tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in capture.headers),
                          b"".join(capture.chunks), True)
        mirror.job(module, snap.table.upstreams, endpoint, method, scope["path"], mirror_head(head), data, legacy)

    def _may_fall_back(self, module: Module, method: str, headers: list[tuple[bytes, bytes]], failure: Failure, body: Body, label: str) -> bool:
        key = module.idempotency_key
        has_key = key is not None and any(n == key.encode() for n, _ in headers)
        if not may_fall_back(module, module.stage, method, has_key, failure):
            self.metrics.fallback_refused.labels(label, "retired" if module.stage == "retired" else "not idempotent").inc()
            return False
        if not body.rewind():
            self.metrics.fallback_refused.labels(label, "body too large to replay").inc()
            return False
        self.metrics.fallbacks.labels(label, failure).inc()
        if self.windows is not None and module.release is not None:
            self.windows.observe(label, "service", 0.0, True)  # legacy saved the user; the new side still failed
        return True

    async def exchange(self, pool: Pool, head: bytes, body: Body, chunked: bool, timeout: float,
                       watch: _Watch, receive: Receive, method: str) -> Exchange:
        """Send the request on a pooled connection and wait for the response head."""
        conn, reused = await pool.acquire()
        watch.conn = conn
        try:
            chunk = await body.next() if (body.kept or body.held or not body.complete) else None
            if chunk is None:
                conn.write(head + CHUNK_END if chunked else head)
            else:
                conn.write(head + (b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk))
                while True:
                    await conn.drain()
                    chunk = await body.next()
                    if chunk is None:
                        break
                    conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    conn.write(CHUNK_END)
            await conn.response_head(timeout)
            return conn
        except BaseException as exc:
            pool.discard(conn)
            if watch.gone:
                raise ClientGone() from None
            # a pooled connection the upstream had already closed: resend once, fresh
            if (reused and isinstance(exc, UpstreamError) and not isinstance(exc, UpstreamTimeout)
                    and not conn.got_bytes and method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE") and body.rewind()):
                return await self.exchange(pool, head, body, chunked, timeout, watch, receive, method)
            raise

    async def respond(self, pool: Pool, conn: Exchange, origins: tuple[bytes, ...], public: tuple[str, bytes, tuple[str, ...]],
                      method: str, send: Send, watch: _Watch, capture: _Capture | None = None) -> bool:
        """Stream the response to the client; False if the upstream cut it short (or the
        client left), in which case the client's connection is closed mid-body too."""
        headers = response_headers(conn.headers, origins, public)
        await send({"type": "http.response.start", "status": conn.status, "headers": headers})
        if capture is not None:
            capture.headers = headers
        if method == "HEAD" or conn.status in (204, 304):
            watch.stop()
            await send({"type": "http.response.body", "body": b""})
            if method == "HEAD":
                pool.discard(conn)  # llhttp cannot be told the body is absent: do not reuse
            else:
                pool.release(conn)
            return True
        if conn.done:
            data = conn.take_body()
            if capture is not None:
                capture.add(data)
            watch.stop()
            await send({"type": "http.response.body", "body": data})
            pool.release(conn)
            return True
        try:
            while True:
                chunk = await conn.next_chunk()
                if chunk is None:
                    break
                if capture is not None:
                    capture.add(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError:
            # the response has started: all we can do is cut it short, as the upstream did
            # (returning without the last body message makes the server close the connection)
            watch.stop()
            pool.discard(conn)
            return False
        watch.stop()
        await send({"type": "http.response.body", "body": b""})
        pool.release(conn)
        return True

    @staticmethod
    async def _reply(send: Send, status: int, text: str) -> None:
        start, body = _plain(status, text)
        await send(start)
        await send(body)


class _FallBack(Exception):
    """Internal: the new service answered 5xx and the request goes to legacy instead."""
