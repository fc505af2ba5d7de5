"""The data plane: a pure ASGI app (no middleware stack) that routes each request.

Per request: take the current snapshot, read the head, ask the decision core for a plan
(``dispatch.plan``), exchange with the planned upstream streaming both ways, and when the
new service failed ask again (``dispatch.after_failure``): one loop over attempts. The app
holds only I/O; every rule lives in ``dispatch`` and ``decision``.
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
from strangler_proxy.dataplane.health import Health
from strangler_proxy.clientip import real_client
from strangler_proxy.model import Module, Upstream
from strangler_proxy.decision import REFUSED_PATH
from strangler_proxy.cohort import set_cookie
from strangler_proxy.dispatch import Plan, RequestHead, after_failure, cohort_id, plan
from strangler_proxy.errors import UpstreamError, UpstreamTimeout
from strangler_proxy.dataplane.listener import WATCH
from strangler_proxy.dataplane.forwarding import CHUNKED, framing, request_head, response_headers
from strangler_proxy.metrics import UNCLAIMED
from strangler_proxy.shadow.compare import Response
from strangler_proxy.shadow.evidence import endpoint_template
from strangler_proxy.shadow.mirror import mirror_head
from strangler_proxy.dataplane.runtime import Runtime, Snapshot
from strangler_proxy.dataplane.upstream import Exchange, Pool
from strangler_proxy.dataplane.websocket import proxy_websocket


BAD_GATEWAY = "strangler: bad gateway: the upstream could not be reached or failed\n"
GATEWAY_TIMEOUT = "strangler: gateway timeout: the upstream did not answer in time\n"
SHUTTING_DOWN = "strangler: the proxy is shutting down; retry\n"
BAD_PATH = "strangler: this path is refused (NUL, backslash, or a segment ending in '.')\n"
CHUNK_END = b"0\r\n\r\n"


class Mirror(Protocol):
    """Where shadow comparisons go (the helper process's client)."""

    def skip(self, module: str, endpoint: str, reason: str) -> None: ...

    def job(self, module: Module, upstreams: Mapping[str, Upstream], endpoint: str, method: str, path: str,
            head: bytes, body: bytes, legacy: Response) -> None: ...


class Windows(Protocol):
    """The release controller's evidence: each request of a module under release."""

    def observe(self, module: str, side: str, elapsed: float, failed: bool) -> None: ...


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


class _Watch:
    """Aborts the upstream exchange in progress if the client goes away.

    The listener (``strangler_proxy.dataplane.listener``) calls ``client_gone`` from its
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
    """The ASGI app. Its collaborators come in through the constructor: the runtime (the
    current snapshot and its pools), and optionally the shadow mirror, the release windows,
    the legacy-activity recorder and an access-log writer."""

    def __init__(self, runtime: Runtime, *, mirror: Mirror | None = None, windows: Windows | None = None,
                 activity: Activity | None = None, access_log: Callable[[dict[str, Any]], None] | None = None,
                 draw: Callable[[], float] = random.random, health: Health | None = None) -> None:
        self.runtime = runtime
        self.health = health
        self.metrics = runtime.metrics
        self.mirror = mirror
        self.windows = windows
        self.activity = activity
        self.access_log = access_log
        self.draw = draw
        self.pid = os.getpid()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            health = self.health
            if health is not None and scope["path"].startswith(health.prefix) and health.claims(scope["path"]):
                await health.answer(scope, send)
                return
            await self.http(scope, receive, send)
        elif kind == "websocket":
            if self.health is not None and self.health.claims(scope["path"]):
                await send({"type": "websocket.close", "code": 1008})  # the probe prefix is never forwarded
                return
            await proxy_websocket(self.runtime.snapshot, self.draw, scope, receive, send)
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
        method = scope["method"]
        client = scope.get("client")
        peer = client[0] if client else None
        trusted = snap.table.trusted_proxies
        rh = RequestHead(method, scope["path"], host.decode("latin-1"), headers, cookies,
                         real_client(peer, headers, trusted) if trusted else peer)
        fresh = False  # the response sets the proxy's cohort cookie
        if snap.table.cohort.cookie is not None:
            found = cohort_id(snap.table, rh, self.draw)
            if found is not None:
                rh = rh._replace(cohort=found[0])
                fresh = found[1]
        p = plan(snap.routes, rh, self.draw, snap.breakers)
        if p.decision is REFUSED_PATH:
            self.metrics.client_closed.labels("bad_path").inc()
            await self._reply(send, 400, BAD_PATH)
            return
        first = p
        module = p.module
        label = module.name if module is not None else UNCLAIMED
        query = scope.get("query_string")
        target = scope["raw_path"] + (b"?" + query if query else b"")
        present = chunked or (length is not None and length != b"0")
        body = Body(receive, snap.table.fallback_body_limit, present)
        public = (scope.get("scheme", "http"), host, snap.table.server_names)
        watch = scope[WATCH] = _Watch()
        status = 502
        answering = False  # the response has started: no other reply can be sent
        error: str | None = None
        capture: _Capture | None = None
        if p.capture:
            capture = _Capture(module.shadow.max_response)  # type: ignore[union-attr]
        elif p.skip is not None and self.mirror is not None:
            self.mirror.skip(label, endpoint_template(method, scope["path"]), p.skip)
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
                headers = headers + [(b"host", snap.table.upstreams[p.upstream].authority.encode())]
            head, _ = request_head(method, target, headers, peer, scope.get("scheme", "http"), frame)
            while True:  # one attempt, and a second on legacy when the plan allows it
                pool = snap.pools[p.upstream]
                try:
                    conn = await self.exchange(pool, head, body, chunked, p.timeout, watch, method)
                except UpstreamError as exc:
                    self.metrics.errors.labels(label, p.side, exc.failure).inc()
                    if p.side == "service":
                        snap.breakers[label].failure()
                    nxt = self._next(snap, p, rh, exc.failure, exc.may_have_seen, body, label)
                    if nxt is None:
                        raise
                    p = nxt
                    continue
                if p.side == "service":
                    if conn.status >= 500:
                        snap.breakers[label].failure()
                        self.metrics.errors.labels(label, "service", "5xx").inc()
                        nxt = self._next(snap, p, rh, "5xx", True, body, label)
                        if nxt is not None:
                            pool.discard(conn)
                            p = nxt
                            continue
                    else:
                        snap.breakers[label].success()
                break
            status = conn.status
            answering = True
            cookie = self._cohort_cookie(snap, first, rh.cohort, public[0]) if fresh else None
            if not await self.respond(pool, conn, snap.origins[p.upstream], public, method, send, watch, capture, cookie):
                self.metrics.errors.labels(label, p.side, "truncated").inc()
            elif capture is not None and p.side == "legacy" and self.mirror is not None:
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
        except asyncio.CancelledError:
            # the listener cancels what is still running when the drain timeout ends at
            # shutdown: answer 503 if nothing was sent yet, and record it like any request
            # (the connection closes with the process; no traceback in the log)
            watch.stop()
            error = "cancelled: the drain timeout ended at shutdown"
            if not answering:
                status = 503
                try:
                    await self._reply(send, 503, SHUTTING_DOWN)
                except Exception:  # noqa: S110  # the client may be gone already: nothing more to tell it
                    pass
        finally:
            watch.stop()
        elapsed = time.perf_counter() - started
        side = p.side
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
                "upstream": p.upstream, "status": status, "ms": round(elapsed * 1000, 3), "why": first.why,
                **({"fallback": p.why} if p is not first else {}), **({"error": error} if error else {}),
            })

    @staticmethod
    def _cohort_cookie(snap: Snapshot, first: Plan, new_id: str | None, scheme: str) -> bytes | None:
        """The cohort cookie to set: on the first canary decision of a user without one."""
        cookie = snap.table.cohort.cookie
        if new_id is None or cookie is None or first.module is None or first.module.stage != "canary":
            return None
        return set_cookie(cookie.name, new_id, cookie.max_age, cookie.path, cookie.same_site,
                          scheme == "https" if cookie.secure is None else cookie.secure)

    def _next(self, snap: Snapshot, failed: Plan, rh: RequestHead, failure: Any, seen: bool, body: Body,
              label: str) -> Plan | None:
        """The fallback attempt ``after_failure`` allows, with its metrics; ``None`` if none."""
        if failed.side != "service":
            return None
        nxt = after_failure(snap.routes, failed, rh, failure, body.replayable, seen)
        if isinstance(nxt, str):
            self.metrics.fallback_refused.labels(label, nxt).inc()
            return None
        body.rewind()
        self.metrics.fallbacks.labels(label, failure).inc()
        if self.windows is not None and failed.module is not None and failed.module.release is not None:
            self.windows.observe(label, "service", 0.0, True)  # legacy saved the user; the new side still failed
        return nxt

    @staticmethod
    def _offer_mirror(mirror: Mirror, snap: Snapshot, module: Module, scope: Scope, method: str, target: bytes,
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

    async def exchange(self, pool: Pool, head: bytes, body: Body, chunked: bool, timeout: float,
                       watch: _Watch, method: str) -> Exchange:
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
                return await self.exchange(pool, head, body, chunked, timeout, watch, method)
            raise

    async def respond(self, pool: Pool, conn: Exchange, origins: tuple[bytes, ...], public: tuple[str, bytes, tuple[str, ...]],
                      method: str, send: Send, watch: _Watch, capture: _Capture | None = None,
                      cookie: bytes | None = None) -> bool:
        """Stream the response to the client; False if the upstream cut it short (or the
        client left), in which case the client's connection is closed mid-body too.
        ``cookie``: the proxy's own cohort cookie to set (after the upstream's headers)."""
        headers = response_headers(conn.headers, origins, public)
        if cookie is not None:
            headers.append((b"set-cookie", cookie))
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

