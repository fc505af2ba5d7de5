"""``strangler up``: start an estate in dependency order, failing fast with a reason.

Each component starts (its ``start`` command, in its own process group, output to a log
file) once its hard dependencies are ready, then its readiness check is tried with
exponential backoff and jitter until it passes, the component's timeout runs out, or its
process exits. Independent components start in parallel. On the first failure the run
names the blocked chain ("portal-app waits on esb, esb waits on activemq: activemq's check
tcp://127.0.0.1:61616 timed out after 30 s; last error: connection refused"), stops what
it started in reverse order, and exits non-zero. What was started is kept in a state file
so ``strangler down`` can stop it later, in reverse order.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from strangler_analyzer.errors import AnalyzerError
from strangler_analyzer.startup.checks import Outcome, attempt, describe
from strangler_analyzer.startup.plan import StartPlan, Step

__all__ = ["Limits", "Run", "StartFailed", "Status", "stop_recorded", "timeline"]  # public (the CLI's and loadtests' imports are checked against it)

State = Literal["waiting", "starting", "ready", "failed", "stopped"]
Event = Callable[["Status", float], None]


class StartFailed(AnalyzerError):
    """A component did not become ready; the message names the blocked chain."""


@dataclass
class Status:
    name: str
    wave: int
    state: State = "waiting"
    started_at: float | None = None
    ready_at: float | None = None
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Limits:
    check_timeout: float = 5.0  # one attempt
    component_timeout: float = 120.0  # from start to ready
    deadline: float | None = None  # the whole run
    backoff_start: float = 0.05
    backoff_max: float = 2.0


@dataclass
class Run:
    plan: StartPlan
    limits: Limits
    state_dir: Path
    on_event: Event = field(default=lambda s, t: None)

    def __post_init__(self) -> None:
        self.status = {s.name: Status(s.name, s.wave) for s in self.plan.steps}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.order: list[str] = []  # start order, for the reverse stop
        self.t0 = time.monotonic()
        self.rng = random.Random()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _set(self, name: str, state: State, detail: str = "") -> None:
        st = self.status[name]
        st.state, st.detail = state, detail
        if state == "starting":
            st.started_at = self.now()
        elif state == "ready":
            st.ready_at = self.now()
        self.on_event(st, self.now())

    # -- state on disk -------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "up-state.json"

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        doc = {"started": [{"name": n, "pid": self.procs[n].pid, "command": self.plan.step(n).start} for n in self.order]}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, self.state_file)

    # -- running -------------------------------------------------------------------------
    async def up(self) -> None:
        pending = {s.name for s in self.plan.steps}
        ready: set[str] = set()
        tasks: dict[asyncio.Task[None], str] = {}
        deadline = None if self.limits.deadline is None else self.t0 + self.limits.deadline
        try:
            while pending or tasks:
                for step in self.plan.steps:
                    if step.name in pending and all(n in ready for n in step.needs):
                        pending.discard(step.name)
                        tasks[asyncio.ensure_future(self._bring_up(step))] = step.name
                if not tasks:
                    break
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    waiting = sorted(tasks.values())
                    raise StartFailed(self._chain(waiting[0], f"the run's deadline of {self.limits.deadline:g} s passed "
                                                              f"while {', '.join(waiting)} {'was' if len(waiting) == 1 else 'were'} not ready"
                                                              + self._last(waiting[0])))
                for t in done:
                    name = tasks.pop(t)
                    t.result()  # raises StartFailed
                    ready.add(name)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _last(self, name: str) -> str:
        detail = self.status[name].detail
        return f"; last error: {detail}" if detail else ""

    async def _bring_up(self, step: Step) -> None:
        self._set(step.name, "starting")
        proc = None
        if step.start:
            logs = self.state_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            with (logs / f"{step.name}.log").open("ab") as log:
                proc = await asyncio.create_subprocess_shell(step.start, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL,
                                                             start_new_session=True)
            self.procs[step.name] = proc
            self.order.append(step.name)
            self.status[step.name].pid = proc.pid
            self._save()
        if step.completes and proc is not None:  # a one-shot job: its exit status is its readiness
            try:
                code = await asyncio.wait_for(proc.wait(), self.limits.component_timeout)
            except asyncio.TimeoutError:
                self._fail(step, f"{step.name} is a one-shot job its dependents wait for, and it did not exit within "
                                 f"{self.limits.component_timeout:g} s")
            if code != 0:
                self._fail(step, f"{step.name} exited with status {code}; its dependents need it to complete successfully "
                                 f"(see {self.state_dir / 'logs' / (step.name + '.log')})")
            self._set(step.name, "ready", "completed successfully")
            return
        if step.check is None:
            await asyncio.sleep(0.05)  # a start command that fails at once is a failure, not a start
            if proc is not None and proc.returncode is not None:
                self._fail(step, f"{step.name} exited with status {proc.returncode} (see {self.state_dir / 'logs' / (step.name + '.log')})")
            self._set(step.name, "ready", "started (no readiness check)")
            return
        timeout = float(step.check.options.get("timeout", self.limits.check_timeout))
        budget = self.limits.component_timeout
        wait = float(step.check.options.get("interval", self.limits.backoff_start))
        # poll at most every twentieth of the measured start-up time: along the critical path
        # readiness is then noticed within ~5 % of the time it takes
        cap = min(self.limits.backoff_max, max(self.limits.backoff_start, step.seconds / 20))
        started = time.monotonic()
        while True:
            outcome: Outcome = await attempt(step.check, timeout)
            if outcome.ready:
                self._set(step.name, "ready", outcome.detail)
                return
            self.status[step.name].detail = outcome.detail
            if proc is not None and proc.returncode is not None:
                self._fail(step, f"{step.name} exited with status {proc.returncode} before its check "
                                 f"{describe(step.check)} passed (see {self.state_dir / 'logs' / (step.name + '.log')})")
            if time.monotonic() - started >= budget:
                self._fail(step, f"{step.name}'s check {describe(step.check)} timed out after {budget:g} s; "
                                 f"last error: {outcome.detail}")
            await asyncio.sleep(min(wait * self.rng.uniform(0.8, 1.2), max(0.0, budget - (time.monotonic() - started))))
            wait = min(wait * 2, cap)

    def _fail(self, step: Step, reason: str) -> None:
        self._set(step.name, "failed", reason)
        raise StartFailed(self._chain(step.name, reason))

    def _chain(self, name: str, reason: str) -> str:
        """"a waits on b, b waits on c: <reason>", along the longest chain of dependents."""
        depth: dict[str, int] = {}

        def longest(n: str) -> int:
            if n not in depth:
                depth[n] = 1 + max((longest(d) for d in self.plan.dependents(n)), default=0)
            return depth[n]

        chain = [name]
        while True:
            deps = self.plan.dependents(chain[-1])
            if not deps:
                break
            chain.append(max(deps, key=lambda d: (longest(d), [-ord(ch) for ch in d])))
        links = [f"{chain[i + 1]} waits on {chain[i]}" for i in range(len(chain) - 1)]
        return ", ".join(reversed(links)) + (": " if links else "") + reason

    # -- stopping ------------------------------------------------------------------------
    async def stop_all(self, timeout: float = 10.0) -> None:
        for name in reversed(self.order):
            proc = self.procs[name]
            await stop_group(proc.pid, timeout, proc)
            self._set(name, "stopped")
        if self.state_file.exists():
            self.state_file.unlink()


async def stop_group(pid: int, timeout: float, proc: asyncio.subprocess.Process | None = None) -> None:
    """SIGTERM the process group, then SIGKILL it after ``timeout`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.returncode is not None:
            break
        if not _group_alive(pid):
            break
        await asyncio.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc is not None:
        await proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def timeline(run: Run) -> dict[str, Any]:
    """Actual start and ready times against the predicted critical path."""
    comps = []
    for s in run.plan.steps:
        st = run.status[s.name]
        comps.append({
            "name": s.name, "wave": s.wave, "state": st.state,
            "started_at": None if st.started_at is None else round(st.started_at, 3),
            "ready_at": None if st.ready_at is None else round(st.ready_at, 3),
            "predicted_start": s.predicted_start, "predicted_ready": s.predicted_start + s.seconds,
        })
    ready = [st.ready_at for st in run.status.values() if st.ready_at is not None]
    return {"schema": "strangler.up/1", "wall_seconds": round(max(ready), 3) if ready else None,
            "critical_path": {"components": list(run.plan.critical_path), "seconds": run.plan.critical_seconds},
            "components": comps}


def stop_recorded(state_dir: Path, timeout: float, on_stop: Callable[[str], None]) -> int:
    """``strangler down``: stop what the state file lists, in reverse order."""
    path = state_dir / "up-state.json"
    if not path.exists():
        raise AnalyzerError(f"{path}: nothing recorded as started here (run strangler up first)")
    try:
        started = json.loads(path.read_text())["started"]
    except (ValueError, KeyError) as exc:
        raise AnalyzerError(f"{path}: unreadable state file: {exc}") from None

    async def run() -> None:
        for entry in reversed(started):
            await stop_group(int(entry["pid"]), timeout)
            on_stop(entry["name"])

    asyncio.run(run())
    path.unlink()
    return len(started)
