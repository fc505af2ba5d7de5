"""The admin API: a Starlette app on its own listener (loopback by default).

Every endpoint but ``/healthz`` needs ``Authorization: Bearer <token>``. Work that touches
the state store or the route file runs on the control thread (``offload``), never on the
event loop that serves traffic. Malformed JSON or query values are 400, never 500.

    GET    /healthz                    liveness, no token
    GET    /metrics                    Prometheus exposition
    GET    /routes                     the effective route table
    GET    /modules                    each module's stage, weight, override and breaker
    GET    /modules/{name}
    PATCH  /modules/{name}             {"stage": "canary", "weight": 10, "reason": "..."}
    DELETE /modules/{name}/override    back to the route file's values
    GET    /ledger[?module=NAME]       the append-only change history, newest first
    GET    /status                     every module: stage, release, traffic per side, breaker, shadow, last change
    POST   /reload                     re-read the route file now (as SIGHUP does)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from strangler_proxy.model import Module
from strangler_proxy.control.actions import Actions
from strangler_proxy.control.controller import Controller
from strangler_proxy.control.identity import Operators
from strangler_proxy.control.status import collect
from strangler_proxy.control.ui import ui_routes
from strangler_proxy.errors import ProxyError
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.state import Store


class TokenAuth:
    """Pure ASGI: 401 unless the bearer token is an operator's; ``/healthz`` is open. The
    operator's name goes into ``scope["state"]["actor"]``: the ledger's actor."""

    def __init__(self, app: ASGIApp, operators: Operators) -> None:
        if not operators.digests:
            raise ValueError("the admin API needs a token")
        self.app = app
        self.operators = operators

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # /ui/ is the dashboard's: its session cookie, or its own bearer check (control/ui.py)
        if scope["type"] == "http" and scope["path"] != "/healthz" and not (scope["path"] + "/").startswith("/ui/"):
            given = next((v for n, v in scope["headers"] if n == b"authorization"), b"")
            actor = self.operators.identify(given)
            if actor is None:
                await JSONResponse({"error": "missing or wrong bearer token"}, 401,
                                   headers={"www-authenticate": "Bearer"})(scope, receive, send)
                return
            scope.setdefault("state", {})["actor"] = actor
        await self.app(scope, receive, send)


def module_json(m: Module, runtime: Runtime) -> dict[str, Any]:
    snap = runtime.snapshot
    breaker = snap.breakers.get(m.name)
    return {
        "name": m.name, "stage": m.stage, "weight": m.weight, "service": m.service, "legacy": m.legacy,
        "override": m.name in runtime.overrides,
        "breaker": breaker.state if breaker else None,
        "match": [
            {k: v for k, v in {
                "path": list(x.path), "path_prefix": list(x.path_prefix),
                "path_regex": [r.pattern for r in x.path_regex], "methods": sorted(x.methods),
                "hosts": list(x.hosts), "headers": dict(x.headers)}.items() if v}
            for x in m.matches
        ],
    }


Offload = Callable[..., Awaitable[Any]]


def build_admin(
    runtime: Runtime,
    store: Store,
    operators: Operators,
    reload: Callable[[], str | None],
    offload: Offload,
    registry: CollectorRegistry | None = None,
    controller: Controller | None = None,
    shadow_state: str | Path | None = None,
    estate_file: Path | None = None,
) -> ASGIApp:
    """``reload`` re-reads the route file and returns an error message or ``None``;
    ``offload(fn, *args)`` runs blocking work off the event loop."""
    actions = Actions(runtime, store, controller, offload, lambda m: module_json(m, runtime))

    async def healthz(request: Request) -> Response:
        snap = runtime.snapshot  # no file paths or addresses: it needs no token
        return JSONResponse({"status": "ok", "loaded_at": snap.loaded_at, "modules": len(snap.modules)})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry or runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def routes(request: Request) -> Response:
        snap = runtime.snapshot
        return JSONResponse({
            "source": snap.table.source,
            "upstreams": {n: u.origin for n, u in snap.table.upstreams.items()},
            "modules": [module_json(m, runtime) for m in snap.modules.values()],
        })

    async def modules(request: Request) -> Response:
        return JSONResponse([module_json(m, runtime) for m in runtime.snapshot.modules.values()])

    def _module(request: Request) -> Module | Response:
        name = request.path_params["name"]
        m = runtime.snapshot.modules.get(name)
        if m is None:
            return JSONResponse({"error": f"unknown module {name!r}", "modules": sorted(runtime.snapshot.modules)}, 404)
        return m

    async def module(request: Request) -> Response:
        m = _module(request)
        return m if isinstance(m, Response) else JSONResponse(module_json(m, runtime))

    async def patch(request: Request) -> Response:
        m = _module(request)
        if isinstance(m, Response):
            return m
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            return JSONResponse({"error": "expected a JSON object such as {\"weight\": 10}"}, 400)
        status, doc = await actions.set_module(m, body, str(request.state.actor))
        return JSONResponse(doc, status)

    async def clear(request: Request) -> Response:
        m = _module(request)
        if isinstance(m, Response):
            return m
        def change() -> None:
            store.clear(m.name, str(request.state.actor))
            runtime.set_overrides(store.overrides())

        try:
            await offload(change)
        except ProxyError as exc:
            return JSONResponse({"error": str(exc)}, 503)
        return JSONResponse(module_json(runtime.snapshot.modules[m.name], runtime))

    async def ledger(request: Request) -> Response:
        text = request.query_params.get("limit", "100")
        if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
            return JSONResponse({"error": f"limit: expected a whole number from 1 to 1000000, found {text!r}"}, 400)
        try:
            entries = await offload(store.ledger, request.query_params.get("module"), int(text))
        except ProxyError as exc:
            return JSONResponse({"error": str(exc)}, 503)
        return JSONResponse([asdict(e) for e in entries])

    async def do_reload(request: Request) -> Response:
        error = await offload(reload)
        if error:
            return JSONResponse({"error": error, "kept": runtime.snapshot.table.source}, 422)
        return JSONResponse({"status": "reloaded", "modules": len(runtime.snapshot.modules)})

    async def status(request: Request) -> Response:
        checks = dict(controller.last) if controller is not None else {}
        try:
            doc = await offload(collect, tuple(runtime.snapshot.modules.values()), store, shadow_state, checks, "admin")
        except ProxyError as exc:
            return JSONResponse({"error": str(exc)}, 503)
        return JSONResponse(doc)

    async def releases(request: Request) -> Response:
        if controller is None:
            return JSONResponse({"error": "no release controller in this process"}, 501)
        return JSONResponse(await offload(controller.status))

    async def release_action(request: Request) -> Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        status, doc = await actions.release(request.path_params["name"], body, str(request.state.actor))
        return JSONResponse(doc, status)

    app = Starlette(routes=[
        Route("/releases", releases),
        Route("/releases/{name}", release_action, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/routes", routes),
        Route("/modules", modules),
        Route("/modules/{name}", module, methods=["GET"]),
        Route("/modules/{name}", patch, methods=["PATCH"]),
        Route("/modules/{name}/override", clear, methods=["DELETE"]),
        Route("/ledger", ledger),
        Route("/status", status),
        Route("/reload", do_reload, methods=["POST"]),
        *ui_routes(runtime, store, operators, actions, offload, shadow_state,
                   lambda: dict(controller.last) if controller is not None else {}, estate_file),
    ])
    return TokenAuth(app, operators)
