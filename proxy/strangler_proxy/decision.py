"""Which side serves a request, and whether a failed request may be retried on legacy.

Pure functions over plain values: the app gathers the inputs, these decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from strangler_proxy.model import Module, Stage

Side = Literal["legacy", "service"]
Failure = Literal["refused", "tls", "5xx", "timeout", "broken"]  # refused, tls: the service never saw it


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """A side and why. Decisions are shared constants, compared and hashed by identity."""

    side: Side
    why: str


# Decisions are shared constants: the hot path allocates nothing to say why.
_STAGE_LEGACY = Decision("legacy", "stage legacy")
_STAGE_SHADOW = Decision("legacy", "stage shadow")
_RETIRED = Decision("service", "stage retired: legacy never serves it")
_PIN_NEW = Decision("service", "pinned to the new service")
_PIN_LEGACY = Decision("legacy", "pinned to legacy")
BREAKER_OPEN = Decision("legacy", "circuit breaker open")
_RELEASED = Decision("service", "stage released")
_NEW_COHORT = Decision("service", "canary: the request's cohort is on the new side")
_LEGACY_COHORT = Decision("legacy", "canary: the request's cohort is on the legacy side")
UNCLAIMED_DECISION = Decision("legacy", "no module claims it")
REFUSED_PATH = Decision("legacy", "path refused: a NUL, a backslash or a segment ending in '.' (400)")


def parse_pin(value: str | None, module: str) -> Side | None:
    """``new``/``legacy`` for every module, or ``cases=new,kb=legacy`` per module."""
    if not value:
        return None
    for part in value.split(","):
        name, sep, side = part.strip().partition("=")
        if not sep:
            side, name = name, module
        if name.strip() == module:
            side = side.strip().lower()
            if side in ("new", "service"):
                return "service"
            if side == "legacy":
                return "legacy"
    return None


def decide(stage: Stage, weight: float, pin: Side | None, new_side: bool | None, breaker_open: bool) -> Decision:
    """The side for one request.

    ``new_side`` is the cohort's answer (``None`` when the request carries no key and the
    caller drew at random instead); ``pin`` an explicit tester pin.
    """
    if stage in ("legacy", "shadow"):
        return _STAGE_LEGACY if stage == "legacy" else _STAGE_SHADOW
    if stage == "retired":
        return _RETIRED
    if pin is not None:
        return _PIN_NEW if pin == "service" else _PIN_LEGACY
    if breaker_open:
        return BREAKER_OPEN
    if stage == "released":
        return _RELEASED
    return _NEW_COHORT if new_side else _LEGACY_COHORT


def may_fall_back(module: Module, stage: Stage, method: str, has_idempotency_key: bool, failure: Failure,
                  may_have_seen: bool | None = None) -> bool:
    """Whether a request that failed on the new service may be sent to legacy.

    A refused connection means the service never saw the request (``may_have_seen`` is
    false): any method is safe to resend. After a 5xx, a timeout or a broken connection
    the service may have acted on it: only idempotent methods are resent, and a POST only
    with the idempotency-key header the route names. A retired module has no legacy to
    fall back to.
    """
    if stage == "retired":
        return False
    if not (failure not in ("refused", "tls") if may_have_seen is None else may_have_seen):
        return True
    if method in module.idempotent:
        return True
    return method == "POST" and module.idempotency_key is not None and has_idempotency_key
