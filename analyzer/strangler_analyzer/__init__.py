"""strangler's analyzer: from the estate teams already have to start-up waves, critical
path, cycles, blast radius and an extraction plan.

>>> from strangler_analyzer import load_estate, analyze, example_path
>>> a = analyze(load_estate([example_path("portal")]))
>>> a.waves.waves[0][:2]
('elasticsearch', 'erp')
"""

from __future__ import annotations

from pathlib import Path

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
                env_file: str | None = None) -> Estate:
    """The estate of the command line: files and folders, and a bundled example by name."""
    all_paths: list[str | Path] = list(paths)
    if example:
        all_paths.append(example_path(example))
    if not all_paths:
        raise AnalyzerError("no input: name files or directories, or --example portal")
    return load_estate(all_paths, profiles or [], env_file)


__all__ = [
    "AnalyzerError", "Analysis", "Check", "Component", "Edge", "Estate", "Evidence",
    "InputError", "UnknownComponentError", "UnknownInputError", "analyze", "blast_radius",
    "build_graph", "example_path", "load_estate", "load_inputs",
]
