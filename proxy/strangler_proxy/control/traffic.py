"""Each module's traffic per side, as ``strangler status`` and the dashboard show it.

Every process that serves counts its requests per module and side (and fallbacks) in
10-second slots, each a ``Window`` (counts and a latency histogram whose buckets add up
across processes), folds the slots older than the history into a since-start total, and
publishes the lot to the state store every poll (``Traffic.publish``). Whoever shows the
status (the admin API of the leader, or the CLI with the proxy down) sums the published
records of every worker and replica (``summarise``): the same figures the release
controller judges on, for every module rather than only those under release.

The per-request cost is one dict lookup and one ``Window.add`` (no clock read: ``tick``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from strangler_proxy.control.release import Window

__all__ = ["SLOT", "HISTORY", "Side", "Summary", "Traffic", "summarise"]

SLOT = 10.0  # seconds per slot
HISTORY = 30  # slots kept apart (5 minutes: the dashboard's sparklines); older ones fold into the total
RECENT = 6  # slots that make "the last minute"
FRESH = 600.0  # seconds: a process that published nothing for this long is gone (its record is not summed)
HEARTBEAT = 60.0  # seconds: a process publishes at least this often, traffic or not
PUBLISH_EVERY = 1.0  # seconds: at most this often
SIDES = ("legacy", "new")


class Traffic:
    """This process's counts. ``observe`` runs on the event loop per request; ``publish``
    on the control loop's tick (same loop: no lock)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.slots: dict[tuple[str, str], dict[int, Window]] = {}  # (module, side) -> slot index -> window
        self.totals: dict[tuple[str, str], Window] = {}  # folded slots, since this process started
        self.fallbacks: dict[str, dict[int, int]] = {}  # module -> slot -> fallbacks
        self.fallback_totals: dict[str, int] = {}
        self.breaker_events: list[tuple[float, str, str]] = []  # (ts, module, "open" | "closed"), newest last
        self.started = clock()
        self.slot = int(self.started // SLOT)  # the current slot, moved on by ``tick``
        self.changed = False  # breaker events to publish
        self.dirty: set[str] = set()  # modules with traffic since the last publish
        self.open_said: dict[str, str] = {}  # the open breakers last published
        self.published = float("-inf")

    def tick(self) -> None:
        """Follow the clock: the control loop calls it every poll (half a second), so the
        requests need no clock read of their own."""
        self.slot = int(self.clock() // SLOT)

    def observe(self, module: str, side: str, seconds: float, error: bool) -> None:
        slot = self.slot
        slots = self.slots.get((module, side))
        if slots is None:
            slots = self.slots[(module, side)] = {}
        w = slots.get(slot)
        if w is None:
            w = slots[slot] = Window()
        w.add(seconds, error)
        self.dirty.add(module)

    def fallback(self, module: str) -> None:
        """Legacy answered after the new service failed: a fallback, and a failed request of
        the new side (as the release controller counts it; legacy's answer is its own request)."""
        self.observe(module, "new", 0.0, True)
        slot = self.slot
        per = self.fallbacks.setdefault(module, {})
        per[slot] = per.get(slot, 0) + 1

    def breaker(self, module: str, state: str) -> None:
        """A breaker opened or closed in this process (kept for the dashboard's history)."""
        self.breaker_events.append((self.clock(), module, state))
        del self.breaker_events[:-50]
        self.changed = True

    def _fold(self, now_slot: int) -> None:
        oldest = now_slot - HISTORY + 1
        for key, slots in self.slots.items():
            for s in [s for s in slots if s < oldest]:
                total = self.totals.get(key)
                self.totals[key] = slots.pop(s) if total is None else total.merge(slots.pop(s))
        for module, per in self.fallbacks.items():
            for s in [s for s in per if s < oldest]:
                self.fallback_totals[module] = self.fallback_totals.get(module, 0) + per.pop(s)

    def publish(self, breakers: dict[str, str]) -> list[tuple[str, str]]:
        """What changed since the last publish, as rows (module, JSON) to upsert: one per
        module with new traffic (its total, its last minute's windows, its 5-minute history
        of counts: a few KB, whatever the uptime), and this process's own row (module "":
        alive when, its open breakers and their history), at least every ``HEARTBEAT``
        seconds. At most once per ``PUBLISH_EVERY`` seconds: a 10,000-module table is not
        rewritten every poll."""
        now = self.clock()
        self.slot = now_slot = int(now // SLOT)
        open_now = {m: s for m, s in breakers.items() if s != "closed"}
        due = now - self.published >= PUBLISH_EVERY
        if not due or (not self.dirty and not self.changed and open_now == self.open_said and now - self.published < HEARTBEAT):
            return []
        self.published = now
        self._fold(now_slot)
        rows: list[tuple[str, str]] = []
        for module in sorted(self.dirty):
            doc: dict[str, Any] = {}
            for side in SIDES:
                slots = self.slots.get((module, side), {})
                folded = self.totals.get((module, side))
                if not slots and folded is None:
                    continue
                total = folded or Window()
                for w in slots.values():
                    total = total.merge(w)
                doc[side] = {"total": total.to_json(),
                             "recent": {str(s): w.to_json() for s, w in slots.items() if now_slot - s < RECENT},
                             "history": {str(s): w.requests for s, w in slots.items()}}
            if module in self.fallbacks or module in self.fallback_totals:
                per = self.fallbacks.get(module, {})
                doc["fallbacks"] = {"slots": {str(s): n for s, n in per.items()},
                                    "total": self.fallback_totals.get(module, 0) + sum(per.values())}
            rows.append((module, json.dumps(doc, separators=(",", ":"))))
        self.dirty.clear()
        self.changed = False
        self.open_said = open_now
        rows.append(("", json.dumps({"ts": now, "started": self.started, "breakers": open_now,
                                     "breaker_events": self.breaker_events}, separators=(",", ":"))))
        return rows


@dataclass
class Side:
    """One side of one module, summed over every process."""

    minute: Window = field(default_factory=Window)  # the last ``RECENT`` slots
    total: Window = field(default_factory=Window)  # since each process started
    history: list[int] = field(default_factory=lambda: [0] * HISTORY)  # requests per slot, oldest first


@dataclass
class Summary:
    """What every process published, summed: per module its sides, fallbacks and breakers."""

    processes: int = 0
    sides: dict[tuple[str, str], Side] = field(default_factory=dict)
    fallbacks: dict[str, tuple[int, int]] = field(default_factory=dict)  # module -> (last minute, total)
    breakers: dict[str, int] = field(default_factory=dict)  # module -> processes where it is open (or half-open)
    breaker_events: list[tuple[float, str, str]] = field(default_factory=list)

    def side(self, module: str, side: str) -> Side:
        return self.sides.get((module, side)) or Side()


def summarise(records: Iterable[tuple[str, str, float, str]], now: float) -> Summary:
    """Sum the rows (source, module, published at, JSON) of every live process (one whose
    own row, module "", is fresher than ``FRESH``). Pure."""
    out = Summary()
    now_slot = int(now // SLOT)
    rows = list(records)
    alive: set[str] = set()
    for source, module, published, text in rows:
        if module != "" or now - published > FRESH:
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            continue  # a row cut short: that process's next one replaces it
        alive.add(source)
        out.processes += 1
        for module_name in doc.get("breakers", {}):
            out.breakers[module_name] = out.breakers.get(module_name, 0) + 1
        out.breaker_events += [(float(e[0]), str(e[1]), str(e[2])) for e in doc.get("breaker_events", [])]
    for source, module, _published, text in rows:
        if module == "" or source not in alive:
            continue
        try:
            per = json.loads(text)
        except ValueError:
            continue
        for side in SIDES:
            data = per.get(side)
            if data is None:
                continue
            s = out.sides.get((module, side))
            if s is None:
                s = out.sides[(module, side)] = Side()
            s.total = s.total.merge(Window.from_json(data["total"]))
            for key, wj in data.get("recent", {}).items():
                if 0 <= now_slot - int(key) < RECENT:
                    s.minute = s.minute.merge(Window.from_json(wj))
            for key, n in data.get("history", {}).items():
                age = now_slot - int(key)
                if 0 <= age < HISTORY:
                    s.history[HISTORY - 1 - age] += int(n)
        fb = per.get("fallbacks")
        if fb is not None:
            recent = sum(n for key, n in fb.get("slots", {}).items() if 0 <= now_slot - int(key) < RECENT)
            old = out.fallbacks.get(module, (0, 0))
            out.fallbacks[module] = (old[0] + recent, old[1] + int(fb.get("total", 0)))
    out.breaker_events.sort()
    return out
