"""Graphviz DOT and Mermaid: arrows point from a dependency to what waits for it."""

from __future__ import annotations

from strangler_analyzer.analysis import Analysis
from strangler_analyzer.model import Edge


def dot_quote(text: str) -> str:
    """A DOT quoted string: only backslash and double quote are escaped, so names in any
    script stay readable (JSON's ``\\u00e4`` escapes are printed literally by Graphviz).

    >>> print(dot_quote('kundenportal-über "v2"'))
    "kundenportal-über \\"v2\\""
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def mermaid_label(text: str) -> str:
    """A Mermaid node label: a double quote would end it, so it becomes ``#quot;``."""
    return '"' + text.replace('"', "#quot;") + '"'


def _origin(e: Edge) -> str:
    """Where an undeclared edge comes from: configuration, or only observation."""
    return "observed" if all(ev.kind.startswith("observed.") for ev in e.evidence) else "config"


def _path_edges(a: Analysis) -> set[tuple[str, str]]:
    p = a.critical_path.components
    return set(zip(p, p[1:]))


def render_dot(a: Analysis) -> str:
    cyclic = {n for g in a.waves.cyclic for n in g}
    on_path = _path_edges(a)
    q = dot_quote
    out = ["// arrows: start order, from what must be ready to what waits for it; dashed: soft; 'config': undeclared,",
           "// found only in configuration; blue: the critical path; red boxes: on a start-up cycle",
           "digraph estate {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for i, wave in enumerate(a.waves.waves):
        out.append(f"  subgraph cluster_wave{i} {{ label={q(f'wave {i + 1}')}; style=dashed;")
        for n in wave:
            style = ", color=red, penwidth=2" if n in cyclic else ""
            out.append(f"    {q(n)} [label={q(n)}{style}];")
        out.append("  }")
    for e in a.estate.edges:
        attrs = []
        if e.strength == "soft":
            attrs.append("style=dashed")
        if (e.dst, e.src) in on_path:
            attrs += ["color=blue", "penwidth=3"]  # one colour per edge: the critical path's wins
        elif not e.declared:
            attrs.append("color=gray50")
        if not e.declared:
            attrs += [f'label="{_origin(e)}"', "fontcolor=gray50"]  # undeclared: found only in configuration, or observed
        out.append(f"  {q(e.dst)} -> {q(e.src)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"


def render_mermaid(a: Analysis) -> str:
    ids = {c.name: f"n{i}" for i, c in enumerate(a.estate.components)}
    out = ["flowchart LR",
           "  %% arrows: start order, from what must be ready to what waits for it; dotted: soft;",
           "  %% labelled config: undeclared, found only in configuration; blue: the critical path"]
    for i, wave in enumerate(a.waves.waves):
        out.append(f"  subgraph wave{i + 1}[\"wave {i + 1}\"]")
        out += [f"    {ids[n]}[{mermaid_label(n)}]" for n in wave]
        out.append("  end")
    links = []
    for e in a.estate.edges:
        arrow = "-.->" if e.strength == "soft" else "-->"
        label = "" if e.declared else f"|{_origin(e)}|"  # undeclared: found only in configuration, or observed
        out.append(f"  {ids[e.dst]} {arrow}{label} {ids[e.src]}")
        links.append((e.dst, e.src))
    on_path = _path_edges(a)
    for i, (link, e) in enumerate(zip(links, a.estate.edges)):
        if link in on_path:
            out.append(f"  linkStyle {i} stroke:#1f6feb,stroke-width:3px")
        elif not e.declared:
            out.append(f"  linkStyle {i} stroke:#8c959f")
    cyclic = sorted({n for g in a.waves.cyclic for n in g})
    if cyclic:
        out.append("  classDef cycle stroke:#d1242f,stroke-width:3px")
        out.append(f"  class {','.join(ids[n] for n in cyclic)} cycle")
    return "\n".join(out) + "\n"
