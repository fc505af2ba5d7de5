"""The decision core, pure: properties over any request head, draw and breaker state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_proxy.dataplane.breaker import CircuitBreaker
from strangler_proxy.model import SAFE_METHODS, Match, Module, Pin, RouteTable, Shadow, Stage, Upstream
from strangler_proxy.decision import Failure
from strangler_proxy.dispatch import RequestHead, Routes, after_failure, plan

UPSTREAMS = {n: Upstream(n, "http", "127.0.0.1", p, timeout=t) for n, p, t in (
    ("legacy", 8080, 30.0), ("svc", 9000, 5.0))}
STAGES: tuple[Stage, ...] = ("legacy", "shadow", "canary", "released", "retired")
METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH")
FAILURES: tuple[Failure, ...] = ("refused", "5xx", "timeout", "broken")


def routes(stage: Stage, weight: float = 50, shadow: Shadow | None = None, pins: bool = True) -> Routes:
    m = Module("cases", (Match(path_prefix=("/cases",)),), "svc", stage, weight, idempotent=SAFE_METHODS | {"PUT"},
               idempotency_key="idempotency-key", shadow=shadow)
    pin = Pin(header="x-strangler-side", cookie="strangler_side", unsigned=True) if pins else Pin()
    return Routes.of(RouteTable("r.yaml", UPSTREAMS, (m,), pin=pin))


def head(method: str = "GET", path: str = "/cases/7", user: str | None = None, pin: str | None = None,
         key: bool = False) -> RequestHead:
    headers = [(b"host", b"portal")]
    if pin is not None:
        headers.append((b"x-strangler-side", pin.encode()))
    if key:
        headers.append((b"idempotency-key", b"k-1"))
    return RequestHead(method, path, "portal", headers, f"JSESSIONID={user}" if user else None, "10.1.2.3")


class Open:
    def allow(self) -> bool:
        return False


users = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20)
draws = st.floats(0, 1, exclude_max=True)


@settings(max_examples=300)
@given(users, st.floats(0, 100), st.floats(0, 100))
def test_a_cohort_only_moves_to_the_new_side_as_the_weight_rises(user: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    before = plan(routes("canary", low), head(user=user), lambda: 0.5).side
    after = plan(routes("canary", high), head(user=user), lambda: 0.5).side
    assert not (before == "service" and after == "legacy")


@given(st.sampled_from(METHODS), st.sampled_from(("new", "legacy", None)), draws, st.booleans(), st.booleans())
def test_a_retired_module_never_plans_legacy(method: str, pin: str | None, draw: float, open_: bool, key: bool) -> None:
    r = routes("retired", 0)
    breakers = {"cases": Open()} if open_ else {}
    p = plan(r, head(method, pin=pin, key=key), lambda: draw, breakers)
    assert (p.side, p.upstream) == ("service", "svc")
    for failure in FAILURES:
        assert after_failure(r, p, head(method, key=key), failure, True) == "retired"


@given(st.sampled_from(("canary", "released")), st.sampled_from(METHODS), st.booleans())
def test_after_a_refused_connection_legacy_serves_every_method(stage: Stage, method: str, key: bool) -> None:
    r = routes(stage, 100)
    p = plan(r, head(method, key=key), lambda: 0.0)
    assert p.side == "service"
    nxt = after_failure(r, p, head(method, key=key), "refused", True)
    assert not isinstance(nxt, str)
    assert (nxt.side, nxt.upstream, nxt.timeout) == ("legacy", "legacy", 30.0)
    # the upstream error says it never saw the request: that alone decides
    assert not isinstance(after_failure(r, p, head(method), "5xx", True, may_have_seen=False), str)


@given(st.sampled_from(("canary", "released")), st.sampled_from(("POST", "PATCH")),
       st.sampled_from(("5xx", "timeout", "broken")), st.booleans())
def test_unsafe_methods_are_never_replayed_without_their_key(stage: Stage, method: str, failure: Failure, replayable: bool) -> None:
    r = routes(stage, 100)
    p = plan(r, head(method), lambda: 0.0)
    assert after_failure(r, p, head(method), failure, replayable) == "not idempotent"
    keyed = after_failure(r, p, head(method, key=True), failure, replayable)
    if method == "POST" and replayable:
        assert not isinstance(keyed, str) and keyed.side == "legacy"
    else:
        assert isinstance(keyed, str)


def test_a_body_not_kept_cannot_be_replayed() -> None:
    r = routes("released", 100)
    p = plan(r, head("GET"), lambda: 0.0)
    assert after_failure(r, p, head("GET"), "5xx", False) == "body too large to replay"
    assert after_failure(r, p, head("GET"), "refused", False) == "body too large to replay"


def test_legacy_plans_do_not_fall_back() -> None:
    r = routes("legacy")
    p = plan(r, head(), lambda: 0.0)
    assert after_failure(r, p, head(), "refused", True) == "legacy serves it already"


def test_the_breaker_moves_the_new_share_to_legacy_but_not_a_pin() -> None:
    r = routes("released", 100)
    assert plan(r, head(), lambda: 0.0, {"cases": Open()}).why == "circuit breaker open"
    assert plan(r, head(pin="new"), lambda: 0.0, {"cases": Open()}).side == "service"
    b = CircuitBreaker(1, 60)
    b.failure()
    assert plan(r, head(), lambda: 0.0, {"cases": b}).side == "legacy"


def test_without_a_key_the_draw_decides_and_timeouts_follow_the_side() -> None:
    r = routes("canary", 30)
    assert plan(r, head(), lambda: 0.29).upstream == "svc"
    assert plan(r, head(), lambda: 0.30).upstream == "legacy"
    assert plan(r, head(), lambda: 0.29).timeout == 5.0
    assert plan(r, head(), lambda: 0.30).timeout == 30.0


def test_shadow_capture_rule() -> None:
    shadow = Shadow(percent=50)
    r = routes("shadow", 0, shadow)
    assert plan(r, head("GET"), lambda: 0.2).capture
    assert not plan(r, head("GET"), lambda: 0.7).capture  # not sampled
    post = plan(r, head("POST"), lambda: 0.2)
    assert not post.capture and post.skip == "unsafe"
    assert not plan(routes("canary", 0, shadow), head("GET"), lambda: 0.2).capture  # in_canary is off
    assert plan(routes("canary", 0, Shadow(in_canary=True)), head("GET", user="u"), lambda: 0.9).capture
    # the breaker's legacy is not a comparison sample
    assert not plan(routes("canary", 100, Shadow(in_canary=True)), head("GET"), lambda: 0.0, {"cases": Open()}).capture


def test_refused_and_unclaimed_paths() -> None:
    r = routes("released", 100)
    assert plan(r, head(path="/cases./7"), lambda: 0.0).refused
    unclaimed = plan(r, head(path="/kb/1"), lambda: 0.0)
    assert (unclaimed.module, unclaimed.upstream, unclaimed.explain()) == (None, "legacy", "no module claims it: legacy")
    assert plan(r, head(path="/cases;jsessionid=1/7"), lambda: 0.0).explain() == \
        "path prefix /cases -> module cases (released): stage released"
