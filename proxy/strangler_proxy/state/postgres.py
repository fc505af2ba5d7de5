"""The state store on PostgreSQL, for several proxy replicas sharing one release state.

The same operations as the SQLite store. Every transaction that changes something also
bumps a version counter, which each replica polls (every 0.5 s by default), so a change made
through any replica's admin API is applied by all of them within a second. Cohort sides need
no coordination: the hash is the same everywhere. One replica at a time runs the release
controller: the holder of a session-level advisory lock.

The store outlives the database's restarts: a lost connection fails the call in hand (a
``StateStoreError``, which the control loop logs once and retries), drops the leadership
with the session that held it, and the next call reconnects, at most once per back-off
interval (0.5 s doubling to 5 s) so that an outage costs the control thread no time. Every
query runs on the control thread, never on the event loop that serves traffic: the data
plane never waits for the store.
"""

from __future__ import annotations

import json
import time
from typing import Any

from strangler_proxy.model import STAGES, Stage
from strangler_proxy.errors import StateStoreError
from strangler_proxy.model import Override
from strangler_proxy.state.records import TRAFFIC_KEPT, LedgerEntry, ReleaseState

SCHEMA = """
CREATE TABLE IF NOT EXISTS strangler_modules (
  name TEXT PRIMARY KEY, stage TEXT, weight DOUBLE PRECISION, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS strangler_ledger (
  id BIGSERIAL PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, module TEXT NOT NULL, action TEXT NOT NULL,
  detail TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS strangler_releases (
  module TEXT PRIMARY KEY, status TEXT NOT NULL, step INTEGER NOT NULL, step_started DOUBLE PRECISION NOT NULL,
  failures INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS strangler_release_windows (
  source TEXT NOT NULL, module TEXT NOT NULL, step_key DOUBLE PRECISION NOT NULL, data TEXT NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (source, module));
CREATE TABLE IF NOT EXISTS strangler_module_traffic (
  source TEXT NOT NULL, module TEXT NOT NULL, data TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (source, module));
CREATE INDEX IF NOT EXISTS strangler_ledger_module ON strangler_ledger (module, id);
CREATE TABLE IF NOT EXISTS strangler_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO strangler_meta VALUES ('version', 0) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION strangler_ledger_append_only() RETURNS trigger AS $$
  BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS strangler_ledger_append_only ON strangler_ledger;
CREATE TRIGGER strangler_ledger_append_only BEFORE UPDATE OR DELETE ON strangler_ledger
  FOR EACH ROW EXECUTE FUNCTION strangler_ledger_append_only();
"""
SCHEMA_LOCK = 0x5354524E  # advisory lock ids: schema creation, and the controller's leadership
LEADER_LOCK = 0x5354524C


class PgStateStore:
    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise StateStoreError("a postgresql:// state store needs psycopg: pip install 'strangler[postgres]'") from None
        self.url = url
        self.path = _redact(url)
        self._psycopg = psycopg
        try:
            self.db: Any = self._connect()
            self.db.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                self.db.execute(SCHEMA)
            finally:
                self.db.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
        except psycopg.Error as exc:
            raise StateStoreError(f"state store {self.path}: cannot open: {str(exc).strip()}") from None
        self.leading = False
        self.backoff = 0.0  # seconds before the next reconnection attempt may be made
        self.retry_at = 0.0

    def _connect(self) -> Any:
        return self._psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def _live(self) -> None:
        """A working connection, or a ``StateStoreError`` saying when the next attempt is."""
        db = self.db
        if db is not None and not db.closed and not db.broken:
            return
        now = time.monotonic()
        if now < self.retry_at:
            raise StateStoreError(f"state store {self.path}: unreachable; reconnecting in {self.retry_at - now:.1f} s")
        try:
            self.db = self._connect()
        except self._psycopg.Error as exc:
            self.backoff = min(5.0, max(0.5, self.backoff * 2))
            self.retry_at = now + self.backoff
            raise StateStoreError(f"state store {self.path}: cannot reconnect: {str(exc).strip()}") from None
        self.backoff = 0.0

    def _lost(self) -> None:
        """The connection is gone, and with its session the leader lock."""
        self.leading = False
        if self.db is not None:
            try:
                self.db.close()
            except self._psycopg.Error:  # closing a dead connection may complain: it is closed either way
                pass
        self.db = None

    def _run(self, fn: Any) -> Any:
        self._live()
        try:
            return fn()
        except self._psycopg.OperationalError as exc:  # the server went away (restart, network): reconnect next time
            self._lost()
            raise StateStoreError(f"state store {self.path}: connection lost: {str(exc).strip()}") from None
        except self._psycopg.Error as exc:
            if self.db is not None and (self.db.closed or self.db.broken):
                self._lost()
            raise StateStoreError(f"state store {self.path}: {str(exc).strip()}") from None

    def _bump(self, cur: Any) -> None:
        cur.execute("UPDATE strangler_meta SET value = value + 1 WHERE key = 'version'")

    def _one(self, query: str, args: tuple[Any, ...] = ()) -> Any:
        row = self._run(lambda: self.db.execute(query, args).fetchone())
        if row is None:
            raise StateStoreError(f"state store {self.path}: no answer to {query!r}")
        return row[0]

    def version(self) -> int:
        return int(self._one("SELECT value FROM strangler_meta WHERE key='version'"))

    def overrides(self) -> dict[str, Override]:
        rows = self._run(lambda: self.db.execute("SELECT name, stage, weight FROM strangler_modules").fetchall())
        return {n: Override(s if s in STAGES else None, w) for n, s, w in rows}

    def set(self, module: str, stage: Stage | None, weight: float | None, actor: str, reason: str = "") -> None:
        detail = json.dumps({k: v for k, v in (("stage", stage), ("weight", weight)) if v is not None})

        def tx() -> None:
            now = time.time()
            with self.db.transaction(), self.db.cursor() as cur:
                _upsert_module(cur, module, stage, weight, now)
                cur.execute("INSERT INTO strangler_ledger(ts, module, action, detail, actor, reason) VALUES (%s,%s,%s,%s,%s,%s)",
                            (now, module, "set", detail, actor, reason))
                self._bump(cur)

        self._run(tx)

    def clear(self, module: str, actor: str, reason: str = "") -> None:
        def tx() -> None:
            with self.db.transaction(), self.db.cursor() as cur:
                cur.execute("DELETE FROM strangler_modules WHERE name = %s", (module,))
                cur.execute("INSERT INTO strangler_ledger(ts, module, action, detail, actor, reason) VALUES (%s,%s,%s,%s,%s,%s)",
                            (time.time(), module, "clear", "{}", actor, reason))
                self._bump(cur)

        self._run(tx)

    def ledger(self, module: str | None = None, limit: int = 100) -> list[LedgerEntry]:
        q = "SELECT id, ts, module, action, detail, actor, reason FROM strangler_ledger"
        args: tuple[Any, ...] = ()
        if module is not None:
            q += " WHERE module = %s"
            args = (module,)
        rows = self._run(lambda: self.db.execute(q + " ORDER BY id DESC LIMIT %s", (*args, limit)).fetchall())
        return [LedgerEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def release(self, module: str) -> ReleaseState | None:
        row = self._run(lambda: self.db.execute(
            "SELECT module, status, step, step_started, failures, reason FROM strangler_releases WHERE module = %s", (module,)).fetchone())
        return ReleaseState(*row) if row else None

    def releases(self) -> list[ReleaseState]:
        rows = self._run(lambda: self.db.execute(
            "SELECT module, status, step, step_started, failures, reason FROM strangler_releases ORDER BY module").fetchall())
        return [ReleaseState(*r) for r in rows]

    def put_release(self, r: ReleaseState, stage: Stage | None, weight: float | None, actor: str, action: str,
                    evidence: dict[str, Any] | None = None) -> None:
        detail = json.dumps({"status": r.status, "step": r.step, "stage": stage, "weight": weight, "failures": r.failures,
                             **({"evidence": evidence} if evidence else {})})  # the step's figures, per side

        def tx() -> None:
            now = time.time()
            with self.db.transaction(), self.db.cursor() as cur:
                cur.execute(
                    "INSERT INTO strangler_releases VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (module) DO UPDATE SET "
                    "status = EXCLUDED.status, step = EXCLUDED.step, step_started = EXCLUDED.step_started, "
                    "failures = EXCLUDED.failures, reason = EXCLUDED.reason",
                    (r.module, r.status, r.step, r.step_started, r.failures, r.reason))
                if stage is not None or weight is not None:
                    _upsert_module(cur, r.module, stage, weight, now)
                cur.execute("INSERT INTO strangler_ledger(ts, module, action, detail, actor, reason) VALUES (%s,%s,%s,%s,%s,%s)",
                            (now, r.module, action, detail, actor, r.reason))
                self._bump(cur)

        self._run(tx)

    def put_windows(self, source: str, windows: list[tuple[str, float, str]]) -> None:
        """This replica's window of each module (module, step key, JSON), replacing its last;
        no version bump: windows change no override."""
        now = time.time()

        def tx() -> None:
            with self.db.transaction(), self.db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO strangler_release_windows VALUES (%s,%s,%s,%s,%s) ON CONFLICT (source, module) DO UPDATE "
                    "SET step_key = EXCLUDED.step_key, data = EXCLUDED.data, updated_at = EXCLUDED.updated_at",
                    [(source, m, key, data, now) for m, key, data in windows])

        self._run(tx)

    def windows(self, module: str, key: float) -> list[str]:
        rows = self._run(lambda: self.db.execute(
            "SELECT data FROM strangler_release_windows WHERE module = %s AND step_key = %s", (module, key)).fetchall())
        return [str(r[0]) for r in rows]

    def put_traffic(self, source: str, rows: list[tuple[str, str]]) -> None:
        """This replica's changed traffic rows (no version bump: they change no override)."""
        now = time.time()

        def tx() -> None:
            with self.db.transaction(), self.db.cursor() as cur:
                cur.executemany("INSERT INTO strangler_module_traffic VALUES (%s,%s,%s,%s) ON CONFLICT (source, module) DO UPDATE "
                                "SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at",
                                [(source, module, data, now) for module, data in rows])
                cur.execute("DELETE FROM strangler_module_traffic WHERE source IN (SELECT source FROM strangler_module_traffic WHERE "
                            "module = '' AND updated_at < %s)", (now - TRAFFIC_KEPT,))

        self._run(tx)

    def traffic(self) -> list[tuple[str, str, float, str]]:
        rows = self._run(lambda: self.db.execute("SELECT source, module, updated_at, data FROM strangler_module_traffic").fetchall())
        return [(str(s), str(m), float(u), str(d)) for s, m, u, d in rows]

    def last_changes(self) -> dict[str, LedgerEntry]:
        rows = self._run(lambda: self.db.execute(
            "SELECT DISTINCT ON (module) id, ts, module, action, detail, actor, reason FROM strangler_ledger "
            "ORDER BY module, id DESC").fetchall())
        return {r[2]: LedgerEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows}

    def try_lead(self) -> bool:
        """Whether this replica runs the release controller (it keeps the lock once it has it,
        and tries again for it after a reconnection: the lock went with the old session)."""
        if not self.leading:
            self.leading = bool(self._one("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)))
        return self.leading


def _upsert_module(cur: Any, module: str, stage: Stage | None, weight: float | None, now: float) -> None:
    """Change a module's stage and/or weight; a ``None`` keeps what was there."""
    cur.execute(
        "INSERT INTO strangler_modules(name, stage, weight, updated_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET stage = COALESCE(EXCLUDED.stage, strangler_modules.stage), "
        "weight = COALESCE(EXCLUDED.weight, strangler_modules.weight), updated_at = EXCLUDED.updated_at",
        (module, stage, weight, now))


def _redact(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
