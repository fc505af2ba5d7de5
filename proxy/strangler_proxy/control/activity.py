"""What legacy still serves: per module the last time it answered (for the retire gate),
and the endpoints no module claims yet (``strangler release leftovers``).

The app records in memory on the request path (a dict update); the server flushes to the
state store about once a second, so the history survives restarts.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from strangler_proxy.errors import StateStoreError
from strangler_proxy.state.sqlite import connect

__all__ = ["leftovers"]  # public (the CLI's and loadtests' imports are checked against it)

SCHEMA = """
CREATE TABLE IF NOT EXISTS legacy_served (module TEXT PRIMARY KEY, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS leftovers (endpoint TEXT PRIMARY KEY, count INTEGER NOT NULL, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS proxy_runs (started REAL NOT NULL);
"""
MAX_ENDPOINTS = 10_000


class Activity:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = connect(self.path, SCHEMA, synchronous="NORMAL")
        self.started = time.time()
        self.db.execute("INSERT INTO proxy_runs VALUES (?)", (self.started,))
        self.legacy: dict[str, float] = {}
        self.unclaimed: dict[str, int] = {}

    def legacy_served(self, module: str) -> None:
        self.legacy[module] = time.time()

    def unclaimed_hit(self, endpoint: str) -> None:
        n = self.unclaimed.get(endpoint)
        if n is not None or len(self.unclaimed) < MAX_ENDPOINTS:
            self.unclaimed[endpoint] = (n or 0) + 1

    def flush(self) -> None:
        legacy, unclaimed = self.legacy, self.unclaimed
        self.legacy, self.unclaimed = {}, {}
        if not legacy and not unclaimed:
            return
        now = time.time()
        try:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO legacy_served VALUES (?,?) ON CONFLICT(module) DO UPDATE SET last=max(last, excluded.last)",
                                list(legacy.items()))
            self.db.executemany("INSERT INTO leftovers VALUES (?,?,?) ON CONFLICT(endpoint) DO UPDATE SET "
                                "count = count + excluded.count, last = excluded.last", [(e, n, now) for e, n in unclaimed.items()])
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.db.execute("ROLLBACK")
            raise StateStoreError(f"state store {self.path}: {exc}") from None

    def quiet_for(self, module: str) -> float:
        """Seconds since legacy last served the module (or since this proxy started, when
        it never has: what happened before is unknown, so it does not count as quiet)."""
        row = self.db.execute("SELECT last FROM legacy_served WHERE module=?", (module,)).fetchone()
        last = max(self.legacy.get(module, 0.0), row[0] if row else 0.0, self.started)
        return time.time() - last

    def close(self) -> None:
        self.db.close()


def leftovers(path: str | Path, limit: int = 100) -> list[tuple[str, int, float]]:
    db = connect(str(path), SCHEMA, synchronous="NORMAL")
    try:
        rows = db.execute("SELECT endpoint, count, last FROM leftovers ORDER BY count DESC, endpoint LIMIT ?", (limit,))
        return [(str(e), int(n), float(t)) for e, n, t in rows]
    finally:
        db.close()
