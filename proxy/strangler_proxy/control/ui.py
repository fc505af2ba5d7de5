"""The migration cockpit: a web dashboard served by the admin listener under ``/ui/``.

Login as Jupyter does: ``strangler dashboard`` asks ``POST /ui/tickets`` (with an operator's
bearer token) for a ticket that works once, within a minute; ``/ui/login?ticket=...``
trades it for a session cookie (HttpOnly, SameSite=Strict, path ``/ui``) and the operator's
name, so the token never appears in a URL, a log or a page. Every state-changing request
needs the session's CSRF token in ``X-CSRF-Token`` and goes through ``Actions`` like the
admin API, recorded in the ledger as that operator. Pages are static files shipped in the
package (``ui_assets/``: no CDN), under a Content-Security-Policy without inline script;
the page builds every name and value as text (never as markup).

    POST /ui/tickets                 bearer token -> {"ticket", "expires_in", "path"}
    PUT  /ui/estate                  bearer token, an estate for the Estate page (strangler dashboard --estate)
    GET  /ui/login?ticket=T          a session, then the dashboard
    GET  /ui/                        the dashboard (with a session), else the login page
    GET  /ui/assets/NAME             the page's script and style
    GET  /ui/api/session             {"operator", "csrf"}
    GET  /ui/api/status              the status document (control/status.py)
    GET  /ui/api/modules/NAME        a module: routes, ledger, shadow differences, breaker history
    GET  /ui/api/estate              the estate, each component with the modules it serves
    POST /ui/api/modules/NAME/action {"action": "pause|resume|promote|abort|undo|start|set", "weight": N}
    POST /ui/logout
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from strangler_proxy.control.actions import Actions
from strangler_proxy.control.identity import Operators
from strangler_proxy.control.status import collect, serving
from strangler_proxy.control.traffic import summarise
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.errors import ProxyError
from strangler_proxy.shadow.evidence import module_report
from strangler_proxy.shadow.report import report_json
from strangler_proxy.state import Store

__all__ = ["COOKIE", "CSP", "Sessions", "Tickets", "ui_routes"]

COOKIE = "strangler_ui"
TICKET_SECONDS = 60.0
SESSION_SECONDS = 8 * 3600.0
MAX_ESTATE_BYTES = 64 * 1024 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
           "cache-control": "no-store", "x-frame-options": "DENY"}
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
PAGES = {"index": "index.html", "login": "login.html"}
UI_ACTIONS = ("start", "pause", "resume", "promote", "abort", "undo", "set")


class Tickets:
    """Single-use, short-lived login tickets, each for one operator."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.open: dict[str, tuple[str, float]] = {}  # ticket -> (operator, expires)

    def issue(self, operator: str) -> str:
        now = self.clock()
        self.open = {t: v for t, v in self.open.items() if v[1] > now}  # expired ones go
        ticket = secrets.token_urlsafe(32)
        self.open[ticket] = (operator, now + TICKET_SECONDS)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The ticket's operator, once; None when unknown, used or expired."""
        found = self.open.pop(ticket, None)
        if found is None or found[1] <= self.clock():
            return None
        return found[0]


@dataclass(frozen=True, slots=True)
class Session:
    operator: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.live: dict[str, Session] = {}

    def start(self, operator: str) -> str:
        now = self.clock()
        self.live = {k: s for k, s in self.live.items() if s.expires > now}
        sid = secrets.token_urlsafe(32)
        self.live[sid] = Session(operator, secrets.token_urlsafe(32), now + SESSION_SECONDS)
        return sid

    def get(self, sid: str | None) -> Session | None:
        s = self.live.get(sid or "")
        return s if s is not None and s.expires > self.clock() else None

    def end(self, sid: str | None) -> None:
        self.live.pop(sid or "", None)


def _asset(name: str) -> bytes:
    return files("strangler_proxy").joinpath("ui_assets", name).read_bytes()


def ui_routes(runtime: Runtime, store: Store, operators: Operators, actions: Actions,
              offload: Callable[..., Awaitable[Any]], shadow_state: str | Path | None,
              checks: Callable[[], dict[str, Any]], estate_file: Path | None = None) -> list[Route]:
    """The dashboard's routes (mounted in the admin app, which leaves ``/ui/`` to them)."""
    tickets, sessions = Tickets(), Sessions()
    estate: dict[str, Any] = {}
    if estate_file is not None and estate_file.exists():
        try:
            estate.update(json.loads(estate_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass  # a broken file: the Estate page says there is none until one is uploaded again

    def page(name: str, status: int = 200) -> Response:
        return Response(_asset(PAGES[name]), status, media_type="text/html; charset=utf-8", headers=HEADERS)

    def fail(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status, headers=HEADERS)

    def session(request: Request) -> tuple[str | None, Session | None]:
        sid = request.cookies.get(COOKIE)
        return sid, sessions.get(sid)

    def bearer(request: Request) -> str | None:
        return operators.identify(request.headers.get("authorization", "").encode("latin-1", "replace"))

    async def issue(request: Request) -> Response:
        operator = bearer(request)
        if operator is None:
            return fail(401, "missing or wrong bearer token")
        ticket = tickets.issue(operator)
        return JSONResponse({"ticket": ticket, "expires_in": TICKET_SECONDS, "path": f"/ui/login?ticket={ticket}"},
                            headers=HEADERS)

    async def put_estate(request: Request) -> Response:
        if bearer(request) is None:
            return fail(401, "missing or wrong bearer token")
        body = bytearray()  # appended in place: a 64 MiB upload is not copied chunk after chunk
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_ESTATE_BYTES:
                return fail(413, f"an estate of more than {MAX_ESTATE_BYTES // 2**20} MiB")
        try:
            doc = json.loads(body)
        except ValueError:
            return fail(400, "expected the JSON strangler dashboard --estate sends")
        if not isinstance(doc, dict) or not isinstance(doc.get("analysis"), dict) or \
                doc["analysis"].get("schema") != "strangler.analysis/1" or not isinstance(doc.get("impact", {}), dict):
            return fail(400, "expected {\"analysis\": <strangler.analysis/1 document>, \"impact\": {...}}")
        estate.clear()
        estate.update(doc)
        if estate_file is not None:
            def keep() -> None:
                estate_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = estate_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc), encoding="utf-8")
                tmp.replace(estate_file)
            try:
                await offload(keep)
            except OSError:
                pass  # shown until the proxy restarts; kept in memory
        return JSONResponse({"components": len(doc["analysis"].get("components", []))}, headers=HEADERS)

    async def login(request: Request) -> Response:
        operator = tickets.redeem(request.query_params.get("ticket", ""))
        if operator is None:
            return page("login", 401)
        sid = sessions.start(operator)
        r = RedirectResponse("/ui/", 303, headers=HEADERS)
        r.set_cookie(COOKIE, sid, max_age=int(SESSION_SECONDS), path="/ui", httponly=True, samesite="strict")
        return r

    async def logout(request: Request) -> Response:
        sid, s = session(request)
        if s is None or not hmac.compare_digest(request.headers.get("x-csrf-token", ""), s.csrf):
            return fail(403, "no session, or a missing CSRF token")
        sessions.end(sid)
        r = JSONResponse({"status": "logged out"}, headers=HEADERS)
        r.delete_cookie(COOKIE, path="/ui")
        return r

    async def index(request: Request) -> Response:
        return page("index") if session(request)[1] is not None else page("login")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response(b"", 404, headers=HEADERS)
        return Response(_asset(name), media_type=ASSETS[name], headers={**HEADERS, "cache-control": "no-cache"})

    def authed(handler: Callable[[Request, Session], Awaitable[Response]], write: bool = False
               ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            s = session(request)[1]
            if s is None:
                return fail(401, "no session: open the link strangler dashboard prints")
            if write and not hmac.compare_digest(request.headers.get("x-csrf-token", ""), s.csrf):
                return fail(403, "missing or wrong CSRF token")
            return await handler(request, s)
        return wrapped

    async def who(request: Request, s: Session) -> Response:
        return JSONResponse({"operator": s.operator, "csrf": s.csrf}, headers=HEADERS)

    async def status(request: Request, s: Session) -> Response:
        try:
            doc = await offload(collect, tuple(runtime.snapshot.modules.values()), store, shadow_state, checks(), "admin")
        except ProxyError as exc:
            return fail(503, str(exc))
        return JSONResponse(doc, headers=HEADERS)

    async def module(request: Request, s: Session) -> Response:
        name = request.path_params["name"]
        m = runtime.snapshot.modules.get(name)
        if m is None:
            return fail(404, f"unknown module {name!r}")

        def gather() -> dict[str, Any]:
            ledger = [asdict(e) for e in store.ledger(name, 500)]
            events = [{"ts": ts, "state": state} for ts, mod, state in summarise(store.traffic(), time.time()).breaker_events
                      if mod == name]
            shadow = None
            if m.shadow is not None:
                from strangler_proxy.shadow.store import opened

                with opened(shadow_state) as evidence:
                    if evidence is not None:
                        rep = module_report(name, evidence.load(name), min_samples=m.shadow.min_samples)
                        shadow = report_json([rep], {name: evidence.samples(name, 3)}, None)["modules"][0]
            return {"ledger": ledger, "breaker_events": events, "shadow": shadow}

        try:
            detail = await offload(gather)
        except ProxyError as exc:
            return fail(503, str(exc))
        return JSONResponse({"module": actions.describe(m), **detail}, headers=HEADERS)

    async def get_estate(request: Request, s: Session) -> Response:
        if not estate:
            return fail(404, "no estate: run strangler dashboard --estate PATH... (your Compose files, manifests, inventory)")
        snap = runtime.snapshot
        analysis = estate["analysis"]
        return JSONResponse({**estate, "serving": serving(analysis.get("components", []), list(snap.modules.values()),
                                                          snap.table.upstreams)}, headers=HEADERS)

    async def act(request: Request, s: Session) -> Response:
        name = request.path_params["name"]
        m = runtime.snapshot.modules.get(name)
        if m is None:
            return fail(404, f"unknown module {name!r}")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if not isinstance(body, dict) or body.get("action") not in UI_ACTIONS:
            return fail(400, f"expected {{\"action\": one of {', '.join(UI_ACTIONS)}}}")
        reason = f"dashboard: {body['action']}"
        if body["action"] == "set":
            code, doc = await actions.set_module(m, {"stage": "canary", "weight": body.get("weight"), "reason": reason},
                                                 s.operator)
        else:
            code, doc = await actions.release(name, {"action": body["action"]}, s.operator)
        return JSONResponse(doc, code, headers=HEADERS)

    return [
        Route("/ui/tickets", issue, methods=["POST"]),
        Route("/ui/estate", put_estate, methods=["PUT"]),
        Route("/ui/login", login),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui/", index),
        Route("/ui", lambda request: RedirectResponse("/ui/", 308)),
        Route("/ui/assets/{name}", asset),
        Route("/ui/api/session", authed(who)),
        Route("/ui/api/status", authed(status)),
        Route("/ui/api/estate", authed(get_estate)),
        Route("/ui/api/modules/{name}", authed(module)),
        Route("/ui/api/modules/{name}/action", authed(act, write=True), methods=["POST"]),
    ]
