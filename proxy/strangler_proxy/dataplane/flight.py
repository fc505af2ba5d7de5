"""One request's passage through the proxy: what every attempt and the final record need,
read from the ASGI scope once, for plain HTTP and WebSocket upgrades alike.

``Flight.begin`` reads the head (Host, cookies, framing, the client behind trusted
proxies), gives the request its cohort id (the proxy's cookie) and asks the decision core
for the first plan, so an upgrade and the page that opened it land on the same side.
"""

from __future__ import annotations

import time
from typing import Any

from strangler_proxy.clientip import real_client
from strangler_proxy.cohort import set_cookie
from strangler_proxy.dataplane.asgi import Scope
from strangler_proxy.dataplane.runtime import Snapshot
from strangler_proxy.dispatch import Clock, Draw, Plan, RequestHead, cohort_id, plan
from strangler_proxy.metrics import UNCLAIMED
from strangler_proxy.model import Module
from strangler_proxy.upstream import Reply


class Watch:
    """Aborts the upstream exchange in progress if the client goes away.

    The listener (``strangler_proxy.dataplane.listener``) calls ``client_gone`` from its
    ``connection_lost`` while the response is unfinished: no timer and no task per request.
    """

    __slots__ = ("conn", "finished", "gone")

    def __init__(self) -> None:
        self.conn: Reply | None = None
        self.finished = False
        self.gone = False

    def client_gone(self) -> None:
        if not self.finished:
            self.gone = True
            if self.conn is not None:
                self.conn.abort()

    def stop(self) -> None:
        self.finished = True


class Flight:
    """A request in flight: its head, plans, and what its record will say."""

    __slots__ = ("snap", "scope", "head", "method", "target", "headers", "host", "length", "chunked", "first", "plan",
                 "module", "label", "fresh", "started", "status", "error", "watch", "peer", "answering")

    def __init__(self, snap: Snapshot, scope: Scope, head: RequestHead, headers: list[tuple[bytes, bytes]], host: bytes,
                 length: bytes | None, chunked: bool, first: Plan, fresh: bool, started: float, peer: str | None) -> None:
        self.snap = snap
        self.scope = scope
        self.head = head
        self.method: str = head.method
        query = scope.get("query_string")
        self.target: bytes = scope["raw_path"] + (b"?" + query if query else b"")
        self.headers = headers
        self.host = host
        self.length = length  # the client's Content-Length (llhttp checked it), None when absent
        self.chunked = chunked
        self.first = self.plan = first
        self.module: Module | None = first.module
        self.label: str = first.module.name if first.module is not None else UNCLAIMED
        self.fresh = fresh  # the response sets the proxy's cohort cookie
        self.started = started
        self.status = 502
        self.error: str | None = None
        self.answering = False  # the response has started
        self.watch = Watch()
        self.peer = peer

    @classmethod
    def begin(cls, snap: Snapshot, scope: Scope, draw: Draw, now: Clock = time.time) -> Flight:
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
        client = scope.get("client")
        peer = client[0] if client else None
        table = snap.table
        trusted = table.trusted_proxies
        rh = RequestHead(scope.get("method", "GET"), scope["path"], host.decode("latin-1"), headers, cookies,
                         real_client(peer, headers, trusted) if trusted else peer)
        fresh = False
        if table.cohort.cookie is not None:
            found = cohort_id(table, rh)
            if found is not None:
                rh = rh._replace(cohort=found[0])
                fresh = found[1]
        first = plan(snap.routes, rh, draw, snap.breakers, now)
        return cls(snap, scope, rh, headers, host, length, chunked, first, fresh, started, peer)

    @property
    def scheme(self) -> str:
        scheme: str = self.scope.get("scheme", "http")
        return "https" if scheme in ("https", "wss") else "http"

    def cohort_cookie(self) -> bytes | None:
        """The cohort cookie to set: on the first canary decision of a user without one."""
        cookie = self.snap.table.cohort.cookie
        first = self.first
        if not self.fresh or self.head.cohort is None or cookie is None or first.module is None or first.module.stage != "canary":
            return None
        return set_cookie(cookie.name, self.head.cohort, cookie.max_age, cookie.path, cookie.same_site,
                          self.scheme == "https" if cookie.secure is None else cookie.secure)

    def log_entry(self, pid: int, elapsed: float) -> dict[str, Any]:
        p = self.plan
        return {
            "ts": time.time(), "pid": pid, "method": self.method, "path": self.scope["path"], "module": self.label,
            "side": p.side, "upstream": p.upstream, "status": self.status, "ms": round(elapsed * 1000, 3), "why": self.first.why,
            **({"fallback": p.why} if p is not self.first else {}), **({"error": self.error} if self.error else {}),
        }
