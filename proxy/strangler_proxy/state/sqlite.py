"""The SQLite state store: runtime stage and weight changes, and an append-only ledger.

SQLite in WAL mode by default (one file). A change and its ledger entry commit in one
transaction, so a proxy killed at any moment keeps every committed change. Other processes
(proxy workers, the CLI) see changes through ``version()``, SQLite's ``data_version``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from strangler_proxy.model import STAGES, Stage
from strangler_proxy.errors import StateStoreError
from strangler_proxy.model import Override
from strangler_proxy.state.records import TRAFFIC_KEPT, LedgerEntry, ReleaseState

SCHEMA = """
CREATE TABLE IF NOT EXISTS modules (
  name TEXT PRIMARY KEY,
  stage TEXT,
  weight REAL,
  updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  module TEXT NOT NULL,
  action TEXT NOT NULL,
  detail TEXT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
  module TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  step INTEGER NOT NULL,
  step_started REAL NOT NULL,
  failures INTEGER NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_windows (
  source TEXT NOT NULL,
  module TEXT NOT NULL,
  step_key REAL NOT NULL,
  data TEXT NOT NULL,
  updated_at REAL NOT NULL,
  PRIMARY KEY (source, module)
);
CREATE TABLE IF NOT EXISTS module_traffic (
  source TEXT NOT NULL,
  module TEXT NOT NULL,
  data TEXT NOT NULL,
  updated_at REAL NOT NULL,
  PRIMARY KEY (source, module)
);
CREATE INDEX IF NOT EXISTS ledger_module ON ledger(module, id);
CREATE TRIGGER IF NOT EXISTS ledger_append_only_u BEFORE UPDATE ON ledger
  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_append_only_d BEFORE DELETE ON ledger
  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""


def connect(path: str, schema: str, synchronous: str = "FULL", wait: float = 15.0) -> sqlite3.Connection:
    """Open (creating) the state store file in WAL mode with ``schema`` applied.

    The proxy, its mirror helper and the CLI may open a new file at the same moment;
    switching it to WAL takes a lock that ignores SQLite's busy timeout, so a locked
    database is retried, with backoff, for up to ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
            db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA synchronous={synchronous}")
                db.executescript(schema)
            except BaseException:
                db.close()
                raise
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise StateStoreError(f"state store {path}: cannot open: {exc}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        except (sqlite3.Error, OSError) as exc:
            raise StateStoreError(f"state store {path}: cannot open: {exc}") from None


def _create_private(path: str) -> None:
    """Create the file readable by its owner only (0600) before SQLite opens it: it holds
    response samples and the ledger. An existing file keeps its mode."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class StateStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = connect(self.path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def try_lead(self) -> bool:
        return True  # one SQLite file, one proxy: it always runs the controller

    def version(self) -> int:
        """Changes when another connection commits; cheap enough to poll."""
        try:
            return int(self.db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from None

    def overrides(self) -> dict[str, Override]:
        try:
            rows = self.db.execute("SELECT name, stage, weight FROM modules").fetchall()
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from None
        return {name: Override(stage if stage in STAGES else None, weight) for name, stage, weight in rows}

    def set(self, module: str, stage: Stage | None, weight: float | None, actor: str, reason: str = "") -> None:
        """Record a change and its ledger entry in one transaction."""
        now = time.time()
        detail = json.dumps({k: v for k, v in (("stage", stage), ("weight", weight)) if v is not None})
        try:
            with self._tx():
                self._upsert_module(module, stage, weight, now)
                self.db.execute(
                    "INSERT INTO ledger(ts, module, action, detail, actor, reason) VALUES(?,?,?,?,?,?)",
                    (now, module, "set", detail, actor, reason),
                )
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: cannot record the change: {exc}") from None

    def clear(self, module: str, actor: str, reason: str = "") -> None:
        """Drop a module's runtime change: the route file's values apply again."""
        try:
            with self._tx():
                self.db.execute("DELETE FROM modules WHERE name=?", (module,))
                self.db.execute(
                    "INSERT INTO ledger(ts, module, action, detail, actor, reason) VALUES(?,?,?,?,?,?)",
                    (time.time(), module, "clear", "{}", actor, reason),
                )
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: cannot record the change: {exc}") from None

    def release(self, module: str) -> ReleaseState | None:
        row = self.db.execute("SELECT module, status, step, step_started, failures, reason FROM releases WHERE module=?",
                              (module,)).fetchone()
        return ReleaseState(*row) if row else None

    def releases(self) -> list[ReleaseState]:
        rows = self.db.execute("SELECT module, status, step, step_started, failures, reason FROM releases ORDER BY module")
        return [ReleaseState(*r) for r in rows]

    def put_release(self, r: ReleaseState, stage: Stage | None, weight: float | None, actor: str, action: str,
                    evidence: dict[str, Any] | None = None) -> None:
        """Record a release transition, the module's new stage and weight, and its ledger entry, atomically."""
        now = time.time()
        detail = json.dumps({"status": r.status, "step": r.step, "stage": stage, "weight": weight, "failures": r.failures,
                             **({"evidence": evidence} if evidence else {})})  # the step's figures, per side
        try:
            with self._tx():
                self.db.execute(
                    "INSERT INTO releases VALUES (?,?,?,?,?,?) ON CONFLICT(module) DO UPDATE SET status=excluded.status, "
                    "step=excluded.step, step_started=excluded.step_started, failures=excluded.failures, reason=excluded.reason",
                    (r.module, r.status, r.step, r.step_started, r.failures, r.reason))
                if stage is not None or weight is not None:
                    self._upsert_module(r.module, stage, weight, now)
                self.db.execute("INSERT INTO ledger(ts, module, action, detail, actor, reason) VALUES(?,?,?,?,?,?)",
                                (now, r.module, action, detail, actor, r.reason))
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: cannot record the release change: {exc}") from None

    def ledger(self, module: str | None = None, limit: int = 100) -> list[LedgerEntry]:
        q = "SELECT id, ts, module, action, detail, actor, reason FROM ledger"
        args: tuple[Any, ...] = ()
        if module is not None:
            q += " WHERE module=?"
            args = (module,)
        q += " ORDER BY id DESC LIMIT ?"
        try:
            rows = self.db.execute(q, (*args, limit)).fetchall()
            return [LedgerEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]
        except (sqlite3.Error, ValueError) as exc:  # a corrupt file or entry: said, never a traceback
            raise StateStoreError(f"state store {self.path}: cannot read the ledger: {exc}") from None

    def put_windows(self, source: str, windows: list[tuple[str, float, str]]) -> None:
        """This process's window of each module (module, step key, JSON), replacing its last."""
        now = time.time()
        try:
            with self._tx():
                self.db.executemany(
                    "INSERT INTO release_windows VALUES (?,?,?,?,?) ON CONFLICT(source, module) DO UPDATE SET "
                    "step_key=excluded.step_key, data=excluded.data, updated_at=excluded.updated_at",
                    [(source, m, key, data, now) for m, key, data in windows])
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: cannot record release windows: {exc}") from None

    def windows(self, module: str, key: float) -> list[str]:
        """Every process's window of ``module`` for the step that started at ``key``."""
        try:
            rows = self.db.execute("SELECT data FROM release_windows WHERE module=? AND step_key=?", (module, key)).fetchall()
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from None
        return [str(r[0]) for r in rows]

    def put_traffic(self, source: str, rows: list[tuple[str, str]]) -> None:
        """This process's changed traffic rows (module, JSON); the rows of a process gone for
        an hour are dropped."""
        now = time.time()
        try:
            with self._tx():
                self.db.executemany("INSERT INTO module_traffic VALUES (?,?,?,?) ON CONFLICT(source, module) DO UPDATE SET "
                                    "data=excluded.data, updated_at=excluded.updated_at",
                                    [(source, module, data, now) for module, data in rows])
                self.db.execute("DELETE FROM module_traffic WHERE source IN (SELECT source FROM module_traffic WHERE module = '' AND "
                                "updated_at < ?)", (now - TRAFFIC_KEPT,))
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: cannot record traffic: {exc}") from None

    def traffic(self) -> list[tuple[str, str, float, str]]:
        try:
            rows = self.db.execute("SELECT source, module, updated_at, data FROM module_traffic").fetchall()
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from None
        return [(str(s), str(m), float(u), str(d)) for s, m, u, d in rows]

    def last_changes(self) -> dict[str, LedgerEntry]:
        try:
            rows = self.db.execute("SELECT id, ts, module, action, detail, actor, reason FROM ledger WHERE id IN "
                                   "(SELECT max(id) FROM ledger GROUP BY module)").fetchall()
            return {r[2]: LedgerEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows}
        except (sqlite3.Error, ValueError) as exc:
            raise StateStoreError(f"state store {self.path}: cannot read the ledger: {exc}") from None

    def _upsert_module(self, module: str, stage: Stage | None, weight: float | None, now: float) -> None:
        """Change a module's stage and/or weight; a ``None`` keeps what was there."""
        self.db.execute(
            "INSERT INTO modules(name, stage, weight, updated_at) VALUES(?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
            "stage=coalesce(excluded.stage, modules.stage), weight=coalesce(excluded.weight, modules.weight), "
            "updated_at=excluded.updated_at",
            (module, stage, weight, now))

    def _tx(self) -> _Tx:
        return _Tx(self.db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
