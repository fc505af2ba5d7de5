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

from strangler_proxy.model import STAGES, Module
from strangler_proxy.control.controller import Controller
from strangler_proxy.control.identity import Operators
from strangler_proxy.control.status import collect
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
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = next((v for n, v in scope["headers"] if n == b"authorization"), b"")
            actor = self.operators.identify(given)
            if actor is None:
                await JSONResponse({"error": "missing or wrong bearer token"}, 401,
                                   headers={"www-authenticate": "Bearer"})(scope, receive, send)
                return
            scope.setdefault("state", {})["actor"] = actor
        await self.app(scope, receive, send)


NO_ACTOR_FIELD = "the ledger's actor is the operator whose token made the call: drop 'actor'"


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
) -> ASGIApp:
    """``reload`` re-reads the route file and returns an error message or ``None``;
    ``offload(fn, *args)`` runs blocking work off the event loop."""

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
        if isinstance(body, dict) and "actor" in body:
            return JSONResponse({"error": NO_ACTOR_FIELD}, 400)
        if not isinstance(body, dict) or not body.keys() <= {"stage", "weight", "reason"} or not ({"stage", "weight"} & body.keys()):
            return JSONResponse({"error": "expected a JSON object with 'stage' and/or 'weight' (and optional 'reason')"}, 400)
        stage = body.get("stage")
        weight = body.get("weight")
        if stage is not None and stage not in STAGES:
            return JSONResponse({"error": f"stage: expected one of {', '.join(STAGES)}, found {stage!r}"}, 400)
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 100):
            return JSONResponse({"error": f"weight: expected a number from 0 to 100, found {weight!r}"}, 400)
        if weight is not None and (stage or m.stage) != "canary":
            # a weight means something in canary only: said, not stored to surprise later
            return JSONResponse({"error": f"module {m.name} is {stage or m.stage}: a weight applies to the canary stage; "
                                          f"send {{\"stage\": \"canary\", \"weight\": {weight}}} to start a canary"}, 409)
        if stage == "retired" and m.stage != "retired" and controller is not None:
            refusal = await offload(controller.retire_refusal, m)
            if refusal:
                return JSONResponse({"error": refusal}, 409)
        actor = str(request.state.actor)

        def change() -> None:
            store.set(m.name, stage, None if weight is None else float(weight), actor, str(body.get("reason", "")))
            runtime.set_overrides(store.overrides())

        try:
            await offload(change)
        except ProxyError as exc:
            return JSONResponse({"error": str(exc)}, 503)
        return JSONResponse(module_json(runtime.snapshot.modules[m.name], runtime))

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
        if controller is None:
            return JSONResponse({"error": "no release controller in this process"}, 501)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if isinstance(body, dict) and "actor" in body:
            return JSONResponse({"error": NO_ACTOR_FIELD}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return JSONResponse({"error": "expected {\"action\": \"start|pause|resume|promote|abort|undo\"}"}, 400)
        name = request.path_params["name"]
        if name not in runtime.snapshot.modules:
            return JSONResponse({"error": f"unknown module {name!r}"}, 404)
        try:
            r = await offload(controller.act, name, body["action"], str(request.state.actor),
                              bool(body.get("skip_analysis")))
        except ProxyError as exc:
            return JSONResponse({"error": str(exc)}, 409)
        m = runtime.snapshot.modules[name]
        return JSONResponse({**asdict(r), "stage": m.stage, "weight": m.weight, "summary": controller.describe(name)})

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
    ])
    return TokenAuth(app, operators)
