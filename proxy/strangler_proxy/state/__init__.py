"""The state store: stages and weights changed at run time, releases, and the ledger.

SQLite for one proxy (``sqlite``), PostgreSQL shared by replicas (``postgres``); both
offer the ``Store`` protocol of ``records``.
"""

from __future__ import annotations

from pathlib import Path

from strangler_proxy.state.records import LedgerEntry, ReleaseState, Store

__all__ = ["LedgerEntry", "ReleaseState", "Store", "default_path", "open_store", "state_dir", "token_path"]


def state_dir(routes: str | Path) -> Path:
    """The folder beside a route file where the proxy keeps its state and admin token."""
    return Path(routes).resolve().parent / ".strangler"


def default_path(routes: str | Path) -> Path:
    """The SQLite state store used when none is given: ``.strangler/state.sqlite3`` beside the route file."""
    return state_dir(routes) / "state.sqlite3"


def token_path(state: str | Path) -> Path:
    """Where the proxy writes the admin token it generated: beside its SQLite state file."""
    return Path(state).parent / "admin-token"


def open_store(location: str | Path) -> Store:
    """A path opens SQLite; a postgresql:// URL opens the PostgreSQL store for replicas."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from strangler_proxy.state.postgres import PgStateStore

        return PgStateStore(text)
    from strangler_proxy.state.sqlite import StateStore

    return StateStore(text)
