"""The release state machine: one pure function from a release, the module's current setting
and an event to the next release and setting, or a refusal that says why and what to do.

Events are an operator's actions (``start``, ``pause``, ``resume``, ``promote``, ``abort``,
``undo``, ``retire``) and the analysis's verdicts (``pass``, ``fail``). The controller applies
what this returns through the store (one transaction with its ledger entry); the offline CLI
uses the same function. Rules, as Argo Rollouts and Flagger keep them:

- no event raises the new side's weight but a passed check or an operator's ``start``,
  ``resume`` or ``promote``; after ``abort`` (everyone on legacy) ``resume`` starts again at
  the first step, with its analysis (Argo's retry), never at the aborted weight;
- ``undo`` goes back to the previous step's setting, paused;
- what makes no sense is refused with the command that does: promoting a released module,
  pausing an aborted one, starting a release that runs.

>>> from strangler_proxy.model import ReleasePlan
>>> plan = ReleasePlan(steps=(10.0, 50.0))
>>> t = transition(plan, "cases", None, ("legacy", 0.0), "start", now=0.0, actor="ops")
>>> t.state.status, t.stage, t.weight, describe(plan, t.state, t.stage, t.weight)
('running', 'canary', 10.0, 'running at canary 10 %, step 1 of 2')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from strangler_proxy.control.release import rollback_target, step_setting
from strangler_proxy.model import ReleasePlan, Stage
from strangler_proxy.state import ReleaseState

__all__ = ["EVENTS", "Event", "Refusal", "Transition", "describe", "transition"]

Event = Literal["start", "pause", "resume", "promote", "skip", "abort", "undo", "retire", "pass", "fail"]
EVENTS: tuple[Event, ...] = ("start", "pause", "resume", "promote", "skip", "abort", "undo", "retire", "pass", "fail")


@dataclass(frozen=True, slots=True)
class Transition:
    state: ReleaseState
    stage: Stage | None  # the module's new setting; None: unchanged
    weight: float | None
    action: str  # the ledger's name for it: release.start, release.step, release.rollback...


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str


def _pct(weight: float) -> str:
    return f"{weight:g} %"


def describe(plan: ReleasePlan, state: ReleaseState, stage: str, weight: float) -> str:
    """``running at canary 50 %, step 2 of 3``: what an action left, steps counted from 1."""
    n = len(plan.steps)
    setting = f"canary {_pct(weight)}" if stage == "canary" else stage
    if stage == "retired":
        return "retired: legacy no longer serves it"
    if state.status == "released" or state.step >= n:
        return f"released: all {n} steps done" if stage == "released" else f"{state.status} at {setting}"
    if state.status == "aborted":
        return f"aborted: everyone on {setting} ('release resume' starts again at step 1 of {n})"
    if state.status == "rolled_back":
        return f"rolled back to {setting}, step {state.step + 1} of {n} ('release resume' analyses it again)"
    return f"{state.status} at {setting}, step {state.step + 1} of {n}"


def transition(plan: ReleasePlan, module: str, r: ReleaseState | None, current: tuple[str, float], event: Event, *,
               now: float, actor: str, reason: str = "", retire_refusal: str | None = None) -> Transition | Refusal:
    """The next release state for ``event``. ``current``: the module's stage and weight now
    (an operator may have set them by hand); ``reason``: a verdict's reason;
    ``retire_refusal``: why legacy may not be retired yet (``retire``), if it may not."""
    n = len(plan.steps)
    status = r.status if r is not None else "not started"
    stage_now, weight_now = current
    if event == "retire":
        if retire_refusal:
            return Refusal(retire_refusal)
        return Transition(ReleaseState(module, "released", n, now, 0, f"retired by {actor}"),
                          "retired", 100.0, "release.retire")
    if event == "start":
        if status in ("running", "paused"):
            return Refusal(f"a release is already {status} at step {r.step + 1} of {n}: "  # type: ignore[union-attr]
                           "'release promote', 'undo' or 'abort' it")
        if stage_now in ("released", "retired"):
            return Refusal(f"the module is {stage_now}: nothing to release (set its stage by hand to start over)")
        stage, weight = step_setting(plan, 0)
        was = f" (was {('canary ' + _pct(weight_now)) if stage_now == 'canary' else stage_now}, set by hand)" \
            if stage_now != "legacy" and (stage_now, weight_now) != (stage, weight) else ""
        return Transition(ReleaseState(module, "running", 0, now, 0, f"started by {actor}{was}"),
                          stage, weight, "release.start")
    if r is None:
        return Refusal("no release yet: 'release start' begins one")
    if event == "pause":
        if status != "running":
            return Refusal(f"the release is {status}: only a running release pauses")
        return Transition(replace(r, status="paused", reason=f"paused by {actor}"), None, None, "release.pause")
    if event == "resume":
        if status == "paused":
            stage, weight = step_setting(plan, r.step)
            return Transition(replace(r, status="running", step_started=now, failures=0, reason=f"resumed by {actor}"),
                              stage, weight, "release.resume")
        if status == "rolled_back":  # from the last safe step it went back to, analysed again
            stage, weight = step_setting(plan, r.step)
            return Transition(replace(r, status="running", step_started=now, failures=0,
                                      reason=f"resumed by {actor} after a rollback"), stage, weight, "release.resume")
        if status == "aborted":  # everyone went back to legacy: from the first step, with analysis
            stage, weight = step_setting(plan, 0)
            return Transition(ReleaseState(r.module, "running", 0, now, 0, f"resumed by {actor} after an abort: from step 1"),
                              stage, weight, "release.resume")
        return Refusal(f"the release is {status}: nothing to resume")
    if event in ("promote", "skip"):
        if status not in ("running", "paused"):
            hint = "'release start' begins a new one" if status != "rolled_back" else "'release resume' first"
            return Refusal(f"the release is {status}: nothing to promote ({hint})")
        nxt = n if event == "skip" else r.step + 1
        stage, weight = step_setting(plan, nxt)
        done = nxt >= n
        return Transition(ReleaseState(r.module, "released" if done else r.status, nxt, now, 0,
                                       f"promoted by {actor}" + (" (analysis skipped)" if event == "skip" else "")),
                          stage, weight, "release.promote")
    if event == "abort":
        if status == "aborted":  # a released module may be aborted: everyone back on legacy at once
            return Refusal("the release is aborted already: everyone is on legacy")
        return Transition(replace(r, status="aborted", reason=f"aborted by {actor}"), "legacy", 0.0, "release.abort")
    if event == "undo":
        if status == "aborted" or (r.step == 0 and status != "released"):
            return Refusal(f"the release is {status} at its first step: nothing to undo ('release abort' returns to legacy)"
                           if status != "aborted" else "the release is aborted: nothing to undo ('release resume' restarts it)")
        prev = min(r.step, n) - 1
        stage, weight = step_setting(plan, prev)
        return Transition(ReleaseState(r.module, "paused", prev, now, 0, f"undone by {actor}"), stage, weight, "release.undo")
    # the analysis's verdicts, for a running release only
    if status != "running":
        return Refusal(f"the release is {status}: no analysis runs")
    if event == "pass":
        nxt = r.step + 1
        stage, weight = step_setting(plan, nxt)
        return Transition(ReleaseState(r.module, "released" if nxt >= n else "running", nxt, now, 0, reason),
                          stage, weight, "release.step")
    failures = r.failures + 1
    if failures >= plan.failure_limit:
        stage, weight, index = rollback_target(plan, r.step)
        return Transition(ReleaseState(r.module, "rolled_back", max(index, 0), now, failures, f"rolled back: {reason}"),
                          stage, weight, "release.rollback")
    return Transition(replace(r, step_started=now, failures=failures,
                              reason=f"failed check {failures} of {plan.failure_limit}: {reason}"),
                      None, None, "release.check_failed")
