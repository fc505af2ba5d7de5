"""Control-plane work off the request path: one thread, every step guarded.

The event loop serves traffic and nothing else. State-store reads and writes, route-file
parsing and the release controller run on one worker thread, which also serializes them
(one SQLite connection, one writer of the runtime snapshot). A step that fails, for any
reason, is logged in one line naming what failed and what keeps running, and is tried
again at the next tick: a route file that breaks the parser or a corrupted state database
never silently stops hot reload, state polling or releases. A step that keeps failing is
logged once, when it starts failing (whatever the later messages say: an outage is one
line, not one per tick), and once when it works again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from strangler_common import StranglerError

T = TypeVar("T")


class Background:
    def __init__(self, log: Callable[[str], None]) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strangler-control")
        self.log = log
        self.failing: dict[str, str] = {}  # step -> the failure last logged

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the control thread; its exceptions reach the caller (admin API)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def step(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """Run one background step; a failure is logged (once) and ``None`` returned."""
        try:
            result = await self.call(fn, *args)
        except Exception as exc:  # a background step must never take its loop down with it
            text = str(exc) if isinstance(exc, StranglerError) else f"{type(exc).__name__}: {exc}"
            message = f"{what} failed: {text}; traffic keeps flowing and {what} is retried"
            if what not in self.failing:
                self.log(message)
            self.failing[what] = message  # the latest reason (readiness shows it)
            return None
        if self.failing.pop(what, None) is not None:
            self.log(f"{what} works again")
        return result

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
