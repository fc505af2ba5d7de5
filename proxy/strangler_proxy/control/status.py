"""Where the migration stands: one record per module (``strangler status``, ``GET /status``,
the dashboard).

``build_status`` is pure: it takes the effective modules (overrides applied), their
release states, the traffic every process published (summed: the figures the release
controller judges on), each module's newest ledger entry, its shadow evidence and the
controller's last checks, and returns the ``strangler.status/1`` document published in
``schemas/status.schema.json``. ``collect`` reads those inputs from a store (the admin API
and the offline CLI call it alike); ``render_text`` is the terminal table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from strangler_proxy.control.release import Judgement
from strangler_proxy.control.traffic import HISTORY, SLOT, Summary, summarise
from strangler_proxy.control.transition import describe
from strangler_proxy.model import Module, Upstream
from strangler_proxy.shadow.evidence import ModuleReport, module_report
from strangler_proxy.state import LedgerEntry, ReleaseState, Store

__all__ = ["SCHEMA", "build_status", "collect", "new_share", "render_text", "serving"]

SCHEMA = "strangler.status/1"


def new_share(stage: str, weight: float) -> float:
    """The share of a module's requests the new side serves by its stage: a canary's
    weight, all once released or retired, none before (a stored weight left from a canary
    is not what runs)."""
    return weight if stage == "canary" else 100.0 if stage in ("released", "retired") else 0.0


def build_status(modules: Sequence[Module], releases: Mapping[str, ReleaseState], traffic: Summary,
                 last: Mapping[str, LedgerEntry], shadow: Mapping[str, ModuleReport],
                 checks: Mapping[str, Judgement], now: float, source: str) -> dict[str, Any]:
    """The status document. ``source``: ``admin`` (a running proxy) or ``store`` (read
    offline; the traffic is what the processes last published)."""
    out = []
    for m in modules:
        r = releases.get(m.name)
        release = None
        if m.release is not None:
            check = checks.get(m.name)
            release = {
                "status": r.status if r else "not started", "step": r.step if r else None,
                "steps": [s if isinstance(s, str) else float(s) for s in m.release.steps],
                "summary": describe(m.release, r, m.stage, m.weight) if r else "not started",
                "failures": r.failures if r else 0, "reason": r.reason if r else "",
                "last_check": None if check is None else {"verdict": check.verdict, "reason": check.reason},
            }
        sides = {}
        for side in ("legacy", "new"):
            s = traffic.side(m.name, side)
            sides[side] = {"minute": s.minute.figures(), "total": s.total.figures(), "history": list(s.history)}
        fb_minute, fb_total = traffic.fallbacks.get(m.name, (0, 0))
        open_in = traffic.breakers.get(m.name, 0)
        rep = shadow.get(m.name)
        entry = last.get(m.name)
        out.append({
            "module": m.name, "stage": m.stage, "weight": m.weight, "new_share": new_share(m.stage, m.weight),
            "service": m.service, "legacy": m.legacy, "release": release, "traffic": sides,
            "fallbacks": {"minute": fb_minute, "total": fb_total},
            "breaker": {"state": "open" if open_in else "closed", "open_in": open_in, "processes": traffic.processes},
            "shadow": None if rep is None else {
                "compared": rep.compared, "matched": rep.matched, "match_rate": rep.match_rate,
                "interval": None if rep.interval is None else list(rep.interval), "min_samples": rep.min_samples},
            "last_change": None if entry is None else {
                "ts": entry.ts, "actor": entry.actor, "action": entry.action, "detail": entry.detail, "reason": entry.reason},
        })
    return {"schema": SCHEMA, "ts": now, "source": source, "processes": traffic.processes, "slot_seconds": SLOT,
            "history_slots": HISTORY, "modules": out}


def collect(modules: Sequence[Module], store: Store, shadow_state: str | Path | None,
            checks: Mapping[str, Judgement], source: str, now: float | None = None) -> dict[str, Any]:
    """Read what ``build_status`` needs from ``store`` (and the shadow evidence in the
    SQLite file ``shadow_state``, when there is one) and build the document."""
    now = time.time() if now is None else now
    releases = {r.module: r for r in store.releases()}
    traffic = summarise(store.traffic(), now)
    last = store.last_changes()
    shadow: dict[str, ModuleReport] = {}
    wanted = [(m.name, m.shadow.min_samples) for m in modules if m.shadow is not None]
    if wanted:
        from strangler_proxy.shadow.store import opened

        with opened(shadow_state) as evidence:
            if evidence is not None:
                for name, min_samples in wanted:
                    shadow[name] = module_report(name, evidence.load(name), min_samples=min_samples)
    return build_status(modules, releases, traffic, last, shadow, checks, now, source)


def serving(components: list[dict[str, Any]], modules: list[Module], upstreams: Mapping[str, Upstream]) -> dict[str, dict[str, str]]:
    """Which modules each component serves, and as which side: a component is a module's
    new service or its legacy when it bears the upstream's name or its host and port. Pure."""
    out: dict[str, dict[str, str]] = {}
    for c in components:
        name, host, port = c.get("name"), c.get("host"), c.get("port")
        for m in modules:
            for side, upstream in (("new", m.service), ("legacy", m.legacy)):
                u = upstreams.get(upstream)
                if name == upstream or (u is not None and host and port and (str(host).lower(), port) == (u.host.lower(), u.port)):
                    out.setdefault(str(name), {})[m.name] = side
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def _ago(ts: float, now: float) -> str:
    s = max(0.0, now - ts)
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.0f}h ago"


def render_text(doc: dict[str, Any], width: int | None = None) -> str:
    """The status as a terminal table (rich), one row per module, the last minute's figures
    per side as legacy|new, and under it what needs a reader's eye: open breakers, fallbacks,
    checks that fail."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    now = float(doc["ts"])
    t = Table(box=None, pad_edge=False, header_style="bold", title=None)
    for name, justify in (("module", "left"), ("stage", "left"), ("new", "right"), ("release", "left"),
                          ("req/min legacy|new", "right"), ("errors", "right"), ("p99 ms", "right"),
                          ("fallbacks", "right"), ("breaker", "left"), ("shadow", "right"), ("last change", "left")):
        t.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    notes: list[str] = []
    for m in doc["modules"]:
        legacy, new = m["traffic"]["legacy"]["minute"], m["traffic"]["new"]["minute"]
        rel = m["release"]
        release = "-" if rel is None else rel["summary"]
        if rel is not None and rel.get("last_check"):
            release += f" [{rel['last_check']['verdict']}]"
        sh = m["shadow"]
        shadow = "-" if sh is None or sh["match_rate"] is None else f"{100 * sh['match_rate']:.1f}% of {sh['compared']}"
        change = m["last_change"]
        last = "-" if change is None else f"{change['action']} by {change['actor']}, {_ago(change['ts'], now)}"
        b = m["breaker"]
        breaker = "closed" if b["state"] == "closed" else f"OPEN ({b['open_in']} of {b['processes']})"
        cells = (m["module"], m["stage"], f"{m['new_share']:g}%", release,
                 f"{legacy['requests']}|{new['requests']}", f"{_pct(legacy['error_rate'])}|{_pct(new['error_rate'])}",
                 f"{_ms(legacy['p99_ms'])}|{_ms(new['p99_ms'])}",
                 f"{m['fallbacks']['minute']} ({m['fallbacks']['total']})", breaker, shadow, last)
        t.add_row(*(Text(str(c)) for c in cells))  # Text: a name like '[bold]' is shown, not read as markup
        if b["state"] != "closed":
            notes.append(f"{m['module']}: circuit breaker open in {b['open_in']} of {b['processes']} processes: its requests go to legacy")
        if rel is not None and rel.get("last_check") and rel["last_check"]["verdict"] == "fail":
            notes.append(f"{m['module']}: last check failed: {rel['last_check']['reason']}")
    buffer = StringIO()
    console = Console(file=buffer, width=width or 200, force_terminal=False, color_system=None, highlight=False)
    if not doc["modules"]:
        return "no modules in the route table\n"
    console.print(t)
    where = "a running proxy" if doc["source"] == "admin" else "the state store (the proxy may be down: traffic as last published)"
    n = doc["processes"]
    console.print(f"last minute per side (legacy|new), fallbacks in the last minute (since start); "
                  f"from {where}, {n} serving process{'es' if n != 1 else ''}", markup=False, highlight=False)
    for note in notes:
        console.print(note, markup=False, highlight=False)
    return buffer.getvalue()
