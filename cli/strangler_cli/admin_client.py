"""Talking to a running proxy's admin API from the CLI: the shared options (``--admin``,
``--token``, ``--routes``) and where the token comes from."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from strangler_common import StranglerError
from strangler_common.text import comment

DEFAULT = "127.0.0.1:9901"


def add_admin_options(p: argparse.ArgumentParser, routes_help: str) -> None:
    p.add_argument("--routes", type=Path, help=routes_help)
    p.add_argument("--admin", default=os.environ.get("STRANGLER_ADMIN", DEFAULT), metavar="HOST:PORT",
                   help=f"the proxy's admin API (default $STRANGLER_ADMIN or {DEFAULT})")
    p.add_argument("--token", default=os.environ.get("STRANGLER_ADMIN_TOKEN"),
                   help="the admin token (default $STRANGLER_ADMIN_TOKEN, or the token file beside --routes)")


def error_text(r: Any) -> str:
    """What a refused admin API call says: its JSON ``error``, else the start of its body on
    one line, control characters escaped (whatever answered may not be strangler)."""
    doc = _json(r)
    if isinstance(doc, dict) and "error" in doc:
        return "\n".join(comment(line) for line in str(doc["error"]).split("\n"))
    return _foreign(str(r.text))


def _json(r: Any) -> Any:
    """The answer's JSON, or None when its body is not JSON."""
    try:
        return r.json()
    except ValueError:
        return None


def _foreign(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return comment(flat[:limit]) + (" ..." if len(flat) > limit else "")


def answer(r: Any, what: str, kind: type = dict) -> Any:
    """The JSON of a successful admin API answer (a ``kind``: an object unless told).
    Otherwise a StranglerError naming the call: its status and the API's reason, or that
    what answered is not the admin API."""
    if not 200 <= r.status_code < 300:
        raise StranglerError(f"{what}: {r.status_code}: {error_text(r)}")
    doc = _json(r)
    if not isinstance(doc, kind):
        raise StranglerError(f"{what}: {r.status_code}, but not from a strangler admin API (expected a JSON "
                             f"{'list' if kind is list else 'object'}, got: {_foreign(str(r.text), 80) or 'an empty body'}); "
                             "is --admin the proxy's admin listener, not its data port?")
    return doc


def token_for(token: str | None, routes: Path | None) -> str:
    """The admin token: given, or the proxy's token file beside the route file."""
    from strangler_proxy import default_path, token_path

    if token:
        return str(token)
    if routes is not None:
        path = token_path(default_path(routes))
        if path.exists():
            return path.read_text().strip()
    raise StranglerError("no admin token: pass --token, set STRANGLER_ADMIN_TOKEN, or name --routes")
