"""Release decisions: pure functions over plain values.

A release walks a module through its plan's steps (``shadow`` until the gate passes, then
canary weights, then ``released``). Each step is judged on its own window of traffic:
the new side's error rate against legacy's plus a margin, its p99 against legacy's times a
factor, the shadow gate for a shadow step. Too little traffic means *wait*: a quiet module
neither passes nor fails by accident. Failures past the plan's limit roll back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from strangler_proxy.model import ReleaseThresholds, ReleasePlan, Stage

Verdict = Literal["wait", "pass", "fail"]
Status = Literal["running", "paused", "released", "rolled_back", "aborted"]
MIN_LATENCY_SAMPLES = 50  # per side, before p99s are compared at all


_BASE = 1e-4  # the latency histogram's first bucket edge: 0.1 ms
_RATIO = 1.05  # each bucket 5 % wider than the one before: p99 within 2.5 %
_LOG_RATIO = math.log(_RATIO)


def _bucket(seconds: float) -> int:
    return 0 if seconds <= _BASE else 1 + int(math.log(seconds / _BASE) / _LOG_RATIO)


def _middle(index: int) -> float:
    """A bucket's geometric middle (bucket 0 holds everything up to 0.1 ms)."""
    return _BASE if index == 0 else _BASE * _RATIO ** (index - 0.5)


@dataclass
class Window:
    """One side's traffic during a step: counts and a latency histogram (log buckets 5 %
    apart), so the windows of several workers and replicas add up exactly."""

    requests: int = 0
    errors: int = 0
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float, error: bool, count: int = 1) -> None:
        self.requests += count
        self.errors += error * count
        i = _bucket(seconds)
        self.buckets[i] = self.buckets.get(i, 0) + count

    def merge(self, other: Window) -> Window:
        buckets = dict(self.buckets)
        for i, n in other.buckets.items():
            buckets[i] = buckets.get(i, 0) + n
        return Window(self.requests + other.requests, self.errors + other.errors, buckets)

    def p99(self) -> float | None:
        return self.quantile(0.99, MIN_LATENCY_SAMPLES)

    def quantile(self, q: float, minimum: int = 1) -> float | None:
        """The latency below which ``q`` of the requests fell, within 2.5 %; None with fewer
        than ``minimum`` requests."""
        n = sum(self.buckets.values())
        if n < max(1, minimum):
            return None
        rank = min(n - 1, int(q * n))  # the sample a sorted list would hold at this index
        seen = 0
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen > rank:
                return _middle(i)
        return None  # not reached: the counts add up to n

    def figures(self) -> dict[str, Any]:
        """Requests, errors, error rate and p99 (ms), as status and the ledger show them."""
        p99 = self.quantile(0.99, minimum=1)
        return {"requests": self.requests, "errors": self.errors,
                "error_rate": round(self.errors / self.requests, 6) if self.requests else None,
                "p99_ms": None if p99 is None else round(p99 * 1000, 3)}

    def to_json(self) -> dict[str, object]:
        return {"requests": self.requests, "errors": self.errors, "buckets": {str(i): n for i, n in self.buckets.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(int(data["requests"]), int(data["errors"]), {int(i): int(n) for i, n in data["buckets"].items()})


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str


def judge_canary(new: Window, legacy: Window, a: ReleaseThresholds) -> Judgement:
    if new.requests < a.min_requests:
        return Judgement("wait", f"{new.requests} of {a.min_requests} requests on the new side so far")
    new_rate = new.errors / new.requests
    legacy_rate = legacy.errors / legacy.requests if legacy.requests else 0.0
    if new_rate > legacy_rate + a.error_rate_margin:
        return Judgement("fail", f"error rate {new_rate:.2%} of {new.requests} requests on the new side > legacy's "
                                 f"{legacy_rate:.2%} + {a.error_rate_margin:.2%}")
    new_p99, legacy_p99 = new.p99(), legacy.p99()
    if (new_p99 is not None and legacy_p99 is not None and new_p99 > legacy_p99 * a.p99_factor
            and new_p99 - legacy_p99 > a.p99_floor_ms / 1000):
        return Judgement("fail", f"p99 {new_p99 * 1000:.1f} ms on the new side > legacy's {legacy_p99 * 1000:.1f} ms x {a.p99_factor:g}")
    return Judgement("pass", f"error rate {new_rate:.2%} (legacy {legacy_rate:.2%}), {new.requests} requests")


def judge_shadow(interval: tuple[float, float] | None, compared: int, a: ReleaseThresholds) -> Judgement:
    """Pass when the match rate's 95 % interval lies at or above the gate, fail when it lies
    below; while it straddles the gate the evidence is not enough either way (a perfect
    match over too few requests is no failure): wait for more."""
    if interval is None:
        return Judgement("wait", f"{compared} shadow comparisons so far: not enough for a verdict")
    low, high = interval
    if low >= a.shadow_gate:
        return Judgement("pass", f"shadow match lower bound {low:.4f} >= {a.shadow_gate:g} ({compared} compared)")
    if high < a.shadow_gate:
        return Judgement("fail", f"shadow match upper bound {high:.4f} < {a.shadow_gate:g} ({compared} compared)")
    return Judgement("wait", f"shadow match between {low:.4f} and {high:.4f} over {compared} compared: "
                             f"not yet sure it reaches {a.shadow_gate:g}")


def step_setting(plan: ReleasePlan, index: int) -> tuple[Stage, float]:
    """The stage and weight a step puts the module in; past the last step: released."""
    if index >= len(plan.steps):
        return ("released", 100.0)
    step = plan.steps[index]
    if step == "shadow":
        return ("shadow", 0.0)
    return ("canary", float(step))


def rollback_target(plan: ReleasePlan, index: int) -> tuple[Stage, float, int]:
    """Where a failed step goes back to: the last safe weight, or legacy; and that step's index."""
    if plan.rollback == "last_safe":
        for i in range(index - 1, -1, -1):
            stage, weight = step_setting(plan, i)
            if stage == "canary":
                return (stage, weight, i)
    return ("legacy", 0.0, -1)
