"""strangler's analyzer: from the estate teams already have to start-up waves, critical
path, cycles, blast radius and an extraction plan.

>>> from strangler_analyzer import load_estate, analyze, example_path
>>> a = analyze(load_estate([example_path("portal")]))
>>> a.waves.waves[0][:2]
('elasticsearch', 'erp')
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from strangler_common.lazy import lazy_attributes

from strangler_analyzer.analysis import Analysis, analyze, blast_radius, build_graph
from strangler_analyzer.errors import AnalyzerError, InputError, UnknownComponentError, UnknownInputError
from strangler_analyzer.importers import load_estate
from strangler_analyzer.model import Check, Component, Edge, Estate, Evidence

EXAMPLES = Path(__file__).parent / "examples"


def example_path(name: str) -> Path:
    """The folder of a bundled example estate (``portal``, ``shop-compose``, ...)."""
    path = EXAMPLES / name
    if not path.is_dir():
        known = ", ".join(sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
        raise AnalyzerError(f"unknown example {name!r}; bundled examples: {known}")
    return path


def load_inputs(paths: list[str], example: str | None = None, profiles: list[str] | None = None,
                env_file: str | None = None, lenient: bool = False, observed_orders: bool = False) -> Estate:
    """The estate of the command line: files and folders, and a bundled example by name."""
    all_paths: list[str | Path] = list(paths)
    if example:
        all_paths.append(example_path(example))
    if not all_paths:
        raise AnalyzerError("no input: name files or directories, or --example portal")
    return load_estate(all_paths, profiles or [], env_file, lenient, observed_orders)


__all__ = [
    "AnalyzerError", "Analysis", "Check", "Component", "Edge", "Estate", "Evidence",
    "InputError", "UnknownComponentError", "UnknownInputError", "analyze", "blast_radius",
    "build_graph", "example_path", "load_estate", "load_inputs",
]

# -- the facade the CLI and the load tests use: one import point, loaded on first use (a
# command pays only for what it touches); the type checker sees the real names
if TYPE_CHECKING:
    from strangler_analyzer.analysis import what_ifs
    from strangler_analyzer.analysis.graph import ordering_graph
    from strangler_analyzer.report import FORMATS, render
    from strangler_analyzer.report.jsonout import analysis_json, estate_from_json, impact_json
    from strangler_analyzer.report.startup import render_start_plan, render_timeline
    from strangler_analyzer.report.text import next_steps, render_impact, render_plan, render_what_ifs
    from strangler_analyzer.observed.procnet import Observer
    from strangler_analyzer.startup.checks import validate
    from strangler_analyzer.startup.export import EXPORTERS
    from strangler_analyzer.startup.plan import StartPlan, start_plan
    from strangler_analyzer.startup.runner import Limits, Run, StartFailed, Status, stop_recorded, timeline
    from strangler_analyzer.startup.wait import parse_target, wait_for

_LAZY: dict[str, tuple[str, str]] = {
    "what_ifs": ("strangler_analyzer.analysis", "what_ifs"),
    "ordering_graph": ("strangler_analyzer.analysis.graph", "ordering_graph"),
    "FORMATS": ("strangler_analyzer.report", "FORMATS"),
    "render": ("strangler_analyzer.report", "render"),
    "analysis_json": ("strangler_analyzer.report.jsonout", "analysis_json"),
    "impact_json": ("strangler_analyzer.report.jsonout", "impact_json"),
    "estate_from_json": ("strangler_analyzer.report.jsonout", "estate_from_json"),
    "render_start_plan": ("strangler_analyzer.report.startup", "render_start_plan"),
    "render_timeline": ("strangler_analyzer.report.startup", "render_timeline"),
    "next_steps": ("strangler_analyzer.report.text", "next_steps"),
    "render_impact": ("strangler_analyzer.report.text", "render_impact"),
    "render_plan": ("strangler_analyzer.report.text", "render_plan"),
    "render_what_ifs": ("strangler_analyzer.report.text", "render_what_ifs"),
    "Observer": ("strangler_analyzer.observed.procnet", "Observer"),
    "validate": ("strangler_analyzer.startup.checks", "validate"),
    "EXPORTERS": ("strangler_analyzer.startup.export", "EXPORTERS"),
    "StartPlan": ("strangler_analyzer.startup.plan", "StartPlan"),
    "start_plan": ("strangler_analyzer.startup.plan", "start_plan"),
    "Limits": ("strangler_analyzer.startup.runner", "Limits"),
    "Run": ("strangler_analyzer.startup.runner", "Run"),
    "StartFailed": ("strangler_analyzer.startup.runner", "StartFailed"),
    "Status": ("strangler_analyzer.startup.runner", "Status"),
    "stop_recorded": ("strangler_analyzer.startup.runner", "stop_recorded"),
    "timeline": ("strangler_analyzer.startup.runner", "timeline"),
    "parse_target": ("strangler_analyzer.startup.wait", "parse_target"),
    "wait_for": ("strangler_analyzer.startup.wait", "wait_for"),
}
__all__ += ["EXPORTERS", "FORMATS", "Limits", "Observer", "Run", "StartFailed", "StartPlan", "Status", "analysis_json", "estate_from_json", "impact_json", "next_steps", "ordering_graph", "parse_target", "render", "render_impact", "render_plan", "render_start_plan", "render_timeline", "render_what_ifs", "start_plan", "stop_recorded", "timeline", "validate", "wait_for", "what_ifs"]


__getattr__ = lazy_attributes(__name__, _LAZY)
