"""Each module's traffic per side, as ``strangler status`` and the dashboard show it.

Every process that serves counts its requests per module and side (and fallbacks) in
10-second slots, each a ``Window`` (counts and a latency histogram whose buckets add up
across processes), folds the slots older than the history into a since-start total, and
publishes the lot to the state store every poll (``Traffic.publish``). Whoever shows the
status (the admin API of the leader, or the CLI with the proxy down) sums the published
records of every worker and replica (``summarise``): the same figures the release
controller judges on, for every module rather than only those under release.

The per-request cost is one dict lookup and one ``Window.add``.
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
        self.changed = False
        self.published = float("-inf")

    def observe(self, module: str, side: str, seconds: float, error: bool) -> None:
        slot = int(self.clock() // SLOT)
        slots = self.slots.get((module, side))
        if slots is None:
            slots = self.slots[(module, side)] = {}
        w = slots.get(slot)
        if w is None:
            w = slots[slot] = Window()
        w.add(seconds, error)
        self.changed = True

    def fallback(self, module: str) -> None:
        """Legacy answered after the new service failed: a fallback, and a failed request of
        the new side (as the release controller counts it; legacy's answer is its own request)."""
        self.observe(module, "new", 0.0, True)
        slot = int(self.clock() // SLOT)
        per = self.fallbacks.setdefault(module, {})
        per[slot] = per.get(slot, 0) + 1
        self.changed = True

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

    def publish(self, breakers: dict[str, str]) -> str | None:
        """This process's record as JSON (None when nothing changed since the last one):
        per module and side its recent slots and its folded total; its breakers' states."""
        now = self.clock()
        if not self.changed and not any(s != "closed" for s in breakers.values()) and now - self.published < HEARTBEAT:
            return None
        self.changed = False
        self.published = now
        self._fold(int(now // SLOT))
        modules: dict[str, dict[str, Any]] = {}
        for (module, side), slots in self.slots.items():
            total = self.totals.get((module, side))
            if not slots and total is None:
                continue
            m = modules.setdefault(module, {})
            m[side] = {"slots": {str(s): w.to_json() for s, w in slots.items()},
                       "total": None if total is None else total.to_json()}
        for module in set(self.fallbacks) | set(self.fallback_totals):
            modules.setdefault(module, {})["fallbacks"] = {
                "slots": {str(s): n for s, n in self.fallbacks.get(module, {}).items()},
                "total": self.fallback_totals.get(module, 0)}
        return json.dumps({"ts": now, "started": self.started, "slot": SLOT, "modules": modules,
                           "breakers": {m: s for m, s in breakers.items() if s != "closed"},
                           "breaker_events": self.breaker_events}, separators=(",", ":"))


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


def summarise(records: Iterable[tuple[str, float, str]], now: float) -> Summary:
    """Sum the records (source, published at, JSON) of every live process. Pure."""
    out = Summary()
    now_slot = int(now // SLOT)
    for _source, published, text in records:
        if now - published > FRESH:
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            continue  # a record cut short: that process's next one replaces it
        out.processes += 1
        for module, per in doc.get("modules", {}).items():
            for side in SIDES:
                data = per.get(side)
                if data is None:
                    continue
                s = out.sides.get((module, side))
                if s is None:
                    s = out.sides[(module, side)] = Side()
                if data.get("total") is not None:
                    s.total = s.total.merge(Window.from_json(data["total"]))
                for key, wj in data.get("slots", {}).items():
                    w = Window.from_json(wj)
                    age = now_slot - int(key)
                    s.total = s.total.merge(w)
                    if 0 <= age < RECENT:
                        s.minute = s.minute.merge(w)
                    if 0 <= age < HISTORY:
                        s.history[HISTORY - 1 - age] += w.requests
            fb = per.get("fallbacks")
            if fb is not None:
                recent = sum(n for key, n in fb.get("slots", {}).items() if 0 <= now_slot - int(key) < RECENT)
                total = int(fb.get("total", 0)) + sum(fb.get("slots", {}).values())
                old = out.fallbacks.get(module, (0, 0))
                out.fallbacks[module] = (old[0] + recent, old[1] + total)
        for module in doc.get("breakers", {}):
            out.breakers[module] = out.breakers.get(module, 0) + 1
        out.breaker_events += [(float(e[0]), str(e[1]), str(e[2])) for e in doc.get("breaker_events", [])]
    out.breaker_events.sort()
    return out
