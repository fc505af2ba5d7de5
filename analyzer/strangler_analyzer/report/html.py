"""A self-contained HTML report: the graph drawn as SVG with waves as columns.

No script, no external asset: the file opens anywhere and can be attached to a ticket.
Cycles are outlined in red, the critical path is drawn in blue, soft edges are dashed.
"""

from __future__ import annotations

from html import escape

from strangler_analyzer.analysis import Analysis
from strangler_analyzer.report.text import render_text
from strangler_common.text import plural

MAX_DRAWN = 600
COL_W, ROW_H, BOX_W, BOX_H = 230, 46, 180, 30

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px} h2{font-size:17px;margin-top:28px}
svg{border:1px solid #d0d7de;border-radius:6px;background:#fff}
.n rect{fill:#f6f8fa;stroke:#57606a;rx:6}
.n.cycle rect{stroke:#d1242f;stroke-width:3}
.n.path rect{fill:#ddf4ff;stroke:#1f6feb;stroke-width:2}
.n text{font-size:12px;dominant-baseline:middle;text-anchor:middle}
.e{stroke:#8c959f;fill:none;stroke-width:1.2}
.e.soft{stroke-dasharray:5 4}
.e.path{stroke:#1f6feb;stroke-width:3}
.e.inferred{stroke:#bf8700}
.wl{font-size:12px;fill:#57606a;text-anchor:middle}
pre{background:#f6f8fa;padding:12px;border-radius:6px;overflow:auto}
.legend span{margin-right:18px}
"""


def render_html(a: Analysis) -> str:
    waves = a.waves.waves
    cyclic = {n for g in a.waves.cyclic for n in g}
    path = a.critical_path.components
    path_edges = set(zip(path, path[1:]))
    drawn = sum(len(w) for w in waves) <= MAX_DRAWN
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>strangler: estate analysis</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Estate analysis</h1>",
        f"<p>{plural(len(a.estate.components), 'component')}, {plural(len(a.estate.edges), 'dependency', 'dependencies')}; "
        f"minimal cold start <b>{a.critical_path.seconds:g} s</b>.</p>",
    ]
    if drawn:
        pos = {n: (40 + i * COL_W, 50 + j * ROW_H) for i, w in enumerate(waves) for j, n in enumerate(w)}
        width = 80 + max(len(waves), 1) * COL_W
        height = 100 + max((len(w) for w in waves), default=1) * ROW_H
        svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>",
               "<defs><marker id='arr' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
               "<path d='M0,0L10,5L0,10z' fill='#57606a'/></marker></defs>"]
        for i, _ in enumerate(waves):
            svg.append(f"<text class='wl' x='{40 + i * COL_W + BOX_W / 2}' y='26'>wave {i + 1}</text>")
        for e in a.estate.edges:
            (x1, y1), (x2, y2) = pos[e.dst], pos[e.src]
            classes = ["e"]
            if e.strength == "soft":
                classes.append("soft")
            if not e.declared:
                classes.append("inferred")
            if (e.dst, e.src) in path_edges:
                classes.append("path")
            sx, ex = (x1 + BOX_W, x2) if x2 > x1 else (x1, x2 + BOX_W)
            mid = (sx + ex) / 2
            svg.append(
                f"<path class='{' '.join(classes)}' marker-end='url(#arr)' "
                f"d='M{sx},{y1 + BOX_H / 2} C{mid},{y1 + BOX_H / 2} {mid},{y2 + BOX_H / 2} {ex},{y2 + BOX_H / 2}'>"
                f"<title>{escape(e.src)} depends on {escape(e.dst)} ({e.strength})</title></path>"
            )
        for n, (x, y) in pos.items():
            cls = "n" + (" cycle" if n in cyclic else "") + (" path" if n in path else "")
            svg.append(f"<g class='{cls}'><rect x='{x}' y='{y}' width='{BOX_W}' height='{BOX_H}'/>"
                       f"<text x='{x + BOX_W / 2}' y='{y + BOX_H / 2}'>{escape(n)}</text></g>")
        svg.append("</svg>")
        parts.append("".join(svg))
        parts.append("<p class='legend'><span>blue: critical path</span><span>red outline: on a cycle</span>"
                     "<span>dashed: soft</span><span>amber: found only in configuration</span></p>")
    else:
        parts.append(f"<p>The graph has more than {MAX_DRAWN} components and is not drawn; the report follows.</p>")
    parts.append("<h2>Report</h2><pre>" + escape(render_text(a)) + "</pre></body></html>")
    return "\n".join(parts) + "\n"
