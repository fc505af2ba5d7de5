"""The decision core: for one request head, which module, which side, which upstream,
whether legacy's answer is kept for the shadow comparison, and what happens if it fails.

Pure: the inputs are values (the route table's ``Routes``, a ``RequestHead``), the random
draw is passed in as a function and the circuit breakers as a mapping, so the data plane,
the WebSocket path and ``strangler routes explain`` ask the same question the same way,
and tests ask it without a socket.

>>> from strangler_proxy.config import Match, Module, RouteTable, Upstream
>>> up = {n: Upstream(n, "http", "127.0.0.1", p) for n, p in (("legacy", 8080), ("cases-svc", 9000))}
>>> cases = Module("cases", (Match(path_prefix=("/cases",)),), "cases-svc", "canary", 0)
>>> routes = Routes.of(RouteTable("routes.yaml", up, (cases,)))
>>> p = plan(routes, RequestHead("GET", "/cases/7", "portal", (), None, "10.0.0.1"), lambda: 0.5)
>>> p.side, p.upstream, p.why
('legacy', 'legacy', "canary: the request's cohort is on the legacy side")
>>> after_failure(routes, p, RequestHead("POST", "/cases/7", "portal", (), None, None), "refused", True)
'legacy serves it already'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from strangler_proxy.cohort import COHORT_ID, bucket, cookie_value, derived_id, on_new_side, random_id
from strangler_proxy.model import Module, RouteTable
from strangler_proxy.decision import BREAKER_OPEN, REFUSED_PATH, UNCLAIMED_DECISION, Decision, Failure, Side, decide, \
    may_fall_back, parse_pin
from strangler_proxy.pins import verify_pin
from strangler_proxy.routing import Route, Router, canonical_host, canonical_path

__all__ = ["Breaker", "Clock", "Draw", "NO_BREAKERS", "Next", "Outcome", "Plan", "Refusal", "RequestHead", "Routes", "after_failure",
           "cohort_id", "cohort_key", "next_attempt", "plan"]

Draw = Callable[[], float]  # uniform in [0, 1): random.random in the proxy, a constant in tests
Clock = Callable[[], float]  # Unix time: time.time in the proxy, a constant in tests
Refusal = Literal["legacy serves it already", "retired", "not idempotent", "body too large to replay"]

_FALLBACK = Decision("legacy", "the new service failed: legacy serves it (fallback)")


class Breaker(Protocol):
    def allow(self) -> bool: ...


NO_BREAKERS: Mapping[str, Breaker] = {}


@dataclass(frozen=True, slots=True)
class Routes:
    """What the decision needs of the current configuration: the table with runtime
    overrides applied, and the router built from it. No pool, no socket."""

    table: RouteTable
    modules: Mapping[str, Module]  # effective: the file's values with overrides applied
    router: Router
    # plans that depend only on (module, decision), made once and shared: most requests
    # allocate no Plan (bounded: modules x the few shared decisions)
    memo: dict[tuple[int, Decision], Plan] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, table: RouteTable, modules: Sequence[Module] | None = None) -> Routes:
        mods = table.modules if modules is None else tuple(modules)
        return cls(table, {m.name: m for m in mods}, Router(mods))


class RequestHead(NamedTuple):
    """The parts of a request the decision reads. ``path`` is percent-decoded (as the
    listener gives it); ``cookies`` every Cookie header joined; ``client`` the peer.
    (A named tuple, as ``Plan``: immutable, and built per request at a tuple's cost.)"""

    method: str
    path: str
    host: str
    headers: Sequence[tuple[bytes, bytes]]
    cookies: str | None
    client: str | None
    cohort: str | None = None  # the proxy's cohort id when the table has a cohort cookie (``cohort_id``)

    def header(self, name: str) -> str | None:
        """The first value of a header (``name`` in lower case), or ``None``."""
        b = name.encode("latin-1")
        for n, v in self.headers:
            if n == b:
                text: str = v.decode("latin-1")
                return text
        return None

    def values(self, name: str) -> list[str]:
        """Every value of a header, in order: a route's header condition holds when any
        copy matches (the back end may read any of them)."""
        b = name.encode("latin-1")
        return [v.decode("latin-1") for n, v in self.headers if n == b]


class Plan(NamedTuple):
    """Where one attempt of a request goes.

    ``capture``: keep legacy's response while it streams, to compare it with the new
    service's in the background (shadow); ``skip``: a shadow sample not taken, and why.
    """

    module: Module | None
    route: Route | None
    decision: Decision
    side: Side  # decision.side, a field because the hot path reads it several times
    upstream: str
    timeout: float
    capture: bool = False
    skip: str | None = None

    @property
    def why(self) -> str:
        return self.decision.why

    @property
    def refused(self) -> bool:
        """The path itself is refused (400): nothing is sent anywhere."""
        return self.decision is REFUSED_PATH

    def explain(self) -> str:
        """Why, in words (``routes explain`` and the access log)."""
        if self.refused or self.route is None or self.module is None:
            return self.why if self.refused else "no module claims it: legacy"
        m = self.module
        weight = f" at {m.weight:g}%" if m.stage == "canary" else ""
        return f"{self.route.why} -> module {m.name} ({m.stage}{weight}): {self.why}"


def plan(routes: Routes, head: RequestHead, draw: Draw, breakers: Mapping[str, Breaker] = NO_BREAKERS,
         now: Clock = time.time) -> Plan:
    """The first attempt's plan for a request.

    Order of the rules: the route (canonical path, then host and header conditions); the
    stage; a tester's pin (signed when the table has a secret) beats the cohort and the
    breaker; a canary's sticky cohort from the first key source present, a draw without
    one; an open breaker sends the new side's share to legacy; shadow capture on legacy's
    side when the module mirrors (sampled at ``shadow.percent``, safe methods unless
    ``writes``). A retired module is never planned on legacy.
    """
    table = routes.table
    path = canonical_path(head.path)
    if path is None:
        ups = table.upstreams["legacy"]
        return Plan(None, None, REFUSED_PATH, "legacy", "legacy", ups.timeout)
    route = routes.router.route(head.method, path, canonical_host(head.host), head.values)
    if route is None:
        return Plan(None, None, UNCLAIMED_DECISION, "legacy", "legacy", table.upstreams["legacy"].timeout)
    module = route.module
    stage = module.stage
    pin: Side | None = None
    new_side: bool | None = None
    if stage in ("canary", "released"):
        cookies = head.cookies
        pins = table.pin
        pin_value = head.header(pins.header) if pins.header else None
        if not pin_value and pins.cookie and cookies:  # an empty header is no header (as nginx reads it)
            pin_value = cookie_value(cookies, pins.cookie)
        if pin_value and pins.secret is not None:
            pin_value = verify_pin(pin_value, pins.secret, now())  # unsigned, forged or expired: no pin
        pin = parse_pin(pin_value, module.name) if pin_value else None
        if stage == "canary" and pin is None:
            key = cohort_key(table, head)
            if key is None:
                new_side = draw() * 100 < module.weight
            else:
                new_side = on_new_side(bucket(module.name, key, table.cohort.buckets), module.weight, table.cohort.buckets)
    decision = decide(stage, module.weight, pin, new_side, False)
    if decision.side == "service" and stage != "retired" and pin is None:
        breaker = breakers.get(module.name)
        if breaker is not None and not breaker.allow():
            decision = BREAKER_OPEN
    shadow = module.shadow
    if decision.side == "service" or shadow is None or decision is BREAKER_OPEN or not (
            stage == "shadow" or (stage == "canary" and shadow.in_canary)) or not (
            shadow.percent >= 100 or draw() * 100 < shadow.percent):
        memo_key = (id(route), decision)  # the router keeps its routes alive as long as this memo
        p = routes.memo.get(memo_key)
        if p is None:
            p = routes.memo[memo_key] = _plain_plan(table, module, route, decision)
        return p
    timeout = table.upstreams[module.legacy].timeout
    if head.method in shadow.methods:
        return Plan(module, route, decision, "legacy", module.legacy, timeout, capture=True)
    return Plan(module, route, decision, "legacy", module.legacy, timeout, skip="unsafe")


def _plain_plan(table: RouteTable, module: Module, route: Route, decision: Decision) -> Plan:
    if decision.side == "service":
        return Plan(module, route, decision, "service", module.service, module.timeout or table.upstreams[module.service].timeout)
    return Plan(module, route, decision, "legacy", module.legacy, table.upstreams[module.legacy].timeout)


def cohort_key(table: RouteTable, head: RequestHead) -> str | None:
    """The request's cohort key: the proxy's cohort id when there is one, else the first
    configured source the request carries."""
    if head.cohort is not None:
        return f"id:{head.cohort}"
    for kind, name in table.cohort.sources:
        if kind == "cookie":
            value = cookie_value(head.cookies, name) if head.cookies else None
        elif kind == "header":
            value = head.header(name)
        else:
            value = head.client
        if value:
            return f"{kind}:{value}"
    return None


def cohort_id(table: RouteTable, head: RequestHead, new_id: Callable[[], str] = random_id) -> tuple[str, bool] | None:
    """The request's cohort id and whether the response must set the cookie, when the table
    has a cohort cookie (else ``None``): the cookie's id when well formed; else derived from
    the first ``key:`` source present, so a user's requests agree before the cookie comes
    back; else a new random one (``new_id``)."""
    cookie = table.cohort.cookie
    if cookie is None:
        return None
    value = cookie_value(head.cookies, cookie.name) if head.cookies else None
    if value is not None and COHORT_ID.fullmatch(value):
        return value, False
    key = cohort_key(table, head._replace(cohort=None))
    return (derived_id(key) if key is not None else new_id()), True


def after_failure(routes: Routes, failed: Plan, head: RequestHead, failure: Failure, replayable: bool,
                  may_have_seen: bool | None = None) -> Plan | Refusal:
    """The next attempt after ``failed`` failed, or why there is none.

    ``failure`` says how it failed (a refused connection, a 5xx, a timeout, a connection
    broken mid-exchange); ``may_have_seen`` whether the new service may have acted on the
    request (by default: all but a refused connection); ``replayable`` whether the request
    body is still in hand to send again. Only the new side falls back, to the module's
    legacy, under ``may_fall_back``'s rules: a request the service may have seen is
    resent only when it is idempotent or carries the route's idempotency key.
    """
    module = failed.module
    if failed.side != "service" or module is None:
        return "legacy serves it already"
    seen = failure not in ("refused", "tls") if may_have_seen is None else may_have_seen
    key = module.idempotency_key
    has_key = key is not None and head.header(key) is not None
    if not may_fall_back(module, module.stage, head.method, has_key, failure, seen):
        return "retired" if module.stage == "retired" else "not idempotent"
    if not replayable:
        return "body too large to replay"
    return Plan(module, failed.route, _FALLBACK, "legacy", module.legacy, routes.table.upstreams[module.legacy].timeout)


class Outcome(NamedTuple):
    """How one attempt ended: a response head came (``status``), or ``failure`` says how it
    failed, whether the upstream ``may_have_seen`` the request, and whether the connection
    was ``stale`` (a reused keep-alive connection closed before any byte came back)."""

    status: int = 0
    failure: Failure | None = None
    may_have_seen: bool = True
    stale: bool = False


class Next(NamedTuple):
    """What follows an attempt: ``respond`` with its answer, ``resend`` the same plan on a
    fresh connection, ``fallback`` to ``plan`` (legacy), or ``fail`` (a gateway error).
    ``breaker`` is the feedback for the module's circuit breaker; ``refusal`` why a failed
    new side was not resent to legacy."""

    action: Literal["respond", "resend", "fallback", "fail"]
    plan: Plan
    breaker: Literal["success", "failure"] | None = None
    refusal: Refusal | None = None


# a request resent after a stale keep-alive connection: the upstream saw none of it, but
# only methods that are safe to send twice are resent blind (as browsers and nginx do)
RESENDABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def next_attempt(routes: Routes, attempt: Plan, head: RequestHead, outcome: Outcome, replayable: bool) -> Next:
    """The decision after an attempt, pure: the stale-connection resend, the new side's 5xx
    and failure rules (``after_failure``) and the breaker's feedback, in one place.

    >>> from strangler_proxy.config import Match, Module, RouteTable, Upstream
    >>> up = {n: Upstream(n, "http", "127.0.0.1", p) for n, p in (("legacy", 8080), ("svc", 9000))}
    >>> routes = Routes.of(RouteTable("r.yaml", up, (Module("cases", (Match(path_prefix=("/cases",)),), "svc", "released", 100),)))
    >>> head = RequestHead("GET", "/cases/7", "portal", (), None, None)
    >>> first = plan(routes, head, lambda: 0.5)
    >>> next_attempt(routes, first, head, Outcome(status=503), True)[:3] == ("fallback", first._replace(
    ...     decision=_FALLBACK, side="legacy", upstream="legacy", timeout=30.0), "failure")
    True
    >>> next_attempt(routes, first, head, Outcome(failure="broken", stale=True), True).action
    'resend'
    """
    failure = outcome.failure
    if failure is not None and outcome.stale and head.method in RESENDABLE and replayable:
        return Next("resend", attempt)  # not the upstream's failure: no breaker feedback
    if attempt.side != "service":
        return Next("respond" if failure is None else "fail", attempt)
    if failure is None and outcome.status < 500:
        return Next("respond", attempt, "success")
    seen = outcome.may_have_seen if failure is not None else True
    nxt = after_failure(routes, attempt, head, failure or "5xx", replayable, seen)
    if isinstance(nxt, str):
        return Next("respond" if failure is None else "fail", attempt, "failure", nxt)
    return Next("fallback", nxt, "failure")
