"""``--workers N``: the parent that supervises the workers, as nginx's master does.

The parent leads: it watches the route file, validates each new table in one place (the
retire guard included, ``serve.Leader``), serves the admin API and runs the release
controller. Workers serve traffic, each on its own SO_REUSEPORT listener, and follow: they
start from the table the parent accepted (sent on their standard input, never read from a
file that may have changed since) and take each newly accepted table on SIGHUP, from the
parent's run folder. They poll the state store for runtime changes as every process does.

Each worker is a fresh interpreter (``python -m strangler_proxy.worker``), not a fork of a
process with a running event loop. A worker that dies is logged and started again (its
listener is SO_REUSEPORT: the others keep serving meanwhile), after a back-off that grows
with its recent deaths; more than ``CRASH_LIMIT`` deaths in ``CRASH_WINDOW`` seconds is a
crash loop: the parent stops everything and exits 1. The parent exits 0 only when a signal
asked it to stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strangler_proxy.model import RouteTable

__all__ = ["CRASH_LIMIT", "CRASH_WINDOW", "Workers", "backoff", "options_json"]

CRASH_LIMIT = 5  # deaths of workers within CRASH_WINDOW seconds before the parent gives up
CRASH_WINDOW = 60.0


def backoff(recent_deaths: int) -> float:
    """Seconds before a dead worker is started again: at once the first time, then 0.5 s,
    doubling, 8 s at most (a worker that dies at start must not spin the CPU)."""
    return 0.0 if recent_deaths <= 1 else min(8.0, 0.5 * 2 ** (recent_deaths - 2))


def options_json(opts: Any) -> dict[str, Any]:
    """``ServeOptions`` as JSON values (paths as strings, pairs as lists)."""
    out: dict[str, Any] = {}
    for name in opts.__dataclass_fields__:
        value = getattr(opts, name)
        if callable(value):
            continue  # the parent's own hooks (storing the admin token): not a worker's
        out[name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
    return out


@dataclass
class Workers:
    """The worker processes: started, watched, restarted, stopped."""

    opts: Any  # ServeOptions (not imported: serve imports this module)
    text: str  # the accepted route file
    log: Any
    rundir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="strangler-run-"))
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    deaths: list[float] = field(default_factory=list)
    pending: int = 0  # workers waiting out their back-off
    gave_up: str | None = None

    @property
    def metrics_dir(self) -> str:
        path = os.path.join(self.rundir, "metrics")
        os.makedirs(path, exist_ok=True)
        return path

    def start_all(self) -> None:
        self.write_accepted(self.text)
        for _ in range(self.opts.workers):
            self.spawn()

    def spawn(self) -> int:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        proc = subprocess.Popen([sys.executable, "-m", "strangler_proxy.worker"], stdin=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        # the options (the admin token among them) and the table go through a pipe, not argv
        proc.stdin.write(json.dumps({"options": options_json(self.opts), "text": self.text, "rundir": self.rundir}).encode())
        proc.stdin.close()
        self.procs[proc.pid] = proc
        return proc.pid

    def write_accepted(self, text: str) -> None:
        """The table workers take on SIGHUP: written whole, then moved in."""
        self.text = text
        tmp = os.path.join(self.rundir, ".accepted.yaml")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, os.path.join(self.rundir, "accepted.yaml"))

    def accepted(self, table: RouteTable, text: str) -> None:
        """A new table the leader accepted: every worker takes it."""
        del table
        self.write_accepted(text)
        self.signal(signal.SIGHUP)

    def signal(self, sig: int) -> None:
        for pid in list(self.procs):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    async def reap(self, stopping: asyncio.Event) -> None:
        """Notice dead workers; start them again, or give up on a crash loop."""
        from prometheus_client import multiprocess

        for pid, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or stopping.is_set():
                continue
            del self.procs[pid]
            multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            now = time.monotonic()
            self.deaths = [t for t in self.deaths if now - t < CRASH_WINDOW] + [now]
            how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            if len(self.deaths) > CRASH_LIMIT:
                self.gave_up = (f"worker {pid} {how}: {len(self.deaths)} worker deaths in {CRASH_WINDOW:g} s, a crash "
                                "loop; stopping the proxy")
                self.log(self.gave_up)
                stopping.set()
                return
            delay = backoff(len(self.deaths))
            self.log(f"worker {pid} {how}; starting another" + (f" in {delay:g} s" if delay else "")
                     + f" ({len(self.procs)} of {self.opts.workers} serving meanwhile)")
            self.pending += 1
            asyncio.get_running_loop().call_later(delay, self._respawn, stopping)

    def _respawn(self, stopping: asyncio.Event) -> None:
        self.pending -= 1
        if not stopping.is_set():
            pid = self.spawn()
            self.log(f"worker {pid} started ({len(self.procs)} of {self.opts.workers} running)")

    def stop(self, timeout: float) -> None:
        """SIGTERM to each worker (each drains), SIGKILL to what is left after ``timeout``."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in list(self.procs.values()):
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.rundir, ignore_errors=True)
