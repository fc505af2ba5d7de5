"""The release state machine (``control/transition``), property-tested over random event
sequences, and the cases issue 26 found by hand."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_proxy.control.release import step_setting
from strangler_proxy.control.transition import EVENTS, Refusal, Transition, describe, transition
from strangler_proxy.model import ReleasePlan
from strangler_proxy.state import ReleaseState

PLANS = st.builds(
    lambda steps, shadow, limit, rollback: ReleasePlan(steps=(("shadow",) if shadow else ()) + tuple(steps),
                                                       failure_limit=limit, rollback=rollback),
    st.lists(st.sampled_from([1.0, 5.0, 10.0, 25.0, 50.0, 75.0]), min_size=1, max_size=4, unique=True).map(sorted),
    st.booleans(), st.integers(1, 3), st.sampled_from(["legacy", "last_safe"]))
RAISING = {"start", "resume", "promote", "skip", "pass"}  # an operator's say-so or a passed check


def weight_of(stage: str, weight: float) -> float:
    return {"canary": weight, "released": 100.0, "retired": 100.0}.get(stage, 0.0)


@settings(max_examples=400, deadline=None)
@given(PLANS, st.lists(st.sampled_from(EVENTS), max_size=30))
def test_no_sequence_of_events_breaks_the_rules(plan: ReleasePlan, events: list[str]) -> None:
    r: ReleaseState | None = None
    setting: tuple[str, float] = ("legacy", 0.0)
    aborted = False  # since the last abort, no check has passed and no step was started again
    history: list[tuple[ReleaseState | None, tuple[str, float]]] = []
    for i, event in enumerate(events):
        t = transition(plan, "m", r, setting, event, now=float(i), actor="t", reason="why",  # type: ignore[arg-type]
                       retire_refusal="not quiet" if i % 2 else None)
        if isinstance(t, Refusal):
            assert t.reason  # always says why
            continue
        assert isinstance(t, Transition)
        new = setting if t.stage is None else (t.stage, t.weight if t.weight is not None else 0.0)
        before, after = weight_of(*setting), weight_of(*new)
        if after > before:
            assert event in RAISING or event == "retire", (event, setting, new)
        if event == "abort":
            assert new == ("legacy", 0.0)
            aborted = True
        elif aborted and event == "resume":
            # after an abort, resume never puts more users on the service than the first step does
            assert after <= weight_of(*step_setting(plan, 0)) and t.state.step == 0
            aborted = False
        elif event in ("start", "pass", "promote", "skip", "retire"):
            aborted = False
        if event == "undo":
            assert t.state.status == "paused" and (t.stage, t.weight) == step_setting(plan, t.state.step)
            assert t.state.step < (r.step if r is not None else 0) or r is not None and r.step >= len(plan.steps)
        assert 0 <= t.state.step <= len(plan.steps)
        history.append((r, setting))
        r, setting = t.state, new
        assert "step 0" not in describe(plan, r, *setting) and f"step {len(plan.steps) + 1} of" not in describe(plan, r, *setting)


def test_resume_after_abort_starts_again_at_the_first_step_with_analysis() -> None:
    plan = ReleasePlan(steps=(10.0, 50.0, 100.0))
    r = ReleaseState("orders", "running", 2, 0.0, 0, "promoted")
    t = transition(plan, "orders", r, ("canary", 100.0), "abort", now=1.0, actor="ops")
    assert isinstance(t, Transition) and (t.stage, t.weight) == ("legacy", 0.0)
    t = transition(plan, "orders", t.state, ("legacy", 0.0), "resume", now=2.0, actor="ops")
    assert isinstance(t, Transition) and t.state.step == 0 and t.state.status == "running" and t.weight == 10.0
    assert describe(plan, t.state, t.stage or "", t.weight or 0) == "running at canary 10 %, step 1 of 3"


def test_what_makes_no_sense_is_refused_with_the_command_that_does() -> None:
    plan = ReleasePlan(steps=(10.0, 50.0))
    released = ReleaseState("m", "released", 2, 0.0, 0, "all steps passed")
    t = transition(plan, "m", released, ("released", 100.0), "promote", now=1.0, actor="ops")
    assert isinstance(t, Refusal) and "released: nothing to promote" in t.reason
    running = ReleaseState("m", "running", 1, 0.0, 0, "")
    t = transition(plan, "m", running, ("canary", 50.0), "start", now=1.0, actor="ops")
    assert isinstance(t, Refusal) and "already running at step 2 of 2" in t.reason
    t = transition(plan, "m", None, ("canary", 50.0), "start", now=1.0, actor="ops")  # a canary set by hand
    assert isinstance(t, Transition) and t.weight == 10.0 and "(was canary 50 %, set by hand)" in t.state.reason
    aborted = ReleaseState("m", "aborted", 1, 0.0, 0, "")
    for event in ("pause", "undo", "abort"):
        t = transition(plan, "m", aborted, ("legacy", 0.0), event, now=1.0, actor="ops")  # type: ignore[arg-type]
        assert isinstance(t, Refusal), event
