"""The release controller: walks modules through their plans, judged on live traffic.

One controller leads (the single proxy, the workers' parent, the replica holding the leader
lock): every tick it reads each module's release state from the store, judges the current
step on the sum of the traffic windows every process publishes, and advances, waits or
rolls back. Every transition, with its reason and actor, goes through the
state store in one transaction with its ledger entry, so a restart resumes where it was.
Manual actions (start, pause, resume, promote, abort, undo) arrive through the admin API.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

from strangler_proxy.control.webhooks import confirm as confirm_gates
from strangler_proxy.model import Module, RELEASE_ACTIONS, Webhook
from strangler_proxy.errors import ProxyError
from strangler_proxy.control.release import Judgement, Window, judge_canary, judge_shadow, rollback_target, step_setting
from strangler_proxy.control.transition import Event, Refusal, Transition, describe, transition
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.state import ReleaseState, Store

__all__ = ["Controller", "Windows", "release_status"]  # public (the CLI's and loadtests' imports are checked against it)

GATE_RETRY = 10.0  # seconds between two askings of a plan's gate hooks while they say no
FORWARD = frozenset({"release.start", "release.step", "release.promote", "release.resume", "release.released"})



class Windows:
    """This process's traffic per module and side since the current step began (recorded by
    the app), published to the state store with the step it belongs to (``snapshot``) so
    that the leader judges each step on every worker's and replica's traffic."""

    def __init__(self, source: str | None = None) -> None:
        self.source = source or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.current: dict[tuple[str, str], Window] = {}
        self.keys: dict[str, float] = {}  # module -> the start of the step its window counts

    def observe(self, module: str, side: str, seconds: float, error: bool, count: int = 1) -> None:
        w = self.current.get((module, side))
        if w is None:
            w = self.current[(module, side)] = Window()
        w.add(seconds, error, count)

    def take(self, module: str) -> tuple[Window, Window]:
        return self.current.get((module, "service"), Window()), self.current.get((module, "legacy"), Window())

    def reset(self, module: str, key: float | None = None) -> None:
        self.current.pop((module, "service"), None)
        self.current.pop((module, "legacy"), None)
        if key is not None:
            self.keys[module] = key

    def align(self, running: dict[str, float]) -> None:
        """Follow the steps the store says are current: a module whose step changed starts
        a new window; one no longer released is forgotten."""
        for module, key in running.items():
            if self.keys.get(module) != key:
                self.reset(module, key)
        for module in [m for m in self.keys if m not in running]:
            self.reset(module)
            del self.keys[module]

    def snapshot(self, open_breakers: Collection[str] = ()) -> list[tuple[str, float, str]]:
        """(module, step key, JSON of both sides and whether this process's breaker for the
        module is open) for each module with traffic in its step or an open breaker."""
        out = []
        for module, key in list(self.keys.items()):
            new, legacy = self.take(module)
            breaker = module in open_breakers
            if new.requests or legacy.requests or breaker:
                out.append((module, key, json.dumps({"service": new.to_json(), "legacy": legacy.to_json(),
                                                     "breaker_open": breaker})))
        return out


class Controller:
    def __init__(self, runtime: Runtime, store: Store, windows: Windows,
                 shadow_bound: Callable[[str, int], tuple[tuple[float, float] | None, int]],
                 quiet_for: Callable[[str], float] = lambda m: 0.0,
                 clock: Callable[[], float] = time.time,
                 confirm: Callable[[Sequence[Webhook], dict[str, object]], str | None] = confirm_gates,
                 external: Callable[[], object] | None = None, log: Callable[[str], None] = lambda m: None) -> None:
        self.quiet_for = quiet_for
        # applies the current table to an external data plane (data_plane: in the route file);
        # raises ProxyError when the plane refuses it: that step fails and is rolled back
        self.external = external
        self.log = log
        self.confirm = confirm  # asks a plan's gate hooks; None when all said yes
        self.gate_asked: dict[str, float] = {}  # module -> when its gates were last asked
        self.events: list[tuple[tuple[Webhook, ...], dict[str, object]]] = []  # (webhooks, event) to send
        self.runtime = runtime
        self.store = store
        self.windows = windows
        self.shadow_bound = shadow_bound  # module, min samples -> (Wilson interval or None, compared)
        self.clock = clock
        self.last: dict[str, Judgement] = {}

    def _plan(self, name: str) -> Module:
        m = self.runtime.snapshot.modules.get(name)
        if m is None:
            raise ProxyError(f"unknown module {name!r}")
        if m.release is None:
            raise ProxyError(f"module {name!r} has no release plan in the route file")
        return m

    def _apply(self, r: ReleaseState, stage: str | None, weight: float | None, actor: str, action: str,
               evidence: dict[str, Any] | None = None) -> ReleaseState:
        self.store.put_release(r, stage, weight, actor, action, evidence)  # type: ignore[arg-type]
        if action != "release.check_failed":
            self.last.pop(r.module, None)  # a new step (or none): the last check was of the one before
        self.runtime.set_overrides(self.store.overrides())
        if self.external is not None and stage is not None:
            try:
                self.external()
            except ProxyError as exc:
                if action in FORWARD:
                    return self._apply_failed(r, str(exc))
                self.log(f"release {r.module}: {action}: the data plane refused it: {exc}")
        self.windows.reset(r.module, r.step_started)
        m = self.runtime.snapshot.modules.get(r.module)
        if m is not None and m.release is not None and m.release.webhooks:
            self.events.append((m.release.webhooks, {
                "module": r.module, "action": action, "status": r.status, "step": r.step, "stage": m.stage,
                "weight": m.weight, "actor": actor, "reason": r.reason, "ts": self.clock()}))
        return r

    def _apply_failed(self, r: ReleaseState, why: str) -> ReleaseState:
        """The data plane refused a step (it keeps its last good configuration): a failed
        step, rolled back as a failed analysis would be."""
        m = self.runtime.snapshot.modules.get(r.module)
        plan = m.release if m is not None else None
        # the step the plane refused is r.step; what it still runs is the last safe one before it
        stage, weight, back = rollback_target(plan, r.step) if plan is not None else ("legacy", 0.0, -1)
        self.log(f"release {r.module}: the data plane refused step {r.step}: {why}; rolled back")
        return self._apply(ReleaseState(r.module, "rolled_back", max(back, 0), self.clock(), r.failures + 1,
                                        f"rolled back: the data plane refused the step: {why}"),
                           stage, weight, "controller", "release.rollback")

    def aggregate(self, module: str, key: float) -> tuple[Window, Window]:
        """The step's traffic on each side: the sum of every process's published window."""
        new, legacy, _ = self._evidence(module, key)
        return new, legacy

    def _evidence(self, module: str, key: float) -> tuple[Window, Window, int]:
        """The summed windows, and how many processes report the module's breaker open."""
        return _summed(self.store, module, key)

    def retire_refusal(self, m: Module) -> str | None:
        """Why ``m`` may not be retired yet, or None: legacy must have served none of its
        requests, fallbacks included, during the module's retire window."""
        quiet = self.quiet_for(m.name)
        if quiet < m.retire_window:
            return (f"legacy served module {m.name!r} {quiet:.0f} s ago; retiring needs {m.retire_window:g} s "
                    "without a legacy request or fallback")
        return None

    # -- the loop ------------------------------------------------------------------------
    def tick(self) -> None:
        for state in self.store.releases():
            if state.status == "running":
                m = self.runtime.snapshot.modules.get(state.module)
                if m is not None and m.release is not None:
                    self._step(m, state)

    def _step(self, m: Module, r: ReleaseState) -> None:
        plan = m.release
        assert plan is not None
        now = self.clock()
        if r.step >= len(plan.steps):
            self._apply(replace(r, status="released", reason="all steps passed"), "released", 100.0, "controller", "release.released")
            return
        if now - r.step_started < plan.interval:
            return
        stage, _ = step_setting(plan, r.step)
        evidence: dict[str, Any]
        if stage == "shadow":
            bound, compared = self.shadow_bound(m.name, m.shadow.min_samples if m.shadow else 100)
            j = judge_shadow(bound, compared, plan.analysis)
            evidence = {"shadow": {"compared": compared, "interval": None if bound is None else list(bound)}}
        else:
            new, legacy, open_breakers = self._evidence(m.name, r.step_started)
            evidence = {"legacy": legacy.figures(), "new": new.figures(), "breaker_open_in": open_breakers}
            if self.runtime.snapshot.breakers[m.name].state == "open" or open_breakers:
                # a breaker keeps traffic off a failing service (in this process or any other
                # worker or replica): that is a verdict, not a quiet step
                j = Judgement("fail", "circuit breaker open: the new service keeps failing")
            else:
                j = judge_canary(new, legacy, plan.analysis)
        self.last[m.name] = j
        if j.verdict == "wait":
            return
        if j.verdict == "pass":
            stage, weight = step_setting(plan, r.step + 1)
            if any(h.gate for h in plan.webhooks):
                if now - self.gate_asked.get(m.name, 0.0) < GATE_RETRY:
                    return
                self.gate_asked[m.name] = now
                refused = self.confirm(plan.webhooks, {
                    "module": m.name, "step": r.step, "next_stage": stage, "next_weight": weight,
                    "reason": j.reason, "ts": now})
                if refused is not None:
                    self.last[m.name] = Judgement("wait", f"{j.reason}; waiting for approval: {refused}")
                    return
            self.gate_asked.pop(m.name, None)  # the next step's gates are asked as soon as it passes
        t = transition(plan, m.name, r, (m.stage, m.weight), j.verdict, now=now, actor="analysis", reason=j.reason)
        if isinstance(t, Transition):
            self._take(t, "analysis", evidence)  # the ledger keeps the figures the verdict was taken on

    def _take(self, t: Transition, actor: str, evidence: dict[str, Any] | None = None) -> ReleaseState:
        return self._apply(t.state, t.stage, t.weight, actor, t.action, evidence)

    # -- manual actions ------------------------------------------------------------------
    def act(self, name: str, action: str, actor: str, skip_analysis: bool = False) -> ReleaseState:
        """An operator's action through the state machine; ``ProxyError`` with the reason
        (and the command that does make sense) when it is refused."""
        if action not in RELEASE_ACTIONS:
            raise ProxyError(f"unknown action {action!r}; expected one of {', '.join(RELEASE_ACTIONS)}")
        m = self._plan(name)
        assert m.release is not None
        event: Event = "skip" if action == "promote" and skip_analysis else action  # type: ignore[assignment]
        t = transition(m.release, name, self.store.release(name), (m.stage, m.weight), event, now=self.clock(), actor=actor,
                       retire_refusal=self.retire_refusal(m) if action == "retire" else None)
        if isinstance(t, Refusal):
            raise ProxyError(f"release {action} {name}: refused: {t.reason}")
        return self._take(t, actor)

    def describe(self, name: str) -> str:
        """What the module's release is now, as every action reports it."""
        m = self.runtime.snapshot.modules.get(name)
        r = self.store.release(name)
        if m is None or m.release is None or r is None:
            return "no release"
        return describe(m.release, r, m.stage, m.weight)

    def _fallbacks(self, module: str) -> int:
        """Requests of ``module`` legacy answered after the service failed, since the start."""
        return int(sum(sample.value for metric in self.runtime.metrics.fallbacks.collect() for sample in metric.samples
                       if sample.name.endswith("_total") and sample.labels.get("module") == module))

    def status(self) -> list[dict[str, object]]:
        snap = self.runtime.snapshot
        return release_status(tuple(snap.modules.values()), self.store, self.clock(), self.last,
                              {name: b.state for name, b in snap.breakers.items()}, self._fallbacks)


def release_status(modules: Sequence[Module], store: Store, now: float, last: dict[str, Judgement] | None = None,
                   breakers: dict[str, str] | None = None, fallbacks: Callable[[str], int] | None = None
                   ) -> list[dict[str, object]]:
    """Each module with a release plan: its setting, its release, the step's evidence (the
    windows every process published), and, from a running proxy, its last check, breaker
    and fallbacks. ``modules``: effective (overrides applied). The offline CLI calls it with
    the store alone."""
    out: list[dict[str, object]] = []
    for m in modules:
        if m.release is None:
            continue
        r = store.release(m.name)
        j = (last or {}).get(m.name)
        new, legacy, _ = _summed(store, m.name, r.step_started) if r else (Window(), Window(), 0)
        out.append({
            "module": m.name, "stage": m.stage, "weight": m.weight,
            "status": r.status if r else "not started", "step": r.step if r else None,
            "steps": list(m.release.steps), "failures": r.failures if r else 0, "reason": r.reason if r else "",
            "step_age": round(now - r.step_started, 1) if r else None, "interval": m.release.interval,
            "last_check": None if j is None else {"verdict": j.verdict, "reason": j.reason},
            "breaker": (breakers or {}).get(m.name),
            "fallbacks": fallbacks(m.name) if fallbacks is not None else None,
            "summary": describe(m.release, r, m.stage, m.weight) if r else "not started",
            "window": {"new": {"requests": new.requests, "errors": new.errors},
                       "legacy": {"requests": legacy.requests, "errors": legacy.errors}},
        })
    return out


def _summed(store: Store, module: str, key: float) -> tuple[Window, Window, int]:
    """A step's traffic on each side, summed over every process's published window, and how
    many of those processes report the module's breaker open."""
    new, legacy, open_breakers = Window(), Window(), 0
    for text in store.windows(module, key):
        data = json.loads(text)
        new, legacy = new.merge(Window.from_json(data["service"])), legacy.merge(Window.from_json(data["legacy"]))
        open_breakers += bool(data.get("breaker_open"))
    return new, legacy, open_breakers
