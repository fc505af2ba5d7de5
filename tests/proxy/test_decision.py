from __future__ import annotations

import pytest

from strangler_proxy.dataplane.breaker import CircuitBreaker
from strangler_proxy.model import SAFE_METHODS, Match, Module
from strangler_proxy.decision import decide, may_fall_back, parse_pin

M = Module("cases", (Match(path_prefix=("/cases",)),), "svc", "canary", 50, idempotent=SAFE_METHODS | {"PUT"}, idempotency_key="idempotency-key")


def test_stages() -> None:
    assert decide("legacy", 50, None, True, False).side == "legacy"
    assert decide("shadow", 50, None, True, False).side == "legacy"
    assert decide("canary", 50, None, True, False).side == "service"
    assert decide("canary", 50, None, False, False).side == "legacy"
    assert decide("released", 100, None, None, False).side == "service"
    assert decide("released", 100, None, None, True).side == "legacy"
    assert decide("retired", 100, "legacy", None, True).side == "service"  # no way back


def test_pins() -> None:
    assert parse_pin("new", "cases") == "service"
    assert parse_pin("kb=legacy, cases=new", "cases") == "service"
    assert parse_pin("kb=new", "cases") is None
    assert decide("canary", 0, "service", False, False).side == "service"


@pytest.mark.parametrize(
    ("method", "key", "failure", "stage", "expected"),
    [
        ("POST", False, "refused", "released", True),  # never seen: any method
        ("GET", False, "5xx", "released", True),
        ("PUT", False, "timeout", "canary", True),  # declared idempotent by the route
        ("DELETE", False, "5xx", "canary", False),
        ("POST", False, "5xx", "canary", False),
        ("POST", True, "5xx", "canary", True),  # idempotency key named and present
        ("GET", False, "refused", "retired", False),  # no legacy any more
    ],
)
def test_fallback_rules(method: str, key: bool, failure: str, stage: str, expected: bool) -> None:
    assert may_fall_back(M, stage, method, key, failure) is expected  # type: ignore[arg-type]


def test_breaker_opens_cools_down_and_closes() -> None:
    now = [0.0]
    changes: list[tuple[str, str]] = []
    b = CircuitBreaker(3, 10.0, clock=lambda: now[0], on_change=lambda a, c: changes.append((a, c)))
    for _ in range(2):
        b.failure()
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10.0
    assert b.allow() and b.state == "half_open"
    assert not b.allow()  # one trial at a time
    b.failure()
    assert b.state == "open"
    now[0] = 20.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"), ("half_open", "closed")]
