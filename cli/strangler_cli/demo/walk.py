"""What the demo shows between its stages: requests per module and side during one stage,
read from the proxy's admin API (its Prometheus metrics and its modules), and the release
controller's steps as it takes them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Counts = dict[tuple[str, str], float]  # (module, "legacy" | "new" | "fallbacks") -> since the proxy started


def counts(metrics_text: str) -> Counts:
    """Requests per module and side, and fallbacks per module, from the proxy's metrics."""
    out: Counts = {}
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == "strangler_requests_total":
                key = (s.labels.get("module", ""), "new" if s.labels.get("side") == "service" else "legacy")
            elif s.name == "strangler_fallbacks_total":
                key = (s.labels.get("module", ""), "fallbacks")
            else:
                continue
            out[key] = out.get(key, 0.0) + s.value
    return out


def shown_weight(stage: str, weight: float) -> str:
    """The share of a module's users on the new side: a canary's weight, all of them once
    released, none before (a stored weight left from a canary is not what runs)."""
    if stage == "canary":
        return f"{weight:g} %"
    return "100 %" if stage in ("released", "retired") else "0 %"


def table(modules: list[dict[str, object]], before: Counts, after: Counts) -> str:
    """One row per module: its stage, the new side's share, and the requests of this stage alone."""
    lines = [f"  {'module':<8} {'stage':<9} {'new side':>8} {'legacy':>8} {'new':>8} {'fallbacks':>9}   (requests in this stage)"]
    for m in modules:
        name = str(m["name"])

        def delta(side: str) -> int:
            return int(after.get((name, side), 0.0) - before.get((name, side), 0.0))

        lines.append(f"  {name:<8} {m['stage']!s:<9} {shown_weight(str(m['stage']), float(str(m['weight']))):>8} "
                     f"{delta('legacy'):>8} {delta('new'):>8} {delta('fallbacks'):>9}")
    return "\n".join(lines)


@dataclass
class Admin:
    """The demo proxy's admin API."""

    url: str
    token: str

    def get(self, path: str) -> httpx.Response:
        r = httpx.get(f"{self.url}{path}", headers={"authorization": f"Bearer {self.token}"}, timeout=10)
        r.raise_for_status()
        return r

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        r = httpx.post(f"{self.url}{path}", json=body, headers={"authorization": f"Bearer {self.token}"}, timeout=10)
        r.raise_for_status()
        doc: dict[str, object] = r.json()
        return doc

    def modules(self) -> list[dict[str, object]]:
        doc: list[dict[str, object]] = self.get("/modules").json()
        return doc

    def counts(self) -> Counts:
        return counts(self.get("/metrics").text)

    def release(self, module: str) -> dict[str, object]:
        doc: list[dict[str, object]] = self.get("/releases").json()
        return next(r for r in doc if r["module"] == module)


def follow_release(admin: Admin, module: str, say: Callable[[str], None], deadline: float, poll: float = 0.25) -> bool:
    """Print each step the release controller takes, with the check that decided it and the
    requests of the step that ended, until the module is released (True), rolled back or
    aborted, or ``deadline`` (False)."""
    seen = admin.release(module)
    before = admin.counts()
    last_wait = ""
    while time.monotonic() < deadline:
        time.sleep(poll)
        now = admin.release(module)
        check = now.get("last_check") or {}
        if isinstance(check, dict) and check.get("verdict") == "wait" and check.get("reason") != last_wait:
            last_wait = str(check.get("reason"))
            say(f"  check: wait: {last_wait}")
        if (now["status"], now["step"]) == (seen["status"], seen["step"]):
            continue
        after = admin.counts()
        say(f"  check: pass: {now['reason']}" if now["status"] in ("running", "released") else f"  check: {now['reason']}")
        say(table([{"name": module, "stage": seen["stage"], "weight": seen["weight"]}], before, after))  # the step that ended
        say(f"\n== {module}: {now['summary']} (by the release controller) ==")
        seen, before, last_wait = now, after, ""
        if now["status"] != "running":
            return now["status"] == "released"
    return False
