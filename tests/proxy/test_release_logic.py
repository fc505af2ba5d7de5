"""The release decisions, as pure functions."""

from __future__ import annotations

from strangler_proxy.model import ReleaseThresholds, ReleasePlan
from strangler_proxy.control.release import Window, judge_canary, judge_shadow, rollback_target, step_setting

A = ReleaseThresholds(error_rate_margin=0.01, p99_factor=1.5, p99_floor_ms=5, min_requests=50)


def window(n: int, errors: int = 0, ms: float = 10.0) -> Window:
    w = Window()
    for i in range(n):
        w.add(ms / 1000, i < errors)
    return w


def test_too_little_traffic_waits_never_passes_or_fails() -> None:
    assert judge_canary(window(49, errors=49), window(1000), A).verdict == "wait"


def test_error_rate_against_legacy_plus_margin() -> None:
    assert judge_canary(window(100, errors=1), window(100, errors=1), A).verdict == "pass"
    assert judge_canary(window(100, errors=5), window(100, errors=1), A).verdict == "fail"
    assert judge_canary(window(100, errors=2), window(0), A).verdict == "fail"  # no legacy traffic: baseline 0


def test_p99_against_legacy_times_factor_above_a_floor() -> None:
    assert judge_canary(window(100, ms=40), window(100, ms=10), A).verdict == "fail"
    assert judge_canary(window(100, ms=2.0), window(100, ms=0.5), A).verdict == "pass"  # 4x, but within 5 ms
    assert judge_canary(window(100, ms=14), window(100, ms=10), A).verdict == "pass"


def test_shadow_gate() -> None:
    assert judge_shadow(None, 10, A).verdict == "wait"
    assert judge_shadow((0.995, 0.999), 1000, A).verdict == "pass"
    assert judge_shadow((0.95, 0.98), 1000, A).verdict == "fail"  # confidently under the gate
    # a perfect match over 108 requests: the interval straddles 0.99, which is no failure (issue 23, item 9)
    from strangler_proxy.shadow.evidence import wilson

    j = judge_shadow(wilson(108, 108), 108, A)
    assert j.verdict == "wait" and "not yet sure" in j.reason


def test_steps_and_rollback_targets() -> None:
    plan = ReleasePlan(steps=("shadow", 1.0, 5.0, 25.0))
    assert [step_setting(plan, i) for i in range(5)] == [("shadow", 0.0), ("canary", 1.0), ("canary", 5.0), ("canary", 25.0), ("released", 100.0)]
    assert rollback_target(plan, 3) == ("canary", 5.0, 2)
    assert rollback_target(plan, 1) == ("legacy", 0.0, -1)
    assert rollback_target(ReleasePlan(steps=(1.0, 5.0), rollback="legacy"), 1) == ("legacy", 0.0, -1)
