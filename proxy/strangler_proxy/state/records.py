"""What every state store keeps and offers: the records and the ``Store`` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from strangler_proxy.model import Stage
from strangler_proxy.model import Override


@dataclass(frozen=True, slots=True)
class ReleaseState:
    module: str
    status: str  # running | paused | released | rolled_back | aborted
    step: int  # index into the plan's steps; len(steps) is released
    step_started: float
    failures: int
    reason: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    ts: float
    module: str
    action: str
    detail: dict[str, Any]
    actor: str
    reason: str


TRAFFIC_KEPT = 3600.0  # seconds a gone process's traffic record stays in the store


class Store(Protocol):
    """What the proxy needs of a state store: SQLite (one proxy) or PostgreSQL (replicas)."""

    path: str

    def close(self) -> None: ...
    def version(self) -> int: ...
    def overrides(self) -> dict[str, Override]: ...
    def set(self, module: str, stage: Stage | None, weight: float | None, actor: str, reason: str = "") -> None: ...
    def clear(self, module: str, actor: str, reason: str = "") -> None: ...
    def ledger(self, module: str | None = None, limit: int = 100) -> list[LedgerEntry]: ...
    def release(self, module: str) -> ReleaseState | None: ...
    def releases(self) -> list[ReleaseState]: ...
    def put_release(self, r: ReleaseState, stage: Stage | None, weight: float | None, actor: str, action: str,
                    evidence: dict[str, Any] | None = None) -> None: ...
    def try_lead(self) -> bool: ...
    # release windows: each proxy process's traffic counts for a module's current step, keyed
    # by the step's start time; the leader judges the step on the sum of all of them
    def put_windows(self, source: str, windows: list[tuple[str, float, str]]) -> None: ...
    def windows(self, module: str, key: float) -> list[str]: ...
    # traffic records: each proxy process's counts per module and side (control/traffic.py),
    # one row per (process, module) upserted when it changes, and the process's own row (module
    # ""); summed by whoever shows the status
    def put_traffic(self, source: str, rows: list[tuple[str, str]]) -> None: ...
    def traffic(self) -> list[tuple[str, str, float, str]]: ...
    # the newest ledger entry of each module (the status's "last change")
    def last_changes(self) -> dict[str, LedgerEntry]: ...
