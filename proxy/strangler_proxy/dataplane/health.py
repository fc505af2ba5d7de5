"""Probes on the data port: ``{prefix}/healthz`` and ``{prefix}/readyz``, answered by the
proxy itself and never forwarded, so Kubernetes can probe the listener while the admin API
stays on loopback.

- ``healthz``: 200 while the process serves at all (liveness);
- ``readyz``: 200 when the route table is loaded and the state store answered its last
  poll, and the proxy is not draining for shutdown; else 503 with the reason (readiness:
  a balancer stops sending new requests).
Every other path under the prefix is 404: the prefix is the proxy's own.
"""

from __future__ import annotations

from collections.abc import Callable

from strangler_proxy.dataplane.asgi import Scope, Send
from strangler_proxy.routing import canonical_path

__all__ = ["DEFAULT_PREFIX", "Health"]

DEFAULT_PREFIX = "/_strangler"


class Health:
    """The probe endpoints; ``not_ready`` returns why the proxy is not ready, or ``None``."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, not_ready: Callable[[], str | None] = lambda: None) -> None:
        self.prefix = prefix.rstrip("/")
        self._under = self.prefix + "/"
        self.not_ready = not_ready
        self.draining = False

    def claims(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self._under)

    async def answer(self, scope: Scope, send: Send) -> None:
        name = (canonical_path(scope["path"]) or "")[len(self.prefix):]
        status, text = 404, "strangler: no such probe; try healthz or readyz\n"
        if scope["method"] not in ("GET", "HEAD"):
            status, text = 405, "strangler: probes answer GET and HEAD\n"
        elif name == "/healthz":
            status, text = 200, "ok\n"
        elif name == "/readyz":
            why = "draining for shutdown" if self.draining else self.not_ready()
            status, text = (200, "ready\n") if why is None else (503, f"not ready: {why}\n")
        body = text.encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body)),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
