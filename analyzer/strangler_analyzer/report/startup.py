"""Text for ``strangler up``: the start plan (``--dry-run``) and the timeline of a run."""

from __future__ import annotations

from typing import Any

from strangler_analyzer.startup.checks import describe
from strangler_analyzer.startup.plan import StartPlan
from strangler_common.text import plural

__all__ = ["render_start_plan", "render_timeline"]  # public (the CLI's and loadtests' imports are checked against it)


def render_start_plan(plan: StartPlan) -> str:
    lines = [f"start plan: {plural(len(plan.steps), 'component')} in {plural(len(plan.waves), 'wave')}; "
             f"critical path {plan.critical_seconds:g} s: {' -> '.join(plan.critical_path)}"]
    for i, wave in enumerate(plan.waves, 1):
        lines.append(f"wave {i}:")
        for name in wave:
            s = plan.step(name)
            check = ("exits 0 (a one-shot job its dependents wait for)" if s.completes and s.start
                     else describe(s.check) if s.check else "no check (ready when started)")
            needs = f" after {', '.join(s.needs)}" if s.needs else ""
            lines.append(f"  {name}{needs}\n    start: {s.start or '(not started here: only waited for)'}\n    ready: {check}")
    return "\n".join(lines) + "\n"


def render_timeline(doc: dict[str, Any]) -> str:
    """The timeline document of ``startup.runner.timeline`` as a table."""
    lines = [f"{'component':<28} {'wave':>4} {'started':>9} {'ready':>9} {'predicted':>10}"]
    for c in doc["components"]:
        started = "-" if c["started_at"] is None else f"{c['started_at']:.2f}s"
        ready = "-" if c["ready_at"] is None else f"{c['ready_at']:.2f}s"
        lines.append(f"{c['name']:<28} {c['wave'] + 1:>4} {started:>9} {ready:>9} {c['predicted_ready']:>9.2f}s")
    cp = doc["critical_path"]
    lines.append(f"ready in {doc['wall_seconds']} s; the critical path predicts {cp['seconds']:g} s ({' -> '.join(cp['components'])})")
    return "\n".join(lines) + "\n"
