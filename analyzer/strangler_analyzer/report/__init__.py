"""Renderers: one function per output format, each ``Analysis -> str``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

from strangler_analyzer.analysis import Analysis
from strangler_analyzer.report.diagram import render_dot, render_mermaid
from strangler_analyzer.report.html import render_html
from strangler_analyzer.report.jsonout import analysis_json
from strangler_analyzer.report.text import render_markdown, render_text

Format = Literal["text", "json", "markdown", "dot", "mermaid", "html"]
FORMATS: tuple[Format, ...] = ("text", "json", "markdown", "dot", "mermaid", "html")


def render_json(a: Analysis) -> str:
    return json.dumps(analysis_json(a), indent=2, sort_keys=False) + "\n"


RENDERERS: dict[Format, Callable[[Analysis], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
    "dot": render_dot,
    "mermaid": render_mermaid,
    "html": render_html,
}


def render(a: Analysis, fmt: Format) -> str:
    return RENDERERS[fmt](a)


__all__ = ["FORMATS", "Format", "render"]
