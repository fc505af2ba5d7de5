"""The demo estate's servers, each run as its own process:

    python -m strangler_cli.demo.apps ROLE PORT      ROLE: legacy | cases-service | kb-service
    python -m strangler_cli.demo.apps ROLE fd:N      serve a listening socket inherited as descriptor N

``legacy`` is the monolith: ``/login?user=NAME`` sets the ``JSESSIONID`` login cookie,
``/cases``, ``/kb``, ``/entitlements``, ``/accounts`` answer JSON, ``/static/*`` serves
assets, ``POST /cases`` writes. Answers carry non-deterministic fields (``request_id``,
``generated_at``) as real applications do. The new services answer their module's paths
with the same data. Every answer says who served it in ``X-Served-By``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from typing import Any

CASES = {i: {"id": i, "title": f"Printer on floor {i % 7} jams", "status": ["open", "pending", "closed"][i % 3],
             "priority": ["low", "normal", "high"][i % 3], "customer": f"acct-{1000 + i % 50}"} for i in range(1, 201)}
ARTICLES = {i: {"id": i, "title": f"How to fix error E{100 + i}", "body": "Restart the spooler, then retry."} for i in range(1, 51)}
STATIC = {"/static/app.js": (b"document.title='Support portal';\n", b"application/javascript"),
          "/static/style.css": (b"body{font-family:sans-serif}\n", b"text/css")}
MODULES = {"legacy": ("/",), "cases-service": ("/cases", "/api/cases"), "kb-service": ("/kb",)}


def make_app(role: str) -> Any:
    served_by = role.encode()
    created: dict[int, dict[str, Any]] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                await send({"type": m["type"] + ".complete"})
                if m["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        status, ctype, payload, extra = route(scope["method"], scope["path"], scope["query_string"].decode(), body)

        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", ctype), (b"content-length", str(len(payload)).encode()), (b"x-served-by", served_by), *extra]})
        await send({"type": "http.response.body", "body": payload})

    def route(method: str, path: str, query: str, body: bytes) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        if role != "legacy" and not any(path == p or path.startswith(p + "/") for p in MODULES[role]):
            return 404, b"application/json", b'{"error": "not this service\'s module"}', []

        def js(doc: Any, status: int = 200) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
            if isinstance(doc, dict):
                doc = {**doc, "request_id": uuid.uuid4().hex, "generated_at": time.time()}
            return status, b"application/json", json.dumps(doc).encode(), []

        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == "api":
            parts = parts[1:]
        if path == "/login":
            user = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv).get("user", "guest")
            return 302, b"text/plain", b"", [(b"location", b"/"), (b"set-cookie", f"JSESSIONID={user}; Path=/; HttpOnly".encode())]
        if path == "/":
            return 200, b"text/html", b"<html><head><script src='/static/app.js'></script></head><body><h1>Support portal</h1></body></html>", []
        if path in STATIC:
            data, ctype = STATIC[path]
            return 200, ctype, data, []
        if parts[:1] == ["cases"]:
            if method == "POST":
                case_id = 1000 + len(created)
                created[case_id] = {"id": case_id, "title": body.decode(errors="replace")[:80] or "new case", "status": "open"}
                return js(created[case_id], 201)
            if len(parts) == 1:
                return js({"cases": [CASES[i] for i in range(1, 21)], "total": len(CASES)})
            case = CASES.get(int(parts[1])) if parts[1].isdigit() else None
            return js(case) if case else js({"error": "no such case"}, 404)
        if parts[:1] == ["kb"]:
            if len(parts) == 1:
                return js({"articles": list(ARTICLES.values())[:10]})
            art = ARTICLES.get(int(parts[1])) if parts[1].isdigit() else None
            return js(art) if art else js({"error": "no such article"}, 404)
        if parts[:1] == ["entitlements"] and len(parts) == 2:
            return js({"user": parts[1], "plan": "gold", "seats": 25})
        if parts[:1] == ["accounts"] and len(parts) == 2:
            return js({"id": parts[1], "name": f"Account {parts[1]}", "region": "EMEA"})
        if path == "/healthz":
            return js({"status": "UP"})
        return js({"error": "not found"}, 404)

    return app


def main() -> None:
    import uvicorn

    role, where = sys.argv[1], sys.argv[2]  # where: a port, or fd:N (a listening socket inherited from the estate)
    if role not in MODULES:
        raise SystemExit(f"unknown role {role!r}; expected one of {', '.join(MODULES)}")
    inherited = where.startswith("fd:")
    config = uvicorn.Config(make_app(role), host="127.0.0.1", port=0 if inherited else int(where), log_level="warning",
                            access_log=False, interface="asgi3", proxy_headers=False, server_header=False)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(where[3:]))] if inherited else None)


if __name__ == "__main__":
    main()
