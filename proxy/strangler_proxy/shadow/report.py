"""Rendering shadow reports: text, JSON (stable keys) and a self-contained HTML page."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from strangler_proxy.shadow.evidence import ModuleReport, samples_needed

__all__ = ["gate_verdict", "report_html", "report_json", "report_text"]  # public (the CLI's and loadtests' imports are checked against it)


def report_json(reports: list[ModuleReport], samples: dict[str, list[dict[str, Any]]], gate: float | None) -> dict[str, Any]:
    out = []
    for r in reports:
        out.append({
            "module": r.module,
            "total": r.total,
            "compared": r.compared,
            "matched": r.matched,
            "mismatched": r.mismatched,
            "skipped": dict(r.skipped),
            "match_rate": r.match_rate,
            "interval": None if r.interval is None else {"low": r.interval[0], "high": r.interval[1], "confidence": 0.95},
            "enough_samples": r.interval is not None,
            "min_samples": r.min_samples,
            "gate": None if gate is None else {"threshold": gate, "passed": r.passes(gate)},
            "fields": [{"path": f.path, "mismatches": f.mismatches} for f in r.fields],
            "endpoints": [
                {"endpoint": e.endpoint, "total": e.total, "compared": e.compared, "matched": e.matched,
                 "skipped": dict(e.skipped),
                 "fields": [{"path": f.path, "mismatches": f.mismatches, "noise": f.noise, "rate": f.rate,
                             "noise_rate": f.noise_rate, "real": f.real} for f in e.fields]}
                for e in r.endpoints
            ],
            "samples": samples.get(r.module, []),
        })
    return {"schema": "strangler.shadow/1", "modules": out}


def _rate(r: ModuleReport) -> str:
    if r.compared == 0:
        return "no traffic compared yet"
    rate = f"{100 * (r.match_rate or 0):.2f} % match ({r.matched} of {r.compared})"
    if r.interval is None:
        return f"{rate}: not enough traffic for a verdict (need {r.min_samples} compared)"
    lo, hi = r.interval
    return f"{rate}, 95 % interval {100 * lo:.2f}-{100 * hi:.2f} %"


def gate_verdict(r: ModuleReport, gate: float) -> str:
    """PASS or FAIL, and why: a perfect match can fail on too few samples, and says how many it needs."""
    if r.interval is None:
        return f"FAIL: not enough traffic for a verdict ({r.compared} of {r.min_samples} compared)"
    low = r.interval[0]
    if low >= gate:
        return f"PASS: the 95 % interval's lower bound {100 * low:.2f} % is at least {100 * gate:g} %"
    why = f"FAIL: the 95 % interval's lower bound {100 * low:.2f} % is under {100 * gate:g} %"
    need = samples_needed(r.match_rate or 0.0, gate)
    if need is None:
        return f"{why}: the match rate itself is too low; see the fields that differ"
    return (f"{why}: {r.compared} compared requests are too few to be sure; at this match rate about {need} "
            f"are needed ({need - r.compared} more)")


def report_text(reports: list[ModuleReport], gate: float | None) -> str:
    lines: list[str] = []
    for r in reports:
        lines.append(f"{r.module}: {_rate(r)}")
        skipped = ", ".join(f"{k} {v}" for k, v in r.skipped.items() if v)
        lines.append(f"  mirrored {r.total}, compared {r.compared}, mismatched {r.mismatched}, skipped: {skipped or 'none'}")
        if gate is not None:
            lines.append(f"  gate {gate:g}: {gate_verdict(r, gate)}")
        if r.fields:
            lines.append("  fields that differ most:")
            lines += [f"    {f.path:<40} {f.mismatches}" for f in r.fields[:10]]
        for e in r.endpoints:
            if e.compared:
                lines.append(f"  {e.endpoint:<40} {e.matched}/{e.compared} matched")
    return "\n".join(lines) + "\n" if lines else "no shadow evidence recorded yet\n"


def report_html(doc: dict[str, Any]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>strangler: shadow report</title>",
             "<style>body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}"
             "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}.pass{color:#1a7f37}.fail{color:#d1242f}"
             "pre{background:#f6f8fa;padding:8px;max-height:300px;overflow:auto}</style></head><body><h1>Shadow report</h1>"]
    for m in doc["modules"]:
        iv = m["interval"]
        verdict = ""
        if m["gate"] is not None:
            verdict = f" <b class='{'pass' if m['gate']['passed'] else 'fail'}'>gate {m['gate']['threshold']}: {'PASS' if m['gate']['passed'] else 'FAIL'}</b>"
        rate = "n/a" if m["match_rate"] is None else f"{100 * m['match_rate']:.2f} %"
        interval = "not enough traffic" if iv is None else f"{100 * iv['low']:.2f}-{100 * iv['high']:.2f} %"
        parts.append(f"<h2>{escape(m['module'])}</h2><p>match {rate} ({m['matched']} of {m['compared']}), 95 % interval {interval}{verdict}</p>")
        parts.append("<table><tr><th>endpoint</th><th>compared</th><th>matched</th><th>skipped</th></tr>")
        for e in m["endpoints"]:
            parts.append(f"<tr><td>{escape(e['endpoint'])}</td><td>{e['compared']}</td><td>{e['matched']}</td>"
                         f"<td>{escape(json.dumps(e['skipped']))}</td></tr>")
        parts.append("</table><h3>Fields</h3><table><tr><th>path</th><th>mismatches</th></tr>")
        parts += [f"<tr><td>{escape(f['path'])}</td><td>{f['mismatches']}</td></tr>" for f in m["fields"]]
        parts.append("</table><h3>Samples</h3>")
        parts += [f"<pre>{escape(json.dumps(s, indent=2))}</pre>" for s in m["samples"][:5]]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
