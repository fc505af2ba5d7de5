"""Shadow evidence in the state store: counters merged from any number of workers.

Workers flush *deltas* (``value = value + excluded.value``), so replicas and restarts add
up; samples are capped per module, oldest dropped first.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from strangler_proxy.errors import StateStoreError
from strangler_proxy.state.sqlite import connect
from strangler_proxy.shadow.evidence import EndpointStats

__all__ = ["ShadowStore", "opened"]  # public (the CLI's and loadtests' imports are checked against it)

SCHEMA = """
CREATE TABLE IF NOT EXISTS shadow_counts (
  module TEXT NOT NULL, endpoint TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL,
  PRIMARY KEY (module, endpoint, key));
CREATE TABLE IF NOT EXISTS shadow_signatures (
  module TEXT NOT NULL, endpoint TEXT NOT NULL, signature TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (module, endpoint, signature));
CREATE TABLE IF NOT EXISTS shadow_fields (
  module TEXT NOT NULL, endpoint TEXT NOT NULL, path TEXT NOT NULL, mismatches INTEGER NOT NULL, noise INTEGER NOT NULL,
  PRIMARY KEY (module, endpoint, path));
CREATE TABLE IF NOT EXISTS shadow_samples (
  id INTEGER PRIMARY KEY AUTOINCREMENT, module TEXT NOT NULL, ts REAL NOT NULL, sample TEXT NOT NULL);
"""

Deltas = Mapping[tuple[str, str], EndpointStats]


class ShadowStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = connect(self.path, SCHEMA, synchronous="NORMAL")  # evidence, not transitions

    def close(self) -> None:
        self.db.close()

    def flush(self, deltas: Deltas, samples: list[tuple[str, dict[str, Any]]], caps: Mapping[str, int]) -> None:
        """Add counters and samples in one transaction."""
        if not deltas and not samples:
            return
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            for (module, endpoint), s in deltas.items():
                counts = {"total": s.total, "compared": s.compared, "calibrated": s.calibrated}
                counts.update({f"skipped:{k}": v for k, v in s.skipped.items()})
                db.executemany(
                    "INSERT INTO shadow_counts VALUES (?,?,?,?) ON CONFLICT(module, endpoint, key) "
                    "DO UPDATE SET value = value + excluded.value",
                    [(module, endpoint, k, v) for k, v in counts.items() if v],
                )
                db.executemany(
                    "INSERT INTO shadow_signatures VALUES (?,?,?,?) ON CONFLICT(module, endpoint, signature) "
                    "DO UPDATE SET count = count + excluded.count",
                    [(module, endpoint, json.dumps(list(sig)), c) for sig, c in s.signatures.items()],
                )
                paths = set(s.fields) | set(s.noise)
                db.executemany(
                    "INSERT INTO shadow_fields VALUES (?,?,?,?,?) ON CONFLICT(module, endpoint, path) "
                    "DO UPDATE SET mismatches = mismatches + excluded.mismatches, noise = noise + excluded.noise",
                    [(module, endpoint, p, s.fields.get(p, 0), s.noise.get(p, 0)) for p in paths],
                )
            now = time.time()
            for module, sample in samples:
                db.execute("INSERT INTO shadow_samples(module, ts, sample) VALUES (?,?,?)", (module, now, json.dumps(sample)))
            for module in {m for m, _ in samples}:
                db.execute("DELETE FROM shadow_samples WHERE module=? AND id NOT IN "
                           "(SELECT id FROM shadow_samples WHERE module=? ORDER BY id DESC LIMIT ?)",
                           (module, module, caps.get(module, 20)))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise StateStoreError(f"state store {self.path}: cannot record shadow evidence: {exc}") from None

    def modules(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT module FROM shadow_counts ORDER BY module")]

    def load(self, module: str) -> dict[str, EndpointStats]:
        out: dict[str, EndpointStats] = {}

        def ep(name: str) -> EndpointStats:
            return out.setdefault(name, EndpointStats())

        try:
            for endpoint, key, value in self.db.execute("SELECT endpoint, key, value FROM shadow_counts WHERE module=?", (module,)):
                s = ep(endpoint)
                if key.startswith("skipped:"):
                    s.skipped[key[8:]] += value
                elif key in ("total", "compared", "calibrated"):
                    setattr(s, key, getattr(s, key) + value)
            for endpoint, sig, count in self.db.execute("SELECT endpoint, signature, count FROM shadow_signatures WHERE module=?", (module,)):
                ep(endpoint).signatures[tuple(json.loads(sig))] += count
            for endpoint, path, m, n in self.db.execute("SELECT endpoint, path, mismatches, noise FROM shadow_fields WHERE module=?", (module,)):
                s = ep(endpoint)
                if m:
                    s.fields[path] += m
                if n:
                    s.noise[path] += n
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from None
        return out

    def samples(self, module: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT sample FROM shadow_samples WHERE module=? ORDER BY id DESC LIMIT ?", (module, limit))
        return [json.loads(r[0]) for r in rows]


@contextmanager
def opened(path: str | Path | None) -> Iterator[ShadowStore | None]:
    """The shadow evidence in ``path`` for the length of a ``with`` (closed after it), or
    ``None`` when there is no file yet (no module has mirrored anything)."""
    if path is None or not Path(path).exists():
        yield None
        return
    store = ShadowStore(path)
    try:
        yield store
    finally:
        store.close()
