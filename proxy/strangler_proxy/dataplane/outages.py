"""What operators must see without asking: an upstream that stops answering, and each module's
circuit breaker opening and closing, one log line when it starts and one when it ends, with
counts, never one per request (a dead service at 1,000 req/s must not flood the log).

- An **outage** of an upstream starts at its ``START_AFTER``-th failure in a row (refused,
  timed out, broken, a 5xx from a new service) and ends at its next success; the end line
  says how long, how many failures of each kind, and how many of them legacy answered.
- A **breaker** line at open (with the cool-down) and at close (how long it was open); a
  trial request that fails and reopens it is counted, said at most once a minute.

Pure bookkeeping with an injected clock and log: the app calls ``failure``/``success`` (a
dict lookup when nothing fails) and the runtime's breakers call ``breaker``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Outages", "START_AFTER"]

START_AFTER = 3  # failures in a row that make an outage (one refused connection is not one)
REPEAT_EVERY = 60.0  # seconds between two "still failing" lines of one breaker


@dataclass
class _Run:
    started: float
    kinds: dict[str, int] = field(default_factory=dict)
    served_by_legacy: int = 0
    logged: bool = False

    @property
    def count(self) -> int:
        return sum(self.kinds.values())


class Outages:
    def __init__(self, log: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.clock = clock
        self.failing: dict[str, _Run] = {}  # upstream -> its current run of failures
        self._opened: dict[str, float] = {}  # module -> when its breaker opened
        self._reopened: dict[str, tuple[int, float]] = {}  # module -> (reopenings unsaid, when last said)
        self.watchers: list[Callable[[str, str], None]] = []  # told (module, "open" | "closed") at each opening and closing

    def failure(self, upstream: str, module: str, kind: str, fell_back: bool) -> None:
        run = self.failing.get(upstream)
        if run is None:
            run = self.failing[upstream] = _Run(self.clock())
        run.kinds[kind] = run.kinds.get(kind, 0) + 1
        run.served_by_legacy += fell_back
        if not run.logged and run.count >= START_AFTER:
            run.logged = True
            self.log(f"upstream {upstream}: outage: {run.count} failures in a row ({_kinds(run.kinds)}), first for module "
                     f"{module}" + ("; legacy answers in its place where it may" if fell_back else ""))

    def success(self, upstream: str) -> None:
        run = self.failing.pop(upstream, None)
        if run is not None and run.logged:
            self.log(f"upstream {upstream}: answering again after {self.clock() - run.started:.1f} s: {run.count} failures "
                     f"({_kinds(run.kinds)}), {run.served_by_legacy} answered by legacy instead")

    def breaker(self, module: str, old: str, new: str, cooldown: float) -> None:
        now = self.clock()
        if (new == "open" and old == "closed") or new == "closed":
            for watch in self.watchers:
                watch(module, new)
        if new == "open" and old == "closed":
            self._opened[module] = now
            self.log(f"breaker {module}: open: its new service keeps failing; its requests go to legacy "
                     f"(a trial request every {cooldown:g} s)")
        elif new == "open":  # a failed trial: still failing
            n, said = self._reopened.get(module, (0, float("-inf")))
            n += 1
            if now - said >= REPEAT_EVERY:
                self.log(f"breaker {module}: still open: {n} trial request{'s' if n > 1 else ''} failed since "
                         f"{now - self._opened.get(module, now):.0f} s")
                n, said = 0, now
            self._reopened[module] = (n, said)
        elif new == "closed":
            opened = self._opened.pop(module, None)
            self._reopened.pop(module, None)
            self.log(f"breaker {module}: closed: the new service answered its trial request"
                     + (f" after {now - opened:.1f} s open" if opened is not None else ""))


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
